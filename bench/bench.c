/* make bench: times brnc's generated code against oneDNN on the same machine,
 * in the same run, and prints ratios. A conv + norm + relu block at inference
 * (N=1, N=8) and in a training step (N=4), on the C and the OpenCL targets;
 * bench/README.md says what each figure includes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "brnrt.h"
#include "brnrt_st.h"
#include "bench_ci_c1.h"
#include "bench_ci_c8.h"
#include "bench_ci_cl1.h"
#include "bench_ci_cl8.h"
#include "bench_ct_c.h"
#include "bench_ct_cl.h"

#if DNNL_VERSION_MAJOR != 2
#error "bench.c is written to the oneDNN 2.x C API (op descriptors), as Debian 12 ships it"
#endif

/* The shapes of bench/conv_infer.brn and bench/conv_train.brn. */
enum { IC = 64, IK = 64, IHW = 56, TC = 16, TK = 32, THW = 28, TN = 4, CLASSES = 10 };
#define WARMUP 5
#define EPS 1e-3f

static int runs = 20;

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench: %s: %s\n", what, why);
	exit(1);
}

static void dn(dnnl_status_t st, const char *what)
{
	if (st != dnnl_success)
		die(what, dnnl_status2str(st));
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* Median wall time of fn(ctx) in ms over `runs` calls after WARMUP calls. */
static double time_ms(int (*fn)(void *), void *ctx, const char *what)
{
	double t[256];
	for (int i = 0; i < WARMUP + runs; i++) {
		double t0 = now_ms();
		if (fn(ctx))
			die(what, "run failed");
		if (i >= WARMUP)
			t[i - WARMUP] = now_ms() - t0;
	}
	return median(t, runs);
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static float urand(void) /* uniform in [-1, 1) */
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (float)((rng >> 40) / (double)(1u << 23) - 1.0);
}

static float *randv(long n, float scale)
{
	float *v = malloc((size_t)n * sizeof *v);
	if (!v)
		die("malloc", "out of memory");
	for (long i = 0; i < n; i++)
		v[i] = scale * urand();
	return v;
}

/* --- ours ------------------------------------------------------------------ */

/* One generated model behind function pointers, so that the C and the OpenCL
 * variants share the timing code. */
struct ours {
	const char *name;
	void *m;
	int n;
	const float *x;
	const int32_t *y;
	float *out;
	int (*infer)(void *m, const float *x, int n, float *out);
	int (*train)(void *m, const float *x, const int32_t *y, int n, float lr, float *loss);
	const char *(*error)(const void *m);
};

static int ours_infer(void *ctx)
{
	struct ours *o = ctx;
	int rc = o->infer(o->m, o->x, o->n, o->out);
	if (rc)
		fprintf(stderr, "bench: %s: %s\n", o->name, o->error(o->m));
	return rc;
}

static int ours_train(void *ctx)
{
	struct ours *o = ctx;
	float loss;
	int rc = o->train(o->m, o->x, o->y, o->n, 1e-3f, &loss);
	if (rc)
		fprintf(stderr, "bench: %s: %s\n", o->name, o->error(o->m));
	return rc;
}

#define OPEN(model, weights, o) do { \
	model *m_; \
	if (model##_open(&m_, weights)) \
		die(#model "_open", model##_error(m_)); \
	(o)->name = #model; \
	(o)->m = m_; \
	(o)->error = (const char *(*)(const void *))model##_error; \
	printf("  %-16s %s\n", #model, model##_device(m_)); \
} while (0)
#define OPEN_INFER(model, weights, o) do { \
	OPEN(model, weights, o); \
	(o)->infer = (int (*)(void *, const float *, int, float *))model##_infer; \
} while (0)
#define OPEN_TRAIN(model, o) do { \
	OPEN(model, NULL, o); \
	(o)->train = (int (*)(void *, const float *, const int32_t *, int, float, float *))model##_train_step; \
} while (0)

/* --- oneDNN ------------------------------------------------------------------ */

static dnnl_engine_t eng;
static dnnl_stream_t strm;

/* A timed sequence of primitives; `optional` steps are left out of the
 * "same work as ours" time. */
struct step {
	const char *name;
	dnnl_primitive_t p;
	int nargs, optional;
	dnnl_exec_arg_t args[10];
	double t[256];
};

struct pipeline {
	struct step s[16];
	int n, skip_optional;
};

static struct step *add_step(struct pipeline *pl, const char *name, const_dnnl_primitive_desc_t pd)
{
	struct step *s = &pl->s[pl->n++];
	memset(s, 0, sizeof *s);
	s->name = name;
	dn(dnnl_primitive_create(&s->p, pd), name);
	return s;
}

static void arg(struct step *s, int which, dnnl_memory_t mem)
{
	s->args[s->nargs++] = (dnnl_exec_arg_t){which, mem};
}

static int run_pipeline(void *ctx)
{
	struct pipeline *pl = ctx;
	for (int i = 0; i < pl->n; i++)
		if (!(pl->skip_optional && pl->s[i].optional))
			dn(dnnl_primitive_execute(pl->s[i].p, strm, pl->s[i].nargs, pl->s[i].args), pl->s[i].name);
	dn(dnnl_stream_wait(strm), "stream wait");
	return 0;
}

/* Per-primitive medians, for the breakdown under the table. */
static void profile_pipeline(struct pipeline *pl)
{
	for (int r = 0; r < WARMUP + runs; r++)
		for (int i = 0; i < pl->n; i++) {
			struct step *s = &pl->s[i];
			double t0 = now_ms();
			dn(dnnl_primitive_execute(s->p, strm, s->nargs, s->args), s->name);
			dn(dnnl_stream_wait(strm), "stream wait");
			if (r >= WARMUP)
				s->t[r - WARMUP] = now_ms() - t0;
		}
	for (int i = 0; i < pl->n; i++)
		printf("    %-26s %8.3f ms%s\n", pl->s[i].name, median(pl->s[i].t, runs),
		       pl->s[i].optional ? "   (ours has no such step)" : "");
}

static void free_pipeline(struct pipeline *pl)
{
	for (int i = 0; i < pl->n; i++)
		dnnl_primitive_destroy(pl->s[i].p);
}

static dnnl_memory_desc_t md_tag(int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag)
{
	dnnl_memory_desc_t md;
	dn(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, tag), "memory desc");
	return md;
}

