/* Reference interpreter (see interp.h). Loops are written the way the math
 * reads; speed does not matter here, being obviously right does. */
#include "interp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brnrt_init.h"

typedef struct tensor {
	const char *name;     /* "c1.weight" */
	brn_param p;
	int node;
	double *v, *grad, *mom;
} tensor;

typedef struct norm_state {
	double *mu_b, *sig_b, *r, *d;   /* per channel, from the last forward */
	double *xhat;                   /* [n, C, H, W] */
} norm_state;

struct brn_interp {
	const brn_graph *g;
	brn_arena arena;
	tensor *t;
	int nt;
	int *first;          /* per node: its first tensor, or -1 */
	double **val, **grad;/* per node: [batch, C, H, W] */
	norm_state *norm;    /* per node */
	int32_t *labels;
	int n, trained;      /* examples in the last forward; was it train */
	double loss;
	long step;
	int frozen;
};

static double *zeros(brn_interp *ip, long n)
{
	return brn_arena_alloc(&ip->arena, (size_t)n * sizeof(double));
}

static long size_of(const brn_node *n)
{
	return (long)n->shape[0] * brn_shape_count(n->shape);
}

int brn_interp_open(brn_interp **out, const brn_graph *g, uint64_t seed, brn_diag *d)
{
	brn_interp *ip = calloc(1, sizeof *ip);
	if (!ip)
		return brn_diag_error(d, g->file, 0, 0, "out of memory");
	brn_arena_init(&ip->arena);
	ip->g = g;
	int cap = 0;
	brn_param ps[6];
	for (int i = 0; i < g->n; i++)
		cap += brn_graph_params(g, &g->nodes[i], ps);
	ip->t = brn_arena_alloc(&ip->arena, (size_t)(cap + 1) * sizeof *ip->t);
	ip->first = brn_arena_alloc(&ip->arena, (size_t)g->n * sizeof(int));
	ip->val = brn_arena_alloc(&ip->arena, (size_t)g->n * sizeof(double *));
	ip->grad = brn_arena_alloc(&ip->arena, (size_t)g->n * sizeof(double *));
	ip->norm = brn_arena_alloc(&ip->arena, (size_t)g->n * sizeof(norm_state));
	ip->labels = brn_arena_alloc(&ip->arena, (size_t)g->batch * sizeof(int32_t));
	if (!ip->t || !ip->first || !ip->val || !ip->grad || !ip->norm || !ip->labels)
		goto oom;
	for (int i = 0; i < g->n; i++) {
		const brn_node *n = &g->nodes[i];
		ip->first[i] = -1;
		if (!(ip->val[i] = zeros(ip, size_of(n))) || !(ip->grad[i] = zeros(ip, size_of(n))))
			goto oom;
		if (brn_is_norm(n->op)) {
			norm_state *s = &ip->norm[i];
			int c = n->shape[1];
			if (!(s->mu_b = zeros(ip, c)) || !(s->sig_b = zeros(ip, c)) || !(s->r = zeros(ip, c)) ||
			    !(s->d = zeros(ip, c)) || !(s->xhat = zeros(ip, size_of(n))))
				goto oom;
		}
		int k = brn_graph_params(g, n, ps);
		for (int j = 0; j < k; j++) {
			tensor *t = &ip->t[ip->nt];
			if (j == 0)
				ip->first[i] = ip->nt;
			ip->nt++;
			t->p = ps[j];
			t->node = i;
			t->name = brn_arena_printf(&ip->arena, "%s.%s", n->name, ps[j].suffix);
			if (!t->name || !(t->v = zeros(ip, t->p.count)) || !(t->grad = zeros(ip, t->p.count)) ||
			    !(t->mom = zeros(ip, t->p.count)))
				goto oom;
			uint64_t stream = brnrt_name_hash(t->name);
			for (long e = 0; e < t->p.count; e++) {
				switch (t->p.kind) {
				case BRN_PARAM_WEIGHT:
					t->v[e] = sqrt(2.0 / t->p.fan_in) * brnrt_normal(seed, stream, (uint64_t)e);
					break;
				case BRN_PARAM_GAMMA:
				case BRN_PARAM_SIGMA:
					t->v[e] = 1.0;
					break;
				default:
					t->v[e] = 0.0;
				}
			}
		}
	}
	*out = ip;
	return 0;
oom:
	brn_interp_close(ip);
	return brn_diag_error(d, g->file, 0, 0, "out of memory in the interpreter");
}

