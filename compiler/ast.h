/* The syntax tree the grammar builds: statements in source order, each with
 * nested call expressions. graph.c turns it into the Graph IR. */
#ifndef BRN_AST_H
#define BRN_AST_H

#include "arena.h"
#include "diag.h"
#include "lex.h"

typedef enum brn_expr_kind {
	BRN_EX_NAME, BRN_EX_INT, BRN_EX_FLOAT, BRN_EX_STRING, BRN_EX_BOOL,
	BRN_EX_LIST, BRN_EX_CALL
} brn_expr_kind;

typedef struct brn_expr brn_expr;
typedef struct brn_arg brn_arg;

struct brn_arg {
	const char *key;      /* NULL for a positional argument */
	int line, col;        /* of the key, or of the value */
	brn_expr *value;
	brn_arg *next;
};

struct brn_expr {
	brn_expr_kind kind;
	int line, col;
	const char *text;     /* NAME, STRING; CALL: the op name */
	long long ival;       /* INT, BOOL */
	double fval;          /* INT, FLOAT */
	brn_arg *args;        /* CALL: arguments; LIST: items (key NULL) */
	int nargs;
};

typedef enum brn_stmt_kind {
	BRN_ST_MODEL, BRN_ST_BATCH, BRN_ST_INPUT, BRN_ST_LABELS, BRN_ST_SCHEDULE,
	BRN_ST_ASSIGN, BRN_ST_LOSS, BRN_ST_OUTPUT, BRN_ST_DEFAULTS
} brn_stmt_kind;

typedef struct brn_stmt brn_stmt;
struct brn_stmt {
	brn_stmt_kind kind;
	int line, col;        /* of the statement's first token */
	const char *name;     /* MODEL, INPUT, LABELS, ASSIGN target, OUTPUT */
	int name_line, name_col;
	brn_expr *value;      /* BATCH (INT), SCHEDULE (STRING), INPUT/LABELS
	                         (LIST of dims), ASSIGN and LOSS (the expression),
	                         DEFAULTS (a CALL "defaults" holding its arguments) */
	brn_stmt *next;
};

typedef struct brn_ast {
	const char *file;
	brn_stmt *first, *last;
} brn_ast;

/* Parses src (len bytes; NUL bytes inside are errors) into *ast. */
int brn_parse(const char *file, const char *src, size_t len, brn_arena *arena,
              brn_ast *ast, brn_diag *diag);

#endif
