/* A deterministic fuzzer of the ONNX reader, as t_parse_fuzz is of the
 * .brn front end: two small valid models (every operator brnc reads),
 * mutated as bytes (flipped, cut, repeated) and as messages (attributes,
 * dims, data types, names, op types, opsets and node order changed, then
 * packed again), go through brn_onnx_import_mem and, when that succeeds,
 * the .brn front end; each must return 0 or -1 with a non-empty message,
 * and never crash (make asan runs it with the sanitizers).
 * Usage: t_onnx_fuzz [ITERATIONS [SEED]]; the suite runs the default. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "onnx.h"
#include "onnx/onnx.pb-c.h"
#include "fuzz_rng.h"
#include "tap.h"

/* --- building the seed models (memory from one pool, kept to exit) ------ */

static unsigned char pool[1 << 20];
static size_t pool_used;

static void *get(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (pool_used + n > sizeof pool)
		abort();
	void *p = pool + pool_used;
	pool_used += n;
	return p;
}

static char *str(const char *s)
{
	return strcpy(get(strlen(s) + 1), s);
}

static Onnx__AttributeProto *a_ints(const char *name, int n, const int64_t *v)
{
	Onnx__AttributeProto *a = get(sizeof *a);
	onnx__attribute_proto__init(a);
	a->name = str(name);
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	a->n_ints = (size_t)n;
	a->ints = get((size_t)n * sizeof *a->ints);
	memcpy(a->ints, v, (size_t)n * sizeof *v);
	return a;
}

static Onnx__AttributeProto *a_int(const char *name, int64_t v)
{
	Onnx__AttributeProto *a = get(sizeof *a);
	onnx__attribute_proto__init(a);
	a->name = str(name);
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	a->has_i = 1;
	a->i = v;
	return a;
}

static Onnx__AttributeProto *a_float(const char *name, float v)
{
	Onnx__AttributeProto *a = get(sizeof *a);
	onnx__attribute_proto__init(a);
	a->name = str(name);
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
	a->has_f = 1;
	a->f = v;
	return a;
}

