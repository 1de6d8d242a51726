/* Graph IR: the builder (syntax tree -> nodes, names resolved, arguments
 * checked against the op table), the shape rules, parameters, printing. */
#include "graph.h"

#include <float.h>
#include <limits.h>
#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "names.h"

/* Node names, hashed: a model may have 100k layers. slot[i] is a node id
 * + 1, or 0 when empty; open addressing, at most half full. */
typedef struct names {
	int *slot;
	size_t cap, count;
} names;

static size_t name_hash(const char *s)
{
	size_t h = 1469598103934665603u & (size_t)-1;   /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * (size_t)1099511628211u;
	return h;
}

/* The id of the node called name, or -1. */
static int names_find(const names *t, const brn_graph *g, const char *name)
{
	if (!t->cap)
		return -1;
	for (size_t i = name_hash(name) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		if (!t->slot[i])
			return -1;
		if (strcmp(g->nodes[t->slot[i] - 1].name, name) == 0)
			return t->slot[i] - 1;
	}
}

/* Adds node id under its name unless the name is taken; -1: out of memory. */
static int names_add(names *t, const brn_graph *g, int id, brn_arena *a)
{
	if (2 * (t->count + 1) > t->cap) {
		names bigger = {NULL, t->cap ? 2 * t->cap : 64, 0};
		if (!(bigger.slot = brn_arena_alloc(a, bigger.cap * sizeof *bigger.slot)))
			return -1;
		for (size_t i = 0; i < t->cap; i++)
			if (t->slot[i] && names_add(&bigger, g, t->slot[i] - 1, a))
				return -1;
		*t = bigger;
	}
	size_t i = name_hash(g->nodes[id].name) & (t->cap - 1);
	for (; t->slot[i]; i = (i + 1) & (t->cap - 1))
		if (strcmp(g->nodes[t->slot[i] - 1].name, g->nodes[id].name) == 0)
			return 0;
	t->slot[i] = id + 1;
	t->count++;
	return 0;
}

/* Per-statement state while building: the target names nested calls. */
typedef struct builder {
	brn_graph *g;
	brn_diag *d;
	names names;
	const char *target;
	int counts[BRN_OP_COUNT];
	int depth;
	/* where each header statement was seen (line), for duplicates */
	int seen[BRN_ST_DEFAULTS + 1];
	/* the model's `defaults`: eps and alpha of norms that do not give them */
	double eps, alpha;
	int has_eps, has_alpha;
} builder;

