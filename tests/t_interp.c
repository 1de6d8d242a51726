/* The reference interpreter against DESIGN.md §4 by itself: gradients by
 * central finite differences, batch_renorm at r_max = 1, d_max = 0 against
 * batch_norm, moving statistics and SGD with momentum against the formulas,
 * inference with moving statistics, n < batch, and r and d on the paper's
 * schedule around its breakpoints. tests/t_torch.py checks the same
 * semantics against PyTorch. Run from the repository root (schedules/). */
#include "interp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "brnrt_init.h"
#include "driver.h"
#include "tap.h"

/* Central differences with h = 1e-5 in double: truncation ~h^2 and
 * rounding ~1e-16 * |L| / h, both far below |fd - an| <= 1e-8 + 1e-6 |fd|
 * (every check here passes at 1e-9 + 1e-7). */
#define FD_H 1e-5
#define FD_ABS 1e-8
#define FD_REL 1e-6

static brn_arena arena;

/* Builds a graph from model text; batch > 0 overrides the model's. */
static int build(const char *text, int batch, brn_graph *g)
{
	brn_ast ast;
	brn_diag d;
	char buf[1024];
	memset(&d, 0, sizeof d);
	if (brn_parse("inline.brn", text, strlen(text), &arena, &ast, &d) ||
	    brn_graph_build(&ast, batch, NULL, &arena, g, &d) || brn_resolve_schedules(g, "schedules", &d) ||
	    brn_graph_check(g, &d)) {
		brn_diag_render(&d, buf, sizeof buf);
		diag("%s", buf);
		return -1;
	}
	return 0;
}

static brn_interp *open_interp(const brn_graph *g, uint64_t seed)
{
	brn_interp *ip = NULL;
	brn_diag d;
	memset(&d, 0, sizeof d);
	if (brn_interp_open(&ip, g, seed, &d)) {
		diag("brn_interp_open: %s", d.msg);
		exit(1);
	}
	return ip;
}

static int node_id(const brn_graph *g, const char *name)
{
	for (int i = 0; i < g->n; i++)
		if (strcmp(g->nodes[i].name, name) == 0)
			return i;
	diag("no node %s", name);
	exit(1);
}

static double *tensor(brn_interp *ip, const char *node, const char *suffix, long *count)
{
	char name[256];
	snprintf(name, sizeof name, "%s.%s", node, suffix);
	double *v = brn_interp_tensor(ip, name, count);
	if (!v) {
		diag("no tensor %s", name);
		exit(1);
	}
	return v;
}

/* Moving statistics, gamma and beta away from their defaults, so that r and
 * d clip on some channels and not on others. */
static void perturb_norms(brn_interp *ip, const brn_graph *g, uint64_t seed)
{
	static const char *which[4] = {"gamma", "beta", "mean", "sigma"};
	for (int i = 0; i < g->n; i++) {
		if (!brn_is_norm(g->nodes[i].op))
			continue;
		for (int k = 0; k < 4; k++) {
			long cnt;
			double *v = tensor(ip, g->nodes[i].name, which[k], &cnt);
			for (long e = 0; e < cnt; e++) {
				double z = brnrt_normal(seed, brnrt_name_hash(g->nodes[i].name) + (uint64_t)k, (uint64_t)e);
				v[e] = k == 0 ? 1 + 0.2 * z : k == 1 ? 0.2 * z : k == 2 ? 0.5 * z : exp(0.6 * z);
			}
		}
	}
}

typedef struct data {
	int n;
	long count;           /* n * C * H * W */
	double *x;
	int32_t y[64];
} data;

static data make_data(const brn_graph *g, int n, uint64_t seed)
{
	data dt = {.n = n, .count = (long)n * brn_shape_count(g->nodes[g->input].shape)};
	dt.x = malloc((size_t)dt.count * sizeof *dt.x);
	for (long e = 0; e < dt.count; e++)
		dt.x[e] = brnrt_normal(seed, 1, (uint64_t)e);
	int classes = g->labels >= 0 ? g->nodes[g->labels].classes : 1;
	for (int b = 0; b < n; b++)
		dt.y[b] = (int32_t)((unsigned)(brnrt_normal(seed, 2, (uint64_t)b) * 1e6 + 1e7) % (unsigned)classes);
	return dt;
}

