/* ONNX import and export (see onnx.h). The importer walks the graph once in
 * its (topological) order, tracking each value as either a tensor of the
 * brnc graph, with its per-example shape, or a constant (an initializer or
 * a Constant node's value), and writes one .brn statement per node. */
#include "onnx.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "brnrt_st.h"
#include "onnx/onnx.pb-c.h"

enum { MAX_NODES = 20000, OPSET_MIN = 9, OPSET_MAX = 17 };

typedef Onnx__NodeProto node_t;
typedef Onnx__TensorProto tensor_t;

/* A value of the ONNX graph. */
typedef struct value {
	const char *onnx;      /* its ONNX name */
	int is_const;
	/* tensor */
	const char *brn;       /* brnc node name */
	int rank;              /* 2 or 4, batch included */
	int c, h, w;           /* per example; rank 2: [c] */
	int nonneg;            /* a relu's output: Clip(<= 0, 6) is relu6 */
	int pad[2];            /* a Pad's zeros around it, for the Conv or
	                          AveragePool that reads it to take in */
	/* constant */
	const tensor_t *t;
	const char *src;       /* the initializer or Constant output it is */
	int op;                /* defining node (tensor), -1 for the input */
} value;

typedef struct importer {
	const char *path;
	const brn_onnx_options *o;
	brn_arena *a;
	brn_diag *d;
	Onnx__ModelProto *m;
	Onnx__GraphProto *gr;
	int opset;
	value *v;
	int nv, cap;
	const char **used;     /* brnc names taken */
	int nused, capused;
	char *text;            /* the .brn text, malloc'd */
	size_t len, textcap;
	brn_onnx_weight *w;
	int nw, capw;
	int *skip;             /* nodes absorbed by an earlier one */
	int node;              /* the node being translated */
} importer;

