/* The fused-kernel plan: what brnc emits, independent of the target. The
 * fusion pass (fuse.c) lowers a graph for a mode into kernels over one
 * float arena ("mem"): parameters, their momentum buffers, per-channel
 * statistics, then scratch activations and gradients planned by liveness.
 * The emitter (emit.c) renders each kernel from its template in the C or
 * OpenCL dialect; every offset and shape is a literal by then. */
#ifndef BRN_FUSE_H
#define BRN_FUSE_H

#include "graph.h"
#include "schedule.h"

enum { BRN_KERNEL_VARS = 64, BRN_KERNEL_BUFS = 8 };

typedef struct brn_var {
	const char *key;        /* template placeholder, e.g. "K" for $K */
	const char *value;
} brn_var;

typedef struct brn_kernel {
	const char *name;       /* C identifier: "brn_i04_c1_conv_fwd" */
	const char *tmpl;       /* template in templates/kernels/, no ".k" */
	const char *base;       /* or NULL: the body for a dialect without a
	                         * whole-function template named tmpl (the
	                         * vector depthwise kernels of C) */
	const char *comment;    /* the graph nodes it computes */
	brn_var vars[BRN_KERNEL_VARS];
	int nvars;
	long items;             /* work-items: per example when per_example */
	int per_example;
	int bufs[BRN_KERNEL_BUFS]; /* scratch buffers it touches (liveness) */
	int nbufs;
} brn_kernel;

/* A scratch buffer: an activation or a gradient of one entry point. */
typedef struct brn_buffer {
	const char *name;
	long floats;            /* at the compiled batch */
	long off;               /* in mem, set by planning */
	int first, last;        /* kernel indexes of first and last use */
	int list;               /* 0: infer kernels, 1: train kernels */
} brn_buffer;

/* A parameter or statistic stored in mem (and in weights files). */
typedef struct brn_slot {
	const char *name;       /* "c1.weight" */
	brn_param p;
	int node;
	long off;
	double *value;          /* folded or loaded values (--weights), or NULL */
} brn_slot;

typedef struct brn_plan {
	const brn_graph *g;
	int train;              /* --mode train: a train_step too */
	int fused;              /* 0 with --no-fuse */
	long step;              /* >= 0: schedules folded at this step */
	brn_slot *slots;
	int nslots;
	long params_floats;     /* slots occupy [0, params_floats) */
	long momentum_off;      /* train: momentum mirrors the params */
	long stats_off;         /* per-norm [C][8] scratch statistics */
	long stats_floats;
	long scratch_off;
	long mem_floats;
	brn_buffer *bufs;
	int nbufs, capbufs;
	brn_kernel *kernels[2]; /* [0] infer, [1] train_step */
	int nkernels[2], capkernels[2];
	long in_off[2];         /* where the input goes, per list */
	long out_off;           /* infer: where the output is read */
	long loss_off;          /* train: per-example losses */
	int out_node;
	int weights_folded;     /* --weights: values compiled in */
	brn_arena *arena;
} brn_plan;

/* Lowers g for mode train (0: infer), fusing unless no_fuse, for target
 * "c" or "opencl" (the C target computes 1x1 convs as matrix products, see
 * fuse.c). knobs[i] (may be NULL) are the schedule's kernel knobs for node
 * i. weights (may be NULL): a safetensors file whose values are compiled
 * in, with norms folded into the preceding conv or dense in double
 * precision. */
int brn_plan_build(const brn_graph *g, const char *target, int train, int no_fuse, long step,
                   const brn_knobs *knobs, const char *weights, brn_arena *a,
                   brn_plan *plan, brn_diag *d);

/* The value of one of a kernel's variables, or NULL. */
const char *brn_kernel_var(const brn_kernel *k, const char *key);

#endif
