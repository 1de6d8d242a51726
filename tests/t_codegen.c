/* t_codegen: code emitted for --target c against the reference interpreter,
 * for every fixture model, fused and --no-fuse, several kernel-knob
 * settings and batch sizes: inference outputs, the loss of each step,
 * every gradient (the momentum buffers after one step are exactly the
 * gradients), weights and moving statistics after 1 and 5 steps, and the
 * r_max/d_max schedule across its breakpoints.
 * Tolerances (float32 code against the double interpreter):
 * outputs and losses 1e-4 + 1e-3|x|; state 2e-4 + 2e-3|x|. */
#include "codegen.h"
#include "fuse.h"

#ifndef CODEGEN_TARGET
#define CODEGEN_TARGET "c"
#endif
static const char *target = CODEGEN_TARGET;

typedef struct model_case {
	const char *path, *name;
	int batch, n;
	int no_fuse;
	const char *schedule;    /* NULL: the model's */
	const char *tag;
} model_case;

static void compare_infer(api *a, brn_interp *ip, const brn_graph *g, const float *xf, const double *xd,
                          const int32_t *y, int n, const char *what)
{
	long outs = brn_shape_count(g->nodes[g->output].shape);
	float *out = calloc((size_t)(n * outs), sizeof(float));
	brn_diag d;
	memset(&d, 0, sizeof d);
	int rc = a->infer(a->m, xf, n, out);
	if (rc)
		diag("infer: %s", a->error(a->m));
	brn_interp_forward(ip, xd, y, n, 0, &d);
	long at = 0;
	double w = cg_worst(out, brn_interp_value(ip, g->output), n * outs, 1e-4, 1e-3, &at);
	ok(rc == 0 && w <= 1, "%s: inference output within 1e-4 + 1e-3|x| (worst %.2f)", what, w);
	free(out);
}

static void run_case(const model_case *c)
{
	api a;
	char what[256];
	snprintf(what, sizeof what, "%s %s batch %d n %d%s", target, c->name, c->batch, c->n,
	         c->no_fuse ? " no-fuse" : c->tag ? c->tag : "");
	char tag[128];
	snprintf(tag, sizeof tag, "%s_%s_%d_%d_%d_%s", target, c->name, c->batch, c->n, c->no_fuse,
	         c->schedule ? "k" : "d");
	if (cg_build(&a, c->path, c->name, tag, target, "train", c->batch, c->no_fuse, c->schedule)) {
		ok(0, "%s: builds", what);
		return;
	}
	brn_arena ar;
	brn_graph g;
	brn_diag d;
	memset(&d, 0, sizeof d);
	brn_arena_init(&ar);
	brn_interp *ip = NULL;
	if (brn_load_model(c->path, c->batch, c->schedule, "schedules", &ar, &g, &d) ||
	    brn_interp_open(&ip, &g, 1, &d) || a.open(&a.m, NULL)) {
		ok(0, "%s: opens (%s %s)", what, d.msg, a.m ? a.error(a.m) : "");
		goto out;
	}
	int n = c->n, classes = g.nodes[g.labels].classes;
	long in = brn_shape_count(g.nodes[g.input].shape);
	float *xf = malloc((size_t)(n * in) * sizeof(float));
	double *xd = malloc((size_t)(n * in) * sizeof(double));
	int32_t y[256];
	for (int step = 0; step < 5; step++) {
		for (long i = 0; i < n * in; i++)
			xf[i] = (float)(xd[i] = 4 * cg_uniform() - 1.5);
		for (int i = 0; i < n; i++)
			y[i] = (int32_t)(cg_uniform() * classes);
		if (step == 0)
			compare_infer(&a, ip, &g, xf, xd, y, n, what);
		float loss = 0;
		double want = 0;
		int rc = a.train_step(a.m, xf, y, n, 0.05f, &loss);
		if (rc)
			diag("train_step: %s", a.error(a.m));
		brn_interp_train_step(ip, xd, y, n, 0.05, &want, &d);
		if (step == 0 || step == 4)
			ok(rc == 0 && fabs(loss - want) <= 1e-4 + 1e-3 * fabs(want),
			   "%s: loss of step %d %.6f (interpreter %.6f)", what, step + 1, loss, want);
		if (step == 0)
			cg_compare_state(&a, ip, &g, 1, 2e-4, 2e-3, "after 1 step: weights, statistics, gradients");
	}
	cg_compare_state(&a, ip, &g, 1, 2e-4, 2e-3, "after 5 steps: weights, statistics, momentum");
	compare_infer(&a, ip, &g, xf, xd, y, n, what);
	/* inference code: weights loaded at run time, and folded in (--weights) */
	char ck[512];
	snprintf(ck, sizeof ck, "%s/%s.safetensors", cg_tmpdir(), tag);
	if (a.save(a.m, ck))
		diag("save: %s", a.error(a.m));
	for (int folded = 0; folded < 2; folded++) {
		api b;
		char itag[160], iwhat[300];
		snprintf(itag, sizeof itag, "%s_infer%d", tag, folded);
		snprintf(iwhat, sizeof iwhat, "%s --mode infer%s", what, folded ? " --weights" : "");
		if (cg_build_weights(&b, c->path, c->name, itag, target, "infer", c->batch, c->no_fuse, c->schedule,
		                     folded ? ck : NULL) || b.open(&b.m, folded ? NULL : ck)) {
			ok(0, "%s: builds and opens (%s)", iwhat, b.m ? b.error(b.m) : "");
		} else {
			compare_infer(&b, ip, &g, xf, xd, y, n, iwhat);
		}
		cg_unload(&b);
	}
	free(xf);
	free(xd);
out:
	brn_interp_close(ip);
	brn_arena_free(&ar);
	cg_unload(&a);
}