static int fail(importer *im, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* Errors about a node name it: "node 12 'Conv_12' (Conv): ...". */
static int fail(importer *im, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (im->node >= 0) {
		const node_t *n = im->gr->node[im->node];
		return brn_diag_error(im->d, im->path, 0, 0, "node %d '%.60s' (%.40s): %s", im->node,
		                      n->name ? n->name : "", n->op_type ? n->op_type : "", msg);
	}
	return brn_diag_error(im->d, im->path, 0, 0, "%s", msg);
}

static int emit(importer *im, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

static int emit(importer *im, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(im->text + im->len, im->textcap - im->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return fail(im, "internal: formatting failed");
		if ((size_t)n < im->textcap - im->len) {
			im->len += (size_t)n;
			return 0;
		}
		size_t cap = im->textcap * 2 + (size_t)n + 256;
		char *t = realloc(im->text, cap);
		if (!t)
			return fail(im, "out of memory");
		im->text = t;
		im->textcap = cap;
	}
}

/* --- names ----------------------------------------------------------------- */

/* The language's keywords: no name may be one. */
static const char *const keywords[] = {"model", "batch", "input", "labels", "schedule",
                                       "loss", "output", "true", "false"};

static int name_used(const importer *im, const char *s)
{
	for (int i = 0; i < im->nused; i++)
		if (!strcmp(im->used[i], s))
			return 1;
	return 0;
}

/* A brnc name from an ONNX name: other characters become '_', runs of '_'
 * collapse, a leading digit gets 'n', keywords get a trailing '_', and a
 * taken name gets _2, _3, ... */
static const char *brn_name(importer *im, const char *from)
{
	char buf[140];
	size_t n = 0;
	for (const char *c = from ? from : ""; *c && n < 110; c++) {
		int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
		char ch = ok ? *c : '_';
		if (ch == '_' && (n == 0 || buf[n - 1] == '_'))
			continue;
		buf[n++] = ch;
	}
	while (n && buf[n - 1] == '_')
		n--;
	buf[n] = 0;
	if (!n)
		snprintf(buf, sizeof buf, "t");
	if (buf[0] >= '0' && buf[0] <= '9') {
		memmove(buf + 1, buf, strlen(buf) + 1);
		buf[0] = 'n';
	}
	for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
		if (!strcmp(buf, keywords[i]))
			strcat(buf, "_");
	char cand[160];
	snprintf(cand, sizeof cand, "%s", buf);
	for (int k = 2; name_used(im, cand); k++)
		snprintf(cand, sizeof cand, "%s_%d", buf, k);
	if (im->nused == im->capused) {
		int cap = im->capused ? im->capused * 2 : 64;
		const char **u = brn_arena_alloc(im->a, (size_t)cap * sizeof *u);
		if (!u)
			return NULL;
		if (im->nused)
			memcpy(u, im->used, (size_t)im->nused * sizeof *u);
		im->used = u;
		im->capused = cap;
	}
	const char *s = brn_arena_strdup(im->a, cand);
	if (s)
		im->used[im->nused++] = s;
	return s;
}

char *brn_onnx_model_name(const char *path, brn_arena *a)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strcspn(base, ".");
	char buf[128];
	size_t k = 0;
	/* a digit or '_' cannot start it, nor can it be a keyword */
	if (n && ((base[0] >= '0' && base[0] <= '9') || base[0] == '_'))
		buf[k++] = 'm';
	for (size_t i = 0; i < n && k < sizeof buf - 1; i++) {
		char c = base[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
		buf[k++] = ok ? c : '_';
	}
	if (!k)
		buf[k++] = 'm';
	buf[k] = 0;
	for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
		if (!strcmp(buf, keywords[i]))
			return brn_arena_printf(a, "%s_net", buf);
	return brn_arena_strdup(a, buf);
}

/* --- values ---------------------------------------------------------------- */

static value *find(importer *im, const char *name)
{
	for (int i = im->nv - 1; i >= 0; i--)
		if (!strcmp(im->v[i].onnx, name))
			return &im->v[i];
	return NULL;
}

static value *add_value(importer *im, const char *name)
{
	if (im->nv == im->cap) {
		int cap = im->cap ? im->cap * 2 : 256;
		value *v = realloc(im->v, (size_t)cap * sizeof *v);
		if (!v) {
			fail(im, "out of memory");
			return NULL;
		}
		im->v = v;
		im->cap = cap;
	}
	value *v = &im->v[im->nv++];
	memset(v, 0, sizeof *v);
	v->onnx = name;
	v->op = -1;
	return v;
}

static long long const_count(const tensor_t *t)
{
	long long n = 1;
	for (size_t i = 0; i < t->n_dims; i++) {
		if (t->dims[i] < 0 || t->dims[i] > (1 << 29))
			return -1;
		n *= t->dims[i];
		if (n > (1 << 29))
			return -1;
	}
	return n;
}

/* The floats of a FLOAT constant, from float_data or raw_data (little-endian). */
static int const_floats(importer *im, const value *v, float **out, long long *count)
{
	const tensor_t *t = v->t;
	if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
		return fail(im, "'%.80s' keeps its data in an external file; brnc reads models whose "
		            "initializers are inside the .onnx file", v->onnx);
	if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
		return fail(im, "'%.80s' has data type %d; expected float (1)", v->onnx, (int)t->data_type);
	long long n = const_count(t);
	if (n < 0)
		return fail(im, "'%.80s' has a negative or too large shape", v->onnx);
	float *f = brn_arena_alloc(im->a, (size_t)(n ? n : 1) * sizeof *f);
	if (!f)
		return fail(im, "out of memory");
	if (t->has_raw_data && t->raw_data.len) {
		if (t->raw_data.len != (size_t)n * 4)
			return fail(im, "'%.80s' has %zu bytes of data for %lld floats", v->onnx,
			            t->raw_data.len, n);
		for (long long i = 0; i < n; i++) {
			const uint8_t *b = t->raw_data.data + 4 * i;
			uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
			memcpy(&f[i], &u, 4);
		}
	} else if ((long long)t->n_float_data == n) {
		memcpy(f, t->float_data, (size_t)n * sizeof *f);
	} else {
		return fail(im, "'%.80s' has %zu values for a shape of %lld", v->onnx, t->n_float_data, n);
	}
	for (long long i = 0; i < n; i++)
		if (!isfinite(f[i]))
			return fail(im, "'%.80s' holds a value that is not finite at %lld", v->onnx, i);
	*out = f;
	*count = n;
	return 0;
}

static int const_ints(importer *im, const value *v, int64_t *out, int max, int *count)
{
	const tensor_t *t = v->t;
	if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
		return fail(im, "'%.80s' has data type %d; expected int64 (7)", v->onnx, (int)t->data_type);
	long long n = const_count(t);
	if (n < 0 || n > max)
		return fail(im, "'%.80s' has %lld values; expected at most %d", v->onnx, n, max);
	if (t->has_raw_data && t->raw_data.len) {
		if (t->raw_data.len != (size_t)n * 8)
			return fail(im, "'%.80s' has %zu bytes of data for %lld int64s", v->onnx, t->raw_data.len, n);
		for (long long i = 0; i < n; i++) {
			uint64_t u = 0;
			for (int k = 7; k >= 0; k--)
				u = u << 8 | t->raw_data.data[8 * i + k];
			out[i] = (int64_t)u;
		}
	} else if ((long long)t->n_int64_data == n) {
		memcpy(out, t->int64_data, (size_t)n * sizeof *out);
	} else {
		return fail(im, "'%.80s' has %zu values for a shape of %lld", v->onnx, t->n_int64_data, n);
	}
	*count = (int)n;
	return 0;
}

/* --- node inputs and attributes --------------------------------------------- */

static const char *in_name(const node_t *n, int k)
{
	return k < (int)n->n_input && n->input[k] && n->input[k][0] ? n->input[k] : NULL;
}

static value *input(importer *im, const node_t *n, int k, int want_const)
{
	const char *name = in_name(n, k);
	if (!name) {
		fail(im, "input %d is missing", k);
		return NULL;
	}
	value *v = find(im, name);
	if (!v) {
		fail(im, "input %d '%.80s' is neither an initializer, a graph input nor an earlier node's "
		     "output", k, name);
		return NULL;
	}
	if (want_const == 1 && !v->is_const) {
		fail(im, "input %d '%.80s' is computed by the graph; brnc needs it as an initializer", k, name);
		return NULL;
	}
	if (want_const == 0 && v->is_const) {
		fail(im, "input %d '%.80s' is a constant; expected a tensor the graph computes", k, name);
		return NULL;
	}
	if ((v->pad[0] || v->pad[1]) && (!n->op_type || (strcmp(n->op_type, "Conv") && strcmp(n->op_type, "AveragePool")))) {
		fail(im, "input %d '%.80s' comes from a Pad, which brnc reads only right before a Conv or an "
		     "AveragePool", k, name);
		return NULL;
	}
	return v;
}

static const Onnx__AttributeProto *attr(const node_t *n, const char *name)
{
	for (size_t i = 0; i < n->n_attribute; i++)
		if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
			return n->attribute[i];
	return NULL;
}

static long long attr_int(const node_t *n, const char *name, long long dflt)
{
	const Onnx__AttributeProto *a = attr(n, name);
	return a ? a->i : dflt;
}

static double attr_float(const node_t *n, const char *name, double dflt)
{
	const Onnx__AttributeProto *a = attr(n, name);
	return a ? a->f : dflt;
}

/* An ints attribute of exactly `len` values (absent: dflt for all). */
static int attr_ints(importer *im, const node_t *n, const char *name, int len, long long dflt,
                     long long *out)
{
	const Onnx__AttributeProto *a = attr(n, name);
	if (!a) {
		for (int i = 0; i < len; i++)
			out[i] = dflt;
		return 0;
	}
	if ((int)a->n_ints != len)
		return fail(im, "attribute %s has %zu values; expected %d", name, a->n_ints, len);
	for (int i = 0; i < len; i++) {
		if (a->ints[i] < -(1LL << 30) || a->ints[i] > (1LL << 30))
			return fail(im, "attribute %s value %lld is out of range", name, (long long)a->ints[i]);
		out[i] = a->ints[i];
	}
	return 0;
}

/* --- the output of a node --------------------------------------------------- */

static value *define(importer *im, const node_t *n, const char *brn, int rank, int c, int h, int w)
{
	if (n->n_output < 1 || !n->output[0] || !n->output[0][0]) {
		fail(im, "the node has no output");
		return NULL;
	}
	for (size_t k = 1; k < n->n_output; k++)
		if (n->output[k] && n->output[k][0]) {
			fail(im, "output %zu '%.80s' is not supported (brnc computes only the first output)", k,
			     n->output[k]);
			return NULL;
		}
	if (find(im, n->output[0])) {
		fail(im, "output '%.80s' is defined twice", n->output[0]);
		return NULL;
	}
	value *v = add_value(im, n->output[0]);
	if (!v)
		return NULL;
	v->brn = brn;
	v->rank = rank;
	v->c = c;
	v->h = h;
	v->w = w;
	v->op = im->node;
	return v;
}

/* The statement's target: the layer name from the weight initializer
 * ("layer1.0.conv1.weight" -> layer1_0_conv1), else the node's, else its
 * output's. */
/* PyTorch 2's node names are module paths, "/layer1/layer1.0/conv1/Conv":
 * the op type at the end and a component that the next one repeats
 * ("layer1" before "layer1.0") go, so the name is that of the module,
 * layer1.0.conv1, as with the BatchNorms kept. */
static const char *scope_name(const char *name, const char *op, char *buf, size_t size)
{
	const char *part[32];
	size_t len[32];
	int k = 0;
	for (const char *c = name; *c && k < 32;) {
		while (*c == '/')
			c++;
		size_t l = strcspn(c, "/");
		if (l) {
			part[k] = c;
			len[k++] = l;
		}
		c += l;
	}
	/* "Conv", or "Conv_3" */
	size_t ol = op ? strlen(op) : 0;
	if (k > 1 && ol && len[k - 1] >= ol && !strncmp(part[k - 1], op, ol) &&
	    (len[k - 1] == ol || part[k - 1][ol] == '_'))
		k--;
	size_t at = 0;
	buf[0] = 0;
	for (int i = 0; i < k; i++) {
		if (i + 1 < k && len[i + 1] > len[i] && !strncmp(part[i + 1], part[i], len[i]) &&
		    part[i + 1][len[i]] == '.')
			continue;
		int w = snprintf(buf + at, size - at, "%s%.*s", at ? "_" : "", (int)len[i], part[i]);
		if (w < 0 || (size_t)w >= size - at)
			break;
		at += (size_t)w;
	}
	return buf;
}

static const char *layer_name(importer *im, const node_t *n, const value *weight)
{
	char buf[256];
	if (weight) {
		size_t len = strlen(weight->onnx);
		if (len > 7 && !strcmp(weight->onnx + len - 7, ".weight")) {
			char *s = brn_arena_strndup(im->a, weight->onnx, len - 7);
			return s ? brn_name(im, s) : NULL;
		}
	}
	if (n->name && n->name[0] == '/')
		return brn_name(im, scope_name(n->name, n->op_type, buf, sizeof buf));
	if (n->name && n->name[0])
		return brn_name(im, n->name);
	return brn_name(im, n->n_output ? n->output[0] : "t");
}

static int add_weight(importer *im, const char *layer, const char *suffix, const value *src, int slot,
                      int ndim, const int64_t *shape, float *data)
{
	if (im->nw == im->capw) {
		int cap = im->capw ? im->capw * 2 : 64;
		brn_onnx_weight *w = brn_arena_alloc(im->a, (size_t)cap * sizeof *w);
		if (!w)
			return fail(im, "out of memory");
		if (im->nw)
			memcpy(w, im->w, (size_t)im->nw * sizeof *w);
		im->w = w;
		im->capw = cap;
	}
	brn_onnx_weight *w = &im->w[im->nw++];
	memset(w, 0, sizeof *w);
	w->name = brn_arena_printf(im->a, "%s.%s", layer, suffix);
	w->onnx = src->onnx;
	w->init = src->src;
	w->ndim = ndim;
	memcpy(w->shape, shape, (size_t)ndim * sizeof *shape);
	w->data = data;
	w->eps = -1;
	w->node = im->node;
	w->slot = slot;
	return w->name ? 0 : fail(im, "out of memory");
}

/* --- operators -------------------------------------------------------------- */

static int need_rank(importer *im, const value *x, int rank)
{
	if (x->rank != rank)
		return fail(im, "input '%.80s' has %d dimensions; expected %d", x->onnx, x->rank, rank);
	return 0;
}

/* Window attributes of Conv and the pools: kernel, strides, pads (asymmetric
 * pads are accepted where they give the same windows as symmetric ones),
 * dilations 1, auto_pad. */
static int window(importer *im, const node_t *n, const value *x, const long long kernel[2],
                  long long stride[2], long long pad[2], int out[2])
{
	long long pads[4], dil[2];
	if (attr_ints(im, n, "strides", 2, 1, stride) || attr_ints(im, n, "pads", 4, 0, pads) ||
	    attr_ints(im, n, "dilations", 2, 1, dil))
		return -1;
	if (dil[0] != 1 || dil[1] != 1)
		return fail(im, "dilation %lldx%lld is not supported (brnc has no dilated windows)", dil[0], dil[1]);
	if (attr_int(n, "ceil_mode", 0))
		return fail(im, "ceil_mode=1 is not supported (brnc rounds output sizes down)");
	int in[2] = {x->h, x->w};
	for (int k = 0; k < 2; k++)
		if (stride[k] < 1 || kernel[k] < 1 || pads[k] < 0 || pads[k + 2] < 0 || pads[k] > 65536 ||
		    pads[k + 2] > 65536)
			return fail(im, "kernel, strides and pads must be positive (pads non-negative)");
	if ((x->pad[0] || x->pad[1]) && attr(n, "auto_pad"))
		return fail(im, "auto_pad after a Pad is not supported");
	const Onnx__AttributeProto *ap = attr(n, "auto_pad");
	if (ap && ap->has_s && ap->s.len) {
		char mode[16] = "";
		snprintf(mode, sizeof mode, "%.*s", (int)(ap->s.len < 15 ? ap->s.len : 15), (const char *)ap->s.data);
		if (!strcmp(mode, "VALID")) {
			memset(pads, 0, sizeof pads);
		} else if (!strcmp(mode, "SAME_UPPER") || !strcmp(mode, "SAME_LOWER")) {
			for (int k = 0; k < 2; k++) {
				long long o = (in[k] + stride[k] - 1) / stride[k];
				long long total = (o - 1) * stride[k] + kernel[k] - in[k];
				if (total < 0)
					total = 0;
				pads[k] = mode[5] == 'U' ? total / 2 : total - total / 2;
				pads[k + 2] = total - pads[k];
			}
		} else if (strcmp(mode, "NOTSET")) {
			return fail(im, "auto_pad '%s' is not supported", mode);
		}
	}
	for (int k = 0; k < 2; k++) {
		/* a Pad before: its zeros are the window's padding */
		pads[k] += x->pad[k];
		pads[k + 2] += x->pad[k];
		long long span = in[k] + pads[k] + pads[k + 2] - kernel[k];
		if (span < 0)
			return fail(im, "kernel %lldx%lld is larger than the padded input", kernel[0], kernel[1]);
		long long o = span / stride[k] + 1;
		/* begin pads both sides: the same windows when the count agrees */
		long long sym = in[k] + 2 * pads[k] - kernel[k];
		if (pads[k] != pads[k + 2] && (sym < 0 || sym / stride[k] + 1 != o))
			return fail(im, "asymmetric pads [%lld, %lld, %lld, %lld] are not supported (brnc pads "
			            "both sides alike)", pads[0], pads[1], pads[2], pads[3]);
		pad[k] = pads[k];
		out[k] = (int)o;
	}
	return 0;
}

static int op_conv(importer *im, const node_t *n)
{
	value *x = input(im, n, 0, 0), *wt = x ? input(im, n, 1, 1) : NULL;
	if (!wt || need_rank(im, x, 4))
		return -1;
	const value *b = NULL;
	if (in_name(n, 2) && !(b = input(im, n, 2, 1)))
		return -1;
	const tensor_t *t = wt->t;
	if (t->n_dims != 4)
		return fail(im, "weight '%.80s' has %zu dimensions; expected 4", wt->onnx, t->n_dims);
	long long groups = attr_int(n, "group", 1);
	if (groups < 1 || groups > x->c || x->c % groups)
		return fail(im, "group %lld does not divide the %d input channels", groups, x->c);
	if (t->dims[1] != x->c / groups || t->dims[0] < 1 || t->dims[0] % groups)
		return fail(im, "weight '%.80s' has shape [%lld, %lld, ...]; expected [K, %lld, ...] for %d "
		            "input channels in %lld groups", wt->onnx, (long long)t->dims[0],
		            (long long)t->dims[1], x->c / groups, x->c, groups);
	long long kernel[2] = {t->dims[2], t->dims[3]}, ks[2], stride[2], pad[2];
	if (attr_ints(im, n, "kernel_shape", 2, 0, ks))
		return -1;
	if (attr(n, "kernel_shape") && (ks[0] != kernel[0] || ks[1] != kernel[1]))
		return fail(im, "kernel_shape %lldx%lld differs from the weight's %lldx%lld", ks[0], ks[1],
		            kernel[0], kernel[1]);
	int out[2];
	if (window(im, n, x, kernel, stride, pad, out))
		return -1;
	float *wd, *bd = NULL;
	long long wn, bn;
	if (const_floats(im, wt, &wd, &wn) || (b && const_floats(im, b, &bd, &bn)))
		return -1;
	int k = (int)t->dims[0];
	if (b && (b->t->n_dims != 1 || bn != k))
		return fail(im, "bias '%.80s' has %lld values; expected %d", b->onnx, bn, k);
	const char *name = layer_name(im, n, wt);
	if (!name || !define(im, n, name, 4, k, out[0], out[1]))
		return -1;
	int64_t ws[4] = {t->dims[0], t->dims[1], t->dims[2], t->dims[3]}, bs[1] = {k};
	if (add_weight(im, name, "weight", wt, 1, 4, ws, wd) || (b && add_weight(im, name, "bias", b, 2, 1, bs, bd)))
		return -1;
	return emit(im, "%s = conv(%s, %d, kernel=[%lld, %lld], stride=[%lld, %lld], pad=[%lld, %lld], "
	            "groups=%lld, bias=%s);\n", name, x->brn, k, kernel[0], kernel[1], stride[0], stride[1],
	            pad[0], pad[1], groups, b ? "true" : "false");
}

static int op_batchnorm(importer *im, const node_t *n)
{
	value *x = input(im, n, 0, 0);
	if (!x)
		return -1;
	if (attr_int(n, "training_mode", 0))
		return fail(im, "training_mode=1 is not supported; export the model in eval mode "
		            "(brnc trains with --mode train)");
	if (attr(n, "spatial") && attr_int(n, "spatial", 1) != 1)
		return fail(im, "spatial=0 is not supported");
	double eps = attr_float(n, "epsilon", 1e-5), momentum = attr_float(n, "momentum", 0.9);
	static const char *const what[] = {"gamma", "beta", "mean", "sigma"};
	float *data[4];
	const value *p[4];
	for (int k = 0; k < 4; k++) {
		long long cnt;
		if (!(p[k] = input(im, n, k + 1, 1)) || const_floats(im, p[k], &data[k], &cnt))
			return -1;
		if (cnt != x->c)
			return fail(im, "'%.80s' has %lld values; expected one per channel (%d)", p[k]->onnx, cnt, x->c);
	}
	for (int c = 0; c < x->c; c++) {
		double var = data[3][c];
		if (var + eps <= 0)
			return fail(im, "variance %g of channel %d plus epsilon is not positive", var, c);
		data[3][c] = (float)sqrt(var + eps);
	}
	const char *name = layer_name(im, n, p[0]);
	if (!name || !define(im, n, name, x->rank, x->c, x->h, x->w))
		return -1;
	int64_t shape[1] = {x->c};
	for (int k = 0; k < 4; k++)
		if (add_weight(im, name, what[k], p[k], k + 1, 1, shape, data[k]))
			return -1;
	im->w[im->nw - 1].eps = eps;
	return emit(im, "%s = %s(%s, eps=%.9g, alpha=%.9g);\n", name, im->o->renorm ? "batch_renorm" : "batch_norm",
	            x->brn, eps, 1.0 - momentum);
}

/* Clip(0, 6) is relu6, Clip(0, inf) relu; min and max are attributes
 * before opset 11, inputs from it. */
static int op_clip(importer *im, const node_t *n, value *x)
{
	double lo = -FLT_MAX, hi = FLT_MAX;
	if (im->opset < 11) {
		lo = attr_float(n, "min", lo);
		hi = attr_float(n, "max", hi);
	} else {
		for (int k = 1; k <= 2; k++) {
			if (!in_name(n, k))
				continue;
			value *c = input(im, n, k, 1);
			float *f;
			long long cnt;
			if (!c || const_floats(im, c, &f, &cnt))
				return -1;
			if (cnt != 1)
				return fail(im, "'%.80s' has %lld values; expected a scalar", c->onnx, cnt);
			*(k == 1 ? &lo : &hi) = f[0];
		}
	}
	/* on a relu's output any lower bound <= 0 is 0 (opset 9 exports
	 * relu6 as Relu, Clip(-inf, 6)) */
	if (x->nonneg && lo < 0)
		lo = 0;
	const char *op = lo == 0 && hi == 6 ? "relu6" : lo == 0 && hi >= FLT_MAX ? "relu" : NULL;
	if (!op)
		return fail(im, "Clip(%g, %g) is not supported; brnc has Clip(0, 6) as relu6 and Clip(0) as relu",
		            lo, hi);
	const char *name = layer_name(im, n, NULL);
	value *v = name ? define(im, n, name, x->rank, x->c, x->h, x->w) : NULL;
	if (!v)
		return -1;
	v->nonneg = 1;
	return emit(im, "%s = %s(%s);\n", name, op, x->brn);
}

static int op_pool(importer *im, const node_t *n, value *x, int avg)
{
	if (need_rank(im, x, 4))
		return -1;
	if (attr_int(n, "storage_order", 0))
		return fail(im, "storage_order=1 is not supported");
	long long kernel[2], stride[2], pad[2];
	if (!attr(n, "kernel_shape"))
		return fail(im, "attribute kernel_shape is missing");
	if (attr_ints(im, n, "kernel_shape", 2, 0, kernel))
		return -1;
	int out[2];
	if (window(im, n, x, kernel, stride, pad, out))
		return -1;
	int padded = x->pad[0] || x->pad[1];
	if (padded && !avg)
		return fail(im, "a Pad before MaxPool is not supported");
	if (padded && attr(n, "pads") && pad[0] + pad[1] != x->pad[0] + x->pad[1])
		return fail(im, "pads of both a Pad and the AveragePool are not supported");
	/* a Pad's zeros are inputs that the average counts */
	int include = avg && (padded || attr_int(n, "count_include_pad", 0)) && (pad[0] || pad[1]);
	const char *name = layer_name(im, n, NULL);
	if (!name || !define(im, n, name, 4, x->c, out[0], out[1]))
		return -1;
	return emit(im, "%s = %s(%s, [%lld, %lld], stride=[%lld, %lld], pad=[%lld, %lld]%s);\n", name,
	            avg ? "avgpool" : "maxpool", x->brn, kernel[0], kernel[1], stride[0], stride[1], pad[0],
	            pad[1], include ? ", count_include_pad=true" : "");
}

/* Dense from Gemm or MatMul (+ a bias Add that follows it). ONNX's B is
 * [in, out] unless transposed; brnc's weight is [out, in], as PyTorch's. */
static int op_dense(importer *im, const node_t *n, value *x, int gemm)
{
	if (need_rank(im, x, 2))
		return -1;
	value *b = input(im, n, 1, 1);
	if (!b)
		return -1;
	int trans_b = 0;
	const value *bias = NULL;
	int bias_node = im->node, bias_slot = 2;
	if (gemm) {
		if (attr_int(n, "transA", 0))
			return fail(im, "transA=1 is not supported");
		if (attr_float(n, "alpha", 1) != 1 || attr_float(n, "beta", 1) != 1)
			return fail(im, "alpha and beta other than 1 are not supported");
		trans_b = attr_int(n, "transB", 0) != 0;
		if (in_name(n, 2) && !(bias = input(im, n, 2, 1)))
			return -1;
	}
	if (b->t->n_dims != 2)
		return fail(im, "'%.80s' has %zu dimensions; expected 2", b->onnx, b->t->n_dims);
	long long in = b->t->dims[trans_b ? 1 : 0], out = b->t->dims[trans_b ? 0 : 1];
	if (in != x->c)
		return fail(im, "'%.80s' has shape [%lld, %lld]; expected %d input features", b->onnx,
		            (long long)b->t->dims[0], (long long)b->t->dims[1], x->c);
	const node_t *addn = NULL;
	if (!gemm) {
		/* the Add of a bias right after, when it is MatMul's only reader */
		int readers = 0, at = -1;
		for (size_t i = (size_t)im->node + 1; i < im->gr->n_node; i++)
			for (size_t k = 0; k < im->gr->node[i]->n_input; k++)
				if (im->gr->node[i]->input[k] && !strcmp(im->gr->node[i]->input[k], n->output[0])) {
					readers++;
					at = (int)i;
				}
		if (readers == 1 && im->gr->node[at]->op_type && !strcmp(im->gr->node[at]->op_type, "Add") &&
		    im->gr->node[at]->n_input == 2) {
			const node_t *a = im->gr->node[at];
			int other = !strcmp(a->input[0], n->output[0]) ? 1 : 0;
			value *c = find(im, a->input[other]);
			if (c && c->is_const) {
				addn = a;
				bias = c;
				bias_node = at;
				bias_slot = other;
				im->skip[at] = 1;
			}
		}
	}
	float *wd, *bd = NULL;
	long long wn, bn;
	if (const_floats(im, b, &wd, &wn) || (bias && const_floats(im, bias, &bd, &bn)))
		return -1;
	if (bias && bn != out)
		return fail(im, "bias '%.80s' has %lld values; expected %lld", bias->onnx, bn, out);
	float *w = wd;
	if (!trans_b) {
		if (!(w = brn_arena_alloc(im->a, (size_t)wn * sizeof *w)))
			return fail(im, "out of memory");
		for (long long i = 0; i < in; i++)
			for (long long o = 0; o < out; o++)
				w[o * in + i] = wd[i * out + o];
	}
	const char *name = layer_name(im, n, b);
	if (!name)
		return -1;
	const node_t *def = addn ? addn : n;
	int save = im->node;
	im->node = addn ? bias_node : im->node;
	value *v = define(im, def, name, 2, (int)out, 1, 1);
	im->node = save;
	if (!v)
		return -1;
	int64_t ws[2] = {out, in}, bs[1] = {out};
	if (add_weight(im, name, "weight", b, 1, 2, ws, w))
		return -1;
	im->w[im->nw - 1].transposed = !trans_b;
	if (bias) {
		if (add_weight(im, name, "bias", bias, bias_slot, 1, bs, bd))
			return -1;
		im->w[im->nw - 1].node = bias_node;
	}
	return emit(im, "%s = dense(%s, %lld, bias=%s);\n", name, x->brn, out, bias ? "true" : "false");
}

static int op_reshape(importer *im, const node_t *n, value *x)
{
	value *s = input(im, n, 1, 1);
	int64_t shape[8] = {0};
	int cnt = 0;
	if (!s || const_ints(im, s, shape, 8, &cnt))
		return -1;
	long long flat = (long long)x->c * x->h * x->w;
	if (cnt != 2 || (shape[0] != 0 && shape[0] != -1 && shape[0] < 1) ||
	    (shape[1] != -1 && shape[1] != flat) || (shape[0] == -1 && shape[1] == -1))
		return fail(im, "Reshape to [%lld%s] is not supported; brnc reshapes [N, C, H, W] to [N, C*H*W] "
		            "(here [N, %lld])", cnt ? (long long)shape[0] : 0LL, cnt > 1 ? ", ..." : "", flat);
	const char *name = layer_name(im, n, NULL);
	if (!name || !define(im, n, name, 2, (int)flat, 1, 1))
		return -1;
	return emit(im, "%s = flatten(%s);\n", name, x->brn);
}

/* Identity and Dropout: the output is the input, tensor or constant. */
static int op_alias(importer *im, const node_t *n)
{
	value *x = NULL;
	if (!in_name(n, 0) || !(x = find(im, n->input[0])))
		return fail(im, "input 0 '%.80s' is not defined before the node", in_name(n, 0) ? n->input[0] : "");
	value copy = *x;
	value *v = define(im, n, copy.brn, copy.rank, copy.c, copy.h, copy.w);
	if (!v)
		return -1;
	const char *name = v->onnx;
	*v = copy;
	v->onnx = name;
	return 0;
}

/* Pad with zeros on H and W (alike on both sides): kept on the value for
 * the Conv or AveragePool that reads it. Pads are an attribute before
 * opset 11, an input from it. */
static int op_pad(importer *im, const node_t *n, value *x)
{
	int64_t pads[8] = {0};
	int cnt = 0;
	const Onnx__AttributeProto *mode = attr(n, "mode");
	if (mode && mode->has_s && (mode->s.len != 8 || memcmp(mode->s.data, "constant", 8)))
		return fail(im, "only mode 'constant' is supported");
	if (im->opset < 11) {
		const Onnx__AttributeProto *a = attr(n, "pads");
		if (!a || a->n_ints > 8)
			return fail(im, "attribute pads is missing or too long");
		cnt = (int)a->n_ints;
		memcpy(pads, a->ints, a->n_ints * sizeof *pads);
		if (attr_float(n, "value", 0) != 0)
			return fail(im, "padding with %g is not supported (brnc pads with zeros)", attr_float(n, "value", 0));
	} else {
		value *p = input(im, n, 1, 1);
		if (!p || const_ints(im, p, pads, 8, &cnt))
			return -1;
		if (in_name(n, 2)) {
			value *c = input(im, n, 2, 1);
			float *f;
			long long nc;
			if (!c || const_floats(im, c, &f, &nc))
				return -1;
			if (nc != 1 || f[0] != 0)
				return fail(im, "padding with a value other than 0 is not supported (brnc pads with zeros)");
		}
		if (in_name(n, 3))
			return fail(im, "the axes input is not supported");
	}
	if (x->rank != 4 || cnt != 8 || pads[0] || pads[1] || pads[4] || pads[5] || pads[2] != pads[6] ||
	    pads[3] != pads[7] || pads[2] < 0 || pads[3] < 0 || pads[2] > 65536 || pads[3] > 65536)
		return fail(im, "brnc reads a Pad of [N, C, H, W] by the same amount on both sides of H and W");
	value copy = *x;
	value *v = define(im, n, copy.brn, 4, copy.c, copy.h, copy.w);
	if (!v)
		return -1;
	v->pad[0] = copy.pad[0] + (int)pads[2];
	v->pad[1] = copy.pad[1] + (int)pads[3];
	v->op = copy.op;
	return 0;
}

/* Cast to float: tensors are float already; a float constant stays. */
static int op_cast(importer *im, const node_t *n)
{
	if (attr_int(n, "to", 0) != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
		return fail(im, "Cast to type %lld is not supported (brnc computes in float)", attr_int(n, "to", 0));
	value *x = NULL;
	if (!in_name(n, 0) || !(x = find(im, n->input[0])))
		return fail(im, "input 0 '%.80s' is not defined before the node", in_name(n, 0) ? n->input[0] : "");
	if (x->is_const && x->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
		return fail(im, "Cast of the constant '%.80s' of type %d is not supported", x->onnx, (int)x->t->data_type);
	return op_alias(im, n);
}

static int op_constant(importer *im, const node_t *n)
{
	const Onnx__AttributeProto *a = attr(n, "value");
	if (!a || !a->t)
		return fail(im, "only the 'value' attribute (a tensor) is supported");
	value *v = define(im, n, NULL, 0, 0, 0, 0);
	if (!v)
		return -1;
	v->is_const = 1;
	v->t = a->t;
	v->src = v->onnx;
	return 0;
}

static int translate(importer *im, int i)
{
	const node_t *n = im->gr->node[i];
	const char *op = n->op_type ? n->op_type : "";
	im->node = i;
	if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
		return fail(im, "operator domain '%.60s' is not supported (brnc reads the default domain)", n->domain);
	if (!strcmp(op, "Identity") || !strcmp(op, "Dropout"))
		return op_alias(im, n);
	if (!strcmp(op, "Constant"))
		return op_constant(im, n);
	if (!strcmp(op, "Cast"))
		return op_cast(im, n);
	if (!strcmp(op, "Conv"))
		return op_conv(im, n);
	if (!strcmp(op, "BatchNormalization"))
		return op_batchnorm(im, n);
	static const char *const unary[] = {"Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
	                                    "Flatten", "Reshape", "Gemm", "MatMul", "Softmax", "Add", "Pad"};
	int known = 0;
	for (size_t k = 0; k < sizeof unary / sizeof *unary; k++)
		known |= !strcmp(op, unary[k]);
	if (!known)
		return fail(im, "unsupported operator; brnc reads Add, AveragePool, BatchNormalization, Cast, Clip, "
		            "Constant, Conv, Dropout, Flatten, Gemm, GlobalAveragePool, Identity, MatMul, "
		            "MaxPool, Pad, Relu, Reshape, Softmax");
	value *x = input(im, n, 0, 0);
	if (!x)
		return -1;
	if (!strcmp(op, "Clip"))
		return op_clip(im, n, x);
	if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool"))
		return op_pool(im, n, x, op[0] == 'A');
	if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul"))
		return op_dense(im, n, x, op[0] == 'G');
	if (!strcmp(op, "Reshape"))
		return op_reshape(im, n, x);
	if (!strcmp(op, "Pad"))
		return op_pad(im, n, x);
	const char *name;
	if (!strcmp(op, "Add")) {
		value *y = input(im, n, 1, -1);
		if (!y)
			return -1;
		if (y->is_const)
			return fail(im, "adding a constant is supported only as the bias right after a MatMul");
		if (y->rank != x->rank || y->c != x->c || y->h != x->h || y->w != x->w)
			return fail(im, "inputs '%.80s' and '%.80s' differ in shape (brnc adds equal shapes)",
			            x->onnx, y->onnx);
		if (!(name = layer_name(im, n, NULL)) || !define(im, n, name, x->rank, x->c, x->h, x->w))
			return -1;
		return emit(im, "%s = add(%s, %s);\n", name, x->brn, y->brn);
	}
	if (!strcmp(op, "Relu")) {
		value *v = (name = layer_name(im, n, NULL)) ? define(im, n, name, x->rank, x->c, x->h, x->w) : NULL;
		if (!v)
			return -1;
		v->nonneg = 1;
		return emit(im, "%s = relu(%s);\n", name, x->brn);
	}
	if (!strcmp(op, "GlobalAveragePool")) {
		if (need_rank(im, x, 4) || !(name = layer_name(im, n, NULL)) || !define(im, n, name, 4, x->c, 1, 1))
			return -1;
		return emit(im, "%s = global_avgpool(%s);\n", name, x->brn);
	}
	if (!strcmp(op, "Flatten")) {
		if (attr_int(n, "axis", 1) != 1)
			return fail(im, "axis=%lld is not supported; brnc flattens from axis 1", attr_int(n, "axis", 1));
		if (!(name = layer_name(im, n, NULL)) || !define(im, n, name, 2, x->c * x->h * x->w, 1, 1))
			return -1;
		return emit(im, "%s = flatten(%s);\n", name, x->brn);
	}
	/* Softmax */
	long long axis = attr_int(n, "axis", im->opset < 13 ? 1 : -1);
	if (x->rank != 2 || (axis != 1 && axis != -1))
		return fail(im, "softmax over axis %lld of a %d-D tensor is not supported; brnc takes it over the "
		            "features of [N, F]", axis, x->rank);
	if (!(name = layer_name(im, n, NULL)) || !define(im, n, name, 2, x->c, 1, 1))
		return -1;
	return emit(im, "%s = softmax(%s);\n", name, x->brn);
}

/* --- the model -------------------------------------------------------------- */

static int read_all(const char *path, uint8_t **data, size_t *len, brn_diag *d)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return brn_diag_error(d, path, 0, 0, "cannot open: %s", strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return brn_diag_error(d, path, 0, 0, "not a regular file");
	}
	if (st.st_size > (off_t)INT32_MAX) {
		fclose(f);
		return brn_diag_error(d, path, 0, 0, "file is larger than 2 GiB (ONNX's protobuf limit)");
	}
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fclose(f);
		return brn_diag_error(d, path, 0, 0, "out of memory reading the file");
	}
	size_t n = fread(buf, 1, (size_t)st.st_size, f);
	int bad = ferror(f) || n != (size_t)st.st_size;
	fclose(f);
	if (bad) {
		free(buf);
		return brn_diag_error(d, path, 0, 0, "read error");
	}
	*data = buf;
	*len = n;
	return 0;
}

int brn_onnx_sniff(const char *path)
{
	size_t n = strlen(path);
	if (n > 5 && !strcmp(path + n - 5, ".onnx"))
		return 1;
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	int c = fgetc(f);
	fclose(f);
	return c == 0x08;
}

static Onnx__ModelProto *unpack_mem(const char *path, const void *data, size_t len, brn_diag *d)
{
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, data);
	if (!m)
		brn_diag_error(d, path, 0, 0, "not an ONNX model: the protobuf data is malformed or truncated");
	else if (!m->graph) {
		onnx__model_proto__free_unpacked(m, NULL);
		m = NULL;
		brn_diag_error(d, path, 0, 0, "not an ONNX model: it has no graph");
	}
	return m;
}

static Onnx__ModelProto *unpack(const char *path, brn_diag *d)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (read_all(path, &data, &len, d))
		return NULL;
	Onnx__ModelProto *m = unpack_mem(path, data, len, d);
	free(data);
	return m;
}