void brn_interp_close(brn_interp *ip)
{
	if (ip) {
		brn_arena_free(&ip->arena);
		free(ip);
	}
}

double *brn_interp_tensor(brn_interp *ip, const char *name, long *count)
{
	size_t len = strlen(name);
	int mom = len > 9 && strcmp(name + len - 9, ".momentum") == 0;
	for (int i = 0; i < ip->nt; i++) {
		tensor *t = &ip->t[i];
		if (mom ? strlen(t->name) == len - 9 && strncmp(t->name, name, len - 9) == 0
		        : strcmp(t->name, name) == 0) {
			if (count)
				*count = t->p.count;
			return mom ? t->mom : t->v;
		}
	}
	return NULL;
}

double *brn_interp_grad(brn_interp *ip, const char *name, long *count)
{
	for (int i = 0; i < ip->nt; i++)
		if (strcmp(ip->t[i].name, name) == 0) {
			if (count)
				*count = ip->t[i].p.count;
			return ip->t[i].grad;
		}
	return NULL;
}

long brn_interp_step(const brn_interp *ip) { return ip->step; }
void brn_interp_set_step(brn_interp *ip, long step) { ip->step = step; }
const double *brn_interp_value(const brn_interp *ip, int id) { return ip->val[id]; }
double brn_interp_loss(const brn_interp *ip) { return ip->loss; }
const double *brn_interp_r(const brn_interp *ip, int id) { return ip->norm[id].r; }
const double *brn_interp_d(const brn_interp *ip, int id) { return ip->norm[id].d; }
void brn_interp_freeze_rd(brn_interp *ip, int on) { ip->frozen = on; }
const double *brn_interp_input_grad(const brn_interp *ip) { return ip->grad[ip->g->input]; }

/* The node's parameter of a kind, or NULL (e.g. a conv without bias). */
static tensor *param(brn_interp *ip, int node, brn_param_kind kind)
{
	if (ip->first[node] < 0)
		return NULL;
	for (int i = ip->first[node]; i < ip->nt && ip->t[i].node == node; i++)
		if (ip->t[i].p.kind == kind)
			return &ip->t[i];
	return NULL;
}

/* Index of x[b, c, h, w] in a tensor of shape s. */
#define AT(s, b, c, h, w) ((((long)(b) * (s)[1] + (c)) * (s)[2] + (h)) * (s)[3] + (w))

/* --- forward --------------------------------------------------------------- */

static void conv_forward(brn_interp *ip, const brn_node *nd, int n)
{
	const brn_node *xn = &ip->g->nodes[nd->in[0]];
	const double *x = ip->val[xn->id];
	const double *w = param(ip, nd->id, BRN_PARAM_WEIGHT)->v;
	tensor *bt = param(ip, nd->id, BRN_PARAM_BIAS);
	double *y = ip->val[nd->id];
	const int *xs = xn->shape, *ys = nd->shape;
	int cg = xs[1] / nd->groups, kg = nd->out / nd->groups;
	for (int b = 0; b < n; b++)
		for (int k = 0; k < ys[1]; k++)
			for (int oh = 0; oh < ys[2]; oh++)
				for (int ow = 0; ow < ys[3]; ow++) {
					double s = bt ? bt->v[k] : 0.0;
					int g0 = (k / kg) * cg;
					for (int c = 0; c < cg; c++)
						for (int i = 0; i < nd->kernel[0]; i++)
							for (int j = 0; j < nd->kernel[1]; j++) {
								int h = oh * nd->stride[0] - nd->pad[0] + i;
								int v = ow * nd->stride[1] - nd->pad[1] + j;
								if (h < 0 || h >= xs[2] || v < 0 || v >= xs[3])
									continue;
								s += w[((k * cg + c) * nd->kernel[0] + i) * nd->kernel[1] + j] *
								     x[AT(xs, b, g0 + c, h, v)];
							}
					y[AT(ys, b, k, oh, ow)] = s;
				}
}

