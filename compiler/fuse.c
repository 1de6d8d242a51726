/* Lowering and fusion: Graph -> brn_plan (fuse.h). Fusion is decided here
 * and nowhere else.
 *
 * Inference (--mode infer): a conv or dense absorbs the norm after it (as
 * an affine epilogue from the loaded statistics, or folded into its weights
 * and bias in double precision when --weights is given), then a relu, or a
 * residual add (whose other operand is already computed) and a relu: one
 * pass over memory per group. A norm elsewhere absorbs its relu.
 *
 * Training (--mode train), per conv + norm + relu block, 3 kernels forward
 * and 4 backward:
 *   conv_fwd        the convolution and its bias
 *   norm_stats      per channel: mu_B, sigma_B, r, d and the moving averages
 *                   (a conv epilogue cannot finish a per-channel sum without
 *                   atomics or a second pass; this pass reads the output once)
 *   norm_apply      normalize, scale, shift and relu, elementwise
 *   norm_bwd_stats  per channel: relu mask, dgamma, dbeta, their SGD step,
 *                   and the coefficients of dL/dx
 *   norm_bwd_dx     dL/dx of norm and relu together, elementwise
 *   conv_bwd_data   dL/dx of the conv (gather form: no atomics)
 *   conv_bwd_weight dL/dw and dL/db with the SGD step fused in
 * The rest cannot fuse further without losing parallelism: the statistics
 * are global reductions over N*H*W, and the backward of a conv needs the
 * complete dL/dy of its output, which the norm's reduction gates.
 * --no-fuse gives one kernel per op (norms keep their two phases). */
#include "fuse.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brnrt_st.h"

typedef struct lower {
	brn_plan *p;
	const brn_graph *g;
	brn_diag *d;
	brn_arena *a;
	const brn_knobs *knobs;
	int c_target;          /* 1x1 convs as matrix products (C only) */
	int list;
	int *vbuf, *gbuf;      /* per node: buffer of its value / gradient */
	int *gwritten;         /* per node: its gradient has a writer */
	int *absorbed;         /* per node: computed inside another's kernel */
	int *needs_grad;       /* per node: its gradient reaches a parameter */
	int *first_slot;       /* per node: its first slot, or -1 */
	int *consumers;        /* per node: how many inputs of later nodes read it */
	int *consumer;         /* per node: the last node that reads it */
	brn_kernel *k;
	int oom;
	int badnum;            /* a float literal out of float range: its value */
	double badval;
} lower;

const char *brn_kernel_var(const brn_kernel *k, const char *key)
{
	for (int i = 0; i < k->nvars; i++)
		if (strcmp(k->vars[i].key, key) == 0)
			return k->vars[i].value;
	return NULL;
}

/* Sets a kernel variable; the text is sized to fit, never cut. */
static void var(lower *L, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *text = n >= 0 ? brn_arena_alloc(L->a, (size_t)n + 1) : NULL;
	if (!text) {
		L->oom = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text, (size_t)n + 1, fmt, ap);
	va_end(ap);
	brn_kernel *k = L->k;
	for (int i = 0; i < k->nvars; i++)
		if (strcmp(k->vars[i].key, key) == 0) {
			k->vars[i].value = text;
			return;
		}
	if (k->nvars == BRN_KERNEL_VARS) {
		L->oom = 1;
		return;
	}
	k->vars[k->nvars].key = key;
	k->vars[k->nvars++].value = text;
}

static void num(lower *L, const char *key, long v)
{
	var(L, key, "%ld", v);
}

/* A float literal that is valid C and OpenCL C: "1.0f", "5.7e-05f". The
 * front end admits only values that are 0 or normal floats; anything else
 * here (inf, nan, out of range, subnormal) is a bug upstream, reported
 * rather than emitted as text that does not compile or means something else. */
static const char *lit(lower *L, char *buf, size_t n, double v)
{
	if (!brn_is_float(v) && !L->badnum) {
		L->badnum = 1;
		L->badval = v;
	}
	snprintf(buf, n, "%.9g", v);
	if (!strpbrk(buf, ".e"))
		snprintf(buf + strlen(buf), n - strlen(buf), ".0");
	snprintf(buf + strlen(buf), n - strlen(buf), "f");
	return buf;
}

static void flt(lower *L, const char *key, double v)
{
	char b[64];
	var(L, key, "%s", lit(L, b, sizeof b, v));
}

static int new_buf(lower *L, const char *name, long floats)
{
	brn_plan *p = L->p;
	if (p->nbufs == p->capbufs) {
		int cap = p->capbufs ? p->capbufs * 2 : 64;
		brn_buffer *b = brn_arena_alloc(L->a, (size_t)cap * sizeof *b);
		if (!b) {
			L->oom = 1;
			return 0;
		}
		if (p->nbufs)
			memcpy(b, p->bufs, (size_t)p->nbufs * sizeof *b);
		p->bufs = b;
		p->capbufs = cap;
	}
	brn_buffer *b = &p->bufs[p->nbufs];
	b->name = name;
	b->floats = (floats + 15) / 16 * 16;
	b->first = -1;
	b->last = -1;
	b->list = L->list;
	return p->nbufs++;
}

static long node_floats(const brn_graph *g, const brn_node *n)
{
	return (long)g->batch * brn_shape_count(n->shape);
}

static int value_buf(lower *L, int node)
{
	if (L->vbuf[node] < 0)
		L->vbuf[node] = new_buf(L, L->g->nodes[node].name, node_floats(L->g, &L->g->nodes[node]));
	return L->vbuf[node];
}

static int grad_buf(lower *L, int node)
{
	if (L->gbuf[node] < 0)
		L->gbuf[node] = new_buf(L, brn_arena_printf(L->a, "d%s", L->g->nodes[node].name),
		                        node_floats(L->g, &L->g->nodes[node]));
	return L->gbuf[node];
}

/* The offset of buffer b, as a placeholder the emitter resolves after
 * planning ("@<b>"), recorded as used by the current kernel. */
static void buf_var(lower *L, const char *key, int b)
{
	brn_kernel *k = L->k;
	int seen = 0;
	for (int i = 0; i < k->nbufs; i++)
		seen |= k->bufs[i] == b;
	if (!seen && k->nbufs < BRN_KERNEL_BUFS)
		k->bufs[k->nbufs++] = b;
	var(L, key, "@%d", b);
}

static long slot_off(lower *L, int node, brn_param_kind kind)
{
	for (int s = L->first_slot[node]; s >= 0 && s < L->p->nslots && L->p->slots[s].node == node; s++)
		if (L->p->slots[s].p.kind == kind)
			return L->p->slots[s].off;
	return -1;
}

static brn_kernel *kernel(lower *L, const char *tmpl, const brn_node *n, const char *what,
                          long items, int per_example)
{
	brn_plan *p = L->p;
	int l = L->list;
	if (p->nkernels[l] == p->capkernels[l]) {
		int cap = p->capkernels[l] ? p->capkernels[l] * 2 : 32;
		brn_kernel *k = brn_arena_alloc(L->a, (size_t)cap * sizeof *k);
		if (!k) {
			L->oom = 1;
			return L->k = NULL;
		}
		if (p->nkernels[l])
			memcpy(k, p->kernels[l], (size_t)p->nkernels[l] * sizeof *k);
		p->kernels[l] = k;
		p->capkernels[l] = cap;
	}
	brn_kernel *k = &p->kernels[l][p->nkernels[l]++];
	memset(k, 0, sizeof *k);
	char ident[200];
	/* brn_: the prefix the generated code keeps for its own names */
	snprintf(ident, sizeof ident, "brn_%s%02d_%s_%s", l ? "t" : "i", p->nkernels[l], n->name, what);
	for (char *c = ident; *c; c++)
		if (*c == '.')
			*c = '_';
	k->name = brn_arena_strdup(L->a, ident);
	k->tmpl = tmpl;
	k->comment = brn_arena_printf(L->a, "%s: %s", n->name, what);
	k->items = items;
	k->per_example = per_example;
	L->k = k;
	/* elementwise kernels honour the vec_width knob: each work-item takes
	 * that many consecutive elements (the emitter adds the loop) */
	static const char *const elementwise[] = {"norm_apply", "eltwise", "norm_bwd_dx", "relu_bwd",
	                                          "relu6_bwd", "add_bwd", "gap_bwd"};
	int v = L->knobs ? L->knobs[n->id].vec_width : 0;
	for (size_t i = 0; v > 1 && i < sizeof elementwise / sizeof *elementwise; i++)
		if (!strcmp(tmpl, elementwise[i]) && items % v == 0) {
			num(L, "VEC", v);
			k->items = items / v;
		}
	return k;
}

