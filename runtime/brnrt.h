/* libbrnrt core: error codes and messages, and the CPU parallel-for that
 * generated C kernels run on. Generated code and brnrun include this header;
 * the weights I/O and OpenCL halves have their own (brnrt_st.h, brnrt_cl.h). */
#ifndef BRNRT_H
#define BRNRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BRNRT_VERSION "0.1.0"

/* Every runtime and generated-code function returns 0 or one of these. */
enum {
	BRN_OK = 0,
	BRN_EIO = -1,       /* a file could not be opened, read or written */
	BRN_EFORMAT = -2,   /* a file is malformed (truncated, bad header, ...) */
	BRN_EMISMATCH = -3, /* names, shapes or dtypes differ from the model's */
	BRN_ENOMEM = -4,    /* an allocation failed */
	BRN_ECL = -5,       /* an OpenCL call failed */
	BRN_EARG = -6,      /* a bad argument (n out of range, NULL pointer) */
	BRN_ENODEV = -7,    /* no OpenCL platform or no matching device */
	BRN_ENUMERIC = -8   /* a training step made a value NaN or infinite (undone) */
};

/* A message buffer filled on failure; callers own it. */
typedef struct brnrt_error {
	char msg[1024];
} brnrt_error;

/* Name of a code ("BRN_EIO"), or "BRN_E?" when unknown. */
const char *brnrt_strerror(int code);

/* Formats msg into e (when e is not NULL) and returns code. */
int brnrt_errorf(brnrt_error *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

/* A fixed pool of worker threads. brnrt_pool_run splits [0, n) into one
 * contiguous chunk per thread (the caller's thread takes the first) and
 * returns when all are done; chunking depends only on n and the thread
 * count, so results are reproducible for a given BRN_THREADS. */
typedef struct brnrt_pool brnrt_pool;
typedef void (*brnrt_task)(void *ctx, long begin, long end);

/* nthreads <= 0: $BRN_THREADS if set, else the number of online CPUs. */
int brnrt_pool_open(brnrt_pool **pool, int nthreads, brnrt_error *e);
int brnrt_pool_threads(const brnrt_pool *pool);
void brnrt_pool_run(brnrt_pool *pool, long n, brnrt_task task, void *ctx);
/* brnrt_pool_run, timed under name when $BRN_PROFILE is set (not "0"):
 * brnrt_pool_close then prints a table of time per name to stderr. name
 * must outlive the pool (generated code passes literals). */
void brnrt_pool_run_named(brnrt_pool *pool, const char *name, long n, brnrt_task task, void *ctx);
void brnrt_pool_close(brnrt_pool *pool);

/* Time per kernel, for libbrnrt's own profile tables (pool and OpenCL). */
typedef struct brnrt_prof_row {
	const char *name;
	long launches;
	double ns;
} brnrt_prof_row;
void brnrt_prof_print(const char *device, brnrt_prof_row *rows, int n);

#ifdef __cplusplus
}
#endif

#endif