static void norm_forward(brn_interp *ip, const brn_node *nd, int n, int train)
{
	const int *s = nd->shape;
	const double *x = ip->val[nd->in[0]];
	double *y = ip->val[nd->id];
	norm_state *st = &ip->norm[nd->id];
	const double *gamma = param(ip, nd->id, BRN_PARAM_GAMMA)->v;
	const double *beta = param(ip, nd->id, BRN_PARAM_BETA)->v;
	const double *mu = param(ip, nd->id, BRN_PARAM_MEAN)->v;
	const double *sigma = param(ip, nd->id, BRN_PARAM_SIGMA)->v;
	double m = (double)n * s[2] * s[3];
	double r_max = 1, d_max = 0;
	if (nd->op == BRN_OP_BATCH_RENORM) {
		r_max = brn_piecewise_eval(&nd->r_max.pw, (double)ip->step);
		d_max = brn_piecewise_eval(&nd->d_max.pw, (double)ip->step);
	}
	for (int c = 0; c < s[1]; c++) {
		if (!train) {
			for (int b = 0; b < n; b++)
				for (int h = 0; h < s[2]; h++)
					for (int w = 0; w < s[3]; w++) {
						long i = AT(s, b, c, h, w);
						y[i] = gamma[c] * (x[i] - mu[c]) / sigma[c] + beta[c];
					}
			continue;
		}
		double sum = 0, sq = 0;
		for (int b = 0; b < n; b++)
			for (int h = 0; h < s[2]; h++)
				for (int w = 0; w < s[3]; w++)
					sum += x[AT(s, b, c, h, w)];
		double mu_b = sum / m;
		for (int b = 0; b < n; b++)
			for (int h = 0; h < s[2]; h++)
				for (int w = 0; w < s[3]; w++) {
					double t = x[AT(s, b, c, h, w)] - mu_b;
					sq += t * t;
				}
		double sig_b = sqrt(sq / m + nd->eps);
		if (!ip->frozen) {
			double r = sig_b / sigma[c], dd = (mu_b - mu[c]) / sigma[c];
			st->r[c] = fmin(fmax(r, 1.0 / r_max), r_max);
			st->d[c] = fmin(fmax(dd, -d_max), d_max);
		}
		st->mu_b[c] = mu_b;
		st->sig_b[c] = sig_b;
		for (int b = 0; b < n; b++)
			for (int h = 0; h < s[2]; h++)
				for (int w = 0; w < s[3]; w++) {
					long i = AT(s, b, c, h, w);
					st->xhat[i] = (x[i] - mu_b) / sig_b * st->r[c] + st->d[c];
					y[i] = gamma[c] * st->xhat[i] + beta[c];
				}
	}
}

/* Pools: padding is never picked by max, and counted by average only with
 * count_include_pad. */
static void pool_forward(brn_interp *ip, const brn_node *nd, int n)
{
	const brn_node *xn = &ip->g->nodes[nd->in[0]];
	const int *xs = xn->shape, *ys = nd->shape;
	const double *x = ip->val[xn->id];
	double *y = ip->val[nd->id];
	for (int b = 0; b < n; b++)
		for (int c = 0; c < ys[1]; c++)
			for (int oh = 0; oh < ys[2]; oh++)
				for (int ow = 0; ow < ys[3]; ow++) {
					double acc = nd->op == BRN_OP_MAXPOOL ? -INFINITY : 0.0;
					int count = 0;
					for (int i = 0; i < nd->kernel[0]; i++)
						for (int j = 0; j < nd->kernel[1]; j++) {
							int h = oh * nd->stride[0] - nd->pad[0] + i;
							int w = ow * nd->stride[1] - nd->pad[1] + j;
							if (h < 0 || h >= xs[2] || w < 0 || w >= xs[3])
								continue;
							double v = x[AT(xs, b, c, h, w)];
							acc = nd->op == BRN_OP_MAXPOOL ? fmax(acc, v) : acc + v;
							count++;
						}
					if (nd->count_pad)
						count = nd->kernel[0] * nd->kernel[1];
					y[AT(ys, b, c, oh, ow)] = nd->op == BRN_OP_MAXPOOL ? acc : acc / count;
				}
}

