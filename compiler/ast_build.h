/* Builders the grammar's actions call (parse.y); private to the parser. */
#ifndef BRN_AST_BUILD_H
#define BRN_AST_BUILD_H

#include "ast.h"

typedef struct brn_parser {
	brn_lexer *lx;
	brn_ast *ast;
	brn_arena *arena;
	brn_diag *diag;
	int failed;
} brn_parser;

void brn_build_syntax_error(brn_parser *p, const brn_token *t, int kind);
void brn_build_overflow(brn_parser *p);
void brn_build_model(brn_parser *p, const brn_token *k, const brn_token *name);
void brn_build_batch(brn_parser *p, const brn_token *k, const brn_token *v);
void brn_build_tensor(brn_parser *p, brn_stmt_kind kind, const brn_token *k,
                      const brn_token *name, brn_expr *dims);
void brn_build_schedule(brn_parser *p, const brn_token *k, const brn_token *s);
void brn_build_defaults(brn_parser *p, const brn_token *k, brn_expr *args);
void brn_build_assign(brn_parser *p, const brn_token *target, brn_expr *e);
void brn_build_loss(brn_parser *p, const brn_token *k, brn_expr *call);
void brn_build_output(brn_parser *p, const brn_token *k, brn_expr *names);
brn_expr *brn_build_atom(brn_parser *p, const brn_token *t);
brn_expr *brn_build_negative(brn_parser *p, const brn_token *minus, const brn_token *t);
brn_expr *brn_build_list(brn_parser *p, brn_expr *list, brn_expr *item);
brn_expr *brn_build_close_list(brn_parser *p, const brn_token *bracket, brn_expr *list);
brn_expr *brn_build_call(brn_parser *p, const brn_token *name, brn_expr *args);
brn_expr *brn_build_arg(brn_parser *p, brn_expr *call, const brn_token *key, brn_expr *value);

#endif
