/* codegen.h: compiles a model with brnc's pipeline into a shared library,
 * loads its API with dlopen, and compares it with the reference
 * interpreter. Shared by t_codegen.c (C target) and t_opencl.c. */
#ifndef BRN_TEST_CODEGEN_H
#define BRN_TEST_CODEGEN_H

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "brnrt_st.h"
#include "driver.h"
#include "interp.h"
#include "tap.h"

/* Under ASan, POCL and its LLVM keep compiler state allocated at exit;
 * leaks whose stack passes through the driver are not ours (t_rt_cl.c). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libpocl.so\nleak:libLLVM\nleak:libclang-cpp\nleak:libOpenCL.so\n";
}

/* The generated API, looked up by name. */
typedef struct api {
	void *lib, *m;
	int (*open)(void **m, const char *weights);
	void (*close)(void *m);
	int (*infer)(void *m, const float *x, int n, float *out);
	int (*train_step)(void *m, const float *x, const int32_t *y, int n, float lr, float *loss);
	int (*save)(void *m, const char *path);
	int64_t (*step)(const void *m);
	void (*schedule)(const void *m, float *r_max, float *d_max);
	const char *(*error)(const void *m);
	const char *(*device)(const void *m);
} api;

static char cg_dir[256];

static const char *cg_tmpdir(void)
{
	if (!cg_dir[0]) {
		snprintf(cg_dir, sizeof cg_dir, "/tmp/brnc-test-XXXXXX");
		if (!mkdtemp(cg_dir))
			return "/tmp";
	}
	return cg_dir;
}

static void cg_cleanup(void)
{
	if (cg_dir[0]) {
		char cmd[512];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", cg_dir);
		if (system(cmd) != 0)
			diag("could not remove %s", cg_dir);
	}
}

/* --renorm for ONNX models (tests/onnx_train_check.c). */
static int cg_renorm;

/* Compiles model with extra options into <tmp>/<tag>.so and loads it. */
static int cg_build_weights(api *a, const char *model, const char *name, const char *tag, const char *target,
                            const char *mode, int batch, int no_fuse, const char *schedule, const char *weights)
{
	memset(a, 0, sizeof *a);
	char base[512], cmd[4096];
	snprintf(base, sizeof base, "%s/%s", cg_tmpdir(), tag);
	brn_options o;
	memset(&o, 0, sizeof o);
	o.model = model;
	o.out = base;
	o.target = target;
	o.mode = mode;
	o.batch = batch;
	o.no_fuse = no_fuse;
	o.schedule = schedule;
	o.schedule_dir = "schedules";
	o.step = -1;
	o.weights = weights;
	o.renorm = cg_renorm;
	brn_diag d;
	memset(&d, 0, sizeof d);
	if (brn_compile(&o, stdout, &d)) {
		diag("brnc %s: %s:%d:%d: %s", tag, d.file, d.line, d.col, d.msg);
		return -1;
	}
	const char *build = getenv("BRN_BUILD") ? getenv("BRN_BUILD") : "build";
	const char *cc = getenv("BRN_CC") ? getenv("BRN_CC") : "cc";
	const char *san = getenv("BRN_SAN") ? getenv("BRN_SAN") : "";
	snprintf(cmd, sizeof cmd,
	         "%s %s -std=c11 -O1 -g -shared -fPIC -Wall -Wextra -Werror -Iruntime %s.c -o %s.so "
	         "-L%s -lbrnrt -Wl,-rpath,%s -lOpenCL -lm",
	         cc, san, base, base, build, build);
	if (system(cmd) != 0) {
		diag("failed: %s", cmd);
		return -1;
	}
	snprintf(cmd, sizeof cmd, "%s.so", base);
	a->lib = dlopen(cmd, RTLD_NOW | RTLD_LOCAL);
	if (!a->lib) {
		diag("dlopen: %s", dlerror());
		return -1;
	}
	static const char *const fns[] = {"open", "close", "infer", "train_step", "save", "step",
	                                  "schedule", "error", "device"};
	void **slots[] = {(void **)&a->open, (void **)&a->close, (void **)&a->infer, (void **)&a->train_step,
	                  (void **)&a->save, (void **)&a->step, (void **)&a->schedule, (void **)&a->error,
	                  (void **)&a->device};
	for (int i = 0; i < 9; i++) {
		char sym[256];
		snprintf(sym, sizeof sym, "%s_%s", name, fns[i]);
		*slots[i] = dlsym(a->lib, sym);
		if (!*slots[i] && strcmp(fns[i], "train_step")) {
			diag("no symbol %s", sym);
			return -1;
		}
	}
	return 0;
}