/* The graph input: one float tensor [N, C, H, W] or [N, F], static but
 * for N. */
static int graph_input(importer *im, int *batch)
{
	const Onnx__ValueInfoProto *in = NULL;
	int count = 0;
	for (size_t i = 0; i < im->gr->n_input; i++) {
		const Onnx__ValueInfoProto *v = im->gr->input[i];
		if (!v->name || find(im, v->name))
			continue; /* an initializer listed as input (IR < 4) */
		in = v;
		count++;
	}
	if (count != 1)
		return fail(im, "the graph has %d inputs besides its initializers; brnc compiles models with one", count);
	const Onnx__TypeProto *t = in->type;
	if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type->shape)
		return fail(im, "input '%.80s' is not a tensor of known rank", in->name);
	if (t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
		return fail(im, "input '%.80s' has element type %d; expected float (1)", in->name,
		            (int)t->tensor_type->elem_type);
	const Onnx__TensorShapeProto *s = t->tensor_type->shape;
	if (s->n_dim != 4 && s->n_dim != 2)
		return fail(im, "input '%.80s' has %zu dimensions; expected [N, C, H, W] or [N, F]", in->name, s->n_dim);
	long long dims[4] = {1, 1, 1, 1};
	for (size_t k = 0; k < s->n_dim; k++) {
		const Onnx__TensorShapeProto__Dimension *dim = s->dim[k];
		if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value >= 1 &&
		    dim->dim_value <= 65536) {
			dims[k] = dim->dim_value;
			continue;
		}
		if (k == 0) {
			dims[0] = 0; /* a dynamic batch: brnc's batch decides */
			continue;
		}
		const char *p = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM ? dim->dim_param : "";
		return fail(im, "input '%.80s' has a dynamic or invalid dimension %zu%s%.40s%s; brnc compiles static "
		            "shapes (export with a fixed input size)", in->name, k, p[0] ? " '" : "", p, p[0] ? "'" : "");
	}
	const char *name = brn_name(im, in->name);
	value *v = name ? add_value(im, in->name) : NULL;
	if (!v)
		return -1;
	v->brn = name;
	v->rank = (int)s->n_dim;
	v->c = (int)dims[1];
	v->h = (int)dims[2];
	v->w = (int)dims[3];
	*batch = (int)dims[0];
	if (v->rank == 4)
		return emit(im, "input %s[%d, %d, %d];\n", name, v->c, v->h, v->w);
	return emit(im, "input %s[%d];\n", name, v->c);
}

