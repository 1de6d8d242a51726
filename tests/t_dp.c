/* t_dp: data-parallel training through the generated _set_allreduce hook,
 * with workers as threads in one process and a hook that averages through
 * shared memory (t_mpi.sh runs the same code over MPI):
 * - no norms: 2 workers x batch b equal 1 process x batch 2b after 5 steps
 *   (every tensor within 1e-5 relative to its largest magnitude);
 * - batch_renorm: 2 workers equal the interpreter simulating 2 workers (own
 *   batch statistics, averaged gradients, moving statistics averaged at the
 *   end), tolerances of t_codegen (losses 1e-4 + 1e-3|x|, state 2e-4 + 2e-3|x|);
 * - the workers' parameters and momentum stay bitwise equal; _broadcast
 *   gives every worker the state of worker 0;
 * - a step that goes non-finite on one worker is undone on all; a failing
 *   hook undoes the step with a message.
 * argv[1]: one target (c or opencl); without it, both. */
#include <math.h>
#include <pthread.h>

#include "codegen.h"

static const char *target = "c";

typedef int (*reduce_fn)(void *ctx, float *buf, size_t n);

/* The generated data-parallel API, looked up by name. */
typedef struct dp_api {
	int (*set_allreduce)(void *m, reduce_fn fn, void *ctx);
	int (*average_stats)(void *m);
	int (*broadcast)(void *m, reduce_fn fn, void *ctx);
} dp_api;

enum { WORKERS = 2 };

/* Workers meet at a barrier; each averages all buffers in rank order, so
 * every worker gets bitwise the same result. */
typedef struct group {
	pthread_barrier_t bar;
	float *buf[WORKERS];
	size_t n[WORKERS];
} group;

typedef struct worker {
	group *g;
	int rank;
	api *a;
	void *m;
	const float *x;
	const int32_t *y;
	int n, rc;
	float lr, loss;
} worker;

static int average_hook(void *ctx, float *buf, size_t n)
{
	worker *w = ctx;
	group *g = w->g;
	g->buf[w->rank] = buf;
	g->n[w->rank] = n;
	pthread_barrier_wait(&g->bar);
	int same = g->n[0] == g->n[1];
	float *mean = same ? malloc(n * sizeof(float)) : NULL;
	for (size_t i = 0; mean && i < n; i++) {
		float s = 0;
		for (int r = 0; r < WORKERS; r++)
			s += g->buf[r][i];
		mean[i] = s / WORKERS;
	}
	pthread_barrier_wait(&g->bar);
	if (mean)
		memcpy(buf, mean, n * sizeof(float));
	free(mean);
	return mean ? 0 : -1;
}

/* Rank 0's buffer to every worker. */
static int bcast_hook(void *ctx, float *buf, size_t n)
{
	worker *w = ctx;
	group *g = w->g;
	g->buf[w->rank] = buf;
	g->n[w->rank] = n;
	pthread_barrier_wait(&g->bar);
	int same = g->n[0] == g->n[1];
	if (same && w->rank)
		memcpy(buf, g->buf[0], n * sizeof(float));
	pthread_barrier_wait(&g->bar);
	return same ? 0 : -1;
}

static int failing_hook(void *ctx, float *buf, size_t n)
{
	(void)ctx;
	(void)buf;
	(void)n;
	return -1;
}

static void *worker_step(void *arg)
{
	worker *w = arg;
	w->rc = w->a->train_step(w->m, w->x, w->y, w->n, w->lr, &w->loss);
	return NULL;
}

static dp_api *average_api; /* the library whose _average_stats and _broadcast the workers call */

static void *worker_average(void *arg)
{
	worker *w = arg;
	w->rc = average_api->average_stats(w->m);
	return NULL;
}

static void *worker_broadcast(void *arg)
{
	worker *w = arg;
	w->rc = average_api->broadcast(w->m, bcast_hook, w);
	return NULL;
}

static void run_workers(worker *w, void *(*fn)(void *))
{
	pthread_t t[WORKERS];
	for (int r = 0; r < WORKERS; r++)
		pthread_create(&t[r], NULL, fn, &w[r]);
	for (int r = 0; r < WORKERS; r++)
		pthread_join(t[r], NULL);
}