static int err(builder *b, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

#include <stdarg.h>
static int err(builder *b, int line, int col, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return brn_diag_error(b->d, b->g->file, line, col, "%s", msg);
}

long brn_shape_count(const int shape[4])
{
	return (long)shape[1] * shape[2] * shape[3];
}

int brn_is_norm(brn_opcode op)
{
	return op == BRN_OP_BATCH_NORM || op == BRN_OP_BATCH_RENORM;
}

static int find(const builder *b, const char *name)
{
	return names_find(&b->names, b->g, name);
}

static brn_node *add_node(builder *b, brn_opcode op, const char *name, int line, int col)
{
	brn_graph *g = b->g;
	if (g->n == g->cap) {
		int cap = g->cap ? g->cap * 2 : 32;
		brn_node *nodes = brn_arena_alloc(g->arena, (size_t)cap * sizeof *nodes);
		if (!nodes) {
			err(b, line, col, "out of memory");
			return NULL;
		}
		if (g->n)
			memcpy(nodes, g->nodes, (size_t)g->n * sizeof *nodes);
		g->nodes = nodes;
		g->cap = cap;
	}
	brn_node *n = &g->nodes[g->n];
	memset(n, 0, sizeof *n);
	n->id = g->n++;
	n->op = op;
	n->name = name;
	n->line = line;
	n->col = col;
	n->in[0] = n->in[1] = -1;
	if (names_add(&b->names, g, n->id, g->arena)) {
		err(b, line, col, "out of memory");
		return NULL;
	}
	return n;
}

static void shape_str(const int s[4], char *buf, size_t n)
{
	if (s[2] == 1 && s[3] == 1)
		snprintf(buf, n, "[%d]", s[1]);
	else
		snprintf(buf, n, "[%d, %d, %d]", s[1], s[2], s[3]);
}

/* --- arguments ------------------------------------------------------------ */

static int build_expr(builder *b, const brn_expr *e, int *id);

static const char *describe(const brn_expr *e)
{
	switch (e->kind) {
	case BRN_EX_NAME: return "a name";
	case BRN_EX_INT: return "an integer";
	case BRN_EX_FLOAT: return "a number";
	case BRN_EX_STRING: return "a string";
	case BRN_EX_BOOL: return "a boolean";
	case BRN_EX_LIST: return "a list";
	case BRN_EX_CALL: return "a call";
	}
	return "?";
}

static int check_min(builder *b, const brn_expr *e, const char *op,
                     const brn_attr_def *a, double v)
{
	if (a->min_open ? v > a->min : v >= a->min)
		return 0;
	if (a->type == BRN_ATTR_INT || a->type == BRN_ATTR_PAIR)
		return err(b, e->line, e->col, "%s: '%s' must be %s %g, got %g", op, a->name,
		           a->min_open ? "greater than" : "at least", a->min, v);
	return err(b, e->line, e->col, "%s: '%s' must be %s %g, got %g", op, a->name,
	           a->min_open ? "greater than" : "at least", a->min, v);
}

/* A number the generated code holds as a float literal: 0 or a normal
 * float, so that eps=1e-300 is not silently 0 (and sqrt(var + 0) NaN). */
static int check_float(builder *b, const brn_expr *e, const char *op, const brn_attr_def *a, double v)
{
	if (fabs(v) > FLT_MAX)
		return err(b, e->line, e->col, "%s: '%s' must be at most %g (the largest float), got %g", op,
		           a->name, FLT_MAX, v);
	if (!brn_is_float(v))
		return err(b, e->line, e->col, "%s: '%s' must be %sat least %g (the smallest normal float), got %g",
		           op, a->name, a->min < 0 || (a->min == 0 && !a->min_open) ? "0 or " : "", FLT_MIN, v);
	return 0;
}

static int set_int(builder *b, const brn_expr *e, const char *op, const brn_attr_def *a, int *dst)
{
	if (e->kind != BRN_EX_INT)
		return err(b, e->line, e->col, "%s: '%s' must be an integer, got %s", op, a->name, describe(e));
	if (check_min(b, e, op, a, (double)e->ival))
		return -1;
	*dst = (int)e->ival;
	return 0;
}

/* Labels are a tensor of class indices: only the loss's 'labels' reads them. */
static int check_labels(builder *b, const brn_expr *e, const char *op, const brn_attr_def *a,
                        const brn_node *t)
{
	const brn_graph *g = b->g;
	int want = strcmp(a->name, "labels") == 0;
	if (t->op == BRN_OP_LABELS && !want)
		return err(b, e->line, e->col, "%s: '%s' holds labels; expected %s", op, t->name,
		           strcmp(a->name, "logits") == 0 ? "the logits" : "a tensor");
	if (want && t->op != BRN_OP_LABELS)
		return err(b, e->line, e->col, "%s: second argument '%s' is not the labels%s%s%s", op, t->name,
		           g->labels >= 0 ? "; expected '" : "; declare them with 'labels y[10];'",
		           g->labels >= 0 ? g->nodes[g->labels].name : "", g->labels >= 0 ? "'" : "");
	return 0;
}

static int set_attr(builder *b, brn_node *n, const char *op, const brn_attr_def *a,
                    const brn_expr *e)
{
	char *slot = (char *)n + a->offset;
	switch (a->type) {
	case BRN_ATTR_INT:
		return set_int(b, e, op, a, (int *)slot);
	case BRN_ATTR_PAIR: {
		int *v = (int *)slot;
		if (e->kind == BRN_EX_LIST) {
			if (e->nargs != 2)
				return err(b, e->line, e->col, "%s: '%s' takes n or [h, w], got a list of %d",
				           op, a->name, e->nargs);
			return set_int(b, e->args->value, op, a, &v[0]) ||
			       set_int(b, e->args->next->value, op, a, &v[1]) ? -1 : 0;
		}
		if (e->kind != BRN_EX_INT)
			return err(b, e->line, e->col, "%s: '%s' takes n or [h, w], got %s", op, a->name, describe(e));
		if (set_int(b, e, op, a, &v[0]))
			return -1;
		v[1] = v[0];
		return 0;
	}
	case BRN_ATTR_FLOAT:
		if (e->kind != BRN_EX_INT && e->kind != BRN_EX_FLOAT)
			return err(b, e->line, e->col, "%s: '%s' must be a number, got %s", op, a->name, describe(e));
		if (check_min(b, e, op, a, e->fval) || check_float(b, e, op, a, e->fval))
			return -1;
		if (strcmp(a->name, "alpha") == 0 && e->fval > 1)
			return err(b, e->line, e->col, "%s: 'alpha' must be at most 1, got %g", op, e->fval);
		*(double *)slot = e->fval;
		return 0;
	case BRN_ATTR_BOOL:
		if (e->kind != BRN_EX_BOOL)
			return err(b, e->line, e->col, "%s: '%s' must be true or false, got %s", op, a->name, describe(e));
		*(int *)slot = (int)e->ival;
		return 0;
	case BRN_ATTR_SCHED: {
		brn_bound *bd = (brn_bound *)slot;
		if (e->kind == BRN_EX_STRING) {
			bd->sched = e->text;
			return 0;
		}
		if (e->kind != BRN_EX_INT && e->kind != BRN_EX_FLOAT)
			return err(b, e->line, e->col, "%s: '%s' must be a number or a schedule name, got %s",
			           op, a->name, describe(e));
		if (check_min(b, e, op, a, e->fval) || check_float(b, e, op, a, e->fval))
			return -1;
		bd->value = e->fval;
		bd->sched = NULL;
		return 0;
	}
	case BRN_ATTR_TENSOR: {
		int id;
		if (e->kind != BRN_EX_NAME && e->kind != BRN_EX_CALL)
			return err(b, e->line, e->col, "%s: '%s' must be a tensor (a name or a call), got %s",
			           op, a->name, describe(e));
		if (build_expr(b, e, &id))
			return -1;
		if (check_labels(b, e, op, a, &b->g->nodes[id]))
			return -1;
		n->in[n->nin++] = id;
		return 0;
	}
	case BRN_ATTR_NONE:
		break;
	}
	return err(b, e->line, e->col, "internal error: attribute type");
}

/* Fills the defaults an op's call left out. */
static int set_defaults(builder *b, brn_node *n, const brn_op_def *def, const int *given,
                        const brn_expr *call)
{
	for (int i = 0; i < BRN_OP_MAX_ARGS && def->args[i].name; i++) {
		const brn_attr_def *a = &def->args[i];
		if (given[i])
			continue;
		if (!a->dflt)
			return err(b, call->line, call->col, "%s: missing argument '%s'", def->name, a->name);
		char *slot = (char *)n + a->offset;
		if (strcmp(a->dflt, "@kernel") == 0) {
			memcpy(slot, n->kernel, sizeof n->kernel);
		} else if (strcmp(a->dflt, "@schedule") == 0) {
			((brn_bound *)slot)->sched = b->g->schedule;
		} else if (a->type == BRN_ATTR_FLOAT && b->has_eps && a->offset == offsetof(brn_node, eps)) {
			*(double *)slot = b->eps;
		} else if (a->type == BRN_ATTR_FLOAT && b->has_alpha && a->offset == offsetof(brn_node, alpha)) {
			*(double *)slot = b->alpha;
		} else if (a->type == BRN_ATTR_FLOAT) {
			*(double *)slot = strtod(a->dflt, NULL);
		} else if (a->type == BRN_ATTR_BOOL) {
			*(int *)slot = strcmp(a->dflt, "true") == 0;
		} else {
			int v = atoi(a->dflt);
			((int *)slot)[0] = v;
			if (a->type == BRN_ATTR_PAIR)
				((int *)slot)[1] = v;
		}
	}
	return 0;
}

static int bind_args(builder *b, brn_node *n, const brn_op_def *def, const brn_expr *call)
{
	int given[BRN_OP_MAX_ARGS] = {0};
	int pos = 0, nargs = 0, keywords = 0;
	while (nargs < BRN_OP_MAX_ARGS && def->args[nargs].name)
		nargs++;
	/* tensors first, in order, so inputs land in in[0], in[1] */
	for (const brn_arg *a = call->args; a; a = a->next) {
		int i = -1;
		if (!a->key) {
			if (keywords)
				return err(b, a->line, a->col, "%s: positional argument after keyword arguments; "
				           "expected positional arguments first", def->name);
			if (pos >= def->npos)
				return err(b, a->line, a->col, "%s: too many positional arguments (it takes %d)",
				           def->name, def->npos);
			i = pos++;
		} else {
			keywords = 1;
			for (int k = 0; k < nargs; k++)
				if (strcmp(def->args[k].name, a->key) == 0)
					i = k;
			if (i < 0) {
				char list[256] = "";
				for (int k = 0; k < nargs; k++)
					if (def->args[k].type != BRN_ATTR_TENSOR)
						snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
						         list[0] ? ", " : "", def->args[k].name);
				return err(b, a->line, a->col, "%s: unknown keyword '%s' (it takes %s)",
				           def->name, a->key, list[0] ? list : "no keywords");
			}
			if (def->args[i].type == BRN_ATTR_TENSOR)
				return err(b, a->line, a->col, "%s: '%s' is positional; write it without '%s='",
				           def->name, a->key, a->key);
			if (given[i])
				return err(b, a->line, a->col, "%s: '%s' given twice", def->name, a->key);
		}
		given[i] = 1;
		if (set_attr(b, n, def->name, &def->args[i], a->value))
			return -1;
	}
	return set_defaults(b, n, def, given, call);
}