/* Restarts training from a checkpoint at steps around the paper schedule's
 * breakpoints (r_max 1 -> 3 over 5k..40k, d_max 0 -> 5 over 5k..25k): the
 * generated code must follow the schedule, not a value fixed at build time. */
static void schedule_case(void)
{
	const char *path = "tests/models/small_renorm.brn";
	api a;
	if (cg_build(&a, path, "small_renorm", "sched", target, "train", 0, 0, NULL) || a.open(&a.m, NULL)) {
		ok(0, "schedule model builds");
		return;
	}
	brn_arena ar;
	brn_graph g;
	brn_diag d;
	memset(&d, 0, sizeof d);
	brn_arena_init(&ar);
	brn_load_model(path, 0, NULL, "schedules", &ar, &g, &d);
	const brn_node *norm = NULL;
	for (int i = 0; i < g.n; i++)
		if (g.nodes[i].op == BRN_OP_BATCH_RENORM)
			norm = &g.nodes[i];
	char ck[512];
	snprintf(ck, sizeof ck, "%s/ck.safetensors", cg_tmpdir());
	a.save(a.m, ck);
	static const long steps[] = {4999, 5000, 5001, 24999, 39999, 40000};
	for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
		/* the checkpoint of a fresh model, moved to this step */
		brnrt_st_tensor t[64];
		char names[64][160];
		int k = 0;
		for (int i = 0; i < g.n; i++) {
			brn_param ps[6];
			int np = brn_graph_params(&g, &g.nodes[i], ps);
			for (int pass = 0; pass < 2; pass++)
				for (int j = 0; j < np; j++) {
					if (pass && !ps[j].trainable)
						continue;
					snprintf(names[k], 160, "%s.%s%s", g.nodes[i].name, ps[j].suffix, pass ? ".momentum" : "");
					memset(&t[k], 0, sizeof t[k]);
					t[k].name = names[k];
					t[k].ndim = ps[j].ndim;
					for (int e = 0; e < ps[j].ndim; e++)
						t[k].shape[e] = ps[j].shape[e];
					t[k].data = malloc((size_t)ps[j].count * sizeof(float));
					k++;
				}
		}
		brnrt_error e;
		char moved[600];
		snprintf(moved, sizeof moved, "%s.%ld", ck, steps[s]);
		int rc = brnrt_st_load(ck, t, k, NULL, NULL, &e) || brnrt_st_save(moved, t, k, steps[s], &e);
		brn_interp *ip = NULL;
		brn_interp_open(&ip, &g, 1, &d);
		for (int i = 0; i < k; i++) {
			long count;
			double *dst = brn_interp_tensor(ip, t[i].name, &count);
			for (long j = 0; dst && j < count; j++)
				dst[j] = t[i].data[j];
			free(t[i].data);
		}
		brn_interp_set_step(ip, steps[s]);
		void *m2 = NULL;
		rc = rc || a.open(&m2, moved);
		float r_max = 0, d_max = 0;
		if (!rc)
			a.schedule(m2, &r_max, &d_max);
		double want_r = brn_piecewise_eval(&norm->r_max.pw, (double)steps[s]);
		double want_d = brn_piecewise_eval(&norm->d_max.pw, (double)steps[s]);
		ok(!rc && a.step(m2) == steps[s] && fabs(r_max - want_r) < 1e-5 && fabs(d_max - want_d) < 1e-5,
		   "step %ld: r_max %.5f (want %.5f), d_max %.5f (want %.5f)", steps[s], r_max, want_r, d_max, want_d);
		api b = a;
		b.m = m2;
		for (int it = 0; it < 3 && !rc; it++) {
			float xf[4 * 50], loss;
			double xd[4 * 50], want;
			int32_t y[4];
			for (int i = 0; i < 4 * 50; i++)
				xf[i] = (float)(xd[i] = 3 * cg_uniform() - 1);
			for (int i = 0; i < 4; i++)
				y[i] = (int32_t)(cg_uniform() * 3);
			rc = a.train_step(m2, xf, y, 4, 0.1f, &loss);
			brn_interp_train_step(ip, xd, y, 4, 0.1, &want, &d);
		}
		char what[128];
		snprintf(what, sizeof what, "3 steps from step %ld", steps[s]);
		if (!rc)
			cg_compare_state(&b, ip, &g, 1, 2e-4, 2e-3, what);
		else
			ok(0, "%s", what);
		if (m2)
			a.close(m2);
		brn_interp_close(ip);
	}
	brn_arena_free(&ar);
	cg_unload(&a);
}