static int dp_lookup(api *a, const char *name, dp_api *dp)
{
	char sym[256];
	snprintf(sym, sizeof sym, "%s_set_allreduce", name);
	*(void **)&dp->set_allreduce = dlsym(a->lib, sym);
	snprintf(sym, sizeof sym, "%s_average_stats", name);
	*(void **)&dp->average_stats = dlsym(a->lib, sym);
	snprintf(sym, sizeof sym, "%s_broadcast", name);
	*(void **)&dp->broadcast = dlsym(a->lib, sym);
	return dp->set_allreduce && dp->average_stats && dp->broadcast ? 0 : -1;
}

/* The saved state of a model as one array per tensor, in file order. */
typedef struct saved {
	brnrt_st_tensor t[64];
	char names[64][160];
	int k;
} saved;

static int save_state(api *a, void *m, const brn_graph *g, saved *s, const char *file)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", cg_tmpdir(), file);
	if (a->save(m, path)) {
		diag("save: %s", a->error(m));
		return -1;
	}
	s->k = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < g->n; i++) {
			brn_param ps[6];
			int np = brn_graph_params(g, &g->nodes[i], ps);
			for (int j = 0; j < np && s->k < 64; j++) {
				if (pass == 1 && !ps[j].trainable)
					continue;
				brnrt_st_tensor *t = &s->t[s->k];
				snprintf(s->names[s->k], sizeof s->names[s->k], "%s.%s%s", g->nodes[i].name, ps[j].suffix,
				         pass ? ".momentum" : "");
				memset(t, 0, sizeof *t);
				t->name = s->names[s->k];
				t->ndim = ps[j].ndim;
				for (int e = 0; e < ps[j].ndim; e++)
					t->shape[e] = ps[j].shape[e];
				t->data = malloc((size_t)ps[j].count * sizeof(float));
				s->k++;
			}
		}
	brnrt_error e;
	int64_t step;
	if (brnrt_st_load(path, s->t, s->k, NULL, &step, &e)) {
		diag("load: %s", e.msg);
		return -1;
	}
	return 0;
}

static void free_state(saved *s)
{
	for (int i = 0; i < s->k; i++)
		free(s->t[i].data);
	s->k = 0;
}

static long tensor_count(const brnrt_st_tensor *t)
{
	long c = 1;
	for (int e = 0; e < t->ndim; e++)
		c *= (long)t->shape[e];
	return c;
}

/* Largest |a - b| / (largest |b| of the tensor) over all tensors; exact:
 * whether every value is bitwise equal. */
static double state_diff(const saved *a, const saved *b, int *exact, const char **where)
{
	double worst = 0;
	*exact = 1;
	for (int i = 0; i < a->k; i++) {
		long c = tensor_count(&a->t[i]);
		double scale = 0, d = 0;
		for (long e = 0; e < c; e++) {
			scale = fmax(scale, fabs(b->t[i].data[e]));
			d = fmax(d, fabs((double)a->t[i].data[e] - b->t[i].data[e]));
			if (memcmp(&a->t[i].data[e], &b->t[i].data[e], sizeof(float)))
				*exact = 0;
			if (isnan(a->t[i].data[e]) || isnan(b->t[i].data[e]))
				d = INFINITY;
		}
		double r = scale > 0 ? d / scale : d;
		if (r > worst) {
			worst = r;
			*where = a->names[i];
		}
	}
	return worst;
}

/* Only the trainable parameters and momentum: the workers' moving statistics differ by design. */
static int trained_equal(const saved *a, const saved *b)
{
	for (int i = 0; i < a->k; i++) {
		int stat = strstr(a->names[i], ".mean") || strstr(a->names[i], ".sigma");
		if (!stat && memcmp(a->t[i].data, b->t[i].data, (size_t)tensor_count(&a->t[i]) * sizeof(float)))
			return 0;
	}
	return 1;
}

static void fill(float *xf, double *xd, int32_t *y, int n, long in, int classes)
{
	for (long i = 0; i < n * in; i++) {
		xf[i] = (float)(4 * cg_uniform() - 1.5);
		if (xd)
			xd[i] = xf[i];
	}
	for (int i = 0; i < n; i++)
		y[i] = (int32_t)(cg_uniform() * classes);
}