static void shape_vars(lower *L, const brn_node *x, const brn_node *y)
{
	num(L, "C", x->shape[1]);
	num(L, "H", x->shape[2]);
	num(L, "W", x->shape[3]);
	num(L, "HW", (long)x->shape[2] * x->shape[3]);
	if (y) {
		num(L, "K", y->shape[1]);
		num(L, "OH", y->shape[2]);
		num(L, "OW", y->shape[3]);
	}
}

static void window_vars(lower *L, const brn_node *n)
{
	num(L, "KH", n->kernel[0]);
	num(L, "KW", n->kernel[1]);
	num(L, "SH", n->stride[0]);
	num(L, "SW", n->stride[1]);
	num(L, "PH", n->pad[0]);
	num(L, "PW", n->pad[1]);
}

/* The node's only consumer, or -1 (none, several, or it is the output). */
static int sole_consumer(const lower *L, int node)
{
	if (node == L->g->output)
		return -1;
	return L->consumers[node] == 1 ? L->consumer[node] : -1;
}

/* Counts each node's readers once, so that sole_consumer is O(1). */
static int count_consumers(lower *L)
{
	const brn_graph *g = L->g;
	L->consumers = brn_arena_alloc(L->a, (size_t)g->n * sizeof *L->consumers);
	L->consumer = brn_arena_alloc(L->a, (size_t)g->n * sizeof *L->consumer);
	if (!L->consumers || !L->consumer)
		return -1;
	for (int i = 0; i < g->n; i++)
		for (int k = 0; k < g->nodes[i].nin; k++) {
			L->consumers[g->nodes[i].in[k]]++;
			L->consumer[g->nodes[i].in[k]] = i;
		}
	return 0;
}

/* --- epilogues: small fixed statements the emitter pastes after a value
 * `v` is computed at index `o` (conv) or `gid` (elementwise) ----------- */

typedef struct epilogue {
	char text[1024];
} epilogue;

static void epi(epilogue *e, const char *fmt, ...)
{
	size_t at = strlen(e->text);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->text + at, sizeof e->text - at, fmt, ap);
	va_end(ap);
}

/* Affine of an inference norm on channel expression ch. */
static void epi_norm(lower *L, epilogue *e, int norm, const char *ch)
{
	epi(e, "\t\t\tv = (v - mem[%ld + %s]) * (mem[%ld + %s] / mem[%ld + %s]) + mem[%ld + %s];\n",
	    slot_off(L, norm, BRN_PARAM_MEAN), ch, slot_off(L, norm, BRN_PARAM_GAMMA), ch,
	    slot_off(L, norm, BRN_PARAM_SIGMA), ch, slot_off(L, norm, BRN_PARAM_BETA), ch);
}

static void epi_relu(epilogue *e)
{
	epi(e, "\t\t\tv = FMAX(v, 0.0f);\n");
}

/* Absorbs node next into the epilogue when it is an activation: relu
 * always, relu6 in inference only (in training it stays a node of its own,
 * whose backward is relu6_bwd). Returns 1 when absorbed. */
static int epi_act(lower *L, epilogue *e, int next)
{
	if (next < 0)
		return 0;
	brn_opcode op = L->g->nodes[next].op;
	if (op == BRN_OP_RELU)
		epi_relu(e);
	else if (op == BRN_OP_RELU6 && L->list == 0)
		epi(e, "\t\t\tv = FMIN(FMAX(v, 0.0f), 6.0f);\n");
	else
		return 0;
	L->absorbed[next] = 1;
	return 1;
}

/* The note in a kernel's comment for what epi_act absorbed. */
static const char *act_note(const lower *L, int head, int last)
{
	if (last == head)
		return "";
	return L->g->nodes[last].op == BRN_OP_RELU6 ? ", then relu6" : ", then relu";
}

/* Follows a chain after node `head`: [norm] [relu | add [relu]].
 * Returns the last node of the group; fills the epilogue. */
static int chain(lower *L, int head, int allow_norm, const char *ch, const char *idx, epilogue *e)
{
	const brn_graph *g = L->g;
	int cur = head, next;
	if (!L->p->fused)
		return head;
	next = sole_consumer(L, cur);
	if (allow_norm && next >= 0 && brn_is_norm(g->nodes[next].op)) {
		if (!L->p->weights_folded)
			epi_norm(L, e, next, ch);
		L->absorbed[next] = 1;
		cur = next;
		next = sole_consumer(L, cur);
	}
	if (next >= 0 && g->nodes[next].op == BRN_OP_ADD) {
		const brn_node *add = &g->nodes[next];
		int other = add->in[0] == cur ? add->in[1] : add->in[0];
		if (other != cur && other < head) {
			epi(e, "\t\t\tv += mem[@%d + %s];\n", value_buf(L, other), idx);
			buf_var(L, "RES", L->vbuf[other]);
			L->absorbed[next] = 1;
			cur = next;
			next = sole_consumer(L, cur);
		}
	}
	if (epi_act(L, e, next))
		cur = next;
	return cur;
}

static void set_out(lower *L, int last, epilogue *e)
{
	buf_var(L, "Y", value_buf(L, last));
	var(L, "EPILOGUE", "%s", e->text);
	if (last == L->g->output && L->list == 0)
		L->p->out_node = last;
}

static void conv_vars(lower *L, const brn_node *n)
{
	const brn_graph *g = L->g;
	const brn_node *x = &g->nodes[n->in[0]];
	const brn_knobs *kn = L->knobs ? &L->knobs[n->id] : NULL;
	int cg = x->shape[1] / n->groups, kg = n->out / n->groups;
	int ocb = kn && kn->oc_block ? kn->oc_block : 4;
	while (kg % ocb)
		ocb--;
	int tw = kn && kn->tile_w ? kn->tile_w : 64; /* whole rows up to 64 */
	if (tw > n->shape[3])
		tw = n->shape[3];
	shape_vars(L, x, n);
	window_vars(L, n);
	num(L, "CG", cg);
	num(L, "KG", kg);
	num(L, "OCB", ocb);
	num(L, "KBLOCKS", n->out / ocb);
	num(L, "TW", tw);
	num(L, "OWT", (n->shape[3] + tw - 1) / tw);
	num(L, "UNROLL_N", kn && kn->unroll ? kn->unroll : 0);
	if (kn && kn->wg_size)
		num(L, "WG", kn->wg_size);
	num(L, "WGT", slot_off(L, n->id, BRN_PARAM_WEIGHT));
	num(L, "WCOUNT", (long)n->out * cg * n->kernel[0] * n->kernel[1]);
	buf_var(L, "X", value_buf(L, n->in[0]));
}

/* Bias of a conv or dense: its own, or, when folding a bias-less layer,
 * the norm's beta that holds the folded shift. -1: none. */
static long bias_off(lower *L, const brn_node *n)
{
	long b = slot_off(L, n->id, BRN_PARAM_BIAS);
	if (b < 0 && L->p->weights_folded) {
		int next = sole_consumer(L, n->id);
		if (L->p->fused && next >= 0 && brn_is_norm(L->g->nodes[next].op))
			b = slot_off(L, next, BRN_PARAM_BETA);
	}
	return b;
}

