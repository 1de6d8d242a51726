/* The op table of DESIGN.md §3. Shape rules live in graph.c, keyed by op. */
#include "ops.h"

#include <string.h>

#include "graph.h"

#define AT(field) offsetof(brn_node, field)
#define X(name) {name, BRN_ATTR_TENSOR, 0, NULL, 0, 0}

static const brn_op_def ops[] = {
	{"conv", BRN_OP_CONV, 2, {
		X("x"),
		{"out", BRN_ATTR_INT, AT(out), NULL, 0, 1},
		{"kernel", BRN_ATTR_PAIR, AT(kernel), "3", 0, 1},
		{"stride", BRN_ATTR_PAIR, AT(stride), "1", 0, 1},
		{"pad", BRN_ATTR_PAIR, AT(pad), "0", 0, 0},
		{"groups", BRN_ATTR_INT, AT(groups), "1", 0, 1},
		{"bias", BRN_ATTR_BOOL, AT(bias), "true", 0, 0}}, 1},
	{"batch_norm", BRN_OP_BATCH_NORM, 1, {
		X("x"),
		{"eps", BRN_ATTR_FLOAT, AT(eps), "1e-3", 0, 1},
		{"alpha", BRN_ATTR_FLOAT, AT(alpha), "0.01", 0, 1}}, 1},
	{"batch_renorm", BRN_OP_BATCH_RENORM, 1, {
		X("x"),
		{"eps", BRN_ATTR_FLOAT, AT(eps), "1e-3", 0, 1},
		{"alpha", BRN_ATTR_FLOAT, AT(alpha), "0.01", 0, 1},
		{"r_max", BRN_ATTR_SCHED, AT(r_max), "@schedule", 1, 0},
		{"d_max", BRN_ATTR_SCHED, AT(d_max), "@schedule", 0, 0}}, 1},
	{"relu", BRN_OP_RELU, 1, {X("x")}, 0},
	{"relu6", BRN_OP_RELU6, 1, {X("x")}, 0},
	{"add", BRN_OP_ADD, 2, {X("a"), X("b")}, 0},
	{"maxpool", BRN_OP_MAXPOOL, 2, {
		X("x"),
		{"kernel", BRN_ATTR_PAIR, AT(kernel), NULL, 0, 1},
		{"stride", BRN_ATTR_PAIR, AT(stride), "@kernel", 0, 1},
		{"pad", BRN_ATTR_PAIR, AT(pad), "0", 0, 0}}, 0},
	{"avgpool", BRN_OP_AVGPOOL, 2, {
		X("x"),
		{"kernel", BRN_ATTR_PAIR, AT(kernel), NULL, 0, 1},
		{"stride", BRN_ATTR_PAIR, AT(stride), "@kernel", 0, 1},
		{"pad", BRN_ATTR_PAIR, AT(pad), "0", 0, 0},
		{"count_include_pad", BRN_ATTR_BOOL, AT(count_pad), "false", 0, 0}}, 0},
	{"global_avgpool", BRN_OP_GLOBAL_AVGPOOL, 1, {X("x")}, 0},
	{"flatten", BRN_OP_FLATTEN, 1, {X("x")}, 0},
	{"dense", BRN_OP_DENSE, 2, {
		X("x"),
		{"out", BRN_ATTR_INT, AT(out), NULL, 0, 1},
		{"bias", BRN_ATTR_BOOL, AT(bias), "true", 0, 0}}, 1},
	{"softmax", BRN_OP_SOFTMAX, 1, {X("x")}, 0},
	{"softmax_cross_entropy", BRN_OP_SOFTMAX_CE, 2, {X("logits"), X("labels")}, 0},
	{"input", BRN_OP_INPUT, 0, {{0}}, 0},
	{"labels", BRN_OP_LABELS, 0, {{0}}, 0},
};

const brn_op_def *brn_op_find(const char *name)
{
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		if (strcmp(ops[i].name, name) == 0 && ops[i].op != BRN_OP_INPUT &&
		    ops[i].op != BRN_OP_LABELS)
			return &ops[i];
	return NULL;
}

const brn_op_def *brn_op_get(brn_opcode op)
{
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		if (ops[i].op == op)
			return &ops[i];
	return NULL;
}

const char *brn_op_name(brn_opcode op)
{
	const brn_op_def *d = brn_op_get(op);
	return d ? d->name : "?";
}