/* --- shape rules -------------------------------------------------------- */

static int window(builder *b, brn_node *n, const brn_node *x, const char *what)
{
	/* Bounded by the input, so that the generated code's positions
	 * (oy * stride - pad + ky < H + 2 * pad) stay small ints and no window
	 * loops over billions of padding positions. */
	if (n->pad[0] > x->shape[2] || n->pad[1] > x->shape[3])
		return err(b, n->line, n->col, "%s: pad %dx%d is larger than the input %dx%d", what,
		           n->pad[0], n->pad[1], x->shape[2], x->shape[3]);
	long long ph = x->shape[2] + 2LL * n->pad[0], pw = x->shape[3] + 2LL * n->pad[1];
	if (n->kernel[0] > ph || n->kernel[1] > pw)
		return err(b, n->line, n->col, "%s: kernel %dx%d is larger than the padded input %lldx%lld",
		           what, n->kernel[0], n->kernel[1], ph, pw);
	if (n->stride[0] > ph || n->stride[1] > pw)
		return err(b, n->line, n->col, "%s: stride %dx%d is larger than the padded input %lldx%lld",
		           what, n->stride[0], n->stride[1], ph, pw);
	long long oh = (ph - n->kernel[0]) / n->stride[0] + 1, ow = (pw - n->kernel[1]) / n->stride[1] + 1;
	if (oh > INT_MAX / 4 || ow > INT_MAX / 4 || oh * ow > INT_MAX / 4)
		return err(b, n->line, n->col, "%s: output of %lldx%lld per channel is too large", what, oh, ow);
	n->shape[2] = (int)oh;
	n->shape[3] = (int)ow;
	return 0;
}