static void dense_forward(brn_interp *ip, const brn_node *nd, int n)
{
	const brn_node *xn = &ip->g->nodes[nd->in[0]];
	int in = xn->shape[1], out = nd->out;
	const double *x = ip->val[xn->id];
	const double *w = param(ip, nd->id, BRN_PARAM_WEIGHT)->v;
	tensor *bt = param(ip, nd->id, BRN_PARAM_BIAS);
	for (int b = 0; b < n; b++)
		for (int o = 0; o < out; o++) {
			double s = bt ? bt->v[o] : 0.0;
			for (int i = 0; i < in; i++)
				s += w[(long)o * in + i] * x[(long)b * in + i];
			ip->val[nd->id][(long)b * out + o] = s;
		}
}

/* softmax of row z (k values) into p. */
static void softmax_row(const double *z, int k, double *p)
{
	double mx = z[0], sum = 0;
	for (int i = 1; i < k; i++)
		mx = fmax(mx, z[i]);
	for (int i = 0; i < k; i++)
		sum += (p[i] = exp(z[i] - mx));
	for (int i = 0; i < k; i++)
		p[i] /= sum;
}

static int loss_forward(brn_interp *ip, const brn_node *nd, int n, const int32_t *y, brn_diag *d)
{
	const brn_node *zn = &ip->g->nodes[nd->in[0]];
	int k = zn->shape[1];
	const double *z = ip->val[zn->id];
	double total = 0, p[k];
	if (!y)
		return brn_diag_error(d, ip->g->file, 0, 0, "labels are needed for the loss");
	for (int b = 0; b < n; b++) {
		if (y[b] < 0 || y[b] >= k)
			return brn_diag_error(d, ip->g->file, 0, 0, "label %d of example %d is out of range 0..%d",
			                      (int)y[b], b, k - 1);
		ip->labels[b] = y[b];
		softmax_row(z + (long)b * k, k, p);
		double l = -log(p[y[b]]);
		ip->val[nd->id][b] = l;
		total += l;
	}
	ip->loss = total / n;
	return 0;
}

int brn_interp_forward(brn_interp *ip, const double *x, const int32_t *y, int n, int train,
                       brn_diag *d)
{
	const brn_graph *g = ip->g;
	if (n < 1 || n > g->batch)
		return brn_diag_error(d, g->file, 0, 0, "n = %d is outside 1..%d", n, g->batch);
	ip->n = n;
	ip->trained = train;
	memcpy(ip->val[g->input], x, (size_t)n * brn_shape_count(g->nodes[g->input].shape) * sizeof(double));
	for (int i = 0; i < g->n; i++) {
		const brn_node *nd = &g->nodes[i];
		long cnt = (long)n * brn_shape_count(nd->shape);
		const double *a = nd->nin ? ip->val[nd->in[0]] : NULL;
		double *out = ip->val[i];
		switch (nd->op) {
		case BRN_OP_INPUT:
		case BRN_OP_LABELS:
			break;
		case BRN_OP_CONV: conv_forward(ip, nd, n); break;
		case BRN_OP_BATCH_NORM:
		case BRN_OP_BATCH_RENORM: norm_forward(ip, nd, n, train); break;
		case BRN_OP_RELU:
			for (long e = 0; e < cnt; e++)
				out[e] = a[e] > 0 ? a[e] : 0;
			break;
		case BRN_OP_RELU6:
			for (long e = 0; e < cnt; e++)
				out[e] = a[e] > 0 ? (a[e] < 6 ? a[e] : 6) : 0;
			break;
		case BRN_OP_ADD:
			for (long e = 0; e < cnt; e++)
				out[e] = a[e] + ip->val[nd->in[1]][e];
			break;
		case BRN_OP_MAXPOOL:
		case BRN_OP_AVGPOOL: pool_forward(ip, nd, n); break;
		case BRN_OP_GLOBAL_AVGPOOL: {
			const int *xs = g->nodes[nd->in[0]].shape;
			long hw = (long)xs[2] * xs[3];
			for (long bc = 0; bc < (long)n * xs[1]; bc++) {
				double s = 0;
				for (long e = 0; e < hw; e++)
					s += a[bc * hw + e];
				out[bc] = s / hw;
			}
			break;
		}
		case BRN_OP_FLATTEN:
			memcpy(out, a, (size_t)cnt * sizeof(double));
			break;
		case BRN_OP_DENSE: dense_forward(ip, nd, n); break;
		case BRN_OP_SOFTMAX:
			for (int b = 0; b < n; b++)
				softmax_row(a + (long)b * nd->shape[1], nd->shape[1], out + (long)b * nd->shape[1]);
			break;
		case BRN_OP_SOFTMAX_CE:
			if (loss_forward(ip, nd, n, y, d))
				return -1;
			break;
		case BRN_OP_COUNT:
			break;
		}
	}
	return 0;
}