static int import(importer *im)
{
	Onnx__ModelProto *m = im->m;
	im->opset = -1;
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *o = m->opset_import[i];
		if (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx"))
			im->opset = (int)o->version;
	}
	if (im->opset < 0)
		return fail(im, "the model imports no opset of the default domain");
	if (im->opset < OPSET_MIN || im->opset > OPSET_MAX)
		return fail(im, "opset %d is not supported (brnc reads opsets %d to %d)", im->opset, OPSET_MIN, OPSET_MAX);
	if (im->gr->n_node > MAX_NODES)
		return fail(im, "the graph has %zu nodes; brnc reads at most %d", im->gr->n_node, MAX_NODES);
	if (emit(im, "# imported from ONNX (opset %d)\nmodel %s;\n", im->opset, im->o->name))
		return -1;
	for (size_t i = 0; i < im->gr->n_initializer; i++) {
		tensor_t *t = im->gr->initializer[i];
		if (!t->name || !t->name[0])
			return fail(im, "initializer %zu has no name", i);
		value *v = add_value(im, t->name);
		if (!v)
			return -1;
		v->is_const = 1;
		v->t = t;
		v->src = t->name;
	}
	int batch = 0;
	if (graph_input(im, &batch))
		return -1;
	if (batch > 1 && emit(im, "batch %d;\n", batch))
		return -1;
	if (!(im->skip = calloc(im->gr->n_node + 1, sizeof *im->skip)))
		return fail(im, "out of memory");
	for (size_t i = 0; i < im->gr->n_node; i++)
		if (!im->skip[i] && translate(im, (int)i))
			return -1;
	im->node = -1;
	if (im->gr->n_output != 1)
		return fail(im, "the graph has %zu outputs; brnc compiles models with one", im->gr->n_output);
	const char *oname = im->gr->output[0]->name ? im->gr->output[0]->name : "";
	const value *out = find(im, oname);
	if (!out || out->is_const)
		return fail(im, "output '%.80s' is not computed by the graph", oname);
	if (im->o->train) {
		/* the loss reads logits: a final softmax's input */
		const value *logits = out;
		if (out->op >= 0 && !strcmp(im->gr->node[out->op]->op_type, "Softmax"))
			logits = find(im, im->gr->node[out->op]->input[0]);
		if (!logits || logits->rank != 2 || logits->c < 2)
			return fail(im, "--mode train needs a flat output of at least 2 classes for its loss");
		const char *y = brn_name(im, "labels");
		if (!y || emit(im, "labels %s[%d];\nloss softmax_cross_entropy(%s, %s);\n", y, logits->c, logits->brn, y))
			return -1;
	}
	return emit(im, "output %s;\n", out->brn);
}