static int infer_shape(builder *b, brn_node *n)
{
	brn_graph *g = b->g;
	const brn_node *x = n->nin ? &g->nodes[n->in[0]] : NULL;
	const char *op = brn_op_name(n->op);
	char s1[64], s2[64];
	if (x)
		memcpy(n->shape, x->shape, sizeof n->shape);
	int flat = x && x->shape[2] == 1 && x->shape[3] == 1;
	switch (n->op) {
	case BRN_OP_CONV:
		if (x->shape[1] % n->groups)
			return err(b, n->line, n->col, "conv: %d input channels are not divisible by groups=%d",
			           x->shape[1], n->groups);
		if (n->out % n->groups)
			return err(b, n->line, n->col, "conv: %d output channels are not divisible by groups=%d",
			           n->out, n->groups);
		n->shape[1] = n->out;
		return window(b, n, x, "conv");
	case BRN_OP_MAXPOOL:
	case BRN_OP_AVGPOOL:
		if (n->pad[0] >= n->kernel[0] || n->pad[1] >= n->kernel[1])
			return err(b, n->line, n->col, "%s: pad %dx%d must be smaller than the kernel %dx%d",
			           op, n->pad[0], n->pad[1], n->kernel[0], n->kernel[1]);
		return window(b, n, x, op);
	case BRN_OP_GLOBAL_AVGPOOL:
		n->shape[2] = n->shape[3] = 1;
		return 0;
	case BRN_OP_FLATTEN:
		n->shape[1] = (int)brn_shape_count(x->shape);
		n->shape[2] = n->shape[3] = 1;
		return 0;
	case BRN_OP_DENSE:
		if (!flat) {
			shape_str(x->shape, s1, sizeof s1);
			return err(b, n->line, n->col, "dense: input '%s' has shape %s; flatten it first: dense(flatten(%s), %d)",
			           x->name, s1, x->name, n->out);
		}
		n->shape[1] = n->out;
		return 0;
	case BRN_OP_SOFTMAX:
		if (!flat) {
			shape_str(x->shape, s1, sizeof s1);
			return err(b, n->line, n->col, "softmax: input '%s' has shape %s; expected a flat tensor", x->name, s1);
		}
		return 0;
	case BRN_OP_ADD: {
		const brn_node *y = &g->nodes[n->in[1]];
		if (memcmp(x->shape + 1, y->shape + 1, 3 * sizeof(int))) {
			shape_str(x->shape, s1, sizeof s1);
			shape_str(y->shape, s2, sizeof s2);
			return err(b, n->line, n->col, "add: shapes differ: '%s' is %s, '%s' is %s",
			           x->name, s1, y->name, s2);
		}
		return 0;
	}
	case BRN_OP_SOFTMAX_CE: {
		const brn_node *y = &g->nodes[n->in[1]];
		if (!flat || x->shape[1] != y->classes) {
			shape_str(x->shape, s1, sizeof s1);
			return err(b, n->line, n->col, "softmax_cross_entropy: logits '%s' have shape %s but the labels have %d classes",
			           x->name, s1, y->classes);
		}
		n->shape[1] = 1;
		return 0;
	}
	default:
		return 0;
	}
}

/* --- expressions and statements ------------------------------------------ */

/* Weights, like activations, stay addressable with int indices. */
static int check_weights(builder *b, const brn_node *n, const brn_expr *e)
{
	const brn_node *x = &b->g->nodes[n->in[0]];
	double w = 0;
	if (n->op == BRN_OP_CONV)
		w = (double)n->out * (x->shape[1] / n->groups) * n->kernel[0] * n->kernel[1];
	else if (n->op == BRN_OP_DENSE)
		w = (double)n->out * x->shape[1];
	if (w > INT_MAX / 4)
		return err(b, e->line, e->col, "%s: a weight of %.0f values is too large", brn_op_name(n->op), w);
	return 0;
}