/* --- conv16: the vector conv of groups-1 convs ------------------------------
 * A conv_pack kernel copies the weights, per call, into a scratch buffer
 * with 16 output channels innermost (zero-padded to a multiple of 16), so
 * one vector load gives a tap's weights for a block of channels; the conv16
 * kernel keeps a tile of output channels x columns in registers (templates
 * c/whole/conv16.c per ISA, opencl/kernels/conv16.k). Activations stay
 * NCHW. flip: dL/dx of the conv, the same kernel run on dL/dy with the
 * transposed, flipped weights and pad KH-1-PH; a strided conv's dL/dx is
 * that conv transposed (TSH x TSW): each column phase of dL/dx takes only
 * its own taps, so no multiply is by a zero. */
static int conv16_fits(const brn_node *n)
{
	return n->groups == 1;
}

/* Emits conv_pack and opens the conv16 kernel with its shape variables;
 * the caller sets $STORE (the statement that stores v at o, channel k). */
static void conv16(lower *L, const brn_node *n, int flip)
{
	const brn_node *x = &L->g->nodes[n->in[0]];
	const brn_node *in = flip ? n : x, *out = flip ? x : n;
	int ip = in->shape[1], op = out->shape[1], kh = n->kernel[0], kw = n->kernel[1];
	int kb = (op + 15) / 16, obg = kb % 2 ? 1 : 2;
	int wp = new_buf(L, brn_arena_printf(L->a, "%s.packed%s", n->name, flip ? "_t" : ""),
	                 (long)kb * 16 * ip * kh * kw);
	kernel(L, "conv_pack", n, flip ? "conv_pack_t" : "conv_pack", (long)kb * 16 * ip, 0);
	num(L, "OP", op);
	num(L, "OP16", kb * 16);
	num(L, "IP", ip);
	num(L, "KH", kh);
	num(L, "KW", kw);
	num(L, "FLIP", flip);
	num(L, "WGT", slot_off(L, n->id, BRN_PARAM_WEIGHT));
	buf_var(L, "WP", wp);

	kernel(L, "conv16", n, flip ? "conv_bwd_data" : "conv_fwd", 0, 1);
	shape_vars(L, in, out);
	window_vars(L, n);
	/* dL/dx: transposed, strides TSH x TSW over dL/dy */
	num(L, "TSH", flip ? n->stride[0] : 1);
	num(L, "TSW", flip ? n->stride[1] : 1);
	if (flip) {
		num(L, "PH", kh - 1 - n->pad[0]);
		num(L, "PW", kw - 1 - n->pad[1]);
		num(L, "SH", 1);
		num(L, "SW", 1);
	}
	num(L, "KB", kb);
	num(L, "OBG", obg);
	num(L, "KGRP", kb / obg);
	num(L, "CLRW", 8);
	buf_var(L, "WP", wp);
	buf_var(L, "X", flip ? L->gbuf[n->id] : value_buf(L, n->in[0]));
	/* per example: groups of channel blocks x output rows */
	L->k->items = (long)(kb / obg) * out->shape[2];
}

/* dL/dw and dL/db of a groups-1 conv: conv_dy16 blocks dL/dy by 16
 * channels, then conv16_wgrad keeps a 16-channel x ICS-input x KW-tap
 * gradient tile in registers (ICS: up to 16 input channels, as many as
 * divide C with at most 16 accumulators) and applies the SGD step. */
static void conv16_wgrad(lower *L, const brn_node *n)
{
	const brn_node *x = &L->g->nodes[n->in[0]];
	int c = x->shape[1], kh = n->kernel[0], kw = n->kernel[1], oh = n->shape[2], ow = n->shape[3];
	int kb = (n->out + 15) / 16, ics = 16;
	while (ics > 1 && (c % ics || ics * kw > 16))
		ics /= 2;
	int sw = n->stride[1], pw = n->pad[1], w = x->shape[3];
	int olo = (pw + sw - 1) / sw, ohi = (w - kw + 1 + pw + sw - 1) / sw;
	olo = olo < ow ? olo : ow;
	ohi = ohi < olo ? olo : ohi > ow ? ow : ohi;
	int dyb = new_buf(L, brn_arena_printf(L->a, "d%s.blocked", n->name), (long)L->g->batch * kb * 16 * oh * ow);
	kernel(L, "conv_dy16", n, "conv_dy16", (long)kb * oh, 1);
	var(L, "ISA_LOOP", "1"); /* a transpose: per ISA it takes vector stores */
	num(L, "K", n->out);
	num(L, "KB", kb);
	num(L, "OH", oh);
	num(L, "OW", ow);
	buf_var(L, "DY", L->gbuf[n->id]);
	buf_var(L, "DYB", dyb);

	kernel(L, "conv16_wgrad", n, "conv_bwd_weight", 0, 0);
	shape_vars(L, x, n);
	window_vars(L, n);
	num(L, "KB", kb);
	num(L, "ICS", ics);
	num(L, "CGS", c / ics);
	num(L, "WITEMS", (long)kb * (c / ics) * kh);
	num(L, "OLO", olo);
	num(L, "OHI", ohi);
	num(L, "WGT", slot_off(L, n->id, BRN_PARAM_WEIGHT));
	num(L, "BIAS", n->bias ? slot_off(L, n->id, BRN_PARAM_BIAS) : 0);
	num(L, "PARAMS", 0);
	num(L, "MOMENTUM", L->p->momentum_off);
	buf_var(L, "X", value_buf(L, n->in[0]));
	buf_var(L, "DYB", dyb);
	L->k->items = (long)kb * (c / ics) * kh + (n->bias ? kb : 0);
}

/* --- 1x1 convs as matrix products (C) ---------------------------------------
 * A 1x1 conv at stride 1 without padding is, per example, the product of
 * its [K, C] weights with the [C, H*W] input, dL/dx the product of their
 * transpose with dL/dy, and dL/dw a sum of products of rows of dL/dy and
 * x. C computes them with positions as lanes (c/whole/conv1x1.c,
 * conv1x1_wgrad.c), straight from and into NCHW: no packed weights, no
 * blocked dL/dy. OpenCL keeps conv16. */
static int gemm_fits(const lower *L, const brn_node *n)
{
	return L->c_target && n->groups == 1 && n->kernel[0] == 1 && n->kernel[1] == 1 && n->stride[0] == 1 &&
	       n->stride[1] == 1 && n->pad[0] == 0 && n->pad[1] == 0;
}

/* The conv (flip 0) or its dL/dx (flip 1): work-items (block of 64
 * positions, block of 16 rows) per example. */
static void conv1x1(lower *L, const brn_node *n, int flip)
{
	const brn_node *x = &L->g->nodes[n->in[0]];
	int rows = flip ? x->shape[1] : n->out, red = flip ? n->out : x->shape[1];
	long p = (long)n->shape[2] * n->shape[3];
	kernel(L, "conv1x1", n, flip ? "conv_bwd_data" : "conv_fwd", (p + 63) / 64 * ((rows + 15) / 16), 1);
	num(L, "ROWS", rows);
	num(L, "RED", red);
	num(L, "P", p);
	num(L, "PB", (p + 63) / 64);
	num(L, "RB", (rows + 15) / 16);
	/* w[k, c] at k * C + c: row k, step c; transposed: row c, step k */
	num(L, "AR", flip ? 1 : red);
	num(L, "AK", flip ? rows : 1);
	num(L, "WGT", slot_off(L, n->id, BRN_PARAM_WEIGHT));
	buf_var(L, "XB", flip ? L->gbuf[n->id] : value_buf(L, n->in[0]));
}

/* dL/dw and dL/db: a work-item per block of 16 x 16 weights (the blocks
 * of the first 16 inputs take the biases of their 16 outputs). */
static void conv1x1_wgrad(lower *L, const brn_node *n)
{
	int c = L->g->nodes[n->in[0]].shape[1], kb = (n->out + 15) / 16, cb = (c + 15) / 16;
	kernel(L, "conv1x1_wgrad", n, "conv_bwd_weight", (long)kb * cb, 0);
	num(L, "K", n->out);
	num(L, "C", c);
	num(L, "P", (long)n->shape[2] * n->shape[3]);
	num(L, "CB", cb);
	num(L, "HAS_BIAS", n->bias != 0);
	num(L, "WGT", slot_off(L, n->id, BRN_PARAM_WEIGHT));
	num(L, "BIAS", n->bias ? slot_off(L, n->id, BRN_PARAM_BIAS) : 0);
	num(L, "PARAMS", 0);
	num(L, "MOMENTUM", L->p->momentum_off);
	buf_var(L, "X", value_buf(L, n->in[0]));
	buf_var(L, "DY", L->gbuf[n->id]);
}

