/* Shape rules of every op, node naming, parameter shapes and defaults:
 * model text in memory -> brn_parse -> brn_graph_build, then the typed
 * graph is read back node by node and checked with brn_graph_check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ast.h"
#include "graph.h"
#include "tap.h"

static brn_arena arena;
static brn_graph g;
static brn_diag d;

/* Builds text into g; 0 on success, else the error is in d. */
static int build(const char *text, int batch, const char *schedule)
{
	brn_ast ast;
	brn_arena_free(&arena);
	brn_arena_init(&arena);
	memset(&d, 0, sizeof d);
	if (brn_parse("t.brn", text, strlen(text), &arena, &ast, &d) ||
	    brn_graph_build(&ast, batch, schedule, &arena, &g, &d))
		return -1;
	return 0;
}

/* Builds and checks the graph's invariants: one test. */
static int build_ok(const char *what, const char *text, int batch, const char *schedule)
{
	int rc = build(text, batch, schedule);
	if (rc)
		diag("t.brn:%d:%d: %s", d.line, d.col, d.msg);
	if (rc == 0 && brn_graph_check(&g, &d)) {
		diag("graph check: %s", d.msg);
		rc = -1;
	}
	ok(rc == 0, "%s: builds and passes brn_graph_check", what);
	return rc;
}

static const brn_node *node(const char *name)
{
	for (int i = 0; i < g.n; i++)
		if (strcmp(g.nodes[i].name, name) == 0)
			return &g.nodes[i];
	return NULL;
}

static void shape_is(const char *name, int n, int c, int h, int w)
{
	const brn_node *x = node(name);
	int pass = x && x->shape[0] == n && x->shape[1] == c && x->shape[2] == h && x->shape[3] == w;
	ok(pass, "%s is [%d, %d, %d, %d]", name, n, c, h, w);
	if (!pass && x)
		diag("     got [%d, %d, %d, %d]", x->shape[0], x->shape[1], x->shape[2], x->shape[3]);
	if (!x)
		diag("     no node named %s", name);
}

/* The params of a node, as "weight[16,3,3,5] bias[16]". */
static const char *params(const char *name)
{
	static char buf[256];
	const brn_node *x = node(name);
	brn_param p[6];
	buf[0] = 0;
	if (!x)
		return "(no node)";
	int k = brn_graph_params(&g, x, p);
	for (int i = 0; i < k; i++) {
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s[", i ? " " : "", p[i].suffix);
		for (int j = 0; j < p[i].ndim; j++)
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%d", j ? "," : "", p[i].shape[j]);
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "]");
	}
	return buf;
}

/* Node names in graph order, space-separated. */
static const char *names(void)
{
	static char buf[1024];
	buf[0] = 0;
	for (int i = 0; i < g.n; i++)
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "", g.nodes[i].name);
	return buf;
}

static void conv_rules(void)
{
	if (build_ok("asymmetric conv", "model m;\nbatch 2;\ninput x[3, 32, 32];\n"
	             "c = conv(x, 16, kernel=[3, 5], stride=[2, 1], pad=[1, 2]);\n", 0, NULL))
		return;
	/* H: (32 + 2 - 3) / 2 + 1 = 16; W: (32 + 4 - 5) / 1 + 1 = 32 */
	shape_is("c", 2, 16, 16, 32);
	const brn_node *c = node("c");
	ok(c->kernel[0] == 3 && c->kernel[1] == 5 && c->stride[0] == 2 && c->stride[1] == 1 &&
	   c->pad[0] == 1 && c->pad[1] == 2, "conv: [h, w] pairs land as given");
	is_str(params("c"), "weight[16,3,3,5] bias[16]", "conv params: [K, C, KH, KW] and [K]");
	brn_param p[6];
	brn_graph_params(&g, c, p);
	is_double_within(p[0].fan_in, 3 * 3 * 5, 0, "conv fan_in = C/groups * KH * KW");
	is_int(p[0].count, 16 * 3 * 3 * 5, "conv weight count");

	if (build_ok("conv defaults", "model m;\ninput x[3, 9, 9];\nc = conv(x, 4);\n", 0, NULL))
		return;
	c = node("c");
	ok(c->kernel[0] == 3 && c->kernel[1] == 3 && c->stride[0] == 1 && c->stride[1] == 1 &&
	   c->pad[0] == 0 && c->pad[1] == 0 && c->groups == 1 && c->bias == 1,
	   "conv defaults: kernel=3 stride=1 pad=0 groups=1 bias=true");
	shape_is("c", 1, 4, 7, 7);

	if (build_ok("grouped conv", "model m;\ninput x[8, 10, 10];\n"
	             "c = conv(x, 12, groups=4, bias=false);\n", 0, NULL))
		return;
	shape_is("c", 1, 12, 8, 8);
	is_str(params("c"), "weight[12,2,3,3]", "grouped conv weight [K, C/groups, KH, KW], no bias");

	if (build_ok("depthwise conv", "model m;\ninput x[8, 10, 10];\n"
	             "c = conv(x, 8, groups=8, kernel=3, pad=1);\n", 0, NULL))
		return;
	shape_is("c", 1, 8, 10, 10);
	is_str(params("c"), "weight[8,1,3,3] bias[8]", "depthwise conv weight [C, 1, KH, KW]");

	if (build_ok("strided conv rounds down", "model m;\ninput x[1, 8, 7];\n"
	             "c = conv(x, 2, kernel=2, stride=3);\n", 0, NULL))
		return;
	shape_is("c", 1, 2, 3, 2);   /* (8-2)/3+1 = 3, (7-2)/3+1 = 2 */

	if (build_ok("kernel as large as the padded input", "model m;\ninput x[1, 4, 4];\n"
	             "c = conv(x, 2, kernel=6, pad=1);\n", 0, NULL))
		return;
	shape_is("c", 1, 2, 1, 1);
}