static dnnl_memory_t mem_new(const dnnl_memory_desc_t *md, void *data)
{
	dnnl_memory_t m;
	dn(dnnl_memory_create(&m, md, eng, data ? data : DNNL_MEMORY_ALLOCATE), "memory");
	return m;
}

static const dnnl_memory_desc_t *md_of(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
	return dnnl_primitive_desc_query_md(pd, what, 0);
}

static void reorder_now(dnnl_memory_t from, dnnl_memory_t to)
{
	const dnnl_memory_desc_t *a, *b;
	dnnl_primitive_desc_t pd;
	dnnl_primitive_t p;
	dnnl_memory_get_memory_desc(from, &a);
	dnnl_memory_get_memory_desc(to, &b);
	dn(dnnl_reorder_primitive_desc_create(&pd, a, eng, b, eng, NULL), "reorder pd");
	dn(dnnl_primitive_create(&p, pd), "reorder");
	dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
	dn(dnnl_primitive_execute(p, strm, 2, args), "reorder");
	dn(dnnl_stream_wait(strm), "stream wait");
	dnnl_primitive_destroy(p);
	dnnl_primitive_desc_destroy(pd);
}

/* `from` in the layout `want`: itself, or a copy reordered now (untimed) or
 * by a step added to pl (timed). *fresh gets the new memory to free. */
static dnnl_memory_t as_layout(dnnl_memory_t from, const dnnl_memory_desc_t *want,
                               struct pipeline *pl, const char *name, dnnl_memory_t *fresh)
{
	const dnnl_memory_desc_t *have;
	dnnl_memory_get_memory_desc(from, &have);
	*fresh = NULL;
	if (dnnl_memory_desc_equal(have, want))
		return from;
	dnnl_memory_t to = *fresh = mem_new(want, NULL);
	if (!pl) {
		reorder_now(from, to);
		return to;
	}
	dnnl_primitive_desc_t pd;
	dn(dnnl_reorder_primitive_desc_create(&pd, have, eng, want, eng, NULL), name);
	struct step *s = add_step(pl, name, pd);
	arg(s, DNNL_ARG_FROM, from);
	arg(s, DNNL_ARG_TO, to);
	dnnl_primitive_desc_destroy(pd);
	return to;
}

static const dnnl_dims_t unit = {1, 1}, pad1 = {1, 1};

/* oneDNN conv (+bias, ReLU post-op), forward inference on n images of the
 * conv_infer shape, layouts of oneDNN's choosing. Times the conv primitive
 * alone; the reorders into and out of its layouts run before and after.
 * Returns the median in ms; out gets the NCHW result. */