static double loss_at(brn_interp *ip, const double *x, const data *dt)
{
	brn_diag d;
	memset(&d, 0, sizeof d);
	if (brn_interp_forward(ip, x, dt->y, dt->n, 1, &d)) {
		diag("forward: %s", d.msg);
		exit(1);
	}
	return brn_interp_loss(ip);
}

/* Compares an analytic gradient with central differences of the loss in v
 * (which the loss reads); one check per tensor, every element. */
static void fd_tensor(brn_interp *ip, const data *dt, double *x, double *v, const double *an, long cnt,
                      const char *what)
{
	double worst = 0, fd_w = 0, an_w = 0;
	long at = -1;
	int bad = 0;
	for (long e = 0; e < cnt; e++) {
		double v0 = v[e];
		v[e] = v0 + FD_H;
		double lp = loss_at(ip, x, dt);
		v[e] = v0 - FD_H;
		double lm = loss_at(ip, x, dt);
		v[e] = v0;
		double fd = (lp - lm) / (2 * FD_H), err = fabs(fd - an[e]);
		if (err > FD_ABS + FD_REL * fabs(fd))
			bad++;
		if (err / (FD_ABS + FD_REL * fabs(fd)) > worst) {
			worst = err / (FD_ABS + FD_REL * fabs(fd));
			at = e;
			fd_w = fd;
			an_w = an[e];
		}
	}
	if (!ok(bad == 0 && cnt > 0, "%s: %ld gradients match central differences", what, cnt))
		diag("%d bad; worst at %ld: analytic %.12g, differences %.12g", bad, at, an_w, fd_w);
}

/* Every trainable parameter and the input, with r and d frozen at their
 * values of a first train forward (the paper treats them as constants). */
static void fd_model(const char *what, const char *text, int n, uint64_t seed)
{
	brn_graph g;
	brn_diag d;
	char name[300];
	memset(&d, 0, sizeof d);
	if (build(text, 0, &g)) {
		ok(0, "%s: builds", what);
		return;
	}
	brn_interp *ip = open_interp(&g, seed);
	perturb_norms(ip, &g, seed);
	data dt = make_data(&g, n, seed);
	brn_interp_freeze_rd(ip, 0);
	loss_at(ip, dt.x, &dt);
	brn_interp_freeze_rd(ip, 1);
	loss_at(ip, dt.x, &dt);
	ok(brn_interp_backward(ip, &d) == 0, "%s: backward", what);

	double *gx = malloc((size_t)dt.count * sizeof *gx);
	memcpy(gx, brn_interp_input_grad(ip), (size_t)dt.count * sizeof *gx);
	snprintf(name, sizeof name, "%s: dL/dx", what);
	fd_tensor(ip, &dt, dt.x, dt.x, gx, dt.count, name);
	for (int i = 0; i < g.n; i++) {
		brn_param ps[6];
		int k = brn_graph_params(&g, &g.nodes[i], ps);
		for (int j = 0; j < k; j++) {
			if (!ps[j].trainable)
				continue;
			long cnt;
			double *v = tensor(ip, g.nodes[i].name, ps[j].suffix, &cnt);
			snprintf(name, sizeof name, "%s.%s", g.nodes[i].name, ps[j].suffix);
			double *an = malloc((size_t)cnt * sizeof *an);
			memcpy(an, brn_interp_grad(ip, name, NULL), (size_t)cnt * sizeof *an);
			snprintf(name, sizeof name, "%s: dL/d %s.%s", what, g.nodes[i].name, ps[j].suffix);
			fd_tensor(ip, &dt, dt.x, v, an, cnt, name);
			free(an);
		}
	}
	free(gx);
	free(dt.x);
	brn_interp_close(ip);
}

/* A norm whose reduction spans one value per channel (batch 1 on flat
 * features): mu_B is that value, so dL/dx into the norm is exactly 0, as
 * are the gradients of the layer before it (issue 13). */
static const char one_value[] =
	"model m1; batch 2; input x[4]; labels y[2];\n"
	"h = batch_renorm(dense(x, 4), alpha=1, eps=1e-5, r_max=1, d_max=1);\n"
	"o = dense(h, 2);\n"
	"loss softmax_cross_entropy(o, y);\n";