/* batch_renorm over one value per channel (issue 13): dL/dx into the norm
 * is exactly 0, so after a step the momentum of the dense before it (its
 * gradient) is exactly 0 and its weights have not moved. */
static void one_value_exact(void)
{
	const char *path = "tests/models/one_value.brn";
	api a;
	if (cg_build(&a, path, "m1", "one_value_exact", target, "train", 1, 0, NULL) || a.open(&a.m, NULL)) {
		ok(0, "%s one value per channel: builds and opens", target);
		cg_unload(&a);
		return;
	}
	/* the whole state of m1; [0, 2) the dense before the norm, [8, 10) their momentum */
	static const struct { const char *name; int ndim, rows, cols; } ts[] = {
		{"h.dense.weight", 2, 4, 4}, {"h.dense.bias", 1, 4, 1}, {"h.gamma", 1, 4, 1}, {"h.beta", 1, 4, 1},
		{"h.mean", 1, 4, 1}, {"h.sigma", 1, 4, 1}, {"o.weight", 2, 2, 4}, {"o.bias", 1, 2, 1},
		{"h.dense.weight.momentum", 2, 4, 4}, {"h.dense.bias.momentum", 1, 4, 1},
		{"h.gamma.momentum", 1, 4, 1}, {"h.beta.momentum", 1, 4, 1},
		{"o.weight.momentum", 2, 2, 4}, {"o.bias.momentum", 1, 2, 1},
	};
	enum { NT = sizeof ts / sizeof ts[0] };
	float data[2][NT][16], loss;
	brnrt_st_tensor t[2][NT];
	const float x[4] = {0.3f, -1.2f, 0.7f, 2.1f};
	const int32_t y[1] = {1};
	char ck[512];
	snprintf(ck, sizeof ck, "%s/one_value.safetensors", cg_tmpdir());
	int bad = 0;
	for (int step = 0; step < 3 && !bad; step++)
		for (int pass = 0; pass < 2 && !bad; pass++) {
			for (int i = 0; i < NT; i++)
				t[pass][i] = (brnrt_st_tensor){ts[i].name, ts[i].ndim, {ts[i].rows, ts[i].cols}, data[pass][i], 0};
			brnrt_error e;
			if (a.save(a.m, ck) || brnrt_st_load(ck, t[pass], NT, NULL, NULL, &e))
				bad = 1;
			else if (!pass && a.train_step(a.m, x, y, 1, 0.1f, &loss))
				bad = 1;
			for (int i = 0; pass && !bad && i < 16; i++)
				bad = data[1][0][i] != data[0][0][i] || data[1][8][i] != 0.0f ||
				      (i < 4 && (data[1][1][i] != data[0][1][i] || data[1][9][i] != 0.0f));
			if (bad)
				diag("step %d: %s", step + 1, a.error(a.m));
		}
	ok(!bad, "%s one value per channel: the dense before the norm gets exactly 0 gradient in 3 steps", target);
	cg_unload(&a);
}