static void pool_rules(void)
{
	if (build_ok("pools", "model m;\ninput x[4, 10, 10];\n"
	             "a = maxpool(x, 3, stride=2, pad=1);\n"
	             "b = avgpool(x, [2, 3], stride=[1, 2]);\n"
	             "c = maxpool(x, 2);\n"
	             "d = avgpool(x, 3);\n"
	             "e = avgpool(x, [3, 2], pad=[1, 0]);\n"
	             "f = maxpool(x, 4, stride=1, pad=[3, 0]);\n", 0, NULL))
		return;
	shape_is("a", 1, 4, 5, 5);   /* (10+2-3)/2+1 */
	shape_is("b", 1, 4, 9, 4);   /* (10-2)/1+1, (10-3)/2+1 */
	shape_is("c", 1, 4, 5, 5);   /* stride defaults to the kernel */
	shape_is("d", 1, 4, 3, 3);   /* 10/3 rounds down */
	shape_is("e", 1, 4, 4, 5);   /* stride=kernel: (10+2-3)/3+1, (10-2)/2+1 */
	shape_is("f", 1, 4, 13, 7);  /* (10+6-4)+1, (10-4)+1 */
	const brn_node *c = node("c");
	ok(c->stride[0] == 2 && c->stride[1] == 2 && c->pad[0] == 0, "pool defaults: stride=kernel, pad=0");
	is_str(params("a"), "", "pools have no parameters");

	if (build_ok("global pool, flatten, dense", "model m;\ninput x[4, 5, 6];\n"
	             "g = global_avgpool(x);\nf = flatten(x);\nd = dense(f, 10);\n"
	             "e = dense(flatten(g), 3, bias=false);\ns = softmax(d);\n", 0, NULL))
		return;
	shape_is("g", 1, 4, 1, 1);
	shape_is("f", 1, 120, 1, 1);
	shape_is("d", 1, 10, 1, 1);
	shape_is("e", 1, 3, 1, 1);
	shape_is("s", 1, 10, 1, 1);
	is_str(params("d"), "weight[10,120] bias[10]", "dense params: [out, in] and [out]");
	is_str(params("e"), "weight[3,4]", "dense bias=false: weight only");
	brn_param p[6];
	brn_graph_params(&g, node("d"), p);
	is_double_within(p[0].fan_in, 120, 0, "dense fan_in = in");
	ok(node("d")->bias == 1, "dense bias defaults to true");
}