static void one_value_exact(void)
{
	brn_graph g;
	brn_diag d;
	memset(&d, 0, sizeof d);
	if (build(one_value, 1, &g)) {
		ok(0, "one value per channel: builds");
		return;
	}
	brn_interp *ip = open_interp(&g, 5);
	data dt = make_data(&g, 1, 5);
	loss_at(ip, dt.x, &dt);
	int rc = brn_interp_backward(ip, &d);
	const double *gx = brn_interp_input_grad(ip);
	long cw, cb;
	const double *gw = brn_interp_grad(ip, "h.dense.weight", &cw), *gb = brn_interp_grad(ip, "h.dense.bias", &cb);
	int zero = rc == 0 && gw && gb;
	for (long i = 0; zero && i < dt.count; i++)
		zero = gx[i] == 0.0;
	for (long i = 0; zero && i < cw; i++)
		zero = gw[i] == 0.0;
	for (long i = 0; zero && i < cb; i++)
		zero = gb[i] == 0.0;
	ok(zero, "one value per channel: dL/dx and the gradients of the dense before the norm are exactly 0");
	free(dt.x);
	brn_interp_close(ip);
}

/* Every op: grouped, strided, asymmetric, padded, bias-free convolutions,
 * both norms (r and d clipping on some channels), relu, two adds, both
 * pools with padding, global_avgpool, flatten, dense, a softmax inside the
 * loss's path and one as the output. */
static const char every_op[] =
	"model every_op; batch 4; input x[4, 9, 8]; labels y[5];\n"
	"c1 = conv(x, 6, kernel=[3, 2], stride=2, pad=[1, 0], groups=2, bias=false);\n"
	"n1 = batch_renorm(c1, r_max=1.5, d_max=0.3, alpha=0.05);\n"
	"a1 = relu(n1);\n"
	"c2 = conv(a1, 6, kernel=3, pad=1);\n"
	"n2 = batch_norm(c2, eps=1e-2);\n"
	"s1 = add(a1, relu(n2));\n"
	"p1 = maxpool(s1, 2, stride=1, pad=1);\n"
	"p2 = avgpool(p1, 3, stride=2, pad=1);\n"
	"h1 = dense(flatten(p2), 7);\n"
	"h2 = dense(flatten(global_avgpool(p2)), 7, bias=false);\n"
	"n3 = batch_renorm(add(h1, h2), r_max=1.2, d_max=0.1, eps=1e-4);\n"
	"z = dense(softmax(relu(n3)), 5);\n"
	"p = softmax(z);\n"
	"loss softmax_cross_entropy(z, y);\n"
	"output p;\n";

static const char residual[] =
	"model residual; batch 5; input x[3, 6, 6]; labels y[4];\n"
	"c0 = conv(x, 4, kernel=3, pad=1);\n"
	"a0 = relu(batch_renorm(c0, r_max=2, d_max=0.5));\n"
	"c1 = conv(a0, 4, kernel=[1, 3], pad=[0, 1], groups=2, bias=false);\n"
	"a1 = relu(add(batch_norm(c1), a0));\n"
	"m = maxpool(a1, 2);\n"
	"c2 = conv(m, 3, kernel=2, stride=2, pad=1);\n"
	"z = dense(flatten(global_avgpool(relu(batch_renorm(c2, r_max=1.1, d_max=0.05)))), 4);\n"
	"loss softmax_cross_entropy(z, y);\n"
	"output z;\n";

/* --- batch_renorm with r_max = 1, d_max = 0 is batch_norm ------------------- */

static const char norm_tmpl[] =
	"model m; batch 6; input x[3, 5, 5]; labels y[3];%s\n"
	"c = conv(x, 4, kernel=3, pad=1);\n"
	"n = %s;\n"
	"z = dense(flatten(avgpool(relu(n), 2)), 3);\n"
	"loss softmax_cross_entropy(z, y);\n"
	"output z;\n";

/* Largest |a - b| / max(1, |b|) over count values; -1 when they differ in
 * a NaN. */
static double rel_diff(const double *a, const double *b, long count)
{
	double w = 0;
	for (long e = 0; e < count; e++) {
		double r = fabs(a[e] - b[e]) / fmax(1.0, fabs(b[e]));
		if (isnan(r))
			return INFINITY;
		w = fmax(w, r);
	}
	return w;
}

