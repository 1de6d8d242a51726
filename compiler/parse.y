/* Grammar of the .brn model language (docs/language.md). Each action is a
 * line that calls a builder in ast.c; the grammar holds no logic. lemon
 * turns this into build/compiler/parse.c at build time. */

%include {
#include <assert.h>
#include <stdlib.h>
#include "ast.h"
#include "ast_build.h"
}

%name brn_lemon
%token_prefix TK_
%token_type {brn_token}
%extra_context {brn_parser *p}
/* room for ast.c's limit of 100 open brackets (a call level takes up to 6) */
%stack_size 1000

%syntax_error { brn_build_syntax_error(p, &yyminor, yymajor); }
%stack_overflow { brn_build_overflow(p); }

%token MODEL BATCH INPUT LABELS SCHEDULE DEFAULTS LOSS OUTPUT TRUE FALSE.
%token NAME INT FLOAT STRING.
%token SEMI ASSIGN LPAREN RPAREN LBRACKET RBRACKET COMMA MINUS.

%type expr {brn_expr *}
%type call {brn_expr *}
%type args {brn_expr *}
%type arglist {brn_expr *}
%type list {brn_expr *}
%type items {brn_expr *}
%type names {brn_expr *}

program ::= statements.
statements ::= .
statements ::= statements statement.

/* header statements */
statement ::= MODEL(K) NAME(N) SEMI.                 { brn_build_model(p, &K, &N); }
statement ::= BATCH(K) INT(V) SEMI.                  { brn_build_batch(p, &K, &V); }
statement ::= INPUT(K) NAME(N) list(L) SEMI.         { brn_build_tensor(p, BRN_ST_INPUT, &K, &N, L); }
statement ::= LABELS(K) NAME(N) list(L) SEMI.        { brn_build_tensor(p, BRN_ST_LABELS, &K, &N, L); }
statement ::= SCHEDULE(K) STRING(S) SEMI.            { brn_build_schedule(p, &K, &S); }
statement ::= DEFAULTS(K) arglist(L) SEMI.           { brn_build_defaults(p, &K, L); }

/* layers */
statement ::= NAME(T) ASSIGN expr(E) SEMI.           { brn_build_assign(p, &T, E); }
statement ::= LOSS(K) call(E) SEMI.                  { brn_build_loss(p, &K, E); }
statement ::= OUTPUT(K) names(L) SEMI.               { brn_build_output(p, &K, L); }

names(A) ::= NAME(N).                                { A = brn_build_list(p, NULL, brn_build_atom(p, &N)); }
names(A) ::= names(L) COMMA NAME(N).                 { A = brn_build_list(p, L, brn_build_atom(p, &N)); }

expr(A) ::= call(C).                                 { A = C; }
expr(A) ::= NAME(N).                                 { A = brn_build_atom(p, &N); }
expr(A) ::= INT(N).                                  { A = brn_build_atom(p, &N); }
expr(A) ::= FLOAT(N).                                { A = brn_build_atom(p, &N); }
expr(A) ::= STRING(N).                               { A = brn_build_atom(p, &N); }
expr(A) ::= TRUE(N).                                 { A = brn_build_atom(p, &N); }
expr(A) ::= FALSE(N).                                { A = brn_build_atom(p, &N); }
expr(A) ::= MINUS(M) INT(N).                         { A = brn_build_negative(p, &M, &N); }
expr(A) ::= MINUS(M) FLOAT(N).                       { A = brn_build_negative(p, &M, &N); }
expr(A) ::= list(L).                                 { A = L; }

list(A) ::= LBRACKET(B) items(L) RBRACKET.           { A = brn_build_close_list(p, &B, L); }
items(A) ::= expr(E).                                { A = brn_build_list(p, NULL, E); }
items(A) ::= items(L) COMMA expr(E).                 { A = brn_build_list(p, L, E); }

call(A) ::= NAME(N) LPAREN args(L) RPAREN.           { A = brn_build_call(p, &N, L); }
args(A) ::= .                                        { A = NULL; }
args(A) ::= arglist(L).                              { A = L; }
arglist(A) ::= expr(E).                              { A = brn_build_arg(p, NULL, NULL, E); }
arglist(A) ::= NAME(K) ASSIGN expr(E).               { A = brn_build_arg(p, NULL, &K, E); }
arglist(A) ::= arglist(L) COMMA expr(E).             { A = brn_build_arg(p, L, NULL, E); }
arglist(A) ::= arglist(L) COMMA NAME(K) ASSIGN expr(E). { A = brn_build_arg(p, L, &K, E); }