static int build_call(builder *b, const brn_expr *e, int *id)
{
	const brn_op_def *def = brn_op_find(e->text);
	if (!def)
		return err(b, e->line, e->col, "unknown op '%s'", e->text);
	if (def->op == BRN_OP_SOFTMAX_CE && b->depth > 0)
		return err(b, e->line, e->col, "softmax_cross_entropy is only allowed as 'loss softmax_cross_entropy(logits, labels);'");
	if (def->op == BRN_OP_SOFTMAX_CE && strcmp(b->target, "loss") != 0)
		return err(b, e->line, e->col, "softmax_cross_entropy is a loss; write 'loss softmax_cross_entropy(logits, labels);'");
	if (++b->depth > 200)
		return err(b, e->line, e->col, "expression nested too deeply (at most 200 calls)");
	/* a scratch node collects the arguments; nested calls are built first */
	brn_node tmp;
	memset(&tmp, 0, sizeof tmp);
	tmp.op = def->op;
	tmp.line = e->line;
	tmp.col = e->col;
	tmp.in[0] = tmp.in[1] = -1;
	if (bind_args(b, &tmp, def, e))
		return -1;
	b->depth--;
	const char *name = b->target;
	if (b->depth > 0) {
		int k = ++b->counts[def->op];
		name = k == 1 ? brn_arena_printf(b->g->arena, "%s.%s", b->target, def->name)
		              : brn_arena_printf(b->g->arena, "%s.%s%d", b->target, def->name, k);
	}
	brn_node *n = name ? add_node(b, def->op, name, e->line, e->col) : NULL;
	if (!n)
		return err(b, e->line, e->col, "out of memory");
	int nid = n->id;
	tmp.id = nid;
	tmp.name = name;
	*n = tmp;
	if (infer_shape(b, n))
		return -1;
	double total = (double)b->g->batch * n->shape[1] * n->shape[2] * n->shape[3];
	if (total > INT_MAX / 4)
		return err(b, e->line, e->col, "%s: output of %.0f values is too large", def->name, total);
	if (check_weights(b, n, e))
		return -1;
	*id = nid;
	return 0;
}

static int build_expr(builder *b, const brn_expr *e, int *id)
{
	if (e->kind == BRN_EX_CALL)
		return build_call(b, e, id);
	int i = find(b, e->text);
	if (i < 0)
		return err(b, e->line, e->col, "undefined name '%s'", e->text);
	*id = i;
	return 0;
}

static int dims(builder *b, const brn_stmt *s, int *out, int max)
{
	const brn_expr *l = s->value;
	if (l->kind != BRN_EX_LIST || l->nargs < 1 || l->nargs > max)
		return err(b, l->line, l->col, "%s, got %d dimensions", max == 1 ?
		           "labels: expected [classes]" : "input: expected a shape [C, H, W] or [F]", l->nargs);
	int i = 0;
	for (const brn_arg *a = l->args; a; a = a->next, i++) {
		const brn_expr *v = a->value;
		const char *what = s->kind == BRN_ST_INPUT ? "input" : "labels";
		if (v->kind != BRN_EX_INT)
			return err(b, v->line, v->col, "%s: dimensions must be integers from 1 to 65536, got %s",
			           what, describe(v));
		if (v->ival < 1 || v->ival > 65536)
			return err(b, v->line, v->col, "%s: dimensions must be integers from 1 to 65536, got %lld",
			           what, v->ival);
		out[i] = (int)v->ival;
	}
	return i;
}

static int header(builder *b, const brn_stmt *s)
{
	brn_graph *g = b->g;
	static const char *const words[] = {"model", "batch", "input", "labels", "schedule"};
	if (b->seen[s->kind])
		return err(b, s->line, s->col, "duplicate '%s' statement (the first is on line %d)",
		           words[s->kind], b->seen[s->kind]);
	b->seen[s->kind] = s->line;
	switch (s->kind) {
	case BRN_ST_MODEL:
		if (brn_model_name_problem(s->name))
			return err(b, s->name_line, s->name_col,
			           "model name '%s' %s; expected a name free in C (the generated API takes it)",
			           s->name, brn_model_name_problem(s->name));
		g->model = s->name;
		return 0;
	case BRN_ST_BATCH:
		if (s->value->ival < 1 || s->value->ival > 65536)
			return err(b, s->value->line, s->value->col, "batch must be from 1 to 65536, got %lld",
			           s->value->ival);
		if (g->batch == 0)
			g->batch = (int)s->value->ival;
		return 0;
	case BRN_ST_SCHEDULE:
		if (!g->schedule) {
			g->schedule = s->value->text;
			g->schedule_line = s->value->line;
			g->schedule_col = s->value->col;
		}
		return 0;
	default:
		break;
	}
	int v[3] = {1, 1, 1};
	int k = dims(b, s, v, s->kind == BRN_ST_INPUT ? 3 : 1);
	if (k < 0)
		return -1;
	if (s->kind == BRN_ST_INPUT && k == 2)
		return err(b, s->value->line, s->value->col, "input: expected a shape [C, H, W] or [F], got 2 dimensions");
	if (find(b, s->name) >= 0)
		return err(b, s->name_line, s->name_col, "name '%s' is already defined", s->name);
	brn_node *n = add_node(b, s->kind == BRN_ST_INPUT ? BRN_OP_INPUT : BRN_OP_LABELS, s->name,
	                       s->name_line, s->name_col);
	if (!n)
		return -1;
	n->shape[0] = g->batch;
	n->shape[1] = s->kind == BRN_ST_INPUT ? v[0] : 1;
	n->shape[2] = s->kind == BRN_ST_INPUT ? v[1] : 1;
	n->shape[3] = s->kind == BRN_ST_INPUT ? v[2] : 1;
	if (s->kind == BRN_ST_INPUT) {
		if ((long long)v[0] * v[1] * v[2] * g->batch > INT_MAX / 4)
			return err(b, s->value->line, s->value->col, "input: %d x %d x %d x batch %d values is too large",
			           v[0], v[1], v[2], g->batch);
		g->input = n->id;
	} else {
		n->classes = v[0];
		if (v[0] < 2)
			return err(b, s->value->line, s->value->col, "labels: at least 2 classes are needed, got %d", v[0]);
		g->labels = n->id;
	}
	return 0;
}