static void renorm_is_norm(void)
{
	static const char *variants[2][2] = {
		{"", "batch_renorm(c, r_max=1, d_max=0, alpha=0.1)"},
		{" schedule \"bn\";", "batch_renorm(c, alpha=0.1)"},
	};
	char text[1024];
	brn_graph gn, gr;
	snprintf(text, sizeof text, norm_tmpl, "", "batch_norm(c, alpha=0.1)");
	if (build(text, 0, &gn))
		exit(1);
	for (int v = 0; v < 2; v++) {
		const char *what = v == 0 ? "r_max=1, d_max=0" : "schedule bn";
		snprintf(text, sizeof text, norm_tmpl, variants[v][0], variants[v][1]);
		if (build(text, 0, &gr))
			exit(1);
		brn_interp *a = open_interp(&gn, 3), *b = open_interp(&gr, 3);
		perturb_norms(a, &gn, 3);
		perturb_norms(b, &gr, 3);
		brn_diag d;
		memset(&d, 0, sizeof d);
		double worst_step = 0, la = 0, lb = 0;
		for (int s = 0; s < 3; s++) {
			data dt = make_data(&gn, 6, 40 + (uint64_t)s);
			brn_interp_forward(a, dt.x, dt.y, 6, 1, &d);
			brn_interp_forward(b, dt.x, dt.y, 6, 1, &d);
			int z = node_id(&gn, "z"), n = node_id(&gn, "n");
			worst_step = fmax(worst_step, rel_diff(brn_interp_value(a, n), brn_interp_value(b, n), 6 * 100));
			worst_step = fmax(worst_step, rel_diff(brn_interp_value(a, z), brn_interp_value(b, z), 6 * 3));
			la = brn_interp_loss(a);
			lb = brn_interp_loss(b);
			worst_step = fmax(worst_step, fabs(la - lb));
			brn_interp_backward(a, &d);
			brn_interp_backward(b, &d);
			worst_step = fmax(worst_step, rel_diff(brn_interp_input_grad(a), brn_interp_input_grad(b), dt.count));
			static const char *params[] = {"c.weight", "c.bias", "n.gamma", "n.beta", "z.weight", "z.bias"};
			for (int k = 0; k < 6; k++) {
				long cnt;
				double *ga = brn_interp_grad(a, params[k], &cnt), *gb = brn_interp_grad(b, params[k], NULL);
				worst_step = fmax(worst_step, rel_diff(ga, gb, cnt));
			}
			brn_interp_update(a, 0.1);
			brn_interp_update(b, 0.1);
			free(dt.x);
		}
		ok(worst_step <= 1e-12, "%s: outputs, loss and gradients equal batch_norm's over 3 steps", what);
		if (worst_step > 1e-12)
			diag("largest relative difference %g", worst_step);
		static const char *state[] = {"c.weight", "c.bias", "n.gamma", "n.beta", "n.mean", "n.sigma",
		                              "z.weight", "z.bias", "c.weight.momentum", "n.gamma.momentum"};
		double worst = 0;
		for (int k = 0; k < 10; k++) {
			long cnt;
			double *va = brn_interp_tensor(a, state[k], &cnt), *vb = brn_interp_tensor(b, state[k], NULL);
			worst = fmax(worst, rel_diff(va, vb, cnt));
		}
		ok(worst <= 1e-12, "%s: weights, momentum and moving statistics equal batch_norm's", what);
		const double *r = brn_interp_r(b, node_id(&gr, "n")), *dd = brn_interp_d(b, node_id(&gr, "n"));
		int unit = 1;
		for (int c = 0; c < 4; c++)
			unit &= r[c] == 1.0 && dd[c] == 0.0;
		ok(unit, "%s: r = 1 and d = 0 exactly", what);
		brn_interp_close(a);
		brn_interp_close(b);
	}
}

/* --- moving statistics, SGD with momentum, inference ------------------------ */

static const char stats_model[] =
	"model st; batch 8; input x[2, 4, 3]; labels y[3];\n"
	"c = conv(x, 5, kernel=[2, 3], pad=[1, 1]);\n"
	"n = batch_renorm(c, r_max=1.25, d_max=0.25, alpha=0.1, eps=1e-2);\n"
	"z = dense(flatten(relu(n)), 3);\n"
	"loss softmax_cross_entropy(z, y);\n"
	"output z;\n";

/* mu_B and sigma_B of channel c of node id's input over its first n examples,
 * computed here from the values. */