static double onednn_infer(int n, float *x, float *w, float *bias, float *out)
{
	dnnl_dims_t sd = {n, IC, IHW, IHW}, wd = {IK, IC, 3, 3}, bd = {IK}, dd = {n, IK, IHW, IHW};
	dnnl_memory_desc_t src_any = md_tag(4, sd, dnnl_format_tag_any),
	                   wei_any = md_tag(4, wd, dnnl_format_tag_any),
	                   dst_any = md_tag(4, dd, dnnl_format_tag_any),
	                   src_u = md_tag(4, sd, dnnl_nchw), wei_u = md_tag(4, wd, dnnl_oihw),
	                   bias_md = md_tag(1, bd, dnnl_x), dst_u = md_tag(4, dd, dnnl_nchw);
	dnnl_convolution_desc_t cd;
	dn(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
	                                      &src_any, &wei_any, &bias_md, &dst_any, unit, pad1, pad1),
	   "conv desc");
	dnnl_post_ops_t po;
	dnnl_primitive_attr_t attr;
	dn(dnnl_post_ops_create(&po), "post ops");
	dn(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "relu post op");
	dn(dnnl_primitive_attr_create(&attr), "attr");
	dn(dnnl_primitive_attr_set_post_ops(attr, po), "attr post ops");
	dnnl_primitive_desc_t pd;
	dn(dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL), "conv pd");

	dnnl_memory_t xu = mem_new(&src_u, x), wu = mem_new(&wei_u, w), bm = mem_new(&bias_md, bias),
	              ou = mem_new(&dst_u, out), xf, wf;
	dnnl_memory_t xs = as_layout(xu, md_of(pd, dnnl_query_src_md), NULL, "", &xf);
	dnnl_memory_t ws = as_layout(wu, md_of(pd, dnnl_query_weights_md), NULL, "", &wf);
	dnnl_memory_t dst = mem_new(md_of(pd, dnnl_query_dst_md), NULL);
	if (n == 1) {
		const char *impl = "";
		dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
		printf("  oneDNN conv: %s\n", impl);
	}

	struct pipeline pl = {0};
	struct step *s = add_step(&pl, "conv+bias+relu", pd);
	arg(s, DNNL_ARG_SRC, xs);
	arg(s, DNNL_ARG_WEIGHTS, ws);
	arg(s, DNNL_ARG_BIAS, bm);
	arg(s, DNNL_ARG_DST, dst);
	double ms = time_ms(run_pipeline, &pl, "oneDNN infer");
	reorder_now(dst, ou);

	free_pipeline(&pl);
	dnnl_memory_t mems[] = {xu, wu, bm, ou, xf, wf, dst};
	for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
		if (mems[i])
			dnnl_memory_destroy(mems[i]);
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	dnnl_post_ops_destroy(po);
	return ms;
}

/* oneDNN training of conv (+bias) -> batch normalization (scale, shift) ->
 * ReLU on the conv_train shape: forward, then ReLU, norm and conv backward
 * (data, weights and bias) from a given gradient at the ReLU's output.
 * Reorders between primitives are timed; x and the weights enter in the
 * conv's layouts (reordered before timing). *same gets the time without
 * conv backward-data, which our step does not need (x needs no gradient). */
