/* CPU device: the arena lives in host memory; kernels are loops over
 * work-items that a fixed pool of threads splits (env BRN_THREADS). */
struct brn_device {
	brnrt_pool *pool;
	float *before; /* training: the state before the step, to undo it */
	char name[64];
};

struct brn_launch {
	brnrt_task run;    /* the kernel's loop over a range of work-items */
	long items;        /* work-items (per example when per_example) */
	int per_example;
	int local;         /* (OpenCL's work-group size; unused) */
	const char *name;  /* in the BRN_PROFILE table */
};