static void batch_stats(brn_interp *ip, const brn_graph *g, int id, int n, int c, double *mu, double *sg)
{
	const brn_node *nd = &g->nodes[id];
	const double *x = brn_interp_value(ip, nd->in[0]);
	int C = nd->shape[1], hw = nd->shape[2] * nd->shape[3];
	double s = 0, q = 0;
	for (int b = 0; b < n; b++)
		for (int e = 0; e < hw; e++)
			s += x[((long)b * C + c) * hw + e];
	*mu = s / ((double)n * hw);
	for (int b = 0; b < n; b++)
		for (int e = 0; e < hw; e++) {
			double t = x[((long)b * C + c) * hw + e] - *mu;
			q += t * t;
		}
	*sg = sqrt(q / ((double)n * hw) + nd->eps);
}

static double clip(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* One step of n examples: r, d, the moving statistics and the step. */
static void check_stats(const char *what, brn_graph *g, int n)
{
	brn_interp *ip = open_interp(g, 5);
	perturb_norms(ip, g, 5);
	int id = node_id(g, "n");
	const brn_node *nd = &g->nodes[id];
	long C;
	double *mu = tensor(ip, "n", "mean", &C), *sg = tensor(ip, "n", "sigma", NULL);
	double mu0[16], sg0[16];
	memcpy(mu0, mu, (size_t)C * sizeof *mu);
	memcpy(sg0, sg, (size_t)C * sizeof *sg);
	brn_diag d;
	memset(&d, 0, sizeof d);
	/* a full batch first, so that stale examples would show */
	data big = make_data(g, g->batch, 77), dt = make_data(g, n, 78);
	brn_interp_forward(ip, big.x, big.y, g->batch, 1, &d);
	ok(brn_interp_train_step(ip, dt.x, dt.y, n, 0.1, NULL, &d) == 0, "%s: train step", what);
	double w_mu = 0, w_sg = 0, w_r = 0, w_d = 0;
	int r_clip = 0, d_clip = 0;
	for (int c = 0; c < C; c++) {
		double mb, sb;
		batch_stats(ip, g, id, n, c, &mb, &sb);
		double r = clip(sb / sg0[c], 1 / 1.25, 1.25), dd = clip((mb - mu0[c]) / sg0[c], -0.25, 0.25);
		r_clip += r != sb / sg0[c];
		d_clip += dd != (mb - mu0[c]) / sg0[c];
		w_r = fmax(w_r, fabs(brn_interp_r(ip, id)[c] - r));
		w_d = fmax(w_d, fabs(brn_interp_d(ip, id)[c] - dd));
		w_mu = fmax(w_mu, fabs(mu[c] - (mu0[c] + nd->alpha * (mb - mu0[c]))));
		w_sg = fmax(w_sg, fabs(sg[c] - (sg0[c] + nd->alpha * (sb - sg0[c]))));
	}
	ok(w_r <= 1e-14 && w_d <= 1e-14, "%s: r and d are the clipped ratios (%d of %ld r and %d d clipped)",
	   what, r_clip, C, d_clip);
	ok(r_clip > 0 && r_clip < C && d_clip > 0 && d_clip < C, "%s: clipping is active on some channels only",
	   what);
	ok(w_mu <= 1e-14, "%s: mean += alpha * (mu_B - mean)", what);
	ok(w_sg <= 1e-14, "%s: sigma += alpha * (sigma_B - sigma)", what);
	is_int(brn_interp_step(ip), 1, "%s: the step counts 1", what);
	free(big.x);
	free(dt.x);
	brn_interp_close(ip);
}

static void check_sgd(brn_graph *g)
{
	static const char *params[] = {"c.weight", "c.bias", "n.gamma", "n.beta", "z.weight", "z.bias"};
	brn_interp *ip = open_interp(g, 6);
	perturb_norms(ip, g, 6);
	brn_diag d;
	memset(&d, 0, sizeof d);
	double lr = 0.07, *w0[6], *g1[6];
	long cnt[6];
	for (int k = 0; k < 6; k++) {
		double *v = brn_interp_tensor(ip, params[k], &cnt[k]);
		w0[k] = malloc((size_t)cnt[k] * sizeof(double));
		g1[k] = malloc((size_t)cnt[k] * sizeof(double));
		memcpy(w0[k], v, (size_t)cnt[k] * sizeof(double));
	}
	data d1 = make_data(g, 8, 90), d2 = make_data(g, 8, 91);
	brn_interp_train_step(ip, d1.x, d1.y, 8, lr, NULL, &d);
	for (int k = 0; k < 6; k++)
		memcpy(g1[k], brn_interp_grad(ip, params[k], NULL), (size_t)cnt[k] * sizeof(double));
	brn_interp_train_step(ip, d2.x, d2.y, 8, lr, NULL, &d);
	double ww = 0, wm = 0, gnorm = 0;
	for (int k = 0; k < 6; k++) {
		char name[64];
		snprintf(name, sizeof name, "%s.momentum", params[k]);
		const double *w = brn_interp_tensor(ip, params[k], NULL), *m = brn_interp_tensor(ip, name, NULL);
		const double *g2 = brn_interp_grad(ip, params[k], NULL);
		for (long e = 0; e < cnt[k]; e++) {
			double buf = 0.9 * g1[k][e] + g2[e];
			ww = fmax(ww, fabs(w[e] - (w0[k][e] - lr * g1[k][e] - lr * buf)));
			wm = fmax(wm, fabs(m[e] - buf));
			gnorm += fabs(g1[k][e]) + fabs(g2[e]);
		}
		free(w0[k]);
		free(g1[k]);
	}
	ok(gnorm > 1e-3, "sgd: the gradients are not zero");
	ok(ww <= 1e-14, "sgd: after two steps w = w0 - lr*g1 - lr*(0.9*g1 + g2)");
	ok(wm <= 1e-14, "sgd: after two steps momentum = 0.9*g1 + g2");
	free(d1.x);
	free(d2.x);
	brn_interp_close(ip);
}

/* Inference: y = gamma * (x - mean) / sigma + beta per channel, no eps; the
 * state does not move; each example is computed by itself. */
static void check_inference(brn_graph *g)
{
	brn_interp *ip = open_interp(g, 8);
	perturb_norms(ip, g, 8);
	brn_diag d;
	memset(&d, 0, sizeof d);
	data tr = make_data(g, 8, 100), dt = make_data(g, 4, 101);
	brn_interp_train_step(ip, tr.x, tr.y, 8, 0.1, NULL, &d);
	long C;
	double *mu = tensor(ip, "n", "mean", &C), *sg = tensor(ip, "n", "sigma", NULL);
	double *ga = tensor(ip, "n", "gamma", NULL), *be = tensor(ip, "n", "beta", NULL);
	double mu1 = mu[0], sg1 = sg[C - 1];
	ok(brn_interp_forward(ip, dt.x, dt.y, 4, 0, &d) == 0, "inference: forward");
	int id = node_id(g, "n"), hw = g->nodes[id].shape[2] * g->nodes[id].shape[3];
	const double *x = brn_interp_value(ip, g->nodes[id].in[0]), *y = brn_interp_value(ip, id);
	double w = 0;
	for (int b = 0; b < 4; b++)
		for (int c = 0; c < C; c++)
			for (int e = 0; e < hw; e++) {
				long i = ((long)b * C + c) * hw + e;
				w = fmax(w, fabs(y[i] - (ga[c] * (x[i] - mu[c]) / sg[c] + be[c])));
			}
	ok(w <= 1e-14, "inference: y = gamma * (x - mean) / sigma + beta");
	ok(mu[0] == mu1 && sg[C - 1] == sg1 && brn_interp_step(ip) == 1, "inference: the state does not move");
	int z = node_id(g, "z");
	double z4[3];
	memcpy(z4, brn_interp_value(ip, z) + 3, sizeof z4);
	brn_interp_forward(ip, dt.x + dt.count / 4, dt.y + 1, 1, 0, &d);
	ok(rel_diff(brn_interp_value(ip, z), z4, 3) == 0, "inference: an example's output does not depend on the batch");
	free(tr.x);
	free(dt.x);
	brn_interp_close(ip);
}

/* n = 3 of batch 8 is exactly batch 3 on the same examples. */
static void check_partial(void)
{
	brn_graph g8, g3;
	if (build(stats_model, 0, &g8) || build(stats_model, 3, &g3))
		exit(1);
	check_stats("n=3 of 8", &g8, 3);
	brn_interp *a = open_interp(&g8, 9), *b = open_interp(&g3, 9);
	perturb_norms(a, &g8, 9);
	perturb_norms(b, &g3, 9);
	brn_diag d;
	memset(&d, 0, sizeof d);
	data big = make_data(&g8, 8, 110), dt = make_data(&g8, 3, 111);
	brn_interp_forward(a, big.x, big.y, 8, 1, &d);
	double la, lb;
	brn_interp_train_step(a, dt.x, dt.y, 3, 0.1, &la, &d);
	brn_interp_train_step(b, dt.x, dt.y, 3, 0.1, &lb, &d);
	double w = fabs(la - lb);
	w = fmax(w, rel_diff(brn_interp_input_grad(a), brn_interp_input_grad(b), dt.count));
	static const char *names[] = {"c.weight", "c.bias", "n.gamma", "n.beta", "n.mean", "n.sigma",
	                              "z.weight", "z.bias", "z.weight.momentum"};
	for (int k = 0; k < 9; k++) {
		long cnt;
		double *va = brn_interp_tensor(a, names[k], &cnt);
		w = fmax(w, rel_diff(va, brn_interp_tensor(b, names[k], NULL), cnt));
	}
	ok(w == 0, "n=3 of 8: loss, gradients, weights and statistics equal batch 3's");
	if (w != 0)
		diag("largest difference %g", w);
	free(big.x);
	free(dt.x);
	brn_interp_close(a);
	brn_interp_close(b);
}

/* --- the paper's schedule around its breakpoints ------------------------------ */

static double ramp(double t, double t0, double t1, double v0, double v1)
{
	return t <= t0 ? v0 : t >= t1 ? v1 : v0 + (v1 - v0) * (t - t0) / (t1 - t0);
}

static void check_schedule(void)
{
	static const char text[] =
		"model s; batch 4; input x[4, 3, 3]; labels y[2]; schedule \"paper\";\n"
		"c = conv(x, 4, kernel=1);\n"
		"n = batch_renorm(c);\n"
		"z = dense(flatten(n), 2);\n"
		"loss softmax_cross_entropy(z, y);\n"
		"output z;\n";
	static const long steps[] = {0, 4999, 5000, 5001, 12345, 24999, 25000, 25001, 39999, 40000, 40001, 90000};
	brn_graph g;
	if (build(text, 0, &g))
		exit(1);
	brn_interp *ip = open_interp(&g, 12);
	/* channel 0: r and d far above any bound; 1: far below */
	double *mu = tensor(ip, "n", "mean", NULL), *sg = tensor(ip, "n", "sigma", NULL);
	mu[0] = -1e6, sg[0] = 1e-4;
	mu[1] = 1e9, sg[1] = 1e4;
	brn_diag d;
	memset(&d, 0, sizeof d);
	data dt = make_data(&g, 4, 120);
	int id = node_id(&g, "n");
	for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
		long t = steps[k];
		double rm = ramp((double)t, 5000, 40000, 1, 3), dm = ramp((double)t, 5000, 25000, 0, 5);
		brn_interp_set_step(ip, t);
		brn_interp_forward(ip, dt.x, dt.y, 4, 1, &d);
		const double *r = brn_interp_r(ip, id), *dd = brn_interp_d(ip, id);
		double w = fmax(fmax(fabs(r[0] - rm), fabs(r[1] - 1 / rm)), fmax(fabs(dd[0] - dm), fabs(dd[1] + dm)));
		if (!ok(w <= 1e-12, "paper at step %ld: r in [1/%.6g, %.6g], d in [-%.6g, %.6g]", t, rm, rm, dm, dm))
			diag("r %.12g %.12g, d %.12g %.12g", r[0], r[1], dd[0], dd[1]);
	}
	brn_interp_set_step(ip, 4999);
	brn_interp_train_step(ip, dt.x, dt.y, 4, 0.0, NULL, &d);
	is_int(brn_interp_step(ip), 5000, "a train step at 4999 moves the step to 5000");
	free(dt.x);
	brn_interp_close(ip);
}

int main(void)
{
	brn_arena_init(&arena);
	fd_model("every op", every_op, 4, 21);
	fd_model("residual, n=3 of 5", residual, 3, 22);
	fd_model("norm over 2 values", one_value, 2, 23);
	fd_model("norm over 1 value, n=1 of 2", one_value, 1, 24);
	one_value_exact();
	renorm_is_norm();
	brn_graph g;
	if (build(stats_model, 0, &g))
		return 1;
	check_stats("full batch", &g, 8);
	check_sgd(&g);
	check_inference(&g);
	check_partial();
	check_schedule();
	brn_arena_free(&arena);
	return done_testing();
}
