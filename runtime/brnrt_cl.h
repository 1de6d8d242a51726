/* libbrnrt OpenCL half: device listing and selection, one context and
 * in-order queue, program builds through an on-disk binary cache, buffers,
 * launches, optional per-kernel profiling, and every cl_int as a message.
 * Generated host code for --target opencl is written against this API. */
#ifndef BRNRT_CL_H
#define BRNRT_CL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "brnrt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct brnrt_cl_device {
	int index;           /* position in the listing, across all platforms */
	char name[256];
	char platform[256];
	char vendor[256];
	char version[256];   /* CL_DEVICE_VERSION */
	char driver[256];    /* CL_DRIVER_VERSION */
	const char *type;    /* "cpu", "gpu", "accelerator", "other" */
	unsigned compute_units;
	unsigned long long global_mem;
	size_t max_work_group;
} brnrt_cl_device;

/* Fills up to max entries, sets *count to the number of devices found. No
 * platform is BRN_ENODEV with a message saying how to install one. */
int brnrt_cl_list(brnrt_cl_device *out, int max, int *count, brnrt_error *e);

typedef struct brnrt_cl brnrt_cl;

/* Opens one device. selector: NULL or "" means $BRN_DEVICE, else device 0;
 * a decimal index; "cpu" / "gpu" / "accelerator" (the first of that type);
 * or a case-insensitive substring of the device or platform name. A
 * selector that matches nothing is BRN_ENODEV naming it: never a silent
 * fallback to another device. $BRN_PROFILE=1 turns on profiling. */
int brnrt_cl_open(brnrt_cl **cl, const char *selector, brnrt_error *e);
void brnrt_cl_close(brnrt_cl *cl); /* prints the profile table if on */
const brnrt_cl_device *brnrt_cl_info(const brnrt_cl *cl);
cl_context brnrt_cl_context(const brnrt_cl *cl);
cl_command_queue brnrt_cl_queue(const brnrt_cl *cl);

/* Builds src with options, through the binary cache under
 * $XDG_CACHE_HOME/brnc (or ~/.cache/brnc) keyed by a hash of source,
 * options, device name, driver and platform version; BRN_NO_CACHE=1 skips
 * it. A corrupt or unloadable entry is rebuilt. A failed build's message
 * carries the build log. *hit (may be NULL) tells whether the cache served. */
int brnrt_cl_build(brnrt_cl *cl, const char *src, const char *options,
                   cl_program *prog, int *hit, brnrt_error *e);
/* The directory the cache uses now (for tests and brnrun). */
const char *brnrt_cl_cache_dir(char *buf, size_t n);
/* 1 when a file name in that directory is a cache entry (<16 hex>.bin) or
 * the temporary of one (<16 hex>.bin.tmp.<pid>.<salt>): what
 * `brnrun cache list|clear` lists and removes, and nothing else. */
int brnrt_cl_cache_entry(const char *name);

int brnrt_cl_kernel(brnrt_cl *cl, cl_program prog, const char *name,
                    cl_kernel *k, brnrt_error *e);
int brnrt_cl_alloc(brnrt_cl *cl, size_t bytes, cl_mem *buf, brnrt_error *e);
int brnrt_cl_write(brnrt_cl *cl, cl_mem buf, size_t offset, size_t bytes,
                   const void *src, brnrt_error *e);
int brnrt_cl_read(brnrt_cl *cl, cl_mem buf, size_t offset, size_t bytes,
                  void *dst, brnrt_error *e);
/* Sets args with clSetKernelArg(k, i, sizes[i], ptrs[i]) and enqueues a 1-D
 * range of global work-items (rounded up to a multiple of local when local
 * is not 0). name labels the kernel in the profile table. */
int brnrt_cl_launch(brnrt_cl *cl, cl_kernel k, const char *name, int nargs,
                    const size_t *sizes, const void *const *ptrs,
                    size_t global, size_t local, brnrt_error *e);
int brnrt_cl_finish(brnrt_cl *cl, brnrt_error *e);

/* "CL_OUT_OF_RESOURCES" etc. for any cl_int. */
const char *brnrt_cl_strerror(cl_int err);

#ifdef __cplusplus
}
#endif

#endif