/* 2 workers x batch b against 1 process x 2b, on a model without norms. */
static void against_one_process(void)
{
	const char *path = "tests/models/no_norm.brn", *name = "no_norm";
	const int b = 4;
	char what[128], tag[64];
	snprintf(what, sizeof what, "%s no_norm: 2 workers x %d vs 1 x %d", target, b, 2 * b);
	snprintf(tag, sizeof tag, "dp_%s_no_norm", target);
	api a;
	dp_api dp;
	brn_arena ar;
	brn_graph g;
	brn_diag d;
	memset(&d, 0, sizeof d);
	brn_arena_init(&ar);
	void *one = NULL;
	worker w[WORKERS];
	group grp;
	memset(w, 0, sizeof w);
	pthread_barrier_init(&grp.bar, NULL, WORKERS);
	if (cg_build(&a, path, name, tag, target, "train", 2 * b, 0, NULL) || dp_lookup(&a, name, &dp) ||
	    brn_load_model(path, 2 * b, NULL, "schedules", &ar, &g, &d) || a.open(&one, NULL)) {
		ok(0, "%s: builds and opens", what);
		goto out;
	}
	for (int r = 0; r < WORKERS; r++) {
		w[r] = (worker){&grp, r, &a, NULL, NULL, NULL, b, 0, 0.05f, 0};
		if (a.open(&w[r].m, NULL) || dp.set_allreduce(w[r].m, average_hook, &w[r])) {
			ok(0, "%s: opens worker %d", what, r);
			goto out;
		}
	}
	/* worker 1 starts from other weights; _broadcast gives it worker 0's */
	int (*init_weights)(void *m, uint64_t seed);
	char sym[128];
	snprintf(sym, sizeof sym, "%s_init_weights", name);
	*(void **)&init_weights = dlsym(a.lib, sym);
	saved b0, b1;
	int exact = 0;
	const char *where = "";
	if (init_weights && init_weights(w[1].m, 7) == 0 && !save_state(&a, w[0].m, &g, &b0, "b0.st") &&
	    !save_state(&a, w[1].m, &g, &b1, "b1.st")) {
		state_diff(&b0, &b1, &exact, &where);
		ok(!exact, "%s: worker 1 initialized with seed 7 differs", what);
		free_state(&b1);
		average_api = &dp;
		run_workers(w, worker_broadcast);
		if (!save_state(&a, w[1].m, &g, &b1, "b1.st"))
			state_diff(&b0, &b1, &exact, &where);
		ok(w[0].rc == 0 && w[1].rc == 0 && exact, "%s: _broadcast gives worker 1 the state of worker 0", what);
	} else
		ok(0, "%s: init_weights and save", what);
	free_state(&b0);
	free_state(&b1);
	long in = brn_shape_count(g.nodes[g.input].shape);
	int classes = g.nodes[g.labels].classes;
	float *x = malloc((size_t)(2 * b * in) * sizeof(float));
	int32_t y[64];
	int good = 1;
	double loss_diff = 0;
	for (int step = 0; step < 5; step++) {
		fill(x, NULL, y, 2 * b, in, classes);
		float loss1 = 0;
		int rc = a.train_step(one, x, y, 2 * b, 0.05f, &loss1);
		for (int r = 0; r < WORKERS; r++) {
			w[r].x = x + (long)r * b * in;
			w[r].y = y + r * b;
		}
		run_workers(w, worker_step);
		if (rc || w[0].rc || w[1].rc) {
			diag("step %d: %s / %s / %s", step, a.error(one), a.error(w[0].m), a.error(w[1].m));
			good = 0;
		}
		loss_diff = fmax(loss_diff, fabs(w[0].loss - loss1) / fabs(loss1));
		if (w[0].loss != w[1].loss)
			good = 0;
	}
	ok(good, "%s: 5 steps run; both workers report the same loss", what);
	ok(loss_diff <= 1e-5, "%s: the workers' loss is the 2b-batch loss within 1e-5 relative (%.2g)", what, loss_diff);
	saved s1, s0, sw;
	if (save_state(&a, one, &g, &s1, "one.st") || save_state(&a, w[0].m, &g, &s0, "w0.st") ||
	    save_state(&a, w[1].m, &g, &sw, "w1.st")) {
		ok(0, "%s: states saved", what);
	} else {
		int exact;
		const char *where = "";
		double r = state_diff(&s0, &s1, &exact, &where);
		ok(r <= 1e-5, "%s: weights and momentum after 5 steps within 1e-5 relative (worst %.2g, %s)", what, r,
		   where);
		state_diff(&s0, &sw, &exact, &where);
		ok(exact, "%s: the two workers' states are bitwise equal", what);
	}
	free_state(&s1);
	free_state(&s0);
	free_state(&sw);

	/* one worker's input overflows: both undo the step */
	int64_t step0 = a.step(w[0].m);
	for (long i = 0; i < b * in; i++)
		x[(long)b * in + i] = 3e38f;
	for (int r = 0; r < WORKERS; r++) {
		w[r].x = x + (long)r * b * in;
		w[r].y = y + r * b;
	}
	save_state(&a, w[0].m, &g, &s1, "before.st");
	run_workers(w, worker_step);
	save_state(&a, w[0].m, &g, &s0, "after.st");
	state_diff(&s0, &s1, &exact, &where);
	ok(w[0].rc == BRN_ENUMERIC && w[1].rc == BRN_ENUMERIC && a.step(w[0].m) == step0 && exact,
	   "%s: a step non-finite on worker 1 only is undone on both (rc %d, %d)", what, w[0].rc, w[1].rc);
	/* (whether the loss or a weight is named first depends on the data) */
	const char *why = a.error(w[0].m), *tail = "; the model is as it was before the step";
	ok(strlen(why) > strlen(tail) && !strcmp(why + strlen(why) - strlen(tail), tail),
	   "%s: worker 0 says why: %s", what, why);
	free_state(&s1);
	free_state(&s0);

	/* a failing hook */
	dp.set_allreduce(w[0].m, failing_hook, NULL);
	fill(x, NULL, y, b, in, classes);
	save_state(&a, w[0].m, &g, &s1, "before.st");
	int rc = a.train_step(w[0].m, x, y, b, 0.05f, NULL);
	save_state(&a, w[0].m, &g, &s0, "after.st");
	state_diff(&s0, &s1, &exact, &where);
	is_int(rc, BRN_EIO, "%s: a failing hook fails the step", what);
	is_str(a.error(w[0].m), "the gradient reduction failed; the model is as it was before the step",
	       "%s: with this message", what);
	ok(exact && a.step(w[0].m) == step0, "%s: and the state is as before", what);
	free_state(&s1);
	free_state(&s0);
	/* without a hook: the plain step again, and _average_stats refuses */
	dp.set_allreduce(w[0].m, NULL, NULL);
	ok(a.train_step(w[0].m, x, y, b, 0.05f, NULL) == 0 && a.step(w[0].m) == step0 + 1,
	   "%s: hook removed: a plain step", what);
	is_int(dp.average_stats(w[0].m), BRN_EARG, "%s: _average_stats without a hook", what);
	is_str(a.error(w[0].m), "no allreduce hook is set (_set_allreduce)", "%s: with this message", what);
	is_int(dp.broadcast(w[0].m, failing_hook, NULL), BRN_EIO, "%s: _broadcast with a failing hook", what);
	is_str(a.error(w[0].m), "the broadcast of the state failed", "%s: with this message", what);
	free(x);
out:
	for (int r = 0; r < WORKERS; r++)
		if (w[r].m)
			a.close(w[r].m);
	if (one)
		a.close(one);
	pthread_barrier_destroy(&grp.bar);
	brn_arena_free(&ar);
	cg_unload(&a);
}