static int import_model(Onnx__ModelProto *m, const char *path, const brn_onnx_options *o, brn_arena *a,
                        brn_onnx_import *res, brn_diag *d);

int brn_onnx_import_file(const char *path, const brn_onnx_options *o, brn_arena *a,
                         brn_onnx_import *res, brn_diag *d)
{
	memset(res, 0, sizeof *res);
	Onnx__ModelProto *m = unpack(path, d);
	return m ? import_model(m, path, o, a, res, d) : -1;
}

int brn_onnx_import_mem(const char *name, const void *data, size_t len, const brn_onnx_options *o,
                        brn_arena *a, brn_onnx_import *res, brn_diag *d)
{
	memset(res, 0, sizeof *res);
	Onnx__ModelProto *m = unpack_mem(name, data, len, d);
	return m ? import_model(m, name, o, a, res, d) : -1;
}

/* Translates m and frees it. */
static int import_model(Onnx__ModelProto *m, const char *path, const brn_onnx_options *o, brn_arena *a,
                        brn_onnx_import *res, brn_diag *d)
{
	importer im;
	memset(&im, 0, sizeof im);
	im.path = path;
	im.o = o;
	im.a = a;
	im.d = d;
	im.node = -1;
	im.m = m;
	im.gr = im.m->graph;
	int rc = import(&im);
	if (!rc) {
		res->text = brn_arena_strndup(a, im.text, im.len);
		res->len = im.len;
		res->w = im.w;
		res->nw = im.nw;
		/* names outlive the protobuf message */
		for (int i = 0; i < im.nw && res->text; i++)
			if (!(im.w[i].onnx = brn_arena_strdup(a, im.w[i].onnx)) ||
			    !(im.w[i].init = brn_arena_strdup(a, im.w[i].init)))
				rc = -1;
		if (!res->text || rc)
			rc = brn_diag_error(d, path, 0, 0, "out of memory");
	}
	free(im.text);
	free(im.v);
	free(im.skip);
	onnx__model_proto__free_unpacked(im.m, NULL);
	return rc;
}