/* --- depthwise convs (one input channel per output channel) --------------
 * C compiles them with output columns as lanes (c/whole/conv_dw.c,
 * conv_dw_wgrad.c): each input plane goes once into a zero-padded buffer
 * on the stack, split by column phase when strided. Their work-items are
 * the base kernels' (conv_fwd, conv_bwd_data, conv_bwd_weight), which the
 * other dialects run. dL/dx of a strided one spreads dL/dy on the stride
 * grid (zeros between) and runs the same kernel at stride 1. */
enum { DW_BUFFER_MAX = 1 << 15 }; /* floats: 128 KiB of stack (a 112 x 112
                                    * plane at stride 2), and at most as
                                    * much again for dL/dy in conv_dw_wgrad */

/* Floats of the buffer of m planes (phases sw, rows hp, the widest vector). */
static long dw_buffer(int m, int sw, int hp, int oww, int kw)
{
	return (long)m * sw * hp * (oww + 16 + (kw - 1) / sw);
}

static int dw_fits(const lower *L, const brn_node *n, int flip)
{
	const brn_node *x = &L->g->nodes[n->in[0]];
	int kh = n->kernel[0], kw = n->kernel[1];
	if (n->groups == 1 || n->groups != x->shape[1])
		return 0;
	if (!flip)
		return dw_buffer(1, n->stride[1], x->shape[2] + 2 * n->pad[0], n->shape[3], kw) <= DW_BUFFER_MAX;
	if (n->pad[0] > kh - 1 || n->pad[1] > kw - 1)
		return 0;
	return dw_buffer(n->out / n->groups, 1, x->shape[2] + kh - 1, x->shape[3], kw) <= DW_BUFFER_MAX;
}

/* The variables of conv_dw: the conv, or (flip) its dL/dx as the conv at
 * stride 1 of dL/dy (spread on the stride grid) with flipped weights,
 * padded by kernel - 1 - pad. */
static void dw_vars(lower *L, const brn_node *n, int flip)
{
	const brn_node *x = &L->g->nodes[n->in[0]];
	const brn_node *in = flip ? n : x, *out = flip ? x : n;
	int kh = n->kernel[0], kw = n->kernel[1];
	int ph = flip ? kh - 1 - n->pad[0] : n->pad[0], pw = flip ? kw - 1 - n->pad[1] : n->pad[1];
	num(L, "FLIP", flip);
	num(L, "OC", out->shape[1]);
	num(L, "OHH", out->shape[2]);
	num(L, "OWW", out->shape[3]);
	num(L, "IC", in->shape[1]);
	num(L, "IHH", in->shape[2]);
	num(L, "IWW", in->shape[3]);
	num(L, "NCB", flip ? x->shape[1] : atol(brn_kernel_var(L->k, "KBLOCKS")));
	num(L, "CB", flip ? 1 : atol(brn_kernel_var(L->k, "OCB")));
	num(L, "NT", atol(brn_kernel_var(L->k, flip ? "WT" : "OWT")));
	num(L, "M", flip ? n->out / n->groups : 1);
	num(L, "DSH", flip ? 1 : n->stride[0]);
	num(L, "DSW", flip ? 1 : n->stride[1]);
	num(L, "DPH", ph);
	num(L, "DPW", pw);
	/* dL/dx: dL/dy spread on the stride grid; rows of the padded buffer */
	num(L, "USH", flip ? n->stride[0] : 1);
	num(L, "USW", flip ? n->stride[1] : 1);
	num(L, "HP", flip ? out->shape[2] + kh - 1 : in->shape[2] + 2 * ph);
	buf_var(L, "XIN", flip ? L->gbuf[n->id] : value_buf(L, n->in[0]));
}

static void lower_conv(lower *L, const brn_node *n)
{
	epilogue e = {""};
	if (gemm_fits(L, n) || conv16_fits(n)) {
		if (gemm_fits(L, n))
			conv1x1(L, n, 0);
		else
			conv16(L, n, 0);
		long b = bias_off(L, n);
		if (b >= 0)
			epi(&e, "\t\t\tv += mem[%ld + k];\n", b);
		int last = L->list == 0 ? chain(L, n->id, 1, "k", "o", &e) : n->id;
		set_out(L, last, &e);
		var(L, "STORE", "%s\t\t\tmem[%s + o] = v;", e.text, brn_kernel_var(L->k, "Y"));
		if (last != n->id)
			L->k->comment = brn_arena_printf(L->a, "%s .. %s: conv_fwd, fused", n->name, L->g->nodes[last].name);
		return;
	}
	int dw = dw_fits(L, n, 0);
	kernel(L, dw ? "conv_dw" : "conv_fwd", n, "conv_fwd", 0, 1);
	L->k->base = "conv_fwd";
	conv_vars(L, n);
	/* per example: blocks of output channels x rows x column tiles */
	L->k->items = atol(brn_kernel_var(L->k, "KBLOCKS")) * n->shape[2] * atol(brn_kernel_var(L->k, "OWT"));
	if (dw)
		dw_vars(L, n, 0);
	long b = bias_off(L, n);
	if (b >= 0)
		epi(&e, "\t\t\tv += mem[%ld + k];\n", b);
	int last = L->list == 0 ? chain(L, n->id, 1, "k", "o", &e) : n->id;
	set_out(L, last, &e);
	var(L, "STORE", "%s\t\t\tmem[%s + o] = v;", e.text, brn_kernel_var(L->k, "Y"));
	if (last != n->id)
		L->k->comment = brn_arena_printf(L->a, "%s .. %s: conv_fwd, fused", n->name, L->g->nodes[last].name);
}

static void lower_dense(lower *L, const brn_node *n)
{
	const brn_node *x = &L->g->nodes[n->in[0]];
	const brn_knobs *kn = L->knobs ? &L->knobs[n->id] : NULL;
	epilogue e = {""};
	kernel(L, "dense_fwd", n, "dense_fwd", n->out, 1);
	num(L, "IN", x->shape[1]);
	num(L, "OUT", n->out);
	num(L, "WGT", slot_off(L, n->id, BRN_PARAM_WEIGHT));
	num(L, "UNROLL_N", kn && kn->unroll ? kn->unroll : 0);
	buf_var(L, "X", value_buf(L, n->in[0]));
	long b = bias_off(L, n);
	var(L, "BIAS_TERM", b >= 0 ? " + mem[%ld + o]" : "", b);
	int last = L->list == 0 ? chain(L, n->id, 1, "o", "gid", &e) : n->id;
	set_out(L, last, &e);
}

/* Work-group size of the per-channel reductions where a target reduces
 * in work-groups (OpenCL): the kernels(layer) knob if a power of two. */
static int reduction_wg(const lower *L, const brn_node *n)
{
	int wg = L->knobs ? L->knobs[n->id].wg_size : 0;
	return wg >= 2 && wg <= 1024 && (wg & (wg - 1)) == 0 ? wg : 64;
}

static void norm_common(lower *L, const brn_node *n)
{
	shape_vars(L, n, NULL);
	num(L, "REDUCE_WG", reduction_wg(L, n));
	num(L, "GAMMA", slot_off(L, n->id, BRN_PARAM_GAMMA));
	num(L, "BETA", slot_off(L, n->id, BRN_PARAM_BETA));
	num(L, "MEAN", slot_off(L, n->id, BRN_PARAM_MEAN));
	num(L, "SIGMA", slot_off(L, n->id, BRN_PARAM_SIGMA));
	buf_var(L, "X", value_buf(L, n->in[0]));
}