/* --- backward -------------------------------------------------------------- */

static void conv_backward(brn_interp *ip, const brn_node *nd, int n)
{
	const brn_node *xn = &ip->g->nodes[nd->in[0]];
	const double *x = ip->val[xn->id], *dy = ip->grad[nd->id];
	double *dx = ip->grad[xn->id];
	tensor *wt = param(ip, nd->id, BRN_PARAM_WEIGHT), *bt = param(ip, nd->id, BRN_PARAM_BIAS);
	const int *xs = xn->shape, *ys = nd->shape;
	int cg = xs[1] / nd->groups, kg = nd->out / nd->groups;
	for (int b = 0; b < n; b++)
		for (int k = 0; k < ys[1]; k++)
			for (int oh = 0; oh < ys[2]; oh++)
				for (int ow = 0; ow < ys[3]; ow++) {
					double gy = dy[AT(ys, b, k, oh, ow)];
					if (bt)
						bt->grad[k] += gy;
					int g0 = (k / kg) * cg;
					for (int c = 0; c < cg; c++)
						for (int i = 0; i < nd->kernel[0]; i++)
							for (int j = 0; j < nd->kernel[1]; j++) {
								int h = oh * nd->stride[0] - nd->pad[0] + i;
								int v = ow * nd->stride[1] - nd->pad[1] + j;
								if (h < 0 || h >= xs[2] || v < 0 || v >= xs[3])
									continue;
								long wi = ((k * cg + c) * nd->kernel[0] + i) * nd->kernel[1] + j;
								long xi = AT(xs, b, g0 + c, h, v);
								wt->grad[wi] += gy * x[xi];
								dx[xi] += gy * wt->v[wi];
							}
				}
}

/* DESIGN.md §4: r and d are constants of the backward pass. */
static void norm_backward(brn_interp *ip, const brn_node *nd, int n)
{
	const int *s = nd->shape;
	const double *x = ip->val[nd->in[0]], *dy = ip->grad[nd->id];
	double *dx = ip->grad[nd->in[0]];
	norm_state *st = &ip->norm[nd->id];
	tensor *gt = param(ip, nd->id, BRN_PARAM_GAMMA), *bt = param(ip, nd->id, BRN_PARAM_BETA);
	double m = (double)n * s[2] * s[3];
	for (int c = 0; c < s[1]; c++) {
		double mu = st->mu_b[c], sg = st->sig_b[c], r = st->r[c];
		double sum_dy = 0, sum_dyh = 0;
		for (int b = 0; b < n; b++)
			for (int h = 0; h < s[2]; h++)
				for (int w = 0; w < s[3]; w++) {
					long i = AT(s, b, c, h, w);
					sum_dy += dy[i];
					sum_dyh += dy[i] * (x[i] - mu) / sg;
					gt->grad[c] += dy[i] * st->xhat[i];
					bt->grad[c] += dy[i];
				}
		/* dL/dx = gamma r / sigma_B (dy - mean(dy) - h mean(dy h)), h = (x -
		 * mu_B) / sigma_B: the terms cancel exactly where m is 1 */
		double k = gt->v[c] * r / sg, mean_dy = sum_dy / m, mean_dyh = sum_dyh / m;
		for (int b = 0; b < n; b++)
			for (int h = 0; h < s[2]; h++)
				for (int w = 0; w < s[3]; w++) {
					long i = AT(s, b, c, h, w);
					dx[i] += k * (dy[i] - mean_dy - (x[i] - mu) / sg * mean_dyh);
				}
	}
}

