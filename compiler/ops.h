/* The op table: every op of the language described once — its name, its
 * positional and keyword arguments with types, defaults and ranges. The
 * graph builder, the interpreter and the emitters all read it. */
#ifndef BRN_OPS_H
#define BRN_OPS_H

#include <stddef.h>

typedef enum brn_opcode {
	BRN_OP_INPUT, BRN_OP_LABELS,
	BRN_OP_CONV, BRN_OP_BATCH_NORM, BRN_OP_BATCH_RENORM, BRN_OP_RELU, BRN_OP_ADD,
	BRN_OP_MAXPOOL, BRN_OP_AVGPOOL, BRN_OP_GLOBAL_AVGPOOL, BRN_OP_FLATTEN,
	BRN_OP_DENSE, BRN_OP_SOFTMAX, BRN_OP_SOFTMAX_CE, BRN_OP_RELU6,
	BRN_OP_COUNT
} brn_opcode;

typedef enum brn_attr_type {
	BRN_ATTR_NONE,
	BRN_ATTR_TENSOR,   /* a name or nested call: a graph input */
	BRN_ATTR_INT,      /* a positive count (conv's out) */
	BRN_ATTR_PAIR,     /* n or [h, w] */
	BRN_ATTR_FLOAT,
	BRN_ATTR_BOOL,
	BRN_ATTR_SCHED     /* a number or a schedule name (r_max, d_max) */
} brn_attr_type;

/* One argument an op takes. Where it lands in brn_node is an offset. */
typedef struct brn_attr_def {
	const char *name;
	brn_attr_type type;
	size_t offset;       /* into brn_node; PAIR fills two ints */
	const char *dflt;    /* default as source text, NULL when required;
	                        "@kernel": the value of kernel; "@schedule":
	                        the model's schedule */
	double min;          /* smallest allowed value */
	int min_open;        /* 1: value must be > min, not >= */
} brn_attr_def;

enum { BRN_OP_MAX_ARGS = 8 };

typedef struct brn_op_def {
	const char *name;
	brn_opcode op;
	int npos;            /* positional arguments: args[0..npos) */
	brn_attr_def args[BRN_OP_MAX_ARGS];  /* positional first, then keywords */
	int trainable;       /* has weights that SGD updates */
} brn_op_def;

/* NULL when name is no op of the language. */
const brn_op_def *brn_op_find(const char *name);
const brn_op_def *brn_op_get(brn_opcode op);
const char *brn_op_name(brn_opcode op);

#endif