/* `defaults eps=1e-5, alpha=0.1;`: the norms' eps and alpha where a norm
 * does not give its own, checked as a norm's own would be. */
static int defaults(builder *b, const brn_stmt *s)
{
	const brn_op_def *norm = brn_op_get(BRN_OP_BATCH_NORM);
	if (b->seen[BRN_ST_DEFAULTS])
		return err(b, s->line, s->col, "duplicate 'defaults' statement (the first is on line %d)",
		           b->seen[BRN_ST_DEFAULTS]);
	b->seen[BRN_ST_DEFAULTS] = s->line;
	for (const brn_arg *a = s->value->args; a; a = a->next) {
		brn_node scratch;
		int eps = a->key && strcmp(a->key, "eps") == 0, alpha = a->key && strcmp(a->key, "alpha") == 0;
		if (!a->key)
			return err(b, a->line, a->col, "defaults: expected keyword arguments such as eps=1e-5, "
			           "alpha=0.1");
		if (!eps && !alpha)
			return err(b, a->line, a->col, "defaults: unknown keyword '%s' (it takes eps, alpha)", a->key);
		if ((eps && b->has_eps) || (alpha && b->has_alpha))
			return err(b, a->line, a->col, "defaults: '%s' given twice", a->key);
		for (int i = 0; i < BRN_OP_MAX_ARGS && norm->args[i].name; i++)
			if (strcmp(norm->args[i].name, a->key) == 0 &&
			    set_attr(b, &scratch, "defaults", &norm->args[i], a->value))
				return -1;
		if (eps)
			b->eps = scratch.eps, b->has_eps = 1;
		else
			b->alpha = scratch.alpha, b->has_alpha = 1;
	}
	return 0;
}

static int statement(builder *b, const brn_stmt *s)
{
	brn_graph *g = b->g;
	memset(b->counts, 0, sizeof b->counts);
	b->depth = 0;
	b->target = s->name;
	int id;
	switch (s->kind) {
	case BRN_ST_ASSIGN: {
		if (find(b, s->name) >= 0)
			return err(b, s->name_line, s->name_col, "name '%s' is already defined", s->name);
		if (s->value->kind != BRN_EX_CALL)
			return err(b, s->value->line, s->value->col, "expected a call such as conv(x, 32) after '%s ='",
			           s->name);
		return build_call(b, s->value, &id);
	}
	case BRN_ST_LOSS:
		if (g->loss >= 0)
			return err(b, s->line, s->col, "duplicate 'loss' statement; a model has one loss");
		if (strcmp(s->value->text, "softmax_cross_entropy") != 0)
			return err(b, s->value->line, s->value->col, "unknown loss '%s'; expected softmax_cross_entropy",
			           s->value->text);
		if (find(b, "loss") >= 0)
			return err(b, s->line, s->col, "name 'loss' is already defined; the loss takes that name");
		if (build_call(b, s->value, &id))
			return -1;
		g->loss = id;
		return 0;
	case BRN_ST_OUTPUT: {
		if (g->output >= 0)
			return err(b, s->line, s->col, "duplicate 'output' statement");
		const brn_arg *a = s->value->args;
		if (a->next)
			return err(b, a->next->value->line, a->next->value->col, "only one output is supported");
		if (build_expr(b, a->value, &id))
			return -1;
		if (g->nodes[id].op == BRN_OP_LABELS || g->nodes[id].op == BRN_OP_SOFTMAX_CE)
			return err(b, a->value->line, a->value->col, "output '%s' must be a tensor computed from the input",
			           a->value->text);
		g->output = id;
		return 0;
	}
	case BRN_ST_DEFAULTS:
		return 0; /* read before the layers (brn_graph_build) */
	default:
		return header(b, s);
	}
}

/* An upper bound of the nodes an expression makes: its calls (names too,
 * for input and labels). Nesting is bounded by the parser. */
static size_t count_calls(const brn_expr *e, int depth)
{
	if (!e || depth > 1000)
		return 0;
	size_t n = 1;
	for (const brn_arg *a = e->args; a; a = a->next)
		n += count_calls(a->value, depth + 1);
	return n;
}