/* A float tensor of the given dims, values from a fixed pattern. */
static Onnx__TensorProto *t_float(const char *name, int ndim, const int64_t *dims, int raw)
{
	Onnx__TensorProto *t = get(sizeof *t);
	onnx__tensor_proto__init(t);
	t->name = str(name);
	t->n_dims = (size_t)ndim;
	t->dims = get((size_t)ndim * sizeof *t->dims);
	if (ndim)
		memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
	t->has_data_type = 1;
	t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	size_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= (size_t)dims[i];
	float *v = get(n * sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = 0.5f + (float)(i % 7) * 0.25f;
	if (raw) {
		t->has_raw_data = 1;
		t->raw_data.len = n * 4;
		t->raw_data.data = (uint8_t *)v; /* little-endian hosts */
	} else {
		t->n_float_data = n;
		t->float_data = v;
	}
	return t;
}

static Onnx__TensorProto *t_int64(const char *name, int n, const int64_t *v)
{
	Onnx__TensorProto *t = get(sizeof *t);
	onnx__tensor_proto__init(t);
	t->name = str(name);
	t->n_dims = 1;
	t->dims = get(sizeof *t->dims);
	t->dims[0] = n;
	t->has_data_type = 1;
	t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
	t->n_int64_data = (size_t)n;
	t->int64_data = get((size_t)n * sizeof *v);
	memcpy(t->int64_data, v, (size_t)n * sizeof *v);
	return t;
}

static Onnx__NodeProto *node(const char *op, const char *name, const char *ins, const char *out, int nattr,
                             Onnx__AttributeProto **attrs)
{
	Onnx__NodeProto *n = get(sizeof *n);
	onnx__node_proto__init(n);
	n->op_type = str(op);
	n->name = str(name);
	n->input = get(8 * sizeof *n->input);
	char buf[256];
	snprintf(buf, sizeof buf, "%s", ins);
	for (char *w = strtok(buf, " "); w; w = strtok(NULL, " "))
		n->input[n->n_input++] = str(strcmp(w, "-") ? w : "");
	n->n_output = 1;
	n->output = get(sizeof *n->output);
	n->output[0] = str(out);
	n->n_attribute = (size_t)nattr;
	n->attribute = get((size_t)(nattr ? nattr : 1) * sizeof *n->attribute);
	if (nattr)
		memcpy(n->attribute, attrs, (size_t)nattr * sizeof *attrs);
	return n;
}

static Onnx__ValueInfoProto *value_info(const char *name, int ndim, const int64_t *dims)
{
	Onnx__ValueInfoProto *v = get(sizeof *v);
	onnx__value_info_proto__init(v);
	v->name = str(name);
	if (!ndim)
		return v;
	Onnx__TypeProto *t = get(sizeof *t);
	onnx__type_proto__init(t);
	Onnx__TypeProto__Tensor *tt = get(sizeof *tt);
	onnx__type_proto__tensor__init(tt);
	Onnx__TensorShapeProto *s = get(sizeof *s);
	onnx__tensor_shape_proto__init(s);
	s->n_dim = (size_t)ndim;
	s->dim = get((size_t)ndim * sizeof *s->dim);
	for (int i = 0; i < ndim; i++) {
		s->dim[i] = get(sizeof *s->dim[i]);
		onnx__tensor_shape_proto__dimension__init(s->dim[i]);
		s->dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
		s->dim[i]->dim_value = dims[i];
	}
	tt->has_elem_type = 1;
	tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tt->shape = s;
	t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	t->tensor_type = tt;
	v->type = t;
	return v;
}

static uint8_t *pack(Onnx__GraphProto *g, int opset, size_t *len)
{
	Onnx__ModelProto m;
	onnx__model_proto__init(&m);
	m.has_ir_version = 1;
	m.ir_version = 8;
	Onnx__OperatorSetIdProto op, *ops[1] = {&op};
	onnx__operator_set_id_proto__init(&op);
	op.domain = str("");
	op.has_version = 1;
	op.version = opset;
	m.n_opset_import = 1;
	m.opset_import = ops;
	m.graph = g;
	*len = onnx__model_proto__get_packed_size(&m);
	uint8_t *buf = get(*len);
	onnx__model_proto__pack(&m, buf);
	return buf;
}

static Onnx__GraphProto *graph(int nn, Onnx__NodeProto **nodes, int ni, Onnx__TensorProto **inits,
                               Onnx__ValueInfoProto *in, Onnx__ValueInfoProto *out)
{
	Onnx__GraphProto *g = get(sizeof *g);
	onnx__graph_proto__init(g);
	g->name = str("g");
	g->n_node = (size_t)nn;
	g->node = nodes;
	g->n_initializer = (size_t)ni;
	g->initializer = inits;
	g->n_input = 1;
	g->input = get(sizeof *g->input);
	g->input[0] = in;
	g->n_output = 1;
	g->output = get(sizeof *g->output);
	g->output[0] = out;
	return g;
}

/* x[1, 3, 8, 8]: Conv, BatchNormalization, Relu, MaxPool, a depthwise
 * Conv, Clip(0, 6) from Constants, Add, AveragePool, GlobalAveragePool,
 * Flatten, Gemm, Softmax. */
static uint8_t *seed_cnn(size_t *len)
{
	static const int64_t w1[] = {4, 3, 3, 3}, c4[] = {4}, w2[] = {4, 1, 3, 3}, wf[] = {5, 4}, c5[] = {5};
	static const int64_t pads1[] = {1, 1, 1, 1}, k2[] = {2, 2}, in[] = {1, 3, 8, 8}, out[] = {1, 5};
	Onnx__TensorProto *inits[] = {
		t_float("w1", 4, w1, 1), t_float("b1", 1, c4, 0), t_float("g", 1, c4, 1), t_float("be", 1, c4, 1),
		t_float("mu", 1, c4, 1), t_float("var", 1, c4, 1), t_float("w2", 4, w2, 1), t_float("wf", 2, wf, 0),
		t_float("bf", 1, c5, 1)};
	Onnx__AttributeProto *conv1[] = {a_ints("pads", 4, pads1), a_ints("kernel_shape", 2, (int64_t[]){3, 3})};
	Onnx__AttributeProto *bn[] = {a_float("epsilon", 1e-5f), a_float("momentum", 0.9f)};
	Onnx__AttributeProto *mp[] = {a_ints("kernel_shape", 2, k2), a_ints("strides", 2, k2)};
	Onnx__AttributeProto *dw[] = {a_ints("pads", 4, pads1), a_int("group", 4)};
	Onnx__TensorProto *zero = t_float("", 0, NULL, 1), *six = t_float("", 0, NULL, 0);
	zero->raw_data.data = get(4);
	memset(zero->raw_data.data, 0, 4);
	six->float_data[0] = 6;
	Onnx__AttributeProto *lo[1], *hi[1];
	lo[0] = get(sizeof *lo[0]);
	onnx__attribute_proto__init(lo[0]);
	lo[0]->name = str("value");
	lo[0]->has_type = 1;
	lo[0]->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
	lo[0]->t = zero;
	hi[0] = get(sizeof *hi[0]);
	*hi[0] = *lo[0];
	hi[0]->t = six;
	Onnx__AttributeProto *ap[] = {a_ints("kernel_shape", 2, k2), a_ints("strides", 2, (int64_t[]){1, 1}),
	                              a_ints("pads", 4, (int64_t[]){1, 1, 1, 1}), a_int("count_include_pad", 1)};
	Onnx__AttributeProto *gemm[] = {a_int("transB", 1), a_float("alpha", 1), a_float("beta", 1)};
	Onnx__AttributeProto *fl[] = {a_int("axis", 1)}, *sm[] = {a_int("axis", -1)};
	Onnx__NodeProto *nodes[] = {
		node("Conv", "conv1", "x w1 b1", "c1", 2, conv1),
		node("BatchNormalization", "bn1", "c1 g be mu var", "n1", 2, bn),
		node("Relu", "relu1", "n1", "r1", 0, NULL),
		node("MaxPool", "pool1", "r1", "p1", 2, mp),
		node("Conv", "dw", "p1 w2", "c2", 2, dw),
		node("Constant", "lo", "", "zero", 1, lo),
		node("Constant", "hi", "", "six", 1, hi),
		node("Clip", "clip", "c2 zero six", "k2", 0, NULL),
		node("Add", "add", "k2 p1", "s", 0, NULL),
		node("AveragePool", "avg", "s", "ap", 4, ap),
		node("GlobalAveragePool", "gap", "ap", "gp", 0, NULL),
		node("Flatten", "flat", "gp", "f", 1, fl),
		node("Gemm", "fc", "f wf bf", "z", 3, gemm),
		node("Softmax", "sm", "z", "y", 1, sm),
	};
	Onnx__NodeProto **nn = get(sizeof nodes);
	memcpy(nn, nodes, sizeof nodes);
	Onnx__TensorProto **ii = get(sizeof inits);
	memcpy(ii, inits, sizeof inits);
	return pack(graph(14, nn, 9, ii, value_info("x", 4, in), value_info("y", 2, out)), 14, len);
}

/* x[1, 6]: MatMul + Add (dense), Identity, Dropout, Reshape, Relu; opset 10. */
static uint8_t *seed_mlp(size_t *len)
{
	static const int64_t b[] = {6, 3}, c3[] = {3}, in[] = {1, 6};
	Onnx__TensorProto *inits[] = {t_float("B", 2, b, 0), t_float("bias", 1, c3, 1),
	                              t_int64("shape", 2, (int64_t[]){1, -1})};
	Onnx__NodeProto *nodes[] = {
		node("MatMul", "mm", "x B", "m", 0, NULL),
		node("Add", "bias_add", "m bias", "h", 0, NULL),
		node("Identity", "id", "h", "i", 0, NULL),
		node("Dropout", "drop", "i", "d", 0, NULL),
		node("Reshape", "rs", "d shape", "r", 0, NULL),
		node("Relu", "relu", "r", "y", 0, NULL),
	};
	Onnx__NodeProto **nn = get(sizeof nodes);
	memcpy(nn, nodes, sizeof nodes);
	Onnx__TensorProto **ii = get(sizeof inits);
	memcpy(ii, inits, sizeof inits);
	return pack(graph(6, nn, 3, ii, value_info("x", 2, in), value_info("y", 0, NULL)), 10, len);
}

/* --- mutations ------------------------------------------------------------- */

static int64_t interesting(void)
{
	static const int64_t v[] = {-1, 0, 1, 2, 3, 6, 7, 9, 17, 65536, 65537, 1 << 29, INT32_MAX,
	                            INT64_MAX, INT64_MIN, -(1LL << 31)};
	return v[below(sizeof v / sizeof *v)];
}

static char *dup_str(const char *s)
{
	char *c = malloc(strlen(s) + 1);
	if (!c)
		abort();
	return strcpy(c, s);
}

/* One change to the message, through protobuf-c's own allocator (malloc)
 * so that free_unpacked still owns everything. */
static void mutate_message(Onnx__ModelProto *m)
{
	Onnx__GraphProto *g = m->graph;
	static const char *const ops[] = {"Conv", "Relu", "Add", "MaxPool", "Gemm", "MatMul", "Flatten",
	                                  "Reshape", "Identity", "Softmax", "Clip", "LRN", "", "BatchNormalization",
	                                  "Pad", "Cast", "Constant", "Dropout", "AveragePool"};
	switch (below(8)) {
	case 0: { /* an attribute value */
		Onnx__NodeProto *n = g->node[below(g->n_node)];
		if (!n->n_attribute)
			break;
		Onnx__AttributeProto *a = n->attribute[below(n->n_attribute)];
		if (a->n_ints)
			a->ints[below(a->n_ints)] = interesting();
		a->i = interesting();
		a->f = (float)interesting() / 2;
		break;
	}
	case 1: { /* a dim of an initializer */
		Onnx__TensorProto *t = g->initializer[below(g->n_initializer)];
		if (t->n_dims)
			t->dims[below(t->n_dims)] = interesting();
		break;
	}
	case 2: /* a data type */
		g->initializer[below(g->n_initializer)]->data_type = (int32_t)below(17);
		break;
	case 3: { /* an input name */
		Onnx__NodeProto *n = g->node[below(g->n_node)], *o = g->node[below(g->n_node)];
		if (!n->n_input || !o->n_output)
			break;
		size_t k = below(n->n_input);
		free(n->input[k]);
		n->input[k] = dup_str(below(4) ? o->output[0] : "nosuch");
		break;
	}
	case 4: { /* an op type */
		Onnx__NodeProto *n = g->node[below(g->n_node)];
		free(n->op_type);
		n->op_type = dup_str(ops[below(sizeof ops / sizeof *ops)]);
		break;
	}
	case 5: { /* node order */
		size_t i = below(g->n_node), j = below(g->n_node);
		Onnx__NodeProto *t = g->node[i];
		g->node[i] = g->node[j];
		g->node[j] = t;
		break;
	}
	case 6: /* the opset */
		m->opset_import[0]->version = (int64_t)below(20);
		break;
	default: { /* the input's shape */
		Onnx__TensorShapeProto *s = g->input[0]->type->tensor_type->shape;
		s->dim[below(s->n_dim)]->dim_value = interesting();
		break;
	}
	}
}

static uint8_t *mutate_bytes(const uint8_t *seed, size_t len, size_t *out)
{
	uint8_t *b = malloc(2 * len + 16);
	if (!b)
		abort();
	memcpy(b, seed, len);
	size_t n = len;
	switch (below(3)) {
	case 0:
		for (int k = 1 + (int)below(4); k > 0; k--)
			b[below(n)] ^= (uint8_t)(1u << below(8));
		break;
	case 1:
		n = below(len);
		break;
	default: { /* a range repeated */
		size_t at = below(n), cnt = below(n - at) + 1;
		memmove(b + at + cnt, b + at, n - at);
		n += cnt;
		break;
	}
	}
	*out = n;
	return b;
}

/* 0 when the reader and front end gave a status and, on failure, a message. */
static int try_model(const uint8_t *data, size_t len, int *imported, int *built)
{
	brn_arena a;
	brn_diag d;
	brn_onnx_import im;
	brn_onnx_options o = {"fuzz", (int)(next() & 1), (int)(next() & 1)};
	brn_graph g;
	memset(&d, 0, sizeof d);
	brn_arena_init(&a);
	int rc = brn_onnx_import_mem("fuzz.onnx", data, len, &o, &a, &im, &d);
	int bad = rc && !d.msg[0];
	if (!rc) {
		++*imported;
		rc = brn_load_text("fuzz.onnx", im.text, im.len, 0, NULL, "schedules", &a, &g, &d);
		bad |= rc && !d.msg[0];
		*built += !rc;
	}
	if (bad)
		diag("no message for a failure; model text:\n%s", rc && im.text ? im.text : "");
	brn_arena_free(&a);
	return bad;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 500;
	rng = argc > 2 ? strtoull(argv[2], NULL, 10) : 0x9E3779B97F4A7C15ULL;
	size_t len[2];
	uint8_t *seeds[2] = {seed_cnn(&len[0]), seed_mlp(&len[1])};
	static const char *const names[2] = {"cnn", "mlp"};
	plan(6);
	for (int s = 0; s < 2; s++) {
		int imported = 0, built = 0;
		ok(try_model(seeds[s], len[s], &imported, &built) == 0 && built == 1, "seed %s imports and builds",
		   names[s]);
		int bad = 0, bytes_ok = 0, msg_ok = 0, msg_built = 0, dummy = 0;
		for (long i = 0; i < iters; i++) {
			size_t n;
			uint8_t *b = mutate_bytes(seeds[s], len[s], &n);
			bad += try_model(b, n, &bytes_ok, &dummy);
			free(b);
		}
		for (long i = 0; i < iters; i++) {
			Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len[s], seeds[s]);
			for (int k = 1 + (int)below(3); k > 0; k--)
				mutate_message(m);
			size_t n = onnx__model_proto__get_packed_size(m);
			uint8_t *b = malloc(n + 1);
			if (!b)
				abort();
			onnx__model_proto__pack(m, b);
			onnx__model_proto__free_unpacked(m, NULL);
			bad += try_model(b, n, &msg_ok, &msg_built);
			free(b);
		}
		ok(bad == 0, "%s: %ld byte and %ld message mutations: a status and a message for each (%d failures)",
		   names[s], iters, iters, bad);
		/* the mutations reach past the protobuf reader and the importer */
		ok(msg_ok > 0 && msg_built > 0 && msg_ok < iters, "%s: %d byte-mutated and %d message-mutated models "
		   "imported, %d of those built", names[s], bytes_ok, msg_ok, msg_built);
	}
	return tap_failed ? 1 : 0;
}