/* A schedule as a C/OpenCL expression of `step`, or a literal at step. */
static void sched_var(lower *L, const char *key, const brn_piecewise *pw, int is_norm)
{
	if (!is_norm) {
		flt(L, key, strcmp(key, "R_MAX") == 0 ? 1.0 : 0.0);
		return;
	}
	if (L->p->step >= 0 || pw->n == 1) {
		flt(L, key, brn_piecewise_eval(pw, (double)(L->p->step >= 0 ? L->p->step : 0)));
		return;
	}
	/* breakpoints are whole steps within 2^53 (schedule.c checks) */
	char a[64], b[64];
	char *e = brn_arena_printf(L->a, "(step < %lld ? %s : ", (long long)pw->t[0],
	                           lit(L, a, sizeof a, pw->v[0]));
	for (int i = 1; e && i < pw->n; i++) {
		double slope = (pw->v[i] - pw->v[i - 1]) / (pw->t[i] - pw->t[i - 1]);
		e = brn_arena_printf(L->a, "%sstep < %lld ? %s + (float)(step - %lld) * %s : ", e,
		                     (long long)pw->t[i], lit(L, a, sizeof a, pw->v[i - 1]),
		                     (long long)pw->t[i - 1], lit(L, b, sizeof b, slope));
	}
	if (e)
		e = brn_arena_printf(L->a, "%s%s)", e, lit(L, a, sizeof a, pw->v[pw->n - 1]));
	if (!e)
		L->oom = 1;
	else
		var(L, key, "%s", e);
}

static void lower_norm_train(lower *L, const brn_node *n, long stats)
{
	int renorm = n->op == BRN_OP_BATCH_RENORM;
	kernel(L, "norm_stats", n, "norm_stats", n->shape[1], 0);
	norm_common(L, n);
	num(L, "STATS", stats);
	flt(L, "EPS", n->eps);
	flt(L, "ALPHA", n->alpha);
	sched_var(L, "R_MAX", &n->r_max.pw, renorm);
	sched_var(L, "D_MAX", &n->d_max.pw, renorm);
	epilogue e = {""};
	kernel(L, "norm_apply", n, "norm_apply", brn_shape_count(n->shape), 1);
	norm_common(L, n);
	num(L, "STATS", stats);
	int last = n->id, next = L->p->fused ? sole_consumer(L, n->id) : -1;
	if (epi_act(L, &e, next))
		last = next;
	var(L, "RELU_NOTE", "%s", act_note(L, n->id, last));
	set_out(L, last, &e);
}

/* Windows that tile the input (stride = kernel, no pad): every input in at
 * most one window and no bounds to check, so the pool kernels take a row
 * per work-item. */
static int pool_tiles(const brn_node *n)
{
	return n->stride[0] == n->kernel[0] && n->stride[1] == n->kernel[1] && !n->pad[0] && !n->pad[1];
}

/* avgpool divides by the real inputs under the window (count), or with
 * count_include_pad by the whole window. */
static void pool_divisor(lower *L, const brn_node *n)
{
	if (n->count_pad)
		num(L, "DIVISOR", (long)n->kernel[0] * n->kernel[1]);
	else
		var(L, "DIVISOR", "count");
}

static void lower_pool(lower *L, const brn_node *n, const char *tmpl)
{
	const brn_node *x = &L->g->nodes[n->in[0]];
	epilogue e = {""};
	if (n->op != BRN_OP_GLOBAL_AVGPOOL && pool_tiles(n)) {
		kernel(L, "pool_fwd_tiled", n, tmpl, (long)n->shape[1] * n->shape[2], 1);
		var(L, "ISA_LOOP", "1");
	} else
		kernel(L, tmpl, n, tmpl, brn_shape_count(n->shape), 1);
	shape_vars(L, x, n);
	if (n->op == BRN_OP_GLOBAL_AVGPOOL) {
		num(L, "HW", (long)x->shape[2] * x->shape[3]);
	} else {
		window_vars(L, n);
		num(L, "IS_MAX", n->op == BRN_OP_MAXPOOL);
		var(L, "OP", n->op == BRN_OP_MAXPOOL ? "max" : "average");
		pool_divisor(L, n);
	}
	buf_var(L, "X", value_buf(L, n->in[0]));
	set_out(L, n->id, &e);
}

static void lower_eltwise(lower *L, const brn_node *n)
{
	epilogue e = {""};
	kernel(L, "eltwise", n, brn_op_name(n->op), brn_shape_count(n->shape), 1);
	buf_var(L, "X", value_buf(L, n->in[0]));
	int last = n->id;
	if (n->op == BRN_OP_ADD) {
		epi(&e, "\t\t\tv += mem[@%d + gid];\n", value_buf(L, n->in[1]));
		buf_var(L, "B", L->vbuf[n->in[1]]);
		int next = L->p->fused ? sole_consumer(L, n->id) : -1;
		if (L->list == 0 && epi_act(L, &e, next))
			last = next;
	} else if (n->op == BRN_OP_RELU) {
		epi_relu(&e);
	} else if (n->op == BRN_OP_RELU6) {
		epi(&e, "\t\t\tv = FMIN(FMAX(v, 0.0f), 6.0f);\n");
	} else if (brn_is_norm(n->op)) {
		/* inference norm outside a conv group */
		L->k->tmpl = "norm_infer";
		norm_common(L, n);
		int next = L->p->fused ? sole_consumer(L, n->id) : -1;
		if (epi_act(L, &e, next))
			last = next;
		var(L, "RELU_NOTE", "%s", act_note(L, n->id, last));
	}
	var(L, "WHAT", "%s", brn_op_name(n->op));
	set_out(L, last, &e);
}

static void lower_softmax(lower *L, const brn_node *n)
{
	epilogue e = {""};
	kernel(L, "softmax", n, "softmax", 1, 1);
	num(L, "K", n->shape[1]);
	buf_var(L, "X", value_buf(L, n->in[0]));
	set_out(L, n->id, &e);
}

/* Forward kernels of one list (infer: 0; train: 1). */
static void lower_forward(lower *L)
{
	const brn_graph *g = L->g;
	long stats = L->p->stats_off;
	for (int i = 0; i < g->n && !L->oom; i++) {
		const brn_node *n = &g->nodes[i];
		if (L->absorbed[i])
			continue;
		switch (n->op) {
		case BRN_OP_INPUT:
			value_buf(L, i);
			break;
		case BRN_OP_CONV: lower_conv(L, n); break;
		case BRN_OP_DENSE: lower_dense(L, n); break;
		case BRN_OP_BATCH_NORM:
		case BRN_OP_BATCH_RENORM:
			if (L->list == 1) {
				lower_norm_train(L, n, stats);
				stats += 8L * n->shape[1];
			} else {
				lower_eltwise(L, n);
			}
			break;
		case BRN_OP_RELU:
		case BRN_OP_RELU6:
		case BRN_OP_ADD: lower_eltwise(L, n); break;
		case BRN_OP_MAXPOOL:
		case BRN_OP_AVGPOOL: lower_pool(L, n, "pool_fwd"); break;
		case BRN_OP_GLOBAL_AVGPOOL: lower_pool(L, n, "gap_fwd"); break;
		case BRN_OP_FLATTEN:
			/* same memory, other shape */
			L->vbuf[i] = value_buf(L, n->in[0]);
			if (i == g->output && L->list == 0)
				L->p->out_node = i;
			break;
		case BRN_OP_SOFTMAX: lower_softmax(L, n); break;
		case BRN_OP_SOFTMAX_CE:
			if (L->list == 1) {
				kernel(L, "softmax_ce", n, "softmax_ce", 1, 1);
				num(L, "K", g->nodes[n->in[0]].shape[1]);
				buf_var(L, "X", value_buf(L, n->in[0]));
				buf_var(L, "LOSS", value_buf(L, i));
				buf_var(L, "DX", grad_buf(L, n->in[0]));
				L->gwritten[n->in[0]] = 1;
			}
			break;
		default:
			break;
		}
	}
}

/* "mem[@dx + <at>] = v;" the first time a gradient is written, "+=" after. */
static void store_at(lower *L, const char *key, const char *dxkey, int node, const char *at)
{
	buf_var(L, dxkey, grad_buf(L, node));
	var(L, key, "mem[@%d + %s] %s v;", L->gbuf[node], at, L->gwritten[node] ? "+=" : "=");
	L->gwritten[node] = 1;
}