static double onednn_train(double *same)
{
	dnnl_dims_t sd = {TN, TC, THW, THW}, wd = {TK, TC, 3, 3}, bd = {TK}, dd = {TN, TK, THW, THW};
	dnnl_memory_desc_t src_any = md_tag(4, sd, dnnl_format_tag_any),
	                   wei_any = md_tag(4, wd, dnnl_format_tag_any),
	                   dst_any = md_tag(4, dd, dnnl_format_tag_any),
	                   src_u = md_tag(4, sd, dnnl_nchw), wei_u = md_tag(4, wd, dnnl_oihw),
	                   vec = md_tag(1, bd, dnnl_x);
	const unsigned flags = dnnl_use_scale | dnnl_use_shift;
	dnnl_convolution_desc_t cfd, cbd, cwd;
	dnnl_batch_normalization_desc_t nfd, nbd;
	dnnl_eltwise_desc_t rfd, rbd;
	dnnl_primitive_desc_t cf, cb, cw, nf, nb, rf, rb;

	dn(dnnl_convolution_forward_desc_init(&cfd, dnnl_forward_training, dnnl_convolution_direct,
	                                      &src_any, &wei_any, &vec, &dst_any, unit, pad1, pad1),
	   "conv fwd desc");
	dn(dnnl_primitive_desc_create(&cf, &cfd, NULL, eng, NULL), "conv fwd pd");
	const dnnl_memory_desc_t *y_md = md_of(cf, dnnl_query_dst_md);
	dn(dnnl_batch_normalization_forward_desc_init(&nfd, dnnl_forward_training, y_md, EPS, flags),
	   "bnorm fwd desc");
	dn(dnnl_primitive_desc_create(&nf, &nfd, NULL, eng, NULL), "bnorm fwd pd");
	dn(dnnl_eltwise_forward_desc_init(&rfd, dnnl_forward_training, dnnl_eltwise_relu, y_md, 0, 0),
	   "relu fwd desc");
	dn(dnnl_primitive_desc_create(&rf, &rfd, NULL, eng, NULL), "relu fwd pd");
	dn(dnnl_eltwise_backward_desc_init(&rbd, dnnl_eltwise_relu, y_md, y_md, 0, 0), "relu bwd desc");
	dn(dnnl_primitive_desc_create(&rb, &rbd, NULL, eng, rf), "relu bwd pd");
	dn(dnnl_batch_normalization_backward_desc_init(&nbd, dnnl_backward, y_md, y_md, EPS, flags),
	   "bnorm bwd desc");
	dn(dnnl_primitive_desc_create(&nb, &nbd, NULL, eng, nf), "bnorm bwd pd");
	dn(dnnl_convolution_backward_data_desc_init(&cbd, dnnl_convolution_direct, &src_any, &wei_any,
	                                            &dst_any, unit, pad1, pad1),
	   "conv bwd data desc");
	dn(dnnl_primitive_desc_create(&cb, &cbd, NULL, eng, cf), "conv bwd data pd");
	dn(dnnl_convolution_backward_weights_desc_init(&cwd, dnnl_convolution_direct, &src_any,
	                                               &wei_any, &vec, &dst_any, unit, pad1, pad1),
	   "conv bwd weights desc");
	dn(dnnl_primitive_desc_create(&cw, &cwd, NULL, eng, cf), "conv bwd weights pd");

	float *x = randv((long)TN * TC * THW * THW, 1), *w = randv((long)TK * TC * 9, 0.1f);
	dnnl_memory_t fresh[8] = {0}, mem[24] = {0};
	int nm = 0;
	dnnl_memory_t xu = mem[nm++] = mem_new(&src_u, x), wu = mem[nm++] = mem_new(&wei_u, w);
	dnnl_memory_t xs = as_layout(xu, md_of(cf, dnnl_query_src_md), NULL, "", &fresh[0]);
	dnnl_memory_t ws = as_layout(wu, md_of(cf, dnnl_query_weights_md), NULL, "", &fresh[1]);
	dnnl_memory_t bias = mem[nm++] = mem_new(&vec, NULL), y = mem[nm++] = mem_new(y_md, NULL),
	              mean = mem[nm++] = mem_new(&vec, NULL), var = mem[nm++] = mem_new(&vec, NULL),
	              scale = mem[nm++] = mem_new(&vec, NULL), shift = mem[nm++] = mem_new(&vec, NULL),
	              z = mem[nm++] = mem_new(y_md, NULL), a = mem[nm++] = mem_new(y_md, NULL),
	              da = mem[nm++] = mem_new(y_md, NULL), dz = mem[nm++] = mem_new(y_md, NULL),
	              dy = mem[nm++] = mem_new(y_md, NULL), dscale = mem[nm++] = mem_new(&vec, NULL),
	              dshift = mem[nm++] = mem_new(&vec, NULL),
	              dx = mem[nm++] = mem_new(md_of(cb, dnnl_query_diff_src_md), NULL),
	              dw = mem[nm++] = mem_new(md_of(cw, dnnl_query_diff_weights_md), NULL),
	              dbias = mem[nm++] = mem_new(&vec, NULL);
	void *p;
	float *f;
	dnnl_memory_get_data_handle(bias, &p), memset(p, 0, TK * sizeof(float));
	dnnl_memory_get_data_handle(scale, &p), f = p;
	for (int k = 0; k < TK; k++)
		f[k] = 1.0f;
	dnnl_memory_get_data_handle(shift, &p), memset(p, 0, TK * sizeof(float));
	dnnl_memory_get_data_handle(da, &p), f = p;
	for (long i = 0; i < (long)(dnnl_memory_desc_get_size(y_md) / sizeof(float)); i++)
		f[i] = 1e-3f * urand();

	struct pipeline pl = {0};
	struct step *s = add_step(&pl, "conv fwd (+bias)", cf);
	arg(s, DNNL_ARG_SRC, xs), arg(s, DNNL_ARG_WEIGHTS, ws), arg(s, DNNL_ARG_BIAS, bias);
	arg(s, DNNL_ARG_DST, y);
	s = add_step(&pl, "bnorm fwd (training)", nf);
	arg(s, DNNL_ARG_SRC, y), arg(s, DNNL_ARG_DST, z), arg(s, DNNL_ARG_MEAN, mean);
	arg(s, DNNL_ARG_VARIANCE, var), arg(s, DNNL_ARG_SCALE, scale), arg(s, DNNL_ARG_SHIFT, shift);
	s = add_step(&pl, "relu fwd", rf);
	arg(s, DNNL_ARG_SRC, z), arg(s, DNNL_ARG_DST, a);
	s = add_step(&pl, "relu bwd", rb);
	arg(s, DNNL_ARG_SRC, z), arg(s, DNNL_ARG_DIFF_DST, da), arg(s, DNNL_ARG_DIFF_SRC, dz);
	s = add_step(&pl, "bnorm bwd", nb);
	arg(s, DNNL_ARG_SRC, y), arg(s, DNNL_ARG_MEAN, mean), arg(s, DNNL_ARG_VARIANCE, var);
	arg(s, DNNL_ARG_SCALE, scale), arg(s, DNNL_ARG_SHIFT, shift);
	arg(s, DNNL_ARG_DIFF_DST, dz), arg(s, DNNL_ARG_DIFF_SRC, dy);
	arg(s, DNNL_ARG_DIFF_SCALE, dscale), arg(s, DNNL_ARG_DIFF_SHIFT, dshift);
	dnnl_memory_t dyw = as_layout(dy, md_of(cw, dnnl_query_diff_dst_md), &pl, "reorder dy (weights)", &fresh[2]);
	dnnl_memory_t xw = as_layout(xs, md_of(cw, dnnl_query_src_md), &pl, "reorder x (weights)", &fresh[3]);
	s = add_step(&pl, "conv bwd weights (+bias)", cw);
	arg(s, DNNL_ARG_SRC, xw), arg(s, DNNL_ARG_DIFF_DST, dyw);
	arg(s, DNNL_ARG_DIFF_WEIGHTS, dw), arg(s, DNNL_ARG_DIFF_BIAS, dbias);
	int first_optional = pl.n;
	dnnl_memory_t dyd = as_layout(dy, md_of(cb, dnnl_query_diff_dst_md), &pl, "reorder dy (data)", &fresh[4]);
	dnnl_memory_t wd_ = as_layout(ws, md_of(cb, dnnl_query_weights_md), &pl, "reorder w (data)", &fresh[5]);
	s = add_step(&pl, "conv bwd data", cb);
	arg(s, DNNL_ARG_DIFF_DST, dyd), arg(s, DNNL_ARG_WEIGHTS, wd_), arg(s, DNNL_ARG_DIFF_SRC, dx);
	for (int i = first_optional; i < pl.n; i++)
		pl.s[i].optional = 1;

	double full = time_ms(run_pipeline, &pl, "oneDNN train");
	pl.skip_optional = 1;
	*same = time_ms(run_pipeline, &pl, "oneDNN train");
	printf("  oneDNN training step, per primitive (median of %d):\n", runs);
	profile_pipeline(&pl);

	free_pipeline(&pl);
	for (int i = 0; i < nm; i++)
		dnnl_memory_destroy(mem[i]);
	for (int i = 0; i < 8; i++)
		if (fresh[i])
			dnnl_memory_destroy(fresh[i]);
	dnnl_primitive_desc_t pds[] = {cf, cb, cw, nf, nb, rf, rb};
	for (size_t i = 0; i < sizeof pds / sizeof pds[0]; i++)
		dnnl_primitive_desc_destroy(pds[i]);
	free(x), free(w);
	return full;
}

