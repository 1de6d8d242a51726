/* Schedules: Lua 5.4 scripts run at compile time in a sandbox. They give
 * r_max(t) and d_max(t) as piecewise-linear functions of the training step
 * and, optionally, per-layer kernel knobs. This is the only module that
 * sees Lua; results are copied into these structs before the state closes. */
#ifndef BRN_SCHEDULE_H
#define BRN_SCHEDULE_H

#include "diag.h"

enum { BRN_PW_MAX = 64 };

/* v(t) = v[0] for t <= t[0]; linear between breakpoints; v[n-1] after the
 * last. n >= 1; t strictly increasing. A constant has n == 1. */
typedef struct brn_piecewise {
	int n;
	double t[BRN_PW_MAX];
	double v[BRN_PW_MAX];
} brn_piecewise;

double brn_piecewise_eval(const brn_piecewise *p, double t);

/* 1 when v can be emitted as a float literal that means v: 0, or a normal
 * float (FLT_MIN <= |v| <= FLT_MAX). Everything brnc writes as a float
 * literal (schedules, eps, alpha, slopes) is checked with this first. */
int brn_is_float(double v);

/* Tuning knobs for one layer; 0 means "the emitter's default". */
typedef struct brn_knobs {
	int oc_block;   /* output channels computed per work-item */
	int tile_w;     /* output columns computed per work-item */
	int unroll;     /* unroll factor of the innermost reduction loop */
	int wg_size;    /* OpenCL work-group size */
	int vec_width;  /* OpenCL vector width (1, 2, 4, 8) */
} brn_knobs;

/* What the kernels(layer) hook is told about one layer. */
typedef struct brn_layer_desc {
	const char *name;     /* "c1" */
	const char *op;       /* "conv", "dense", ... */
	int in[4], out[4];    /* N, C, H, W */
} brn_layer_desc;

typedef struct brn_schedule {
	char path[512];       /* the script that was run */
	brn_piecewise r_max, d_max;
	int fitted;           /* 1 when a plain function was sampled and fitted */
} brn_schedule;

/* Maximum error of the piecewise-linear fit of a plain Lua function. */
#define BRN_SCHEDULE_FIT_TOL 1e-4

/* Resolves spec: a name ("paper") looked up as <dir>/<name>.lua, or a path
 * (containing '/' or ending in ".lua"). Runs the script and fills *s; when
 * knobs is not NULL, calls kernels(layer) for each of the nlayers layers
 * and fills knobs[i] (zeros where the script has no kernels function).
 * Errors are "script:line: message" in d (file and line set). */
int brn_schedule_load(const char *spec, const char *dir, brn_schedule *s,
                      const brn_layer_desc *layers, int nlayers,
                      brn_knobs *knobs, brn_diag *d);

/* A schedule that is one constant for both r_max and d_max uses; for
 * batch_renorm(r_max=2) style literals. */
void brn_piecewise_constant(brn_piecewise *p, double v);

#endif