static void store(lower *L, const char *key, const char *dxkey, int node)
{
	store_at(L, key, dxkey, node, "gid");
}

static int wants_dx(const lower *L, int node)
{
	const brn_node *x = &L->g->nodes[node];
	return L->needs_grad[node] && x->op != BRN_OP_INPUT && x->op != BRN_OP_LABELS;
}

static void backward_conv(lower *L, const brn_node *n)
{
	const brn_graph *g = L->g;
	int x = n->in[0];
	if (wants_dx(L, x) && gemm_fits(L, n)) {
		conv1x1(L, n, 1);
		store_at(L, "STORE", "DX", x, "o");
	} else if (wants_dx(L, x) && conv16_fits(n)) {
		conv16(L, n, 1);
		store_at(L, "STORE", "DX", x, "o");
	} else if (wants_dx(L, x)) {
		const int *xs = g->nodes[x].shape;
		int tw = xs[3] < 64 ? xs[3] : 64, wt = (xs[3] + tw - 1) / tw;
		int dw = dw_fits(L, n, 1);
		kernel(L, dw ? "conv_dw" : "conv_bwd_data", n, "conv_bwd_data", (long)xs[1] * xs[2] * wt, 1);
		L->k->base = "conv_bwd_data";
		conv_vars(L, n);
		num(L, "TW", tw);
		num(L, "WT", wt);
		buf_var(L, "DY", L->gbuf[n->id]);
		store_at(L, "STORE_DX", "DX", x, "o");
		if (dw) {
			dw_vars(L, n, 1);
			var(L, "STORE", "\t\t\t%s", brn_kernel_var(L->k, "STORE_DX"));
		}
	}
	if (gemm_fits(L, n)) {
		conv1x1_wgrad(L, n);
		return;
	}
	if (conv16_fits(n)) {
		conv16_wgrad(L, n);
		return;
	}
	kernel(L, dw_fits(L, n, 0) ? "conv_dw_wgrad" : "conv_bwd_weight", n, "conv_bwd_weight", 0, 0);
	L->k->base = "conv_bwd_weight";
	conv_vars(L, n);
	num(L, "HP", g->nodes[x].shape[2] + 2 * n->pad[0]);
	L->k->items = atol(brn_kernel_var(L->k, "WCOUNT")) + (n->bias ? n->out : 0);
	num(L, "BIAS", n->bias ? slot_off(L, n->id, BRN_PARAM_BIAS) : 0);
	num(L, "PARAMS", 0);
	num(L, "MOMENTUM", L->p->momentum_off);
	buf_var(L, "DY", L->gbuf[n->id]);
}

static void dense_sizes(lower *L, const brn_node *n)
{
	num(L, "IN", L->g->nodes[n->in[0]].shape[1]);
	num(L, "OUT", n->out);
	num(L, "WGT", slot_off(L, n->id, BRN_PARAM_WEIGHT));
}

static void backward_dense(lower *L, const brn_node *n)
{
	int x = n->in[0], in = L->g->nodes[x].shape[1];
	if (wants_dx(L, x)) {
		kernel(L, "dense_bwd_data", n, "dense_bwd_data", in, 1);
		dense_sizes(L, n);
		buf_var(L, "DY", L->gbuf[n->id]);
		store(L, "STORE_DX", "DX", x);
	}
	kernel(L, "dense_bwd_weight", n, "dense_bwd_weight", (long)n->out * in + (n->bias ? n->out : 0), 0);
	dense_sizes(L, n);
	num(L, "BIAS", n->bias ? slot_off(L, n->id, BRN_PARAM_BIAS) : 0);
	num(L, "PARAMS", 0);
	num(L, "MOMENTUM", L->p->momentum_off);
	buf_var(L, "X", value_buf(L, x));
	buf_var(L, "DY", L->gbuf[n->id]);
}

/* norm_bwd_stats, then norm_bwd_dx; stats: the node's [C][8] statistics. */
static void backward_norm(lower *L, const brn_node *n, long stats)
{
	const brn_graph *g = L->g;
	int i = n->id, x = n->in[0];
	/* with its relu absorbed, the gradient arrives at the relu */
	int out = i, relu = -1;
	int next = L->p->fused ? sole_consumer(L, i) : -1;
	if (next >= 0 && L->absorbed[next] && g->nodes[next].op == BRN_OP_RELU)
		out = relu = next;
	if (!L->gwritten[out])
		return;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			kernel(L, "norm_bwd_stats", n, "norm_bwd_stats", n->shape[1], 0);
		else if (wants_dx(L, x))
			kernel(L, "norm_bwd_dx", n, "norm_bwd_dx", brn_shape_count(n->shape), 1);
		else
			return;
		norm_common(L, n);
		num(L, "STATS", stats);
		num(L, "MGAMMA", slot_off(L, i, BRN_PARAM_GAMMA) + L->p->momentum_off);
		num(L, "MBETA", slot_off(L, i, BRN_PARAM_BETA) + L->p->momentum_off);
		buf_var(L, "DY", L->gbuf[out]);
		var(L, "MASK", "");
		if (relu >= 0) {
			buf_var(L, "A", L->vbuf[relu]);
			var(L, "MASK", "\t\t\tif (mem[@%d + %s] <= 0.0f)\n\t\t\t\tg = 0.0f;",
			    L->vbuf[relu], pass == 0 ? "base + i" : "gid");
		}
		if (pass == 1)
			store(L, "STORE_DX", "DX", x);
	}
}

static void backward_softmax(lower *L, const brn_node *n)
{
	int x = n->in[0];
	kernel(L, "softmax_bwd", n, "softmax_bwd", 1, 1);
	num(L, "K", n->shape[1]);
	buf_var(L, "Y", value_buf(L, n->id));
	buf_var(L, "DY", L->gbuf[n->id]);
	buf_var(L, "DX", grad_buf(L, x));
	var(L, "STORE_DX", "mem[@%d + gid * %d + j] %s v;", L->gbuf[x], n->shape[1],
	    L->gwritten[x] ? "+=" : "=");
	L->gwritten[x] = 1;
}

static void backward_add(lower *L, const brn_node *n)
{
	if (!wants_dx(L, n->in[0]) && !wants_dx(L, n->in[1]))
		return; /* add(x, x) of the model input: no kernel at all */
	kernel(L, "add_bwd", n, "add_bwd", brn_shape_count(n->shape), 1);
	buf_var(L, "DY", L->gbuf[n->id]);
	var(L, "MASK", "");
	var(L, "MASK_NOTE", "");
	static const char *const keys[2][2] = {{"STORE_DX", "DX"}, {"STORE_DX2", "DX2"}};
	for (int k = 0; k < 2; k++) {
		if (wants_dx(L, n->in[k]))
			store(L, keys[k][0], keys[k][1], n->in[k]);
		else
			var(L, keys[k][0], "");
	}
}

static void backward_pool(lower *L, const brn_node *n)
{
	const brn_node *x = &L->g->nodes[n->in[0]];
	if (n->op == BRN_OP_GLOBAL_AVGPOOL) {
		kernel(L, "gap_bwd", n, "gap_bwd", brn_shape_count(x->shape), 1);
		num(L, "HW", (long)x->shape[2] * x->shape[3]);
	} else {
		int tiled = pool_tiles(n); /* else the gather */
		if (tiled) {
			kernel(L, "pool_bwd_tiled", n, "pool_bwd", (long)n->shape[1] * n->shape[2], 1);
			var(L, "ISA_LOOP", "1");
		} else {
			kernel(L, "pool_bwd", n, "pool_bwd", brn_shape_count(x->shape), 1);
		}
		shape_vars(L, x, n);
		window_vars(L, n);
		num(L, "IS_MAX", n->op == BRN_OP_MAXPOOL);
		var(L, "OP", n->op == BRN_OP_MAXPOOL ? "max" : "average");
		if (!tiled)
			pool_divisor(L, n);
		buf_var(L, "X", value_buf(L, x->id));
		if (tiled) {
			buf_var(L, "DY", L->gbuf[n->id]);
			store_at(L, "STORE_DX", "DX", x->id, "o");
			return;
		}
	}
	buf_var(L, "DY", L->gbuf[n->id]);
	store(L, "STORE_DX", "DX", x->id);
}