/* A schedule of 64 breakpoints at large steps makes an expression of
 * several kilobytes: it must be emitted whole (it was cut at 4096 bytes
 * and the C did not compile) and give the schedule's values. */
static void long_schedule(void)
{
	char lua[512];
	snprintf(lua, sizeof lua, "%s/pw64.lua", cg_tmpdir());
	FILE *f = fopen(lua, "w");
	fprintf(f, "local p = {}\nfor i = 1, 64 do p[i] = {1000000000000 + i * 1000003, 1.23456789 + i * 0.0123456789} end\n"
	           "return {r_max = piecewise(p), d_max = piecewise(p)}\n");
	fclose(f);
	api a;
	int rc = cg_build(&a, "tests/models/small_renorm.brn", "small_renorm", "pw64", target, "train", 0, 0, lua);
	rc = rc || a.open(&a.m, NULL);
	float r_max = 0, d_max = 0;
	if (!rc)
		a.schedule(a.m, &r_max, &d_max);
	double want = 1.23456789 + 0.0123456789;
	ok(!rc && fabs(r_max - want) < 1e-6 && fabs(d_max - want) < 1e-6,
	   "64-breakpoint schedule compiles: r_max %.7f, d_max %.7f at step 0 (want %.7f)", r_max, d_max, want);
	cg_unload(&a);
}

/* Fusion must not silently regress: kernels per step of fixture models. */
static void count_kernels(const char *path, int no_fuse, int want_infer, int want_train)
{
	brn_arena ar;
	brn_graph g;
	brn_plan p;
	brn_diag d;
	memset(&d, 0, sizeof d);
	brn_arena_init(&ar);
	int rc = brn_load_model(path, 0, NULL, "schedules", &ar, &g, &d) ||
	         brn_plan_build(&g, target, 1, no_fuse, -1, NULL, NULL, &ar, &p, &d);
	ok(!rc && p.nkernels[0] == want_infer && p.nkernels[1] == want_train,
	   "%s%s: %d kernels per inference (want %d), %d per train step (want %d)", path,
	   no_fuse ? " --no-fuse" : "", rc ? -1 : p.nkernels[0], want_infer, rc ? -1 : p.nkernels[1], want_train);
	brn_arena_free(&ar);
}

/* --step T folds the schedule to one literal; without it the kernels carry
 * the schedule as a function of the step. */
