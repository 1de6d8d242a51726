/* OpenCL device: the arena is one buffer on the device; the host keeps the
 * state (parameters, momentum) to brn_load, initialise and save it. */
#include "brnrt_cl.h"

struct brn_launch {
	const char *name;  /* the kernel in the program below */
	long items;        /* work-items (per example when per_example) */
	int per_example;
	size_t local;      /* work-group size, 0: the driver's choice */
};

enum { BRN_N_KERNELS = ${N_ALL_KERNELS} };

struct brn_device {
	brnrt_cl *cl;
	cl_program prog;
	cl_mem mem, labels;
	cl_kernel k[BRN_N_KERNELS];
	float *after; /* training: the state a step made, checked before it is kept */
};
