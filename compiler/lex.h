/* Lexer for the .brn model language: hand-written, one token at a time,
 * every token with its line and column so any error can point at source. */
#ifndef BRN_LEX_H
#define BRN_LEX_H

#include <stddef.h>

#include "arena.h"
#include "diag.h"

/* A token as the grammar sees it; kind is one of parse.h's TK_* codes. */
typedef struct brn_token {
	int kind;
	int line, col;
	const char *text;   /* NAME/STRING: the (unquoted) text, in the arena */
	long long ival;     /* INT */
	double fval;        /* FLOAT, and INT as a double */
} brn_token;

typedef struct brn_lexer {
	const char *file;
	const char *src, *at, *end;
	int line;
	const char *line_start;
	brn_arena *arena;
	brn_diag *diag;
} brn_lexer;

void brn_lex_init(brn_lexer *lx, const char *file, const char *src, size_t len,
                  brn_arena *arena, brn_diag *diag);
/* Next token; kind 0 at end of input. Returns -1 on a lexical error (in diag). */
int brn_lex_next(brn_lexer *lx, brn_token *t);
/* How a token kind reads in messages: "';'", "a name", "end of file". */
const char *brn_lex_describe(int kind);

#endif