/* --- per-kernel cases (bench --kernels; bench/kernels.py adds ours) ------------ */

/* A conv (kern > 0) or a dense layer (kern == 0: c inputs, k outputs). */
struct kcase {
	const char *name;
	int n, c, k, hw, kern, stride, pad, groups;
};

static const struct kcase kcases[] = {
	{"conv3x3", 8, 64, 64, 28, 3, 1, 1, 1},
	{"conv1x1", 8, 64, 256, 28, 1, 1, 0, 1},
	{"conv3x3s2", 8, 64, 128, 56, 3, 2, 1, 1},
	{"dw3x3", 8, 128, 128, 28, 3, 1, 1, 128},
	{"dense", 32, 2048, 1000, 1, 0, 1, 0, 1},
};

/* Median ms of one primitive whose memories oneDNN allocates in the layouts
 * its pd asks for (filled with small random values). */
static double time_primitive(const char *name, const_dnnl_primitive_desc_t pd, const int *which, int n)
{
	struct pipeline pl = {0};
	struct step *s = add_step(&pl, name, pd);
	static const dnnl_query_t query[] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md,
	                                     dnnl_query_diff_src_md, dnnl_query_diff_weights_md,
	                                     dnnl_query_diff_dst_md};
	static const int argk[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_DIFF_SRC,
	                           DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST};
	dnnl_memory_t mems[8];
	for (int i = 0; i < n; i++) {
		const dnnl_memory_desc_t *md = md_of(pd, query[which[i]]);
		mems[i] = mem_new(md, NULL);
		void *p;
		dnnl_memory_get_data_handle(mems[i], &p);
		float *f = p;
		for (size_t j = 0; j < dnnl_memory_desc_get_size(md) / sizeof(float); j++)
			f[j] = 0.1f * urand();
		arg(s, argk[which[i]], mems[i]);
	}
	double ms = time_ms(run_pipeline, &pl, name);
	free_pipeline(&pl);
	for (int i = 0; i < n; i++)
		dnnl_memory_destroy(mems[i]);
	return ms;
}