int brn_graph_build(const brn_ast *ast, int batch_override, const char *default_schedule,
                    brn_arena *arena, brn_graph *g, brn_diag *d)
{
	builder b;
	memset(g, 0, sizeof *g);
	memset(&b, 0, sizeof b);
	g->file = ast->file;
	g->arena = arena;
	g->input = g->labels = g->loss = g->output = -1;
	g->batch = batch_override > 0 ? batch_override : 0;
	g->schedule = default_schedule;
	b.g = g;
	b.d = d;
	const brn_stmt *s = ast->first;
	if (s->kind != BRN_ST_MODEL)
		return err(&b, s->line, s->col, "expected 'model NAME;' as the first statement");
	/* header statements may come in any order before the layers; the
	 * batch and schedule must be known before any layer is built */
	for (const brn_stmt *t = s; t; t = t->next) {
		if (t->kind == BRN_ST_BATCH && g->batch == 0 && t->value->ival >= 1 && t->value->ival <= 65536)
			g->batch = (int)t->value->ival;
		if (t->kind == BRN_ST_SCHEDULE && !g->schedule) {
			g->schedule = t->value->text;
			g->schedule_line = t->value->line;
			g->schedule_col = t->value->col;
		}
	}
	if (g->batch == 0)
		g->batch = 1;
	if (!g->schedule)
		g->schedule = "paper";
	for (const brn_stmt *t = s; t; t = t->next)
		if (t->kind == BRN_ST_DEFAULTS && defaults(&b, t))
			return -1;
	/* nodes are large (two schedules each): allocate them once, not by doubling */
	size_t calls = 2;
	for (const brn_stmt *t = s; t; t = t->next)
		calls += count_calls(t->value, 0);
	if (calls < INT_MAX / 2 && !(g->nodes = brn_arena_alloc(arena, calls * sizeof *g->nodes)))
		return err(&b, s->line, s->col, "out of memory");
	g->cap = g->nodes ? (int)calls : 0;
	for (; s; s = s->next)
		if (statement(&b, s))
			return -1;
	int last = ast->last->line;
	if (g->input < 0)
		return err(&b, last, 0, "no 'input' statement; expected e.g. 'input x[1, 28, 28];'");
	for (int i = 0; i < g->n; i++)
		g->nodes[i].shape[0] = g->batch;
	if (g->output < 0) {
		for (int i = g->n - 1; i >= 0 && g->output < 0; i--)
			if (g->nodes[i].op != BRN_OP_SOFTMAX_CE && g->nodes[i].op != BRN_OP_LABELS &&
			    g->nodes[i].op != BRN_OP_INPUT)
				g->output = i;
		if (g->output < 0)
			return err(&b, last, 0, "the model computes nothing; expected layers such as 'c1 = conv(x, 32);'");
	}
	return 0;
}

/* --- parameters ------------------------------------------------------------ */

static int param(brn_param *p, brn_param_kind kind, const char *suffix, int trainable,
                 int ndim, int a, int b, int c, int d)
{
	memset(p, 0, sizeof *p);
	p->kind = kind;
	p->suffix = suffix;
	p->trainable = trainable;
	p->ndim = ndim;
	p->shape[0] = a;
	p->shape[1] = b;
	p->shape[2] = c;
	p->shape[3] = d;
	p->count = a;
	for (int i = 1; i < ndim; i++)
		p->count *= p->shape[i];
	return 1;
}

int brn_graph_params(const brn_graph *g, const brn_node *n, brn_param *out)
{
	int k = 0;
	const brn_node *x = n->nin ? &g->nodes[n->in[0]] : NULL;
	switch (n->op) {
	case BRN_OP_CONV: {
		int cg = x->shape[1] / n->groups;
		k += param(&out[k], BRN_PARAM_WEIGHT, "weight", 1, 4, n->out, cg, n->kernel[0], n->kernel[1]);
		out[0].fan_in = (double)cg * n->kernel[0] * n->kernel[1];
		if (n->bias)
			k += param(&out[k], BRN_PARAM_BIAS, "bias", 1, 1, n->out, 0, 0, 0);
		return k;
	}
	case BRN_OP_DENSE:
		k += param(&out[k], BRN_PARAM_WEIGHT, "weight", 1, 2, n->out, x->shape[1], 0, 0);
		out[0].fan_in = x->shape[1];
		if (n->bias)
			k += param(&out[k], BRN_PARAM_BIAS, "bias", 1, 1, n->out, 0, 0, 0);
		return k;
	case BRN_OP_BATCH_NORM:
	case BRN_OP_BATCH_RENORM: {
		int c = n->shape[1];
		k += param(&out[k], BRN_PARAM_GAMMA, "gamma", 1, 1, c, 0, 0, 0);
		k += param(&out[k], BRN_PARAM_BETA, "beta", 1, 1, c, 0, 0, 0);
		k += param(&out[k], BRN_PARAM_MEAN, "mean", 0, 1, c, 0, 0, 0);
		k += param(&out[k], BRN_PARAM_SIGMA, "sigma", 0, 1, c, 0, 0, 0);
		return k;
	}
	default:
		return 0;
	}
}

/* --- printing and checking ------------------------------------------------- */

static void print_bound(FILE *f, const char *key, const brn_bound *b)
{
	if (b->sched)
		fprintf(f, " %s=\"%s\"", key, b->sched);
	else
		fprintf(f, " %s=%g", key, b->value);
}