static void st_specs(const brn_onnx_import *im, brnrt_st_tensor *s)
{
	for (int i = 0; i < im->nw; i++) {
		memset(&s[i], 0, sizeof s[i]);
		s[i].name = im->w[i].name;
		s[i].ndim = im->w[i].ndim;
		memcpy(s[i].shape, im->w[i].shape, sizeof s[i].shape);
		s[i].data = im->w[i].data;
	}
}

int brn_onnx_write_weights(const brn_onnx_import *im, const char *path, brn_diag *d)
{
	brnrt_st_tensor *s = calloc((size_t)im->nw + 1, sizeof *s);
	if (!s)
		return brn_diag_error(d, path, 0, 0, "out of memory");
	st_specs(im, s);
	brnrt_error e;
	memset(&e, 0, sizeof e);
	int rc = brnrt_st_save(path, s, im->nw, 0, &e);
	free(s);
	if (rc)
		return brn_diag_error(d, "", 0, 0, "%s", e.msg);
	return 0;
}

void brn_onnx_print_names(const brn_onnx_import *im, FILE *f)
{
	for (int i = 0; i < im->nw; i++) {
		const brn_onnx_weight *w = &im->w[i];
		if (w->eps >= 0)
			fprintf(f, "%s\t%s\tvar = sigma^2 - %.9g\n", w->name, w->onnx, w->eps);
		else
			fprintf(f, "%s\t%s\t%s\n", w->name, w->onnx, w->transposed ? "transposed" : "same");
	}
}