static void elementwise_rules(void)
{
	if (build_ok("add, relu, norms", "model m;\ninput x[6, 7, 7];\n"
	             "a = relu(x);\nb = add(a, x);\nn = batch_norm(b);\n"
	             "r = batch_renorm(n, eps=1e-5, alpha=0.1, r_max=3, d_max=5);\n"
	             "q = batch_renorm(r);\n", 0, NULL))
		return;
	shape_is("a", 1, 6, 7, 7);
	shape_is("b", 1, 6, 7, 7);
	shape_is("n", 1, 6, 7, 7);
	shape_is("r", 1, 6, 7, 7);
	const brn_node *n = node("n"), *r = node("r"), *q = node("q");
	is_double_within(n->eps, 1e-3, 1e-15, "batch_norm eps defaults to 1e-3");
	is_double_within(n->alpha, 0.01, 1e-15, "batch_norm alpha defaults to 0.01");
	ok(r->eps == 1e-5 && r->alpha == 0.1, "batch_renorm eps and alpha as given");
	ok(!r->r_max.sched && r->r_max.value == 3 && !r->d_max.sched && r->d_max.value == 5,
	   "batch_renorm r_max=3 d_max=5 are constants");
	ok(q->r_max.sched && strcmp(q->r_max.sched, "paper") == 0 && q->d_max.sched &&
	   strcmp(q->d_max.sched, "paper") == 0, "batch_renorm bounds default to the schedule 'paper'");
	is_str(params("n"), "gamma[6] beta[6] mean[6] sigma[6]", "norm params per channel");
	brn_param p[6];
	brn_graph_params(&g, n, p);
	ok(p[0].trainable && p[1].trainable && !p[2].trainable && !p[3].trainable,
	   "gamma, beta trainable; mean, sigma not");
	is_str(params("a"), "", "relu has no parameters");
	is_str(g.schedule, "paper", "schedule defaults to paper");

	if (build_ok("schedule statement", "model m;\ninput x[2, 3, 3];\nschedule \"bn\";\n"
	             "r = batch_renorm(x, d_max=\"paper\");\n", 0, NULL))
		return;
	is_str(g.schedule, "bn", "schedule statement");
	is_str(node("r")->r_max.sched, "bn", "r_max follows the model's schedule");
	is_str(node("r")->d_max.sched, "paper", "d_max names its own schedule");
	is_int(g.schedule_line, 3, "schedule's line is recorded");

	if (build_ok("--schedule overrides", "model m;\ninput x[2, 3, 3];\nschedule \"bn\";\n"
	             "r = batch_renorm(x);\n", 0, "my.lua"))
		return;
	is_str(node("r")->r_max.sched, "my.lua", "the default_schedule argument replaces 'schedule'");
}

static void flat_models(void)
{
	if (build_ok("flat input", "model m;\nbatch 16;\ninput x[20];\nlabels y[5];\n"
	             "h = relu(batch_norm(dense(x, 8)));\nlogits = dense(h, 5);\n"
	             "p = softmax(logits);\nloss softmax_cross_entropy(logits, y);\noutput logits;\n", 0, NULL))
		return;
	shape_is("x", 16, 20, 1, 1);
	shape_is("h.dense", 16, 8, 1, 1);
	shape_is("h.batch_norm", 16, 8, 1, 1);
	shape_is("logits", 16, 5, 1, 1);
	shape_is("p", 16, 5, 1, 1);
	shape_is("loss", 16, 1, 1, 1);
	shape_is("y", 16, 1, 1, 1);
	is_int(node("y")->classes, 5, "labels classes");
	is_str(g.nodes[g.output].name, "logits", "output statement picks the output");
	is_str(g.nodes[g.loss].name, "loss", "the loss node is named 'loss'");
	is_str(g.nodes[g.input].name, "x", "input node");
	is_str(g.nodes[g.labels].name, "y", "labels node");
	is_str(params("h.dense"), "weight[8,20] bias[8]", "dense on a flat input: [out, F]");
}

static void batches(void)
{
	const char *text = "model m;\nbatch 32;\ninput x[1, 28, 28];\nc = conv(x, 4, pad=1);\n";
	if (build_ok("batch 32", text, 0, NULL))
		return;
	shape_is("x", 32, 1, 28, 28);
	shape_is("c", 32, 4, 28, 28);
	is_int(g.batch, 32, "batch statement");
	if (build_ok("--batch 7", text, 7, NULL))
		return;
	is_int(g.batch, 7, "batch override replaces the statement");
	shape_is("c", 7, 4, 28, 28);
	if (build_ok("no batch", "model m;\ninput x[1, 28, 28];\nc = conv(x, 4);\n", 0, NULL))
		return;
	is_int(g.batch, 1, "batch defaults to 1");
	shape_is("c", 1, 4, 26, 26);
	if (build_ok("batch after input", "model m;\ninput x[3];\nd = dense(x, 2);\nbatch 5;\n", 0, NULL))
		return;
	shape_is("d", 5, 2, 1, 1);
}