static void backward_flatten(lower *L, const brn_node *n)
{
	int i = n->id, x = n->in[0];
	/* same memory: the gradient buffer is shared */
	if (L->gbuf[x] < 0 && !L->gwritten[x]) {
		L->gbuf[x] = L->gbuf[i];
		L->gwritten[x] = 1;
	} else if (wants_dx(L, x)) {
		kernel(L, "eltwise", n, "flatten_bwd", brn_shape_count(n->shape), 1);
		buf_var(L, "X", L->gbuf[i]);
		buf_var(L, "Y", L->gbuf[x]);
		var(L, "WHAT", "gradient of flatten, accumulated");
		var(L, "EPILOGUE", "\t\t\tv += mem[@%d + gid];\n", L->gbuf[x]);
	}
}

/* Backward kernels in reverse node order: every consumer of a node has
 * written its share of the gradient before the node's own backward runs. */
static void lower_backward(lower *L)
{
	const brn_graph *g = L->g;
	long stats = L->p->stats_off;
	long *stats_at = brn_arena_alloc(L->a, (size_t)g->n * sizeof(long));
	if (!stats_at) {
		L->oom = 1;
		return;
	}
	for (int i = 0; i < g->n; i++)
		if (brn_is_norm(g->nodes[i].op)) {
			stats_at[i] = stats;
			stats += 8L * g->nodes[i].shape[1];
		}
	for (int i = g->n - 1; i >= 0 && !L->oom; i--) {
		const brn_node *n = &g->nodes[i];
		if (!L->needs_grad[i] || L->absorbed[i] || n->op == BRN_OP_SOFTMAX_CE ||
		    (!L->gwritten[i] && !brn_is_norm(n->op)))
			continue;
		int x = n->nin ? n->in[0] : -1;
		switch (n->op) {
		case BRN_OP_CONV: backward_conv(L, n); break;
		case BRN_OP_DENSE: backward_dense(L, n); break;
		case BRN_OP_BATCH_NORM:
		case BRN_OP_BATCH_RENORM: backward_norm(L, n, stats_at[i]); break;
		case BRN_OP_SOFTMAX:
			if (wants_dx(L, x))
				backward_softmax(L, n);
			break;
		case BRN_OP_RELU:
			if (!wants_dx(L, x))
				break;
			kernel(L, "relu_bwd", n, "relu_bwd", brn_shape_count(n->shape), 1);
			buf_var(L, "X", value_buf(L, x));
			buf_var(L, "DY", L->gbuf[i]);
			store(L, "STORE_DX", "DX", x);
			break;
		case BRN_OP_RELU6:
			if (!wants_dx(L, x))
				break;
			kernel(L, "relu6_bwd", n, "relu6_bwd", brn_shape_count(n->shape), 1);
			buf_var(L, "X", value_buf(L, x));
			buf_var(L, "DY", L->gbuf[i]);
			store(L, "STORE_DX", "DX", x);
			break;
		case BRN_OP_ADD: backward_add(L, n); break;
		case BRN_OP_MAXPOOL:
		case BRN_OP_AVGPOOL:
		case BRN_OP_GLOBAL_AVGPOOL:
			if (wants_dx(L, x))
				backward_pool(L, n);
			break;
		case BRN_OP_FLATTEN: backward_flatten(L, n); break;
		default:
			break;
		}
	}
}

/* --- memory ------------------------------------------------------------ */

static int make_slots(lower *L)
{
	const brn_graph *g = L->g;
	brn_plan *p = L->p;
	brn_param ps[6];
	int total = 0;
	for (int i = 0; i < g->n; i++)
		total += brn_graph_params(g, &g->nodes[i], ps);
	p->slots = brn_arena_alloc(L->a, (size_t)(total + 1) * sizeof *p->slots);
	if (!p->slots)
		return -1;
	long off = 0;
	for (int i = 0; i < g->n; i++) {
		int k = brn_graph_params(g, &g->nodes[i], ps);
		L->first_slot[i] = k ? p->nslots : -1;
		for (int j = 0; j < k; j++) {
			brn_slot *s = &p->slots[p->nslots++];
			s->name = brn_arena_printf(L->a, "%s.%s", g->nodes[i].name, ps[j].suffix);
			s->p = ps[j];
			s->node = i;
			s->off = off;
			off += (ps[j].count + 3) / 4 * 4;
		}
	}
	p->params_floats = (off + 15) / 16 * 16;
	return 0;
}

/* First fit by liveness: a buffer may share memory with any buffer of its
 * list whose uses do not overlap its own. */
static long place(brn_plan *p, int list, int in_buf, int out_buf)
{
	long top = 0;
	int nk = p->nkernels[list];
	for (int b = 0; b < p->nbufs; b++)
		if (p->bufs[b].list == list)
			p->bufs[b].first = p->bufs[b].last = -1;
	for (int k = 0; k < nk; k++) {
		const brn_kernel *kk = &p->kernels[list][k];
		for (int i = 0; i < kk->nbufs; i++) {
			brn_buffer *b = &p->bufs[kk->bufs[i]];
			if (b->first < 0)
				b->first = k;
			b->last = k;
		}
	}
	p->bufs[in_buf].first = 0;
	if (p->bufs[in_buf].last < 0)
		p->bufs[in_buf].last = 0;
	p->bufs[out_buf].last = nk;
	if (p->bufs[out_buf].first < 0)
		p->bufs[out_buf].first = 0;
	/* Each buffer goes at the lowest offset clear of the earlier buffers
	 * live at the same time. Only those are visited: an earlier buffer
	 * that dies before every later one is born leaves the active list
	 * (min_first[b]: the earliest first use of buffers b, b+1, ...). */
	int *active = brn_arena_alloc(p->arena, (size_t)p->nbufs * sizeof *active + 1);
	int *min_first = brn_arena_alloc(p->arena, (size_t)(p->nbufs + 1) * sizeof *min_first);
	if (!active || !min_first)
		return -1;
	min_first[p->nbufs] = INT_MAX;
	for (int b = p->nbufs - 1; b >= 0; b--) {
		brn_buffer *bb = &p->bufs[b];
		if (bb->list == list && bb->first < 0)
			bb->first = bb->last = 0;
		min_first[b] = bb->list == list && bb->first < min_first[b + 1] ? bb->first : min_first[b + 1];
	}
	int na = 0;
	for (int b = 0; b < p->nbufs; b++) {
		brn_buffer *bb = &p->bufs[b];
		if (bb->list != list)
			continue;
		long off = 0;
		int moved = 1, kept = 0;
		for (int j = 0; j < na; j++)
			if (p->bufs[active[j]].last >= min_first[b])
				active[kept++] = active[j];
		na = kept;
		while (moved) {
			moved = 0;
			for (int j = 0; j < na; j++) {
				const brn_buffer *ob = &p->bufs[active[j]];
				if (ob->last < bb->first || ob->first > bb->last)
					continue;
				if (off < ob->off + ob->floats && ob->off < off + bb->floats) {
					off = ob->off + ob->floats;
					moved = 1;
				}
			}
		}
		bb->off = off;
		if (off + bb->floats > top)
			top = off + bb->floats;
		active[na++] = b;
	}
	return top;
}

/* --- folding ------------------------------------------------------------- */