/* --- export ------------------------------------------------------------------ */

static int set_floats(tensor_t *t, const float *v, long long n)
{
	uint8_t *raw = malloc((size_t)(n ? n : 1) * 4);
	if (!raw)
		return -1;
	for (long long i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		for (int k = 0; k < 4; k++)
			raw[4 * i + k] = (uint8_t)(u >> (8 * k));
	}
	free(t->float_data);
	t->float_data = NULL;
	t->n_float_data = 0;
	free(t->raw_data.data);
	t->raw_data.data = raw;
	t->raw_data.len = (size_t)n * 4;
	t->has_raw_data = 1;
	t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	t->has_data_type = 1;
	return 0;
}

static int export_one(Onnx__GraphProto *gr, const brn_onnx_import *im, int i, const float *trained, int *fresh)
{
	const brn_onnx_weight *w = &im->w[i];
	long long n = 1;
	for (int k = 0; k < w->ndim; k++)
		n *= w->shape[k];
	float *v = malloc((size_t)n * sizeof *v);
	if (!v)
		return -1;
	if (w->transposed) {
		long long out = w->shape[0], in = w->shape[1];
		for (long long o = 0; o < out; o++)
			for (long long k = 0; k < in; k++)
				v[k * out + o] = trained[o * in + k];
	} else if (w->eps >= 0) {
		for (long long k = 0; k < n; k++)
			v[k] = (float)((double)trained[k] * trained[k] - w->eps);
	} else {
		memcpy(v, trained, (size_t)n * sizeof *v);
	}
	/* an initializer that only this tensor reads is rewritten in place;
	 * a shared one (exporters merge equal tensors) or a Constant's value
	 * gets a fresh initializer for this input */
	int shared = 0;
	for (int k = 0; k < im->nw; k++)
		shared += !strcmp(im->w[k].init, w->init);
	tensor_t *t = NULL;
	for (size_t k = 0; k < gr->n_initializer && shared == 1; k++)
		if (!strcmp(gr->initializer[k]->name, w->init))
			t = gr->initializer[k];
	int rc = 0;
	if (!t) {
		tensor_t **more = realloc(gr->initializer, (gr->n_initializer + 1) * sizeof *more);
		t = malloc(sizeof *t);
		char *name = malloc(strlen(w->init) + 32);
		node_t *node = gr->node[w->node];
		if (!more || !t || !name) {
			if (more)
				gr->initializer = more;
			free(t);
			free(name);
			free(v);
			return -1;
		}
		gr->initializer = more;
		onnx__tensor_proto__init(t);
		snprintf(name, strlen(w->init) + 32, "%s.brnc%d", w->init, (*fresh)++);
		t->name = name;
		t->n_dims = (size_t)(w->transposed ? 2 : w->ndim);
		t->dims = malloc(4 * sizeof *t->dims);
		if (!t->dims) {
			free(v);
			free(name);
			free(t);
			return -1;
		}
		for (int k = 0; k < w->ndim; k++)
			t->dims[k] = w->transposed ? w->shape[1 - k] : w->shape[k];
		gr->initializer[gr->n_initializer++] = t;
		char *copy = strdup(name);
		if (!copy) {
			free(v);
			return -1;
		}
		free(node->input[w->slot]);
		node->input[w->slot] = copy;
	}
	rc = set_floats(t, v, n);
	free(v);
	return rc;
}

