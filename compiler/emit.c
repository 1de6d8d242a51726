/* Emitter: fills templates (templates/, embedded at build time) with a
 * plan's kernels, offsets and tables. Placeholders are $KEY or ${KEY};
 * "@N" in a rendered kernel is the offset of scratch buffer N. */
#include "emit.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "templates.h"

#define BRNC_VERSION "0.1.0"

/* A growing string; on allocation failure it goes bad and stays bad. */
typedef struct sbuf {
	char *s;
	size_t len, cap;
	int bad;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
	if (b->bad)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (!p) {
			b->bad = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

static void puts_(sbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void printf_(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
/* printf onto b, at whatever length the text has. */
static void printf_(sbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->bad = 1;
	} else if ((size_t)n < sizeof tmp) {
		put(b, tmp, (size_t)n);
	} else {
		char *big = malloc((size_t)n + 1);
		if (!big) {
			b->bad = 1;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		put(b, big, (size_t)n);
		free(big);
	}
}

/* What the two targets differ in, beyond their template folders. */
typedef struct dialect {
	const char *name;
	const char *kernel;        /* wrapper of a kernel body */
	const char *unroll;        /* pragma format, %d = factor */
	const char *launch;        /* table entry: %s name, %ld items, %d per example, %d local */
} dialect;

static const dialect dialects[] = {
	{"c", "c/kernel.c", "#pragma GCC unroll %d", "\t{%s_range, %ldL, %d, %d, \"%s\"},\n"},
	{"opencl", "opencl/kernel.cl", "#pragma unroll %d", "\t{\"%s\", %ldL, %d, %d},\n"},
};

typedef struct emitter {
	const brn_plan *p;
	const dialect *dl;
	brn_diag *d;
	const char *tmpl;          /* the template being rendered, for errors */
	int failed;
} emitter;

typedef const char *(*lookup_fn)(void *ctx, const char *key);

/* Renders template text into out, asking look for each placeholder. */
static void render(emitter *E, sbuf *out, const char *text, lookup_fn look, void *ctx)
{
	const char *p = text;
	while (*p) {
		const char *dollar = strchr(p, '$');
		if (!dollar) {
			puts_(out, p);
			return;
		}
		put(out, p, (size_t)(dollar - p));
		const char *k = dollar + 1;
		int braced = *k == '{';
		if (braced)
			k++;
		const char *e = k;
		while (isupper((unsigned char)*e) || isdigit((unsigned char)*e) || *e == '_')
			e++;
		if (e == k) {
			put(out, "$", 1);
			p = dollar + 1;
			continue;
		}
		char key[64];
		snprintf(key, sizeof key, "%.*s", (int)(e - k), k);
		const char *v = look(ctx, key);
		if (!v) {
			if (!E->failed)
				brn_diag_error(E->d, "", 0, 0, "internal error: template %s has no value for $%s", E->tmpl, key);
			E->failed = 1;
			v = "";
		}
		puts_(out, v);
		p = braced && *e == '}' ? e + 1 : e;
	}
}

/* --- kernels --------------------------------------------------------------- */

typedef struct kernel_ctx {
	emitter *E;
	const brn_kernel *k;
	const char *body;
	char items[64], unroll[64];
} kernel_ctx;

static const char *kernel_lookup(void *ctx, const char *key)
{
	kernel_ctx *c = ctx;
	const char *v = brn_kernel_var(c->k, key);
	if (v)
		return v;
	if (!strcmp(key, "NAME"))
		return c->k->name;
	if (!strcmp(key, "COMMENT"))
		return c->k->comment;
	if (!strcmp(key, "BODY"))
		return c->body;
	if (!strcmp(key, "MODEL"))
		return c->E->p->g->model;
	if (!strcmp(key, "ITEMS"))
		return c->items;
	if (!strcmp(key, "UNROLL"))
		return c->unroll;
	if (!strcmp(key, "WG"))
		return brn_kernel_var(c->k, "REDUCE_WG");
	return NULL;
}

/* Replaces "@N" (scratch buffer N) with its offset in mem. */
static void resolve_buffers(const brn_plan *p, sbuf *out, const char *text)
{
	for (const char *s = text; *s; s++) {
		if (*s == '@' && isdigit((unsigned char)s[1])) {
			char *end;
			long b = strtol(s + 1, &end, 10);
			printf_(out, "%ld", p->scratch_off + p->bufs[b].off);
			s = end - 1;
		} else {
			put(out, s, 1);
		}
	}
}

/* A dialect's own version of a kernel, or NULL. Per-channel reductions
 * have one in OpenCL: a work-group per channel instead of a work-item. */
/* The per-work-item body of a kernel without a whole-function template. */
static const char *kernel_body(const brn_kernel *k)
{
	return k->base ? k->base : k->tmpl;
}

static const char *dialect_kernel(const emitter *E, const brn_kernel *k)
{
	char path[128];
	snprintf(path, sizeof path, "%s/kernels/%s.k", E->dl->name, kernel_body(k));
	return brn_template_find(path);
}

/* Work-items and work-group size of a kernel in this dialect. */
static long kernel_items(const emitter *E, const brn_kernel *k, int *local)
{
	const char *wg = brn_kernel_var(k, "WG"), *rwg = brn_kernel_var(k, "REDUCE_WG");
	*local = wg ? atoi(wg) : 0;
	if (dialect_kernel(E, k) && rwg) {
		*local = atoi(rwg);
		return k->items * *local;
	}
	return k->items;
}

/* --- vector kernels: one function per ISA (C) ------------------------------ */

/* A register tile per ISA: OB blocks of 16 channels x RW columns in VL-wide
 * vectors; OB x 16/VL x RW accumulators stay within the register file
 * (AVX-512: 14 of 32 zmm, AVX2: 12 of 16 ymm, SSE/NEON: 12 of 16 or 32).
 * The dense tiles likewise: DM rows x 4 examples of partial dot products,
 * BM rows x GV vectors of broadcast products (AVX-512: 16 and 24 of 32). */
typedef struct isa {
	const char *name, *attr, *vtype;
	int vl, ob, rw, rw1;       /* rw: tile width at OB 2, rw1 at OB 1 */
	int dm, bm, gv;
	int x86;
} isa;

static const isa isas[] = {
	{"avx512", "__attribute__((target(\"avx512f\")))", "brn_vf16", 16, 2, 7, 14, 4, 6, 4, 1},
	{"avx2", "__attribute__((target(\"avx2,fma\")))", "brn_vf8", 8, 1, 6, 6, 2, 3, 4, 1},
	{"generic", "", "brn_vf4", 4, 1, 3, 3, 2, 3, 4, 0},
};

typedef struct isa_ctx {
	kernel_ctx kc;
	const isa *is;
	char vl[16], nv[16], ob[16], rw[16], dm[16], bm[16], gv[16];
} isa_ctx;

static const char *isa_lookup(void *ctx, const char *key)
{
	isa_ctx *c = ctx;
	if (!strcmp(key, "ISA"))
		return c->is->name;
	if (!strcmp(key, "ISA_ATTR"))
		return c->is->attr;
	if (!strcmp(key, "VT"))
		return c->is->vtype;
	if (!strcmp(key, "VL") || !strcmp(key, "VECN"))
		return c->vl;
	if (!strcmp(key, "NV"))
		return c->nv;
	if (!strcmp(key, "OB"))
		return c->ob;
	if (!strcmp(key, "RW"))
		return c->rw;
	if (!strcmp(key, "DM"))
		return c->dm;
	if (!strcmp(key, "BM"))
		return c->bm;
	if (!strcmp(key, "GV"))
		return c->gv;
	return kernel_lookup(&c->kc, key);
}

/* A kernel with a whole-function template of the dialect: C renders it once
 * per ISA (x86 variants under BRN_X86), then a range function that calls
 * the variant brn_isa_select() chose. */
static void emit_isa_kernel(emitter *E, sbuf *out, const brn_kernel *k, const char *text, const char *path,
                            const char *body)
{
	const char *range = brn_template_find("c/whole/isa_range.c");
	const char *obg = brn_kernel_var(k, "OBG");
	if (!range) {
		if (!E->failed)
			brn_diag_error(E->d, "", 0, 0, "internal error: no template c/whole/isa_range.c");
		E->failed = 1;
		return;
	}
	sbuf w = {0};
	puts_(&w, "#if defined(__GNUC__) && !defined(__clang__)\n#pragma GCC push_options\n"
	          "#pragma GCC optimize(\"fp-contract=fast\", \"tree-vectorize\", \"vect-cost-model=dynamic\")\n#endif\n#if BRN_X86\n");
	for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
		isa_ctx c = {{E, k, body, "", ""}, &isas[i], "", "", "", "", "", "", ""};
		int ob = obg && atoi(obg) % isas[i].ob == 0 ? isas[i].ob : 1;
		snprintf(c.vl, sizeof c.vl, "%d", isas[i].vl);
		snprintf(c.nv, sizeof c.nv, "%d", 16 / isas[i].vl);
		snprintf(c.ob, sizeof c.ob, "%d", ob);
		snprintf(c.rw, sizeof c.rw, "%d", ob == 2 ? isas[i].rw : isas[i].rw1);
		snprintf(c.dm, sizeof c.dm, "%d", isas[i].dm);
		snprintf(c.bm, sizeof c.bm, "%d", isas[i].bm);
		snprintf(c.gv, sizeof c.gv, "%d", isas[i].gv);
		if (!isas[i].x86)
			puts_(&w, "#endif\n");
		E->tmpl = path;
		render(E, &w, text, isa_lookup, &c);
		puts_(&w, "\n");
	}
	puts_(&w, "#if defined(__GNUC__) && !defined(__clang__)\n#pragma GCC pop_options\n#endif\n\n");
	/* a vec_width knob (elementwise kernels): items of that many elements */
	isa_ctx c = {{E, k, NULL, "", ""}, &isas[0], "", "", "", "", "", "", ""};
	const char *vec = brn_kernel_var(k, "VEC");
	snprintf(c.vl, sizeof c.vl, "%s", vec ? vec : "1");
	E->tmpl = "c/whole/isa_range.c";
	render(E, &w, range, isa_lookup, &c);
	if (w.s)
		resolve_buffers(E->p, out, w.s);
	puts_(out, "\n");
	out->bad |= w.bad;
	free(w.s);
}

static void emit_kernel(emitter *E, sbuf *out, const brn_kernel *k)
{
	kernel_ctx c = {E, k, NULL, "", ""};
	char path[128];
	snprintf(path, sizeof path, "%s/whole/%s.c", E->dl->name, k->tmpl);
	const char *whole = brn_template_find(path);
	if (whole) {
		emit_isa_kernel(E, out, k, whole, path, NULL);
		return;
	}
	snprintf(path, sizeof path, "kernels/%s.k", kernel_body(k));
	const char *body = dialect_kernel(E, k), *wrap = brn_template_find(E->dl->kernel);
	if (body)
		snprintf(path, sizeof path, "%s/kernels/%s.k", E->dl->name, kernel_body(k));
	else
		body = brn_template_find(path);
	if (!body || !wrap) {
		if (!E->failed)
			brn_diag_error(E->d, "", 0, 0, "internal error: no template %s", body ? E->dl->kernel : path);
		E->failed = 1;
		return;
	}
	const char *un = brn_kernel_var(k, "UNROLL_N");
	if (un && atoi(un) > 0)
		snprintf(c.unroll, sizeof c.unroll, E->dl->unroll, atoi(un));
	int local;
	long items = kernel_items(E, k, &local);
	snprintf(c.items, sizeof c.items, k->per_example ? "(long)n * %ld" : "%ld", items);
	sbuf b = {0}, w = {0};
	E->tmpl = path;
	const char *vec = brn_kernel_var(k, "VEC");
	if (vec) /* vec_width: consecutive elements per work-item */
		printf_(&b, "\tconst long lanes = gid * %s;\n\tfor (int lane = 0; lane < %s; lane++) {\n"
		            "\tconst long gid = lanes + lane;\n", vec, vec);
	render(E, &b, body, kernel_lookup, &c);
	if (vec)
		puts_(&b, "\t}\n");
	c.body = b.s ? b.s : "";
	/* a body that gains from vector code (fuse.c sets ISA_LOOP): C compiles
	 * it once per ISA, as the whole-function kernels */
	const char *loop = brn_kernel_var(k, "ISA_LOOP") ? brn_template_find("c/isa_loop.c") : NULL;
	if (loop && !strcmp(E->dl->name, "c") && !vec) {
		emit_isa_kernel(E, out, k, loop, "c/isa_loop.c", c.body);
		out->bad |= b.bad;
		free(b.s);
		return;
	}
	E->tmpl = E->dl->kernel;
	render(E, &w, wrap, kernel_lookup, &c);
	if (w.s)
		resolve_buffers(E->p, out, w.s);
	puts_(out, "\n");
	out->bad |= b.bad | w.bad;
	free(b.s);
	free(w.s);
}

/* --- the host file ------------------------------------------------------- */

typedef struct var {
	const char *key;
	char *value;
} var;

typedef struct host_ctx {
	var vars[64];
	int n;
} host_ctx;

static const char *host_lookup(void *ctx, const char *key)
{
	host_ctx *h = ctx;
	for (int i = 0; i < h->n; i++)
		if (!strcmp(h->vars[i].key, key))
			return h->vars[i].value;
	return NULL;
}

static void hset(host_ctx *h, const char *key, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n >= 0 && (s = malloc((size_t)n + 1))) {
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	if (h->n < 64) {
		h->vars[h->n].key = key;
		h->vars[h->n++].value = s ? s : calloc(1, 1);
	}
}

/* Takes ownership of a rendered buffer as a variable. */
static void hown(host_ctx *h, const char *key, sbuf *b)
{
	if (h->n < 64) {
		h->vars[h->n].key = key;
		h->vars[h->n++].value = b->s ? b->s : calloc(1, 1);
	} else {
		free(b->s);
	}
}

static void slots_table(const brn_plan *p, sbuf *out)
{
	for (int i = 0; i < p->nslots; i++) {
		const brn_slot *s = &p->slots[i];
		int init = s->p.kind == BRN_PARAM_WEIGHT ? 0
		         : (s->p.kind == BRN_PARAM_GAMMA || s->p.kind == BRN_PARAM_SIGMA) ? 2 : 1;
		/* the momentum's name is a literal too: no buffer can cut it short */
		printf_(out, "\t{\"%s\", %s%s%s, %ldL, %ldL, %d, {%d, %d, %d, %d}, %.17g, %d, %d},\n", s->name,
		        s->p.trainable ? "\"" : "", s->p.trainable ? s->name : "NULL",
		        s->p.trainable ? ".momentum\"" : "", s->off,
		        s->p.count, s->p.ndim, s->p.shape[0], s->p.shape[1], s->p.shape[2], s->p.shape[3],
		        s->p.fan_in ? s->p.fan_in : 1.0, init, s->p.trainable);
	}
}

static void launch_table(emitter *E, sbuf *out, int list)
{
	const brn_plan *p = E->p;
	printf_(out, "static const struct brn_launch brn_%s_kernels[] = {\n", list ? "train" : "infer");
	for (int i = 0; i < p->nkernels[list]; i++) {
		const brn_kernel *k = &p->kernels[list][i];
		int local;
		long items = kernel_items(E, k, &local);
		printf_(out, E->dl->launch, k->name, items, k->per_example, local, k->name);
	}
	printf_(out, "\t{0}\n};\n\n");
}

static void folded_values(const brn_plan *p, sbuf *out)
{
	if (!p->weights_folded) {
		puts_(out, "static int brn_load_folded(brn_model *m)\n{\n\t(void)m;\n\treturn BRN_EARG;\n}\n");
		return;
	}
	puts_(out, "/* the weights given to brnc --weights, norms folded into the layers before them */\n");
	puts_(out, "static const float brn_folded[BRN_PARAMS_FLOATS] = {\n");
	float *all = calloc((size_t)p->params_floats, sizeof(float));
	if (!all) {
		out->bad = 1;
		return;
	}
	for (int i = 0; i < p->nslots; i++)
		for (long e = 0; e < p->slots[i].p.count; e++)
			all[p->slots[i].off + e] = (float)p->slots[i].value[e];
	for (long e = 0; e < p->params_floats; e++)
		printf_(out, "%s%.9g%s", e % 8 ? " " : "\t", (double)all[e], e % 8 == 7 ? ",\n" : ",");
	free(all);
	puts_(out, "\n};\n\nstatic int brn_load_folded(brn_model *m)\n{\n"
	           "\tmemcpy(m->host, brn_folded, sizeof brn_folded);\n"
	           "\treturn brn_dev_write(m, 0, m->host, BRN_STATE_FLOATS);\n}\n");
}

/* C string literal of text, one source line per line. */
static void c_string(sbuf *out, const char *text)
{
	puts_(out, "\t\"");
	for (const char *s = text; *s; s++) {
		if (*s == '\n')
			puts_(out, s[1] ? "\\n\"\n\t\"" : "\\n");
		else if (*s == '"' || *s == '\\' || (*s == '?' && (s[1] == '?' || (s > text && s[-1] == '?'))))
			/* every '?' of a "??": no trigraph such as "??/" */
			printf_(out, "\\%c", *s);
		else if (*s == '\t')
			puts_(out, "\\t");
		else
			put(out, s, 1);
	}
	puts_(out, "\"");
}

static int write_file(emitter *E, const char *path, const sbuf *b)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return brn_diag_error(E->d, path, 0, 0, "cannot write: %s", strerror(errno));
	size_t n = b->s ? fwrite(b->s, 1, b->len, f) : 0;
	int bad = n != b->len || ferror(f);
	if (fclose(f) || bad)
		return brn_diag_error(E->d, path, 0, 0, "write error: %s", strerror(errno));
	return 0;
}

/* The host-side schedule: the first batch_renorm's, as the kernels use it. */
static const char *schedule_expr(const brn_plan *p, const char *key)
{
	for (int i = 0; p->train && i < p->nkernels[1]; i++)
		if (!strcmp(p->kernels[1][i].tmpl, "norm_stats")) {
			const char *v = brn_kernel_var(&p->kernels[1][i], key);
			if (v && strcmp(v, "1.0f") && strcmp(v, "0.0f"))
				return v;
		}
	for (int i = 0; p->train && i < p->nkernels[1]; i++)
		if (!strcmp(p->kernels[1][i].tmpl, "norm_stats"))
			return brn_kernel_var(&p->kernels[1][i], key);
	return !strcmp(key, "R_MAX") ? "1.0f" : "0.0f";
}

/* Text from outside (paths, the command line) for a comment: a star then
 * a slash would close it and inject what follows, and a slash then a star
 * makes -Wcomment warn; a backslash goes between the two. Control
 * characters become '?'. Returns malloc'd text, or NULL. */
static char *comment_text(const char *s)
{
	char *out = malloc(2 * strlen(s) + 1), *o = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		*o++ = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
		if ((s[0] == '*' && s[1] == '/') || (s[0] == '/' && s[1] == '*'))
			*o++ = '\\';
	}
	*o = 0;
	return out;
}

/* The model's facts as host template variables: names, sizes, offsets. */
static void model_vars(const brn_plan *p, const brn_emit_options *o, host_ctx *h)
{
	const brn_graph *g = p->g;
	char upper[160];
	snprintf(upper, sizeof upper, "%s", g->model);
	for (char *c = upper; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	const brn_node *in = &g->nodes[g->input], *out = &g->nodes[p->out_node];
	hset(h, "MODEL", "%s", g->model);
	const char *slash = strrchr(o->base, '/');
	hset(h, "HEADER", "%s.h", slash ? slash + 1 : o->base);
	hset(h, "UPPER", "%s", upper);
	hset(h, "GUARD", "%s_H", upper);
	hset(h, "VERSION", "%s", BRNC_VERSION);
	char *source = comment_text(o->source), *command = comment_text(o->command ? o->command : "brnc");
	hset(h, "SOURCE", "%s", source ? source : "?");
	hset(h, "COMMAND", "%s", command ? command : "?");
	free(source);
	free(command);
	hset(h, "MODE", "%s", p->train ? "training and inference" : "inference");
	hset(h, "TARGET", "%s", o->target);
	hset(h, "BATCH", "%d", g->batch);
	hset(h, "INPUT_SIZE", "%ld", brn_shape_count(in->shape));
	hset(h, "INPUT_SHAPE", in->shape[2] == 1 && in->shape[3] == 1 ? "[%d]" : "[%d, %d, %d]",
	     in->shape[1], in->shape[2], in->shape[3]);
	hset(h, "OUTPUT_SIZE", "%ld", brn_shape_count(out->shape));
	hset(h, "OUTPUT", "%s", out->name);
	hset(h, "NKERNELS", "%d kernels per inference%s", p->nkernels[0], "");
	if (p->train)
		hset(h, "NKERNELS", "%d kernels per inference, %d per train step", p->nkernels[0], p->nkernels[1]);
	hset(h, "MEM_FLOATS", "%ld", p->mem_floats);
	hset(h, "PARAMS_FLOATS", "%ld", p->params_floats);
	hset(h, "STATE_FLOATS", "%ld", p->params_floats * (p->train ? 2 : 1));
	hset(h, "MOMENTUM_OFF", "%ld", p->momentum_off);
	hset(h, "STATS_OFF", "%ld", p->stats_off);
	hset(h, "INFER_IN_OFF", "%ld", p->in_off[0]);
	hset(h, "INFER_OUT_OFF", "%ld", p->out_off);
	hset(h, "TRAIN_IN_OFF", "%ld", p->in_off[1]);
	hset(h, "LOSS_OFF", "%ld", p->loss_off);
	hset(h, "CLASSES", "%d", g->labels >= 0 ? g->nodes[g->labels].classes : 0);
	hset(h, "TRAINING", "%d", p->train);
	hset(h, "FOLDED", "%d", p->weights_folded);
	hset(h, "R_MAX", "%s", schedule_expr(p, "R_MAX"));
	hset(h, "D_MAX", "%s", schedule_expr(p, "D_MAX"));
	hset(h, "N_ALL_KERNELS", "%d", p->nkernels[0] + p->nkernels[1] + 1);
	hset(h, "TRAIN_DEFINE", p->train ? "#define %s_TRAIN 1 /* has _train_step */\n" : "", upper);
	hset(h, "FOLDED_DEFINE", p->weights_folded ? "#define %s_WEIGHTS_FOLDED 1 /* weights compiled in: open with NULL */\n" : "",
	     upper);
	hset(h, "TRAIN_DECL", p->train ?
	     "/* one SGD step (momentum 0.9) on n examples; *loss: mean cross-entropy */\n"
	     "int %s_train_step(%s *m, const float *x, const int32_t *y, int n, float lr, float *loss);" : "%s%s",
	     p->train ? g->model : "", p->train ? g->model : "");
	const char *mn = p->train ? g->model : "";
	hset(h, "DP_DECL", p->train ?
	     "/* Data-parallel training (docs/distributed.md). fn reduces n floats in place\n"
	     " * to their mean over the workers (e.g. MPI_Allreduce, then / P); once set,\n"
	     " * each step hands it the gradients and *loss is the mean over all workers. */\n"
	     "int %s_set_allreduce(%s *m, int (*fn)(void *ctx, float *buf, size_t n), void *ctx);\n"
	     "int %s_average_stats(%s *m); /* moving statistics := their mean over the workers */\n"
	     "/* the whole state (parameters, statistics, momentum) through fn, e.g. a broadcast */\n"
	     "int %s_broadcast(%s *m, int (*fn)(void *ctx, float *buf, size_t n), void *ctx);\n" : "%s%s%s%s%s%s",
	     mn, mn, mn, mn, mn, mn);
}

int brn_emit(const brn_plan *p, const brn_emit_options *o, brn_diag *d)
{
	const brn_graph *g = p->g;
	emitter E = {p, &dialects[strcmp(o->target, "opencl") == 0], d, "", 0};
	int opencl = E.dl == &dialects[1];
	host_ctx h = {0};
	sbuf kernels = {0}, tables = {0}, slots = {0}, folded = {0}, cl = {0};
	for (int list = 0; list < 2; list++)
		for (int i = 0; i < p->nkernels[list]; i++)
			emit_kernel(&E, opencl ? &cl : &kernels, &p->kernels[list][i]);
	launch_table(&E, &tables, 0);
	launch_table(&E, &tables, 1);
	slots_table(p, &slots);
	folded_values(p, &folded);
	model_vars(p, o, &h);
	hset(&h, "DIALECT_INCLUDE", opencl ? "#include \"brnrt_cl.h\"" : "");
	hown(&h, "TABLES", &tables);
	hown(&h, "SLOTS", &slots);
	hown(&h, "FOLDED_VALUES", &folded);

	/* dialect parts, then the OpenCL program text */
	static const char *const parts[][2] = {{"DEVICE_STRUCT", "device_struct.h"}, {"DEVICE_FUNCS", "device.c"}};
	for (int i = 0; i < 2; i++) {
		char path[64];
		snprintf(path, sizeof path, "%s/%s", E.dl->name, parts[i][1]);
		const char *t = brn_template_find(path);
		sbuf b = {0};
		E.tmpl = path;
		if (t)
			render(&E, &b, t, host_lookup, &h);
		hown(&h, parts[i][0], &b);
	}
	/* the kernels: C functions, or the OpenCL program as a string (the
	 * same text goes to BASE.cl) */
	sbuf clfile = {0}, ktext = {0};
	if (opencl) {
		char *source = comment_text(o->source);
		printf_(&clfile, "/* %s.cl: generated by brnc %s from %s; do not edit. */\n", g->model, BRNC_VERSION,
		        source ? source : "?");
		free(source);
		puts_(&clfile, brn_template_find("opencl/prologue.cl"));
		puts_(&clfile, "\n");
		if (cl.s)
			puts_(&clfile, cl.s);
		printf_(&ktext, "/* the OpenCL program, also written to %s.cl */\nstatic const char brn_cl_source[] =\n", g->model);
		c_string(&ktext, clfile.s ? clfile.s : "");
		puts_(&ktext, ";\n");
	} else {
		puts_(&ktext, brn_template_find("c/prologue.c"));
		puts_(&ktext, "\n");
		if (kernels.s)
			puts_(&ktext, kernels.s);
	}
	free(kernels.s);
	hown(&h, "KERNELS", &ktext);
	sbuf ts = {0};
	if (p->train) {
		E.tmpl = "train_step.c";
		render(&E, &ts, brn_template_find("train_step.c"), host_lookup, &h);
	}
	hown(&h, "TRAIN_STEP", &ts);

	sbuf header = {0}, host = {0};
	E.tmpl = "header.h";
	render(&E, &header, brn_template_find("header.h"), host_lookup, &h);
	E.tmpl = "host.c";
	render(&E, &host, brn_template_find("host.c"), host_lookup, &h);
	int rc = E.failed ? -1 : 0;
	if (!rc && (header.bad || host.bad || clfile.bad))
		rc = brn_diag_error(d, "", 0, 0, "out of memory while emitting code");
	/* BASE + extension, at any length: a cut path would write BASE.c over BASE.h */
	size_t blen = strlen(o->base);
	char *path = malloc(blen + 4);
	if (!rc && !path)
		rc = brn_diag_error(d, "", 0, 0, "out of memory while emitting code");
	if (!rc) {
		snprintf(path, blen + 4, "%s.h", o->base);
		rc = write_file(&E, path, &header);
	}
	if (!rc) {
		snprintf(path, blen + 4, "%s.c", o->base);
		rc = write_file(&E, path, &host);
	}
	if (!rc && opencl) {
		snprintf(path, blen + 4, "%s.cl", o->base);
		rc = write_file(&E, path, &clfile);
	}
	free(path);
	for (int i = 0; i < h.n; i++)
		free(h.vars[i].value);
	free(header.s);
	free(host.s);
	free(clfile.s);
	free(cl.s);
	return rc;
}