static void naming(void)
{
	if (build_ok("two relus", "model m;\ninput b[2, 4, 4];\nc = relu(b);\n"
	             "a = add(relu(b), relu(c));\n", 0, NULL))
		return;
	is_str(names(), "b c a.relu a.relu2 a", "a = add(relu(b), relu(c)): a.relu, a.relu2");
	is_int(node("a.relu")->in[0], node("b")->id, "a.relu reads b");
	is_int(node("a.relu2")->in[0], node("c")->id, "a.relu2 reads c");
	ok(node("a")->in[0] == node("a.relu")->id && node("a")->in[1] == node("a.relu2")->id,
	   "add reads a.relu, a.relu2 in order");

	if (build_ok("nesting", "model m;\ninput x[2, 6, 6];\n"
	             "a = relu(relu(relu(x)));\n"
	             "b = add(relu(conv(x, 2, pad=1)), relu(conv(x, 2, pad=1)));\n"
	             "c = relu(relu(x));\n", 0, NULL))
		return;
	is_str(names(), "x a.relu a.relu2 a b.conv b.relu b.conv2 b.relu2 b c.relu c",
	       "innermost first; counts per op and per statement");
	is_int(node("a.relu")->in[0], node("x")->id, "the innermost call is <target>.<op>");
	is_int(node("a")->in[0], node("a.relu2")->id, "the target is the outermost call");
	is_int(g.output, node("c")->id, "output defaults to the last layer");

	if (build_ok("fashion (DESIGN.md §3)",
	             "# Fashion-MNIST classifier with Batch Renormalization.\n"
	             "model fashion_cnn;\nbatch 32;\ninput  x[1, 28, 28];\nlabels y[10];\nschedule \"paper\";\n"
	             "c1 = conv(x, 32, kernel=3, pad=1);\na1 = relu(batch_renorm(c1));\n"
	             "p1 = maxpool(a1, 2);\nc2 = conv(p1, 64, kernel=3, pad=1);\n"
	             "a2 = relu(batch_renorm(c2, alpha=0.01, eps=1e-3));\np2 = global_avgpool(a2);\n"
	             "logits = dense(flatten(p2), 10);\nloss softmax_cross_entropy(logits, y);\n", 0, NULL))
		return;
	is_str(names(), "x y c1 a1.batch_renorm a1 p1 c2 a2.batch_renorm a2 p2 logits.flatten logits loss",
	       "fashion node names");
	shape_is("p1", 32, 32, 14, 14);
	shape_is("a2", 32, 64, 14, 14);
	shape_is("logits.flatten", 32, 64, 1, 1);
	shape_is("logits", 32, 10, 1, 1);
	is_str(g.nodes[g.output].name, "logits", "without 'output', the last layer before the loss");
	is_str(g.model, "fashion_cnn", "model name");
	is_str(params("a1.batch_renorm"), "gamma[32] beta[32] mean[32] sigma[32]", "a1.batch_renorm params");
	const brn_node *c1 = node("c1");
	ok(c1->line == 7 && c1->col == 6, "a node is located at its call");
	const brn_node *bn = node("a1.batch_renorm");
	ok(bn->line == 8 && bn->col == 11, "a nested call's node is located at the call");
}

static void errors_are_located(void)
{
	/* the diag carries file, line and column for the caller to render */
	ok(build("model m;\ninput x[1, 4, 4];\nc = conv(x, 2, kernel=5);\n", 0, NULL) == -1 &&
	   d.line == 3 && d.col == 5 && strcmp(d.file, "t.brn") == 0 &&
	   strstr(d.msg, "larger than the padded input 4x4") != NULL,
	   "shape error in the diag at 3:5");
}

/* Name lookup must not be quadratic: 80000 layers took 77 s. 100000 now
 * build and check in well under a second; the bound leaves room for
 * sanitizers and a loaded machine, and is far below the quadratic time. */
static void many_layers(void)
{
	enum { LAYERS = 100000 };
	size_t cap = 64 + (size_t)LAYERS * 32, at = 0;
	char *text = malloc(cap);
	if (!text) {
		ok(0, "many layers: memory");
		return;
	}
	at += (size_t)snprintf(text, cap, "model m;\ninput x[1, 4, 4];\nr0 = relu(x);\n");
	for (int i = 1; i < LAYERS; i++)
		at += (size_t)snprintf(text + at, cap - at, "r%d = relu(r%d);\n", i, i - 1);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = build_ok("100000 layers", text, 0, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
	ok(rc == 0 && g.n == LAYERS + 1 && s < 15, "100000 layers: %d nodes in %.2f s (quadratic lookup took minutes)",
	   g.n, s);
	ok(build("model m;\ninput x[4];\na = relu(x);\nb = relu(a);\na = relu(b);\n", 0, NULL) == -1 &&
	   strcmp(d.msg, "name 'a' is already defined") == 0 && d.line == 5, "a redefined name is still found");
	free(text);
}

int main(void)
{
	brn_arena_init(&arena);
	conv_rules();
	pool_rules();
	elementwise_rules();
	flat_models();
	batches();
	naming();
	errors_are_located();
	many_layers();
	brn_arena_free(&arena);
	return done_testing();
}