int brn_onnx_export(const char *onnx_path, const brn_onnx_import *im, const char *weights,
                    const char *out, brn_diag *d)
{
	if (!weights)
		return brn_diag_error(d, "", 0, 0, "--emit onnx needs --weights TRAINED.safetensors");
	brnrt_st_tensor *s = calloc((size_t)im->nw + 1, sizeof *s);
	float **data = calloc((size_t)im->nw + 1, sizeof *data);
	Onnx__ModelProto *m = NULL;
	uint8_t *buf = NULL;
	int rc = -1;
	if (!s || !data) {
		brn_diag_error(d, "", 0, 0, "out of memory");
		goto done;
	}
	st_specs(im, s);
	for (int i = 0; i < im->nw; i++) {
		long long n = 1;
		for (int k = 0; k < s[i].ndim; k++)
			n *= s[i].shape[k];
		if (!(data[i] = s[i].data = malloc((size_t)n * sizeof(float)))) {
			brn_diag_error(d, "", 0, 0, "out of memory");
			goto done;
		}
	}
	brnrt_error e;
	memset(&e, 0, sizeof e);
	if (brnrt_st_load(weights, s, im->nw, ".momentum", NULL, &e)) {
		brn_diag_error(d, "", 0, 0, "%s", e.msg);
		goto done;
	}
	if (!(m = unpack(onnx_path, d)))
		goto done;
	int fresh = 0;
	for (int i = 0; i < im->nw; i++)
		if (export_one(m->graph, im, i, data[i], &fresh)) {
			brn_diag_error(d, "", 0, 0, "out of memory");
			goto done;
		}
	size_t len = onnx__model_proto__get_packed_size(m);
	if (!(buf = malloc(len ? len : 1))) {
		brn_diag_error(d, "", 0, 0, "out of memory");
		goto done;
	}
	onnx__model_proto__pack(m, buf);
	FILE *f = fopen(out, "wb");
	if (!f) {
		brn_diag_error(d, out, 0, 0, "cannot create: %s", strerror(errno));
		goto done;
	}
	int bad = fwrite(buf, 1, len, f) != len;
	bad |= fclose(f) != 0;
	if (bad) {
		brn_diag_error(d, out, 0, 0, "write error");
		goto done;
	}
	rc = 0;
done:
	for (int i = 0; data && i < im->nw; i++)
		free(data[i]);
	free(data);
	free(s);
	free(buf);
	if (m)
		onnx__model_proto__free_unpacked(m, NULL);
	return rc;
}