static void step_folding(void)
{
	brn_arena ar;
	brn_graph g;
	brn_plan p, q;
	brn_diag d;
	memset(&d, 0, sizeof d);
	brn_arena_init(&ar);
	int rc = brn_load_model("tests/models/small_renorm.brn", 0, NULL, "schedules", &ar, &g, &d) ||
	         brn_plan_build(&g, "c", 1, 0, 30000, NULL, NULL, &ar, &p, &d) ||
	         brn_plan_build(&g, "c", 1, 0, -1, NULL, NULL, &ar, &q, &d);
	const char *folded = NULL, *live = NULL;
	for (int i = 0; !rc && i < p.nkernels[1]; i++)
		if (!strcmp(p.kernels[1][i].tmpl, "norm_stats")) {
			folded = brn_kernel_var(&p.kernels[1][i], "R_MAX");
			live = brn_kernel_var(&q.kernels[1][i], "R_MAX");
		}
	is_str(folded, "2.42857143f", "--step 30000 folds r_max to a literal");
	ok(live && strstr(live, "step < 5000 ? 1.0f") && strstr(live, "step < 40000"),
	   "without --step r_max is a function of the step: %s", live ? live : "(none)");
	brn_arena_free(&ar);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		target = argv[1];
	/* a schedule with kernel knobs: the numbers must not change with them */
	char knobs[512];
	snprintf(knobs, sizeof knobs, "%s/knobs.lua", cg_tmpdir());
	FILE *f = fopen(knobs, "w");
	fprintf(f, "return {\n  r_max = ramp(5000, 40000, 1, 3),\n  d_max = ramp(5000, 25000, 0, 5),\n"
	           "  kernels = function(layer)\n"
	           "    if layer.op == 'conv' then return {oc_block = 1 + layer.out_c %% 3, tile_w = 3, unroll = 2, wg_size = 16} end\n"
	           "    if layer.op == 'dense' then return {unroll = 4} end\n"
	           "    if layer.op == 'batch_renorm' or layer.op == 'batch_norm' then return {wg_size = 16, vec_width = 2} end\n"
	           "    if layer.op == 'relu' or layer.op == 'add' then return {vec_width = 4} end\n  end,\n}\n");
	fclose(f);
	model_case cases[] = {
		{"tests/models/small_renorm.brn", "small_renorm", 0, 4, 0, NULL, NULL},
		{"tests/models/small_renorm.brn", "small_renorm", 0, 1, 0, NULL, NULL},
		{"tests/models/small_renorm.brn", "small_renorm", 3, 3, 1, NULL, NULL},
		{"tests/models/every_op.brn", "every_op", 0, 6, 0, NULL, NULL},
		{"tests/models/every_op.brn", "every_op", 0, 5, 1, NULL, NULL},
		{"tests/models/every_op.brn", "every_op", 2, 2, 0, knobs, " knobs"},
		{"tests/models/residual.brn", "residual", 0, 8, 0, NULL, NULL},
		{"tests/models/residual.brn", "residual", 0, 3, 0, knobs, " knobs"},
		{"tests/models/residual.brn", "residual", 1, 1, 1, NULL, NULL},
		{"tests/models/mlp.brn", "mlp", 0, 5, 0, NULL, NULL},
		{"tests/models/mlp.brn", "mlp", 0, 2, 1, NULL, NULL},
		{"tests/models/fashion.brn", "fashion_cnn", 2, 2, 0, NULL, NULL},
		{"tests/models/fashion.brn", "fashion_cnn", 8, 8, 0, knobs, " knobs"},
		{"tests/models/wide.brn", "wide", 0, 2, 0, NULL, NULL},
		{"tests/models/wide.brn", "wide", 0, 1, 1, NULL, NULL},
		{"tests/models/one_value.brn", "m1", 1, 1, 0, NULL, NULL},
		{"tests/models/one_value.brn", "m1", 2, 1, 0, NULL, NULL},
		{"tests/models/one_value.brn", "m1", 2, 2, 0, NULL, NULL},
		{"tests/models/one_value.brn", "m1", 2, 2, 1, NULL, NULL},
		{"tests/models/add_input.brn", "w", 2, 2, 0, NULL, NULL},
		{"tests/models/add_self.brn", "add_self", 0, 3, 0, NULL, NULL},
		{"tests/models/add_self.brn", "add_self", 0, 2, 1, NULL, NULL},
		{"tests/models/add_self.brn", "add_self", 0, 3, 0, knobs, " knobs"},
		{"tests/models/strided.brn", "strided", 4, 3, 0, NULL, NULL},
		{"tests/models/strided.brn", "strided", 0, 2, 1, NULL, NULL},
		{"tests/models/relu6.brn", "relu6_net", 0, 4, 0, NULL, NULL},
		{"tests/models/relu6.brn", "relu6_net", 0, 3, 1, NULL, NULL},
		{"tests/models/gemm.brn", "gemm", 0, 7, 0, NULL, NULL},
		{"tests/models/gemm.brn", "gemm", 0, 5, 0, NULL, NULL},
		{"tests/models/gemm.brn", "gemm", 0, 1, 0, NULL, NULL},
	};
	int only = argc > 2 ? atoi(argv[2]) : -1;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		if (only < 0 || (size_t)only == i)
			run_case(&cases[i]);
	if (only < 0) {
		schedule_case();
		one_value_exact();
		if (!strcmp(target, "c")) {
			long_schedule();
			step_folding();
			/* a groups-1 conv adds layout kernels: conv_pack per pass (and
			 * one for its dL/dx), conv_dy16 before dL/dw */
			count_kernels("tests/models/fashion.brn", 0, 7, 26);
			count_kernels("tests/models/fashion.brn", 1, 11, 30);
			count_kernels("tests/models/small_renorm.brn", 0, 3, 12);
			count_kernels("tests/models/small_renorm.brn", 1, 5, 14);
			count_kernels("tests/models/residual.brn", 0, 10, 47);
			count_kernels("tests/models/residual.brn", 1, 19, 53);
			count_kernels("tests/models/every_op.brn", 0, 13, 43);
			count_kernels("tests/models/every_op.brn", 1, 19, 49);
			count_kernels("tests/models/mlp.brn", 0, 4, 22);
			count_kernels("tests/models/mlp.brn", 1, 9, 24);
			count_kernels("tests/models/add_input.brn", 0, 2, 4);
			count_kernels("tests/models/add_self.brn", 0, 7, 17);
		}
	}
	cg_cleanup();
	return done_testing();
}