void brn_graph_print(const brn_graph *g, FILE *f)
{
	fprintf(f, "model %s batch %d schedule \"%s\"\n", g->model, g->batch, g->schedule);
	for (int i = 0; i < g->n; i++) {
		const brn_node *n = &g->nodes[i];
		fprintf(f, "%%%d %s = %s(", i, n->name, brn_op_name(n->op));
		for (int k = 0; k < n->nin; k++)
			fprintf(f, "%s%s", k ? ", " : "", g->nodes[n->in[k]].name);
		fprintf(f, ")");
		switch (n->op) {
		case BRN_OP_CONV:
			fprintf(f, " out=%d kernel=%dx%d stride=%dx%d pad=%dx%d groups=%d bias=%s", n->out,
			        n->kernel[0], n->kernel[1], n->stride[0], n->stride[1], n->pad[0], n->pad[1],
			        n->groups, n->bias ? "true" : "false");
			break;
		case BRN_OP_MAXPOOL:
		case BRN_OP_AVGPOOL:
			fprintf(f, " kernel=%dx%d stride=%dx%d pad=%dx%d%s", n->kernel[0], n->kernel[1],
			        n->stride[0], n->stride[1], n->pad[0], n->pad[1],
			        n->count_pad ? " count_include_pad=true" : "");
			break;
		case BRN_OP_DENSE:
			fprintf(f, " out=%d bias=%s", n->out, n->bias ? "true" : "false");
			break;
		case BRN_OP_BATCH_RENORM:
			fprintf(f, " eps=%g alpha=%g", n->eps, n->alpha);
			print_bound(f, "r_max", &n->r_max);
			print_bound(f, "d_max", &n->d_max);
			break;
		case BRN_OP_BATCH_NORM:
			fprintf(f, " eps=%g alpha=%g", n->eps, n->alpha);
			break;
		case BRN_OP_LABELS:
			fprintf(f, " classes=%d", n->classes);
			break;
		default:
			break;
		}
		if (n->fold)
			fprintf(f, " folded");
		fprintf(f, " -> [%d, %d, %d, %d]%s\n", n->shape[0], n->shape[1], n->shape[2], n->shape[3],
		        i == g->output ? " output" : "");
	}
}

void brn_graph_print_params(const brn_graph *g, FILE *f)
{
	long total = 0, trainable = 0;
	int tensors = 0;
	fprintf(f, "# tensors of model %s, as weights files name them: name, shape, values\n", g->model);
	for (int i = 0; i < g->n; i++) {
		brn_param ps[6];
		int k = brn_graph_params(g, &g->nodes[i], ps);
		for (int j = 0; j < k; j++) {
			char shape[96] = "";
			for (int d = 0; d < ps[j].ndim; d++)
				snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%d", d ? ", " : "",
				         ps[j].shape[d]);
			fprintf(f, "%s.%s [%s] %ld%s\n", g->nodes[i].name, ps[j].suffix, shape, ps[j].count,
			        ps[j].trainable ? "" : " statistic");
			tensors++;
			total += ps[j].count;
			trainable += ps[j].trainable ? ps[j].count : 0;
		}
	}
	fprintf(f, "total %d tensors, %ld values (%ld trainable), %ld bytes as float32\n", tensors, total,
	        trainable, total * 4);
}

void brn_graph_print_dot(const brn_graph *g, FILE *f)
{
	fprintf(f, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n", g->model);
	for (int i = 0; i < g->n; i++) {
		const brn_node *n = &g->nodes[i];
		fprintf(f, "  n%d [label=\"%s\\n%s\\n[%d, %d, %d, %d]\"%s];\n", i, n->name, brn_op_name(n->op),
		        n->shape[0], n->shape[1], n->shape[2], n->shape[3],
		        i == g->output ? ", style=bold" : "");
		for (int k = 0; k < n->nin; k++)
			fprintf(f, "  n%d -> n%d;\n", n->in[k], i);
	}
	fprintf(f, "}\n");
}

int brn_graph_check(const brn_graph *g, brn_diag *d)
{
	for (int i = 0; i < g->n; i++) {
		const brn_node *n = &g->nodes[i];
		const brn_op_def *def = brn_op_get(n->op);
		if (n->id != i)
			return brn_diag_error(d, g->file, n->line, n->col, "node %s has id %d at %d", n->name, n->id, i);
		int tensors = 0;
		for (int k = 0; k < BRN_OP_MAX_ARGS && def->args[k].name; k++)
			tensors += def->args[k].type == BRN_ATTR_TENSOR;
		if (n->nin != tensors)
			return brn_diag_error(d, g->file, n->line, n->col, "node %s has %d inputs", n->name, n->nin);
		for (int k = 0; k < n->nin; k++)
			if (n->in[k] < 0 || n->in[k] >= i)
				return brn_diag_error(d, g->file, n->line, n->col, "node %s reads %d: not before it", n->name, n->in[k]);
		for (int k = 0; k < 4; k++)
			if (n->shape[k] < 1)
				return brn_diag_error(d, g->file, n->line, n->col, "node %s has an empty shape", n->name);
	}
	/* names unique, through a table of their own */
	names t = {NULL, 0, 0};
	brn_arena a;
	brn_arena_init(&a);
	int rc = 0;
	for (int i = 0; i < g->n && !rc; i++) {
		if (names_find(&t, g, g->nodes[i].name) >= 0)
			rc = brn_diag_error(d, g->file, g->nodes[i].line, g->nodes[i].col, "name %s used twice",
			                    g->nodes[i].name);
		else if (names_add(&t, g, i, &a))
			rc = brn_diag_error(d, g->file, 0, 0, "out of memory");
	}
	brn_arena_free(&a);
	return rc;
}
