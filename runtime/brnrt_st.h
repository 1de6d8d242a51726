/* libbrnrt weights I/O: safetensors files of float32 tensors, as written by
 * generated code (weights, checkpoints) and read back by it or by PyTorch.
 * A spec list says which tensors a model has; the file must agree. */
#ifndef BRNRT_ST_H
#define BRNRT_ST_H

#include "brnrt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct brnrt_st_tensor {
	const char *name;   /* "c1.weight" */
	int ndim;           /* 1..4 */
	int64_t shape[4];
	float *data;        /* shape-product floats, owned by the caller */
	int optional;       /* load: absent from the file is not an error */
} brnrt_st_tensor;

/* Reads path into the specs' data. Every tensor in the file must be F32,
 * named in specs with the same shape, and every non-optional spec must be
 * present; tensors whose names end in ignore_suffix (may be NULL) are
 * skipped. Errors name the file and the tensor, and for a mismatch both the
 * model's and the file's shape. Every value read must be finite, and no
 * byte may follow the last tensor's data. *step (may be NULL) gets
 * __metadata__.step (digits with an optional '-'), or 0 when absent.
 * Nothing is written into specs unless all checks pass. */
int brnrt_st_load(const char *path, brnrt_st_tensor *specs, int n,
                  const char *ignore_suffix, int64_t *step, brnrt_error *e);

/* Writes the specs (F32, little-endian) with "step" in __metadata__ to
 * path.tmp-<pid>, flushes it, and renames it over path, so a crash never
 * leaves a torn file at path. Threads may save at once, even to one path.
 * Temp files of path that a killed save left (path.tmp-<pid> of a process
 * that no longer runs) are removed. */
int brnrt_st_save(const char *path, const brnrt_st_tensor *specs, int n,
                  int64_t step, brnrt_error *e);

#ifdef __cplusplus
}
#endif

#endif
