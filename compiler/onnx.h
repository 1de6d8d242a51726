/* ONNX in and out. The importer reads an ONNX model (protobuf-c, with the
 * code protoc-c generates from onnx.proto) and translates it into .brn text,
 * which then goes through the same front end, checks and passes as a model
 * file, plus the initializers in brnc's names and conventions. The exporter
 * writes the original ONNX model back with trained values. */
#ifndef BRN_ONNX_H
#define BRN_ONNX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "diag.h"

/* One brnc tensor and the ONNX value it came from. */
typedef struct brn_onnx_weight {
	const char *name;     /* brnc's: "layer1_0_conv1.weight" */
	const char *onnx;     /* the ONNX value the node reads: PyTorch's name */
	const char *init;     /* the initializer (or Constant output) it is */
	int ndim;
	int64_t shape[4];     /* brnc's shape */
	float *data;          /* in brnc's convention */
	int transposed;       /* dense weight that ONNX holds as [in, out] */
	double eps;           /* sigma = sqrt(var + eps) when >= 0; else -1 */
	int node, slot;       /* the ONNX node input it feeds */
} brn_onnx_weight;

typedef struct brn_onnx_import {
	char *text;           /* the model as .brn text */
	size_t len;
	brn_onnx_weight *w;
	int nw;
} brn_onnx_import;

typedef struct brn_onnx_options {
	const char *name;     /* the model's name (a C name) */
	int renorm;           /* BatchNormalization -> batch_renorm */
	int train;            /* add labels and softmax_cross_entropy */
} brn_onnx_options;

/* 1 when path should be read as ONNX: its first byte is the protobuf tag of
 * ModelProto.ir_version (a .brn file cannot start with that control byte),
 * or its name ends in ".onnx". */
int brn_onnx_sniff(const char *path);

/* A C name for the model from a file path: its base name without the
 * extension, with other characters as '_'. */
char *brn_onnx_model_name(const char *path, brn_arena *a);

/* Reads and translates path. Errors name the file and, for a node, its
 * index, name and op type. Returns 0 or -1. */
int brn_onnx_import_file(const char *path, const brn_onnx_options *o, brn_arena *a,
                         brn_onnx_import *im, brn_diag *d);

/* The same on the bytes of a model in memory (name for messages). */
int brn_onnx_import_mem(const char *name, const void *data, size_t len, const brn_onnx_options *o,
                        brn_arena *a, brn_onnx_import *im, brn_diag *d);

/* Writes the imported initializers as safetensors (step 0). */
int brn_onnx_write_weights(const brn_onnx_import *im, const char *path, brn_diag *d);

/* Rewrites the ONNX model at onnx_path with the values of the safetensors
 * file weights (brnc's names; var = sigma^2 - eps) into out. */
int brn_onnx_export(const char *onnx_path, const brn_onnx_import *im, const char *weights,
                    const char *out, brn_diag *d);

/* One line per tensor: brnc name, ONNX name, conversion. */
void brn_onnx_print_names(const brn_onnx_import *im, FILE *f);

#endif
