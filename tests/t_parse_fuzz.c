/* A deterministic fuzzer of the front end: valid models mutated (bytes
 * flipped, tokens inserted, lines duplicated or dropped, text cut, calls
 * nested deeply) go through brn_parse and brn_graph_build, which must
 * return 0 or -1 with a located, non-empty message and never crash.
 * Usage: t_parse_fuzz [ITERATIONS [SEED]]; the suite runs the default. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "graph.h"
#include "fuzz_rng.h"
#include "tap.h"

static const char *const seeds[] = {
	"# Fashion-MNIST classifier with Batch Renormalization.\n"
	"model fashion_cnn;\nbatch 32;\ninput  x[1, 28, 28];\nlabels y[10];\nschedule \"paper\";\n\n"
	"c1 = conv(x, 32, kernel=3, pad=1);\na1 = relu(batch_renorm(c1));\np1 = maxpool(a1, 2);\n"
	"c2 = conv(p1, 64, kernel=3, pad=1);\na2 = relu(batch_renorm(c2, alpha=0.01, eps=1e-3));\n"
	"p2 = global_avgpool(a2);\nlogits = dense(flatten(p2), 10);\n"
	"loss softmax_cross_entropy(logits, y);\noutput logits;\n",

	"model flat;\nbatch 4;\ninput x[20];\nlabels y[5];\n"
	"h = relu(batch_norm(dense(x, 8), eps=1e-5));\nlogits = dense(h, 5, bias=false);\n"
	"p = softmax(logits);\nloss softmax_cross_entropy(logits, y);\n",

	"model res;\ninput x[8, 16, 16];\n"
	"c = conv(x, 8, kernel=[3, 5], stride=[1, 1], pad=[1, 2], groups=8);\n"
	"r = add(relu(c), x);\nd = batch_renorm(r, r_max=3, d_max=5.0);\n"
	"m = avgpool(d, [2, 3], stride=[2, 1], pad=[1, 0]);\ng = global_avgpool(maxpool(m, 2));\n"
	"out = dense(flatten(g), 3);\n",

	("model m; input x[3, 9, 9]; a = add(relu(x), relu(conv(x, 3, pad=1, bias=true)));"
	 " b = batch_renorm(a, r_max=\"bn\", d_max=0); # trailing comment\n"),
	("model m; defaults eps=1e-5, alpha=0.1; input x[2, 4, 4];"
	 " b = batch_norm(x, alpha=0.5); c = batch_renorm(b);\n"),
};

/* Tokens of the language, good and bad, to insert anywhere. */
static const char *const tokens[] = {
	"(", ")", "[", "]", ",", ";", "=", "-", "#", "\n", "\"", " ", ".", "\t", "\r",
	"model", "batch", "input", "labels", "schedule", "defaults", "loss", "output", "true", "false",
	"conv", "batch_norm", "batch_renorm", "relu", "add", "maxpool", "avgpool",
	"global_avgpool", "flatten", "dense", "softmax", "softmax_cross_entropy",
	"kernel=", "stride=", "pad=", "groups=", "bias=", "eps=", "alpha=", "r_max=", "d_max=",
	"x", "y", "c1", "loss", "0", "1", "-1", "3", "2147483647", "2147483648", "99999999999",
	"1e999", "1e-999", "1e", "3x", "0.5", ".5", "5.", "1.2.3", "\"paper\"", "\"nosuch\"", "\"",
	"[1, 2]", "[3, 5]", "[]", "[[1]]", "relu(", "conv(x, 8", "model m;", "input z[1, 8, 8];",
	"batch 0;", "batch 65537;", "labels q[1];", "output x;", "\xff", "\xc3\xa9", "\x01",
};


typedef struct text {
	char *p;
	size_t n, cap;
} text;