static int load_weights(lower *L, const char *path)
{
	brn_plan *p = L->p;
	brnrt_st_tensor *specs = brn_arena_alloc(L->a, (size_t)(p->nslots + 1) * sizeof *specs);
	if (!specs)
		return -1;
	for (int s = 0; s < p->nslots; s++) {
		brn_slot *sl = &p->slots[s];
		specs[s].name = sl->name;
		specs[s].ndim = sl->p.ndim;
		for (int k = 0; k < sl->p.ndim; k++)
			specs[s].shape[k] = sl->p.shape[k];
		specs[s].data = brn_arena_alloc(L->a, (size_t)sl->p.count * sizeof(float));
		sl->value = brn_arena_alloc(L->a, (size_t)sl->p.count * sizeof(double));
		if (!specs[s].data || !sl->value)
			return -1;
	}
	brnrt_error e;
	if (brnrt_st_load(path, specs, p->nslots, ".momentum", NULL, &e))
		return brn_diag_error(L->d, "", 0, 0, "%s", e.msg);
	for (int s = 0; s < p->nslots; s++)
		for (long i = 0; i < p->slots[s].p.count; i++) {
			double v = specs[s].data[i];
			/* compiled in as literals: nan or inf would not compile, and
			 * a sigma <= 0 would divide by zero or flip the sign */
			if (!isfinite(v))
				return brn_diag_error(L->d, path, 0, 0, "tensor '%s' is %s at index %ld; expected finite values",
				                      p->slots[s].name, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", i);
			if (p->slots[s].p.kind == BRN_PARAM_SIGMA && !(v > 0))
				return brn_diag_error(L->d, path, 0, 0, "tensor '%s' is %g at index %ld; a standard deviation "
				                      "must be > 0", p->slots[s].name, v, i);
			p->slots[s].value[i] = v;
		}
	return 0;
}

/* After folding, every value must still be a float (gamma / sigma may be huge). */
static int check_folded(lower *L, const char *path)
{
	for (int s = 0; s < L->p->nslots; s++)
		for (long i = 0; i < L->p->slots[s].p.count; i++)
			if (!(fabs(L->p->slots[s].value[i]) <= FLT_MAX))
				return brn_diag_error(L->d, path, 0, 0, "tensor '%s' is %g at index %ld after folding the norm "
				                      "into it; beyond the float range", L->p->slots[s].name,
				                      L->p->slots[s].value[i], i);
	return 0;
}

static double *slot_values(lower *L, int node, brn_param_kind kind)
{
	for (int s = L->first_slot[node]; s >= 0 && s < L->p->nslots && L->p->slots[s].node == node; s++)
		if (L->p->slots[s].p.kind == kind)
			return L->p->slots[s].value;
	return NULL;
}

/* w' = w * gamma / sigma per output channel; b' = (b - mu) * gamma / sigma
 * + beta, stored in the layer's bias or, without one, in the norm's beta. */
static void fold(lower *L)
{
	const brn_graph *g = L->g;
	for (int i = 0; i < g->n; i++) {
		const brn_node *n = &g->nodes[i];
		if (n->op != BRN_OP_CONV && n->op != BRN_OP_DENSE)
			continue;
		int nm = sole_consumer(L, i);
		if (nm < 0 || !brn_is_norm(g->nodes[nm].op))
			continue;
		double *w = slot_values(L, i, BRN_PARAM_WEIGHT), *b = slot_values(L, i, BRN_PARAM_BIAS);
		double *gm = slot_values(L, nm, BRN_PARAM_GAMMA), *bt = slot_values(L, nm, BRN_PARAM_BETA);
		double *mu = slot_values(L, nm, BRN_PARAM_MEAN), *sg = slot_values(L, nm, BRN_PARAM_SIGMA);
		long per = 1;
		brn_param ps[6];
		brn_graph_params(g, n, ps);
		per = ps[0].count / n->out;
		for (int k = 0; k < n->out; k++) {
			double scale = gm[k] / sg[k];
			for (long e = 0; e < per; e++)
				w[k * per + e] *= scale;
			double shift = ((b ? b[k] : 0.0) - mu[k]) * scale + bt[k];
			if (b)
				b[k] = shift;
			/* the norm becomes the identity (or a shift), so a saved
			 * file means the same to code that does not fold */
			bt[k] = b ? 0.0 : shift;
			gm[k] = sg[k] = 1.0;
			mu[k] = 0.0;
		}
	}
}

int brn_plan_build(const brn_graph *g, const char *target, int train, int no_fuse, long step,
                   const brn_knobs *knobs, const char *weights, brn_arena *a,
                   brn_plan *p, brn_diag *d)
{
	lower L;
	memset(p, 0, sizeof *p);
	memset(&L, 0, sizeof L);
	p->g = g;
	p->train = train;
	p->fused = !no_fuse;
	p->step = step;
	p->arena = a;
	p->out_node = g->output;
	L.p = p;
	L.g = g;
	L.d = d;
	L.a = a;
	L.knobs = knobs;
	L.c_target = strcmp(target, "c") == 0;
	size_t ints = (size_t)g->n * sizeof(int);
	if (!(L.first_slot = brn_arena_alloc(a, ints)) || count_consumers(&L) || make_slots(&L))
		return brn_diag_error(d, g->file, 0, 0, "out of memory");
	if (weights) {
		if (load_weights(&L, weights))
			return -1;
		p->weights_folded = 1;
		if (p->fused)
			fold(&L);
		if (check_folded(&L, weights))
			return -1;
	}
	p->momentum_off = train ? p->params_floats : 0;
	p->stats_off = p->params_floats * (train ? 2 : 1);
	for (int i = 0; i < g->n; i++)
		if (brn_is_norm(g->nodes[i].op))
			p->stats_floats += 8L * g->nodes[i].shape[1];
	p->scratch_off = (p->stats_off + (train ? p->stats_floats : 0) + 15) / 16 * 16;
	long scratch = 0;
	for (int list = 0; list <= train; list++) {
		L.list = list;
		if (!(L.vbuf = brn_arena_alloc(a, ints)) || !(L.gbuf = brn_arena_alloc(a, ints)) ||
		    !(L.gwritten = brn_arena_alloc(a, ints)) || !(L.absorbed = brn_arena_alloc(a, ints)) ||
		    !(L.needs_grad = brn_arena_alloc(a, ints)))
			return brn_diag_error(d, g->file, 0, 0, "out of memory");
		for (int i = 0; i < g->n; i++)
			L.vbuf[i] = L.gbuf[i] = -1;
		if (list == 1 && g->loss >= 0) {
			L.needs_grad[g->loss] = 1;
			for (int i = g->n - 1; i >= 0; i--)
				for (int k = 0; L.needs_grad[i] && k < g->nodes[i].nin; k++)
					L.needs_grad[g->nodes[i].in[k]] = 1;
			/* a node with no parameter before it (the input, relu(x),
			 * add(x, x)) passes its gradient to nothing */
			int *after_param = brn_arena_alloc(a, ints);
			if (!after_param)
				return brn_diag_error(d, g->file, 0, 0, "out of memory");
			for (int i = 0; i < g->n; i++) {
				brn_param ps[6];
				int np = brn_graph_params(g, &g->nodes[i], ps), trained = 0;
				for (int j = 0; j < np; j++)
					trained |= ps[j].trainable;
				for (int k = 0; k < g->nodes[i].nin; k++)
					trained |= after_param[g->nodes[i].in[k]];
				after_param[i] = trained;
				L.needs_grad[i] &= trained;
			}
		}
		lower_forward(&L);
		if (list == 1)
			lower_backward(&L);
		if (L.oom)
			return brn_diag_error(d, g->file, 0, 0, "out of memory while planning kernels");
		if (L.badnum)
			return brn_diag_error(d, g->file, 0, 0, "internal error: %g is not a float literal", L.badval);
		/* the input is written before the first kernel, results read after the last */
		if (list == 1 && g->loss < 0)
			return brn_diag_error(d, g->file, 0, 0, "--mode train needs a loss; add e.g. 'loss softmax_cross_entropy(logits, y);'");
		int out = list == 0 ? L.vbuf[p->out_node] : L.vbuf[g->loss];
		long top = place(p, list, L.vbuf[g->input], out);
		if (top < 0)
			return brn_diag_error(d, g->file, 0, 0, "out of memory while planning buffers");
		if (top > scratch)
			scratch = top;
		p->in_off[list] = p->scratch_off + p->bufs[L.vbuf[g->input]].off;
		if (list == 0)
			p->out_off = p->scratch_off + p->bufs[L.vbuf[p->out_node]].off;
		else
			p->loss_off = p->scratch_off + p->bufs[L.vbuf[g->loss]].off;
	}
	p->mem_floats = p->scratch_off + scratch;
	return 0;
}