static void pool_backward(brn_interp *ip, const brn_node *nd, int n)
{
	const brn_node *xn = &ip->g->nodes[nd->in[0]];
	const int *xs = xn->shape, *ys = nd->shape;
	const double *x = ip->val[xn->id], *dy = ip->grad[nd->id];
	double *dx = ip->grad[xn->id];
	for (int b = 0; b < n; b++)
		for (int c = 0; c < ys[1]; c++)
			for (int oh = 0; oh < ys[2]; oh++)
				for (int ow = 0; ow < ys[3]; ow++) {
					double gy = dy[AT(ys, b, c, oh, ow)];
					long best = -1;
					int count = 0;
					for (int pass = 0; pass < 2; pass++)
						for (int i = 0; i < nd->kernel[0]; i++)
							for (int j = 0; j < nd->kernel[1]; j++) {
								int h = oh * nd->stride[0] - nd->pad[0] + i;
								int w = ow * nd->stride[1] - nd->pad[1] + j;
								if (h < 0 || h >= xs[2] || w < 0 || w >= xs[3])
									continue;
								long xi = AT(xs, b, c, h, w);
								if (pass == 0) {
									count = nd->count_pad ? nd->kernel[0] * nd->kernel[1] : count + 1;
									/* the first maximum takes the gradient */
									if (best < 0 || x[xi] > x[best])
										best = xi;
								} else if (nd->op == BRN_OP_AVGPOOL) {
									dx[xi] += gy / count;
								}
							}
					if (nd->op == BRN_OP_MAXPOOL)
						dx[best] += gy;
				}
}

static void dense_backward(brn_interp *ip, const brn_node *nd, int n)
{
	const brn_node *xn = &ip->g->nodes[nd->in[0]];
	int in = xn->shape[1], out = nd->out;
	const double *x = ip->val[xn->id], *dy = ip->grad[nd->id];
	double *dx = ip->grad[xn->id];
	tensor *wt = param(ip, nd->id, BRN_PARAM_WEIGHT), *bt = param(ip, nd->id, BRN_PARAM_BIAS);
	for (int b = 0; b < n; b++)
		for (int o = 0; o < out; o++) {
			double gy = dy[(long)b * out + o];
			if (bt)
				bt->grad[o] += gy;
			for (int i = 0; i < in; i++) {
				wt->grad[(long)o * in + i] += gy * x[(long)b * in + i];
				dx[(long)b * in + i] += gy * wt->v[(long)o * in + i];
			}
		}
}