enum { Q_SRC, Q_WEI, Q_DST, Q_DSRC, Q_DWEI, Q_DDST };

/* oneDNN's forward (training, no post-ops), backward-data and
 * backward-weights times of one case, layouts of its choosing. */
static void onednn_kernel_case(const struct kcase *kc)
{
	int oh = kc->kern ? (kc->hw + 2 * kc->pad - kc->kern) / kc->stride + 1 : 1;
	dnnl_memory_desc_t src, wei, dst;
	dnnl_primitive_desc_t f, bd, bw;
	if (kc->kern) {
		int g = kc->groups;
		dnnl_dims_t sd = {kc->n, kc->c, kc->hw, kc->hw}, dd = {kc->n, kc->k, oh, oh};
		dnnl_dims_t wg = {g, kc->k / g, kc->c / g, kc->kern, kc->kern}, w1 = {kc->k, kc->c, kc->kern, kc->kern};
		dnnl_dims_t st = {kc->stride, kc->stride}, pd = {kc->pad, kc->pad};
		src = md_tag(4, sd, dnnl_format_tag_any), dst = md_tag(4, dd, dnnl_format_tag_any);
		wei = g > 1 ? md_tag(5, wg, dnnl_format_tag_any) : md_tag(4, w1, dnnl_format_tag_any);
		dnnl_convolution_desc_t cf, cb, cw;
		dn(dnnl_convolution_forward_desc_init(&cf, dnnl_forward_training, dnnl_convolution_direct,
		                                      &src, &wei, NULL, &dst, st, pd, pd), kc->name);
		dn(dnnl_primitive_desc_create(&f, &cf, NULL, eng, NULL), kc->name);
		dn(dnnl_convolution_backward_data_desc_init(&cb, dnnl_convolution_direct, &src, &wei, &dst,
		                                            st, pd, pd), kc->name);
		dn(dnnl_primitive_desc_create(&bd, &cb, NULL, eng, f), kc->name);
		dn(dnnl_convolution_backward_weights_desc_init(&cw, dnnl_convolution_direct, &src, &wei,
		                                               NULL, &dst, st, pd, pd), kc->name);
		dn(dnnl_primitive_desc_create(&bw, &cw, NULL, eng, f), kc->name);
	} else {
		dnnl_dims_t sd = {kc->n, kc->c}, wd = {kc->k, kc->c}, dd = {kc->n, kc->k};
		src = md_tag(2, sd, dnnl_format_tag_any), dst = md_tag(2, dd, dnnl_format_tag_any);
		wei = md_tag(2, wd, dnnl_format_tag_any);
		dnnl_inner_product_desc_t df, db, dw;
		dn(dnnl_inner_product_forward_desc_init(&df, dnnl_forward_training, &src, &wei, NULL, &dst),
		   kc->name);
		dn(dnnl_primitive_desc_create(&f, &df, NULL, eng, NULL), kc->name);
		dn(dnnl_inner_product_backward_data_desc_init(&db, &src, &wei, &dst), kc->name);
		dn(dnnl_primitive_desc_create(&bd, &db, NULL, eng, f), kc->name);
		dn(dnnl_inner_product_backward_weights_desc_init(&dw, &src, &wei, NULL, &dst), kc->name);
		dn(dnnl_primitive_desc_create(&bw, &dw, NULL, eng, f), kc->name);
	}
	static const int fwd[] = {Q_SRC, Q_WEI, Q_DST}, bwd_d[] = {Q_DDST, Q_WEI, Q_DSRC},
	                 bwd_w[] = {Q_SRC, Q_DDST, Q_DWEI};
	double tf = time_primitive("fwd", f, fwd, 3), td = time_primitive("bwd data", bd, bwd_d, 3),
	       tw = time_primitive("bwd weights", bw, bwd_w, 3);
	const char *impl = "";
	dnnl_primitive_desc_query(f, dnnl_query_impl_info_str, 0, &impl);
	printf("case %s n=%d c=%d k=%d hw=%d kernel=%d stride=%d pad=%d groups=%d "
	       "fwd=%.4f bwd_data=%.4f bwd_weights=%.4f impl=%s\n", kc->name, kc->n, kc->c, kc->k,
	       kc->hw, kc->kern, kc->stride, kc->pad, kc->groups, tf, td, tw, impl);
	dnnl_primitive_desc_destroy(f), dnnl_primitive_desc_destroy(bd), dnnl_primitive_desc_destroy(bw);
}

