/* The Graph IR: nodes in topological order, each with an op, inputs,
 * attributes, a static output shape and the source location it came from.
 * brn_graph_build turns a syntax tree into a typed graph, checking every
 * argument against the op table and inferring every shape. */
#ifndef BRN_GRAPH_H
#define BRN_GRAPH_H

#include <stdio.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"
#include "ops.h"
#include "schedule.h"

/* A bound of batch_renorm: a constant, or a named schedule's r_max/d_max. */
typedef struct brn_bound {
	double value;          /* used when sched is NULL */
	const char *sched;     /* schedule name or path; NULL: constant */
	brn_piecewise pw;      /* filled by the schedule pass */
} brn_bound;

typedef struct brn_node {
	int id;
	brn_opcode op;
	const char *name;
	int in[2], nin;
	int shape[4];          /* N, C, H, W; flat tensors have H = W = 1 */
	int line, col;

	/* attributes (which are set depends on op; see ops.c) */
	int out;               /* conv: out channels; dense: out features */
	int kernel[2], stride[2], pad[2];
	int groups, bias;
	int count_pad;         /* avgpool: divide by the whole window, padding too */
	double eps, alpha;
	brn_bound r_max, d_max;
	int classes;           /* labels */
	int fold;              /* lowering: norm folded into the conv before it */
} brn_node;

typedef struct brn_graph {
	const char *file;
	const char *model;
	int batch;
	const char *schedule;  /* the model's schedule name or path */
	int schedule_line, schedule_col;
	brn_node *nodes;
	int n, cap;
	int input, labels, loss, output;  /* node ids, -1 when absent */
	brn_arena *arena;
} brn_graph;

/* Builds and type-checks a graph. batch_override > 0 replaces `batch`;
 * default_schedule (may be NULL) replaces the model's `schedule`. */
int brn_graph_build(const brn_ast *ast, int batch_override,
                    const char *default_schedule, brn_arena *arena,
                    brn_graph *g, brn_diag *d);

/* Parameters and state a node owns, in a fixed order. */
typedef enum brn_param_kind {
	BRN_PARAM_WEIGHT, BRN_PARAM_BIAS, BRN_PARAM_GAMMA, BRN_PARAM_BETA,
	BRN_PARAM_MEAN, BRN_PARAM_SIGMA
} brn_param_kind;

typedef struct brn_param {
	brn_param_kind kind;
	const char *suffix;    /* "weight", "bias", "gamma", ... */
	int trainable;         /* SGD updates it (and it has a momentum) */
	int ndim;
	int shape[4];
	long count;
	double fan_in;         /* weights: for He init */
} brn_param;

/* Fills up to 6 params of node; returns how many. */
int brn_graph_params(const brn_graph *g, const brn_node *node, brn_param *out);

long brn_shape_count(const int shape[4]); /* per example: C*H*W */
int brn_is_norm(brn_opcode op);

/* One line per node: "c1 = conv(x) out=32 kernel=3x3 ... -> [32, 1, 28, 28]". */
void brn_graph_print(const brn_graph *g, FILE *f);
void brn_graph_print_dot(const brn_graph *g, FILE *f);
/* One line per parameter or statistic, as weights files name them
 * ("c1.weight [8, 1, 3, 3] 72"; statistics marked), then the total. */
void brn_graph_print_params(const brn_graph *g, FILE *f);
/* Checks the IR's invariants (topological order, shapes, arity): for tests. */
int brn_graph_check(const brn_graph *g, brn_diag *d);

#endif