int brn_interp_backward(brn_interp *ip, brn_diag *d)
{
	const brn_graph *g = ip->g;
	int n = ip->n;
	if (!ip->trained || g->loss < 0)
		return brn_diag_error(d, g->file, 0, 0, "backward needs a train forward of a model with a loss");
	for (int i = 0; i < g->n; i++)
		memset(ip->grad[i], 0, (size_t)size_of(&g->nodes[i]) * sizeof(double));
	for (int i = 0; i < ip->nt; i++)
		memset(ip->t[i].grad, 0, (size_t)ip->t[i].p.count * sizeof(double));
	for (int i = g->n - 1; i >= 0; i--) {
		const brn_node *nd = &g->nodes[i];
		long cnt = (long)n * brn_shape_count(nd->shape);
		const double *dy = ip->grad[i];
		double *dx = nd->nin ? ip->grad[nd->in[0]] : NULL;
		switch (nd->op) {
		case BRN_OP_SOFTMAX_CE: {
			int k = g->nodes[nd->in[0]].shape[1];
			double p[k];
			for (int b = 0; b < n; b++) {
				softmax_row(ip->val[nd->in[0]] + (long)b * k, k, p);
				for (int j = 0; j < k; j++)
					dx[(long)b * k + j] += (p[j] - (j == ip->labels[b])) / n;
			}
			break;
		}
		case BRN_OP_SOFTMAX: {
			int k = nd->shape[1];
			for (int b = 0; b < n; b++) {
				const double *p = ip->val[i] + (long)b * k, *gy = dy + (long)b * k;
				double dot = 0;
				for (int j = 0; j < k; j++)
					dot += gy[j] * p[j];
				for (int j = 0; j < k; j++)
					dx[(long)b * k + j] += p[j] * (gy[j] - dot);
			}
			break;
		}
		case BRN_OP_DENSE: dense_backward(ip, nd, n); break;
		case BRN_OP_FLATTEN:
			for (long e = 0; e < cnt; e++)
				dx[e] += dy[e];
			break;
		case BRN_OP_GLOBAL_AVGPOOL: {
			const int *xs = g->nodes[nd->in[0]].shape;
			long hw = (long)xs[2] * xs[3];
			for (long bc = 0; bc < (long)n * xs[1]; bc++)
				for (long e = 0; e < hw; e++)
					dx[bc * hw + e] += dy[bc] / hw;
			break;
		}
		case BRN_OP_MAXPOOL:
		case BRN_OP_AVGPOOL: pool_backward(ip, nd, n); break;
		case BRN_OP_ADD:
			for (long e = 0; e < cnt; e++) {
				dx[e] += dy[e];
				ip->grad[nd->in[1]][e] += dy[e];
			}
			break;
		case BRN_OP_RELU:
			for (long e = 0; e < cnt; e++)
				dx[e] += ip->val[nd->in[0]][e] > 0 ? dy[e] : 0;
			break;
		case BRN_OP_RELU6:
			for (long e = 0; e < cnt; e++)
				dx[e] += ip->val[nd->in[0]][e] > 0 && ip->val[nd->in[0]][e] < 6 ? dy[e] : 0;
			break;
		case BRN_OP_BATCH_NORM:
		case BRN_OP_BATCH_RENORM: norm_backward(ip, nd, n); break;
		case BRN_OP_CONV: conv_backward(ip, nd, n); break;
		default:
			break;
		}
	}
	return 0;
}

void brn_interp_update(brn_interp *ip, double lr)
{
	const brn_graph *g = ip->g;
	for (int i = 0; i < g->n; i++) {
		const brn_node *nd = &g->nodes[i];
		if (!brn_is_norm(nd->op))
			continue;
		double *mu = param(ip, i, BRN_PARAM_MEAN)->v, *sg = param(ip, i, BRN_PARAM_SIGMA)->v;
		for (int c = 0; c < nd->shape[1]; c++) {
			mu[c] += nd->alpha * (ip->norm[i].mu_b[c] - mu[c]);
			sg[c] += nd->alpha * (ip->norm[i].sig_b[c] - sg[c]);
		}
	}
	for (int i = 0; i < ip->nt; i++) {
		tensor *t = &ip->t[i];
		if (!t->p.trainable)
			continue;
		for (long e = 0; e < t->p.count; e++) {
			t->mom[e] = 0.9 * t->mom[e] + t->grad[e];
			t->v[e] -= lr * t->mom[e];
		}
	}
	ip->step++;
}

int brn_interp_train_step(brn_interp *ip, const double *x, const int32_t *y, int n, double lr,
                          double *loss, brn_diag *d)
{
	if (brn_interp_forward(ip, x, y, n, 1, d) || brn_interp_backward(ip, d))
		return -1;
	if (loss)
		*loss = ip->loss;
	brn_interp_update(ip, lr);
	return 0;
}