/* Averages the gradient of every trainable tensor of ips (after backward). */
static void interp_average(brn_interp *ips[WORKERS], const brn_graph *g, int trainable)
{
	for (int i = 0; i < g->n; i++) {
		brn_param ps[6];
		int np = brn_graph_params(g, &g->nodes[i], ps);
		for (int j = 0; j < np; j++) {
			if (ps[j].trainable != trainable)
				continue;
			char name[160];
			snprintf(name, sizeof name, "%s.%s", g->nodes[i].name, ps[j].suffix);
			double *v[WORKERS];
			long count = 0;
			for (int r = 0; r < WORKERS; r++)
				v[r] = trainable ? brn_interp_grad(ips[r], name, &count) : brn_interp_tensor(ips[r], name, &count);
			for (long e = 0; e < count; e++) {
				double s = 0;
				for (int r = 0; r < WORKERS; r++)
					s += v[r][e];
				for (int r = 0; r < WORKERS; r++)
					v[r][e] = s / WORKERS;
			}
		}
	}
}

/* 2 workers of a batch_renorm model against the interpreter simulating
 * them: per-worker forward and backward, gradients averaged, one SGD step
 * each, moving statistics averaged at the end. */
static void against_interpreter(const char *path, const char *name, int b)
{
	char what[128], tag[64];
	snprintf(what, sizeof what, "%s %s: 2 workers x %d vs interpreter", target, name, b);
	snprintf(tag, sizeof tag, "dp_%s_%s", target, name);
	api a;
	dp_api dp;
	brn_arena ar;
	brn_graph g;
	brn_diag d;
	memset(&d, 0, sizeof d);
	brn_arena_init(&ar);
	brn_interp *ips[WORKERS] = {NULL, NULL};
	worker w[WORKERS];
	group grp;
	memset(w, 0, sizeof w);
	pthread_barrier_init(&grp.bar, NULL, WORKERS);
	if (cg_build(&a, path, name, tag, target, "train", b, 0, NULL) || dp_lookup(&a, name, &dp) ||
	    brn_load_model(path, b, NULL, "schedules", &ar, &g, &d) || brn_interp_open(&ips[0], &g, 1, &d) ||
	    brn_interp_open(&ips[1], &g, 1, &d)) {
		ok(0, "%s: builds and opens (%s)", what, d.msg);
		goto out;
	}
	for (int r = 0; r < WORKERS; r++) {
		w[r] = (worker){&grp, r, &a, NULL, NULL, NULL, b, 0, 0.05f, 0};
		if (a.open(&w[r].m, NULL) || dp.set_allreduce(w[r].m, average_hook, &w[r])) {
			ok(0, "%s: opens worker %d", what, r);
			goto out;
		}
	}
	long in = brn_shape_count(g.nodes[g.input].shape);
	int classes = g.nodes[g.labels].classes;
	float *x = malloc((size_t)(WORKERS * b * in) * sizeof(float));
	double *xd = malloc((size_t)(WORKERS * b * in) * sizeof(double));
	int32_t y[64];
	int good = 1;
	double worst_loss = 0;
	for (int step = 0; step < 5; step++) {
		fill(x, xd, y, WORKERS * b, in, classes);
		for (int r = 0; r < WORKERS; r++) {
			w[r].x = x + (long)r * b * in;
			w[r].y = y + r * b;
		}
		run_workers(w, worker_step);
		double want = 0;
		for (int r = 0; r < WORKERS; r++) {
			if (brn_interp_forward(ips[r], xd + (long)r * b * in, y + r * b, b, 1, &d) ||
			    brn_interp_backward(ips[r], &d))
				good = 0;
			want += brn_interp_loss(ips[r]) / WORKERS;
		}
		interp_average(ips, &g, 1);
		for (int r = 0; r < WORKERS; r++)
			brn_interp_update(ips[r], 0.05);
		if (w[0].rc || w[1].rc) {
			diag("step %d: %s / %s", step, a.error(w[0].m), a.error(w[1].m));
			good = 0;
		}
		worst_loss = fmax(worst_loss, fabs(w[0].loss - want) / (1e-4 + 1e-3 * fabs(want)));
	}
	ok(good, "%s: 5 steps run", what);
	ok(worst_loss <= 1, "%s: the mean loss of each step within 1e-4 + 1e-3|x| (worst %.2f of tolerance)", what,
	   worst_loss);
	saved s0, s1;
	if (save_state(&a, w[0].m, &g, &s0, "w0.st") || save_state(&a, w[1].m, &g, &s1, "w1.st"))
		ok(0, "%s: states saved", what);
	else
		ok(trained_equal(&s0, &s1), "%s: the workers' parameters and momentum are bitwise equal", what);
	free_state(&s0);
	free_state(&s1);
	average_api = &dp;
	run_workers(w, worker_average);
	ok(w[0].rc == 0 && w[1].rc == 0, "%s: _average_stats on both workers", what);
	interp_average(ips, &g, 0);
	a.m = w[0].m;
	cg_compare_state(&a, ips[0], &g, 1, 2e-4, 2e-3, what);
	a.m = NULL;
	if (save_state(&a, w[0].m, &g, &s0, "w0.st") || save_state(&a, w[1].m, &g, &s1, "w1.st"))
		ok(0, "%s: states saved", what);
	else {
		int exact;
		const char *where = "";
		state_diff(&s0, &s1, &exact, &where);
		ok(exact, "%s: after _average_stats the workers' states are bitwise equal", what);
	}
	free_state(&s0);
	free_state(&s1);
	free(x);
	free(xd);
out:
	for (int r = 0; r < WORKERS; r++) {
		if (w[r].m)
			a.close(w[r].m);
		brn_interp_close(ips[r]);
	}
	pthread_barrier_destroy(&grp.bar);
	brn_arena_free(&ar);
	cg_unload(&a);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		target = argv[1];
	int both = argc <= 1;
	for (int t = 0; t < 1 + both; t++) {
		if (both)
			target = t ? "opencl" : "c";
		against_one_process();
		against_interpreter("tests/models/small_renorm.brn", "small_renorm", 4);
		against_interpreter("tests/models/mlp.brn", "mlp", 3);
	}
	cg_cleanup();
	return done_testing();
}