static int cg_build(api *a, const char *model, const char *name, const char *tag, const char *target,
                    const char *mode, int batch, int no_fuse, const char *schedule)
{
	return cg_build_weights(a, model, name, tag, target, mode, batch, no_fuse, schedule, NULL);
}

static void cg_unload(api *a)
{
	if (a->m)
		a->close(a->m);
	if (a->lib)
		dlclose(a->lib);
	memset(a, 0, sizeof *a);
}

/* Deterministic inputs. */
static uint64_t cg_rng = 88172645463325252ull;
static double cg_uniform(void)
{
	cg_rng ^= cg_rng << 13;
	cg_rng ^= cg_rng >> 7;
	cg_rng ^= cg_rng << 17;
	return (double)(cg_rng >> 11) * 0x1.0p-53;
}

/* Largest violation of |got - want| <= atol + rtol * |want|, as a ratio (<= 1 passes). */
static double cg_worst(const float *got, const double *want, long n, double atol, double rtol, long *at)
{
	double worst = 0;
	for (long i = 0; i < n; i++) {
		double r = fabs(got[i] - want[i]) / (atol + rtol * fabs(want[i]));
		if (isnan(got[i]))
			r = INFINITY;
		if (r > worst) {
			worst = r;
			if (at)
				*at = i;
		}
	}
	return worst;
}

/* Saves the model's state and compares every tensor with the interpreter:
 * parameters, statistics and, in training code, the momentum buffers. */
static int cg_compare_state(api *a, brn_interp *ip, const brn_graph *g, int train, double atol,
                            double rtol, const char *what)
{
	char path[512];
	snprintf(path, sizeof path, "%s/state.safetensors", cg_tmpdir());
	if (a->save(a->m, path)) {
		diag("save: %s", a->error(a->m));
		return ok(0, "%s: save", what);
	}
	brnrt_st_tensor specs[512];
	char names[512][160];
	int k = 0;
	for (int pass = 0; pass < 1 + train; pass++)
		for (int i = 0; i < g->n; i++) {
			brn_param ps[6];
			int np = brn_graph_params(g, &g->nodes[i], ps);
			for (int j = 0; j < np && k < 512; j++) {
				if (pass == 1 && !ps[j].trainable)
					continue;
				snprintf(names[k], sizeof names[k], "%s.%s%s", g->nodes[i].name, ps[j].suffix,
				         pass ? ".momentum" : "");
				memset(&specs[k], 0, sizeof specs[k]);
				specs[k].name = names[k];
				specs[k].ndim = ps[j].ndim;
				for (int e = 0; e < ps[j].ndim; e++)
					specs[k].shape[e] = ps[j].shape[e];
				specs[k].data = malloc((size_t)ps[j].count * sizeof(float));
				k++;
			}
		}
	brnrt_error e;
	int64_t step;
	int rc = brnrt_st_load(path, specs, k, train ? NULL : ".momentum", &step, &e);
	int good = rc == 0;
	if (rc)
		diag("load: %s", e.msg);
	double worst = 0;
	const char *worst_name = "";
	for (int i = 0; good && i < k; i++) {
		long count;
		const double *want = brn_interp_tensor(ip, specs[i].name, &count);
		long at = 0;
		double w = want ? cg_worst(specs[i].data, want, count, atol, rtol, &at) : INFINITY;
		if (w > worst) {
			worst = w;
			worst_name = specs[i].name;
			if (w > 1)
				diag("%s[%ld]: got %.9g, interpreter %.9g", specs[i].name, at, specs[i].data[at],
				     want ? want[at] : NAN);
		}
	}
	for (int i = 0; i < k; i++)
		free(specs[i].data);
	ok(good && worst <= 1, "%s: %d tensors within %g + %g*|x| (worst %.2f of tolerance, %s)", what, k,
	   atol, rtol, worst, worst_name);
	return good && worst <= 1;
}

#endif
