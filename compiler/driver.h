/* The compiler's pipeline, callable without the command line: read the
 * model, build and check the graph, run the schedule, lower, fuse, emit. */
#ifndef BRN_DRIVER_H
#define BRN_DRIVER_H

#include <stdio.h>

#include "arena.h"
#include "diag.h"
#include "graph.h"

typedef struct brn_options {
	const char *model;        /* path of the .brn file */
	const char *out;          /* output base; NULL: the model's name */
	const char *name;         /* NULL, or the model's name instead of the file's */
	const char *target;       /* "c" or "opencl" */
	const char *mode;         /* "infer" or "train" */
	int batch;                /* 0: the model's */
	const char *schedule;     /* NULL: the model's */
	const char *schedule_dir; /* where schedule names resolve */
	const char *weights;      /* infer: safetensors folded in */
	long step;                /* >= 0: fold the schedule at this step */
	int no_fuse;
	int shared;
	const char *emit;         /* "graph", "dot", "weights", NULL; ONNX: "brn", "onnx", "torch-names" */
	int renorm;               /* ONNX: BatchNormalization -> batch_renorm */
	const char *command_line; /* for the generated files' header comment */
} brn_options;

enum { BRN_COMPILE_INPUT = 1, BRN_COMPILE_INTERNAL = 3 };

/* Reads a whole file into the arena (NUL-terminated; *len excludes it). */
int brn_read_file(const char *path, brn_arena *a, char **text, size_t *len, brn_diag *d);

/* Parses, builds and schedules a model: the front half of brn_compile,
 * used by tests and by the interpreter's callers. */
int brn_load_model(const char *path, int batch, const char *schedule,
                   const char *schedule_dir, brn_arena *a, brn_graph *g, brn_diag *d);

/* brn_load_model on text already in memory (path names it in errors). */
int brn_load_text(const char *path, const char *text, size_t len, int batch, const char *schedule,
                  const char *schedule_dir, brn_arena *a, brn_graph *g, brn_diag *d);

/* Resolves the r_max/d_max schedule of every batch_renorm of g. */
int brn_resolve_schedules(brn_graph *g, const char *dir, brn_diag *d);

/* The whole pipeline. Writes files, or the graph to out for --emit.
 * Returns 0, BRN_COMPILE_INPUT or BRN_COMPILE_INTERNAL. */
int brn_compile(const brn_options *o, FILE *out, brn_diag *d);

#endif