static void reserve(text *t, size_t more)
{
	if (t->n + more <= t->cap)
		return;
	t->cap = (t->n + more) * 2;
	t->p = realloc(t->p, t->cap);
	if (!t->p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
}

static void insert(text *t, size_t at, const char *s, size_t n)
{
	reserve(t, n);
	memmove(t->p + at + n, t->p + at, t->n - at);
	memcpy(t->p + at, s, n);
	t->n += n;
}

static void erase(text *t, size_t at, size_t n)
{
	memmove(t->p + at, t->p + at + n, t->n - at - n);
	t->n -= n;
}

/* [start, end) of the line holding byte at. */
static void line_at(const text *t, size_t at, size_t *start, size_t *end)
{
	size_t s = at, e = at;
	while (s > 0 && t->p[s - 1] != '\n')
		s--;
	while (e < t->n && t->p[e] != '\n')
		e++;
	*start = s;
	*end = e < t->n ? e + 1 : e;
}

static void mutate(text *t)
{
	size_t at = below(t->n + 1), s, e;
	switch (below(8)) {
	case 0: /* flip a byte to anything */
		if (t->n)
			t->p[below(t->n)] = (char)below(256);
		break;
	case 1: /* flip a byte to a printable one */
		if (t->n)
			t->p[below(t->n)] = (char)(32 + below(95));
		break;
	case 2: case 3: { /* insert a token */
		const char *tok = tokens[below(sizeof tokens / sizeof *tokens)];
		insert(t, at, tok, strlen(tok));
		break;
	}
	case 4: /* cut the text short */
		t->n = at;
		break;
	case 5: { /* duplicate a line */
		line_at(t, at < t->n ? at : (t->n ? t->n - 1 : 0), &s, &e);
		size_t n = e - s;
		char *copy = malloc(n + 1);
		memcpy(copy, t->p + s, n);
		insert(t, s, copy, n);
		free(copy);
		break;
	}
	case 6: /* drop a line */
		if (t->n) {
			line_at(t, below(t->n), &s, &e);
			erase(t, s, e - s);
		}
		break;
	case 7: { /* wrap deep nesting around a name */
		static const char *const wraps[][2] = {{"relu(", ")"}, {"[", "]"}, {"add(x, ", ")"}};
		int k = (int)below(3), depth = 1 + (int)below(below(2) ? 300 : 120);
		size_t lo = strlen(wraps[k][0]), lc = strlen(wraps[k][1]);
		for (int i = 0; i < depth; i++)
			insert(t, at, wraps[k][1], lc);
		for (int i = 0; i < depth; i++)
			insert(t, at, wraps[k][0], lo);
		break;
	}
	}
}

static size_t count_lines(const char *p, size_t n)
{
	size_t k = 1;
	for (size_t i = 0; i < n; i++)
		k += p[i] == '\n';
	return k;
}

/* Length of line `line` (1-based) of p. */
static size_t line_len(const char *p, size_t n, int line)
{
	size_t i = 0;
	for (int l = 1; l < line && i < n; i++)
		if (p[i] == '\n')
			l++;
	size_t k = 0;
	while (i + k < n && p[i + k] != '\n')
		k++;
	return k;
}

static struct {
	long runs, parsed, built, failed;
	long bad_rc, bad_msg, bad_loc, bad_graph, bad_render;
} st;

static void report(const char *what, const text *t, const brn_diag *d)
{
	static int shown;
	if (shown++ >= 5)
		return;
	diag("%s: %d:%d: %s; input (%zu bytes):", what, d->line, d->col, d->msg, t->n);
	fprintf(stderr, "%.*s\n# ---\n", (int)(t->n < 2000 ? t->n : 2000), t->p);
}

static void run_one(const text *t, int batch)
{
	brn_arena a;
	brn_ast ast;
	brn_graph g;
	brn_diag d;
	/* an exact-size copy, so reading past the end is caught by ASan */
	char *src = malloc(t->n ? t->n : 1);
	memcpy(src, t->p, t->n);
	brn_arena_init(&a);
	memset(&d, 0, sizeof d);
	brn_diag_source(&d, "f.brn", src, t->n);
	st.runs++;
	int rc = brn_parse("f.brn", src, t->n, &a, &ast, &d);
	if (rc == 0) {
		st.parsed++;
		rc = brn_graph_build(&ast, batch, NULL, &a, &g, &d);
	}
	if (rc != 0 && rc != -1) {
		st.bad_rc++;
		report("return value", t, &d);
	} else if (rc == 0) {
		st.built++;
		brn_diag c;
		memset(&c, 0, sizeof c);
		if (brn_graph_check(&g, &c)) {
			st.bad_graph++;
			report("graph check", t, &c);
		}
		brn_param p[6];
		for (int i = 0; i < g.n; i++)
			brn_graph_params(&g, &g.nodes[i], p);
		FILE *null = fopen("/dev/null", "w");
		if (null) {
			brn_graph_print(&g, null);
			brn_graph_print_dot(&g, null);
			fclose(null);
		}
	} else {
		st.failed++;
		/* every error in model text has a line in the text; a column,
		 * when given, at most one past the end of that line */
		int lines = (int)count_lines(src, t->n);
		if (!d.msg[0]) {
			st.bad_msg++;
			report("empty message", t, &d);
		} else if (strcmp(d.file, "f.brn") != 0 || d.line < 1 || d.line > lines || d.col < 0 ||
		           (d.col > 0 && (size_t)d.col > line_len(src, t->n, d.line) + 1)) {
			st.bad_loc++;
			report("location", t, &d);
		}
		char buf[2048];
		int k = brn_diag_render(&d, buf, sizeof buf);
		if (k <= 0 || strncmp(buf, "f.brn:", 6) != 0 || !strstr(buf, "error: ")) {
			st.bad_render++;
			report("render", t, &d);
		}
	}
	brn_diag_source(&d, NULL, NULL, 0);
	brn_arena_free(&a);
	free(src);
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 20000;
	rng = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x62726e63ULL;
	if (!rng)
		rng = 1;
	text t = {0};
	/* the seeds themselves build */
	for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
		t.n = 0;
		insert(&t, 0, seeds[i], strlen(seeds[i]));
		long built = st.built;
		run_one(&t, 0);
		ok(st.built == built + 1, "seed %zu builds", i);
	}
	memset(&st, 0, sizeof st);
	for (long it = 0; it < iters; it++) {
		const char *seed = seeds[below(sizeof seeds / sizeof *seeds)];
		t.n = 0;
		insert(&t, 0, seed, strlen(seed));
		int k = 1 + (int)below(4);
		for (int i = 0; i < k; i++)
			mutate(&t);
		run_one(&t, below(4) ? 0 : (int)below(70000));
	}
	free(t.p);
	diag("%ld runs: %ld parsed, %ld built, %ld rejected", st.runs, st.parsed, st.built, st.failed);
	is_int(st.runs, iters, "%ld mutants ran without crashing", iters);
	is_int(st.bad_rc, 0, "every call returned 0 or -1");
	is_int(st.bad_msg, 0, "every error has a message");
	is_int(st.bad_loc, 0, "every error is located in the text");
	is_int(st.bad_render, 0, "every error renders as f.brn:...: error: ...");
	is_int(st.bad_graph, 0, "every graph built passes brn_graph_check");
	ok(iters < 100 || (st.built > iters / 50 && st.failed > iters / 2),
	   "the mutants reach both outcomes (built %ld, rejected %ld)", st.built, st.failed);
	return done_testing();
}