static int kernel_cases(void)
{
	dn(dnnl_engine_create(&eng, dnnl_cpu, 0), "engine");
	dn(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags), "stream");
	for (size_t i = 0; i < sizeof kcases / sizeof kcases[0]; i++)
		onednn_kernel_case(&kcases[i]);
	dnnl_stream_destroy(strm);
	dnnl_engine_destroy(eng);
	return 0;
}

/* --- the table ---------------------------------------------------------------- */

struct row {
	char name[48];
	double ours, theirs, gflop; /* ms, ms, conv GFLOP per call */
	double check;               /* max |ours - oneDNN| / max |oneDNN|, or -1 */
};

static void print_row(const struct row *r)
{
	printf("%-30s %9.3f %9.3f %7.2f %9.1f %9.1f", r->name, r->ours, r->theirs, r->ours / r->theirs,
	       r->gflop / (r->ours * 1e-3), r->gflop / (r->theirs * 1e-3));
	if (r->check >= 0)
		printf("   %.1e%s", r->check, r->check > 1e-4 ? "  MISMATCH" : "");
	printf("\n");
}

/* Other work on the machine skews every figure here, oneDNN's small
 * OpenMP-synchronised primitives most: the table carries the load. */
static void print_load(const char *when)
{
	char buf[128] = "?";
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (!fgets(buf, sizeof buf, f))
			strcpy(buf, "?");
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
	printf("load average %s: %s\n", when, buf);
}

static double rel_diff(const float *a, const float *b, long n)
{
	double d = 0, m = 0;
	for (long i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		m = fmax(m, fabs((double)b[i]));
	}
	return m > 0 ? d / m : d;
}

/* Random conv weights for the infer models, written as a safetensors file
 * that all four open, so that oneDNN computes with the very same numbers.
 * The norm is at its fresh state (mean 0, sigma 1, gamma 1, beta 0), so the
 * block is relu(conv(x) + bias) on both sides. */
static void write_weights(const char *path, float *w, float *bias)
{
	float mean[IK] = {0}, sigma[IK], gamma[IK], beta[IK] = {0};
	for (int k = 0; k < IK; k++)
		sigma[k] = gamma[k] = 1.0f;
	brnrt_st_tensor t[] = {
		{"c1.weight", 4, {IK, IC, 3, 3}, w, 0},
		{"c1.bias", 1, {IK}, bias, 0},
		{"a1.batch_renorm.gamma", 1, {IK}, gamma, 0},
		{"a1.batch_renorm.beta", 1, {IK}, beta, 0},
		{"a1.batch_renorm.mean", 1, {IK}, mean, 0},
		{"a1.batch_renorm.sigma", 1, {IK}, sigma, 0},
	};
	brnrt_error e;
	if (brnrt_st_save(path, t, (int)(sizeof t / sizeof t[0]), 0, &e))
		die(path, e.msg);
}

