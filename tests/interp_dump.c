/* interp_dump: runs the reference interpreter on a model and writes every
 * number tests/t_torch.py compares against its own PyTorch implementation
 * of DESIGN.md §4. Not a test itself (no t_ prefix).
 *
 *   interp_dump MODEL SEED N STEPS LR OUT [START_STEP]
 *
 * The moving statistics, gamma and beta start away from their defaults
 * (drawn from SEED), so that r and d clip on some channels and not on
 * others. Inputs and labels of step s are drawn from SEED as well. OUT is
 * text, float64-exact: records of two lines, "name count" and the values
 * printed with %.17g. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brnrt_init.h"
#include "driver.h"
#include "interp.h"

static void put(FILE *f, const char *name, const double *v, long n)
{
	fprintf(f, "%s %ld\n", name, n);
	for (long i = 0; i < n; i++)
		fprintf(f, "%s%.17g", i ? " " : "", v[i]);
	fputc('\n', f);
}

/* Every parameter and state tensor, as "<prefix><name>" (and the momentum
 * buffers of the trainable ones). */
static void put_tensors(FILE *f, brn_interp *ip, const brn_graph *g, const char *prefix)
{
	brn_param ps[6];
	char name[256], key[300];
	for (int i = 0; i < g->n; i++) {
		int k = brn_graph_params(g, &g->nodes[i], ps);
		for (int j = 0; j < k; j++) {
			long cnt;
			snprintf(name, sizeof name, "%s.%s", g->nodes[i].name, ps[j].suffix);
			snprintf(key, sizeof key, "%s%s", prefix, name);
			const double *v = brn_interp_tensor(ip, name, &cnt);
			put(f, key, v, cnt);
			if (ps[j].trainable) {
				snprintf(key, sizeof key, "%s%s.momentum", prefix, name);
				strcat(name, ".momentum");
				v = brn_interp_tensor(ip, name, &cnt);
				put(f, key, v, cnt);
			}
		}
	}
}

static void perturb_norms(brn_interp *ip, const brn_graph *g, uint64_t seed)
{
	static const char *which[4] = {"gamma", "beta", "mean", "sigma"};
	char name[256];
	for (int i = 0; i < g->n; i++) {
		if (!brn_is_norm(g->nodes[i].op))
			continue;
		for (int k = 0; k < 4; k++) {
			long cnt;
			snprintf(name, sizeof name, "%s.%s", g->nodes[i].name, which[k]);
			double *v = brn_interp_tensor(ip, name, &cnt);
			uint64_t stream = brnrt_name_hash(name) ^ 0x5eedULL;
			for (long e = 0; e < cnt; e++) {
				double z = brnrt_normal(seed, stream, (uint64_t)e);
				v[e] = k == 0 ? 1 + 0.2 * z : k == 1 ? 0.2 * z : k == 2 ? 0.5 * z : exp(0.6 * z);
			}
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: interp_dump MODEL SEED N STEPS LR OUT [START_STEP]\n");
		return 2;
	}
	uint64_t seed = strtoull(argv[2], NULL, 10);
	int n = atoi(argv[3]), steps = atoi(argv[4]);
	double lr = strtod(argv[5], NULL);
	long start = argc > 7 ? atol(argv[7]) : 0;
	brn_arena a;
	brn_graph g;
	brn_diag d;
	brn_interp *ip = NULL;
	char buf[1024];
	memset(&d, 0, sizeof d);
	brn_arena_init(&a);
	if (brn_load_model(argv[1], 0, NULL, "schedules", &a, &g, &d) || brn_interp_open(&ip, &g, seed, &d)) {
		brn_diag_render(&d, buf, sizeof buf);
		fprintf(stderr, "%s", buf);
		return 1;
	}
	FILE *f = fopen(argv[6], "w");
	if (!f) {
		perror(argv[6]);
		return 1;
	}
	brn_interp_set_step(ip, start);
	perturb_norms(ip, &g, seed);
	put_tensors(f, ip, &g, "init.");

	const brn_node *xn = &g.nodes[g.input];
	long xcount = (long)n * brn_shape_count(xn->shape);
	int classes = g.nodes[g.labels].classes;
	double *x = malloc((size_t)xcount * sizeof *x), *x0 = malloc((size_t)xcount * sizeof *x0);
	int32_t *y = malloc((size_t)n * sizeof *y), *y0 = malloc((size_t)n * sizeof *y0);
	double *yd = malloc((size_t)n * sizeof *yd);
	for (int s = 0; s < steps; s++) {
		for (long e = 0; e < xcount; e++)
			x[e] = brnrt_normal(seed, brnrt_name_hash("x") + (uint64_t)s, (uint64_t)e);
		for (int b = 0; b < n; b++) {
			double u = brnrt_normal(seed, brnrt_name_hash("y") + (uint64_t)s, (uint64_t)b);
			y[b] = (int32_t)((long)floor(fabs(u) * 1000) % classes);
			yd[b] = y[b];
		}
		if (s == 0) {
			memcpy(x0, x, (size_t)xcount * sizeof *x);
			memcpy(y0, y, (size_t)n * sizeof *y);
		}
		snprintf(buf, sizeof buf, "x.%d", s);
		put(f, buf, x, xcount);
		snprintf(buf, sizeof buf, "y.%d", s);
		put(f, buf, yd, n);
		double loss;
		if (brn_interp_train_step(ip, x, y, n, lr, &loss, &d)) {
			brn_diag_render(&d, buf, sizeof buf);
			fprintf(stderr, "%s", buf);
			return 1;
		}
		snprintf(buf, sizeof buf, "loss.%d", s);
		put(f, buf, &loss, 1);
		if (s > 0)
			continue;
		put(f, "grad.x", brn_interp_input_grad(ip), xcount);
		for (int i = 0; i < g.n; i++) {
			const brn_node *nd = &g.nodes[i];
			brn_param ps[6];
			int k = brn_graph_params(&g, nd, ps);
			for (int j = 0; j < k; j++) {
				char name[256];
				long cnt;
				snprintf(name, sizeof name, "%s.%s", nd->name, ps[j].suffix);
				const double *gr = brn_interp_grad(ip, name, &cnt);
				snprintf(buf, sizeof buf, "grad.%s", name);
				if (ps[j].trainable)
					put(f, buf, gr, cnt);
			}
			if (nd->op == BRN_OP_BATCH_RENORM) {
				snprintf(buf, sizeof buf, "r.%s", nd->name);
				put(f, buf, brn_interp_r(ip, i), nd->shape[1]);
				snprintf(buf, sizeof buf, "d.%s", nd->name);
				put(f, buf, brn_interp_d(ip, i), nd->shape[1]);
			}
		}
		put_tensors(f, ip, &g, "step1.");
	}
	put_tensors(f, ip, &g, "final.");
	/* inference with the moving statistics, on the first step's inputs */
	if (brn_interp_forward(ip, x0, y0, n, 0, &d)) {
		brn_diag_render(&d, buf, sizeof buf);
		fprintf(stderr, "%s", buf);
		return 1;
	}
	put(f, "infer", brn_interp_value(ip, g.output), (long)n * brn_shape_count(g.nodes[g.output].shape));
	double step = (double)brn_interp_step(ip);
	put(f, "step", &step, 1);
	free(x);
	free(x0);
	free(y);
	free(y0);
	free(yd);
	brn_interp_close(ip);
	brn_arena_free(&a);
	return fclose(f) != 0;
}