int main(int argc, char **argv)
{
	const char *weights = "build/bench/conv_infer.safetensors";
	int kernels = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--weights") && i + 1 < argc)
			weights = argv[++i];
		else if (!strcmp(argv[i], "--kernels"))
			kernels = 1;
		else
			die(argv[i], "usage: bench [--runs N (1..256)] [--weights TMPFILE] [--kernels]");
	}
	if (runs < 1 || runs > 256)
		die("--runs", "must be 1..256");
	if (kernels) /* oneDNN's side of bench/kernels.py, a line per case */
		return kernel_cases();
	const char *bt = getenv("BRN_THREADS"), *ot = getenv("OMP_NUM_THREADS");
	printf("brnc bench: median of %d runs after %d warm-up runs, CLOCK_MONOTONIC\n", runs, WARMUP);
	printf("threads: BRN_THREADS=%s (ours), OMP_NUM_THREADS=%s (oneDNN %d.%d.%d, OpenMP)\n",
	       bt ? bt : "unset (nproc)", ot ? ot : "unset (all)", DNNL_VERSION_MAJOR,
	       DNNL_VERSION_MINOR, DNNL_VERSION_PATCH);

	print_load("before");
	dn(dnnl_engine_create(&eng, dnnl_cpu, 0), "engine");
	dn(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags), "stream");

	const long in1 = (long)IC * IHW * IHW, out1 = (long)IK * IHW * IHW;
	float *w = randv((long)IK * IC * 9, sqrtf(6.0f / (IC * 9))), *bias = randv(IK, 0.1f);
	float *x = randv(8 * in1, 1), *ref = malloc(8 * out1 * sizeof *ref),
	      *out = malloc(8 * out1 * sizeof *out);
	if (!ref || !out)
		die("malloc", "out of memory");
	write_weights(weights, w, bias);

	printf("devices:\n");
	struct ours ci[4] = {{0}}, ct[2] = {{0}};
	OPEN_INFER(bench_ci_c1, weights, &ci[0]);
	OPEN_INFER(bench_ci_c8, weights, &ci[1]);
	OPEN_INFER(bench_ci_cl1, weights, &ci[2]);
	OPEN_INFER(bench_ci_cl8, weights, &ci[3]);
	OPEN_TRAIN(bench_ct_c, &ct[0]);
	OPEN_TRAIN(bench_ct_cl, &ct[1]);

	struct row rows[8];
	int nr = 0;
	const double conv_i = 2.0 * IK * IC * 9 * IHW * IHW * 1e-9; /* GFLOP per image */
	for (int b = 0; b < 2; b++) {
		int n = b ? 8 : 1;
		double theirs = onednn_infer(n, x, w, bias, ref);
		for (int t = 0; t < 2; t++) {
			struct ours *o = &ci[2 * t + b];
			o->n = n, o->x = x, o->out = out;
			struct row *r = &rows[nr++];
			snprintf(r->name, sizeof r->name, "infer N=%d %s", n, t ? "OpenCL (POCL)" : "C");
			r->ours = time_ms(ours_infer, o, o->name);
			r->theirs = theirs;
			r->gflop = conv_i * n;
			r->check = rel_diff(out, ref, n * out1);
		}
	}

	double same, full = onednn_train(&same);
	const double conv_t = 2.0 * TN * TK * TC * 9 * THW * THW * 1e-9; /* one pass */
	float *tx = randv((long)TN * TC * THW * THW, 1);
	int32_t ty[TN];
	for (int i = 0; i < TN; i++)
		ty[i] = i % CLASSES;
	for (int t = 0; t < 2; t++) {
		struct ours *o = &ct[t];
		o->n = TN, o->x = tx, o->y = ty;
		struct row *r = &rows[nr++];
		snprintf(r->name, sizeof r->name, "train N=%d %s", TN, t ? "OpenCL (POCL)" : "C");
		r->ours = time_ms(ours_train, o, o->name);
		r->theirs = same;
		r->gflop = 2 * conv_t; /* conv forward + backward-weights */
		r->check = -1;
	}

	printf("\n%-30s %9s %9s %7s %9s %9s   %s\n", "case", "ours ms", "oneDNN ms", "ratio",
	       "ours GF/s", "oDNN GF/s", "max rel diff");
	for (int i = 0; i < nr; i++)
		print_row(&rows[i]);
	print_load("after");
	printf("oneDNN train with conv backward-data too (ours skips it: x needs no gradient): "
	       "%.3f ms, %.1f GFLOP/s\n", full, 3 * conv_t / (full * 1e-3));
	printf("ratio = ours / oneDNN (below 1: ours is faster). GF/s counts conv FLOPs only\n"
	       "(2*N*K*C*9*H*W per pass). Ours: infer() call with its copies in and out;\n"
	       "train_step() with the norm, the head (pool, dense, loss) and SGD. oneDNN: the\n"
	       "primitives alone, data already in its layouts; no SGD. MISMATCH: ours and\n"
	       "oneDNN disagree on the same weights and input. See bench/README.md.\n");

	bench_ci_c1_close(ci[0].m), bench_ci_c8_close(ci[1].m);
	bench_ci_cl1_close(ci[2].m), bench_ci_cl8_close(ci[3].m);
	bench_ct_c_close(ct[0].m), bench_ct_cl_close(ct[1].m);
	dnnl_stream_destroy(strm);
	dnnl_engine_destroy(eng);
	free(w), free(bias), free(x), free(ref), free(out), free(tx);
	return 0;
}
