/* The parser's driver and the builders its grammar actions call: they
 * allocate syntax-tree nodes in the arena and record statements in order. */
#include "ast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast_build.h"
#include "parse.h"

/* lemon's entry points (build/compiler/parse.c). */
void *brn_lemonAlloc(void *(*alloc)(size_t), brn_parser *p);
void brn_lemon(void *parser, int kind, brn_token token);
void brn_lemonFree(void *parser, void (*release)(void *));

static void *oom(brn_parser *p, int line, int col)
{
	if (!p->failed)
		brn_diag_error(p->diag, p->ast->file, line, col, "out of memory");
	p->failed = 1;
	return NULL;
}

static brn_expr *new_expr(brn_parser *p, brn_expr_kind kind, int line, int col)
{
	brn_expr *e = brn_arena_alloc(p->arena, sizeof *e);
	if (!e)
		return oom(p, line, col);
	e->kind = kind;
	e->line = line;
	e->col = col;
	return e;
}

static brn_stmt *new_stmt(brn_parser *p, brn_stmt_kind kind, const brn_token *at)
{
	brn_stmt *s = brn_arena_alloc(p->arena, sizeof *s);
	if (!s)
		return oom(p, at->line, at->col);
	s->kind = kind;
	s->line = at->line;
	s->col = at->col;
	if (p->ast->last)
		p->ast->last->next = s;
	else
		p->ast->first = s;
	p->ast->last = s;
	return s;
}

static void set_name(brn_stmt *s, const brn_token *name)
{
	if (s) {
		s->name = name->text;
		s->name_line = name->line;
		s->name_col = name->col;
	}
}

/* Context the driver keeps so a syntax error can say what was expected. */
enum { MAX_NESTING = 100 };  /* open '(' and '[' in one statement */

typedef struct expect_state {
	int prev, prev2;     /* kinds of the last two tokens accepted */
	int depth;           /* open '(' and '[' */
	int open[MAX_NESTING + 1]; /* which bracket each level opened */
	int stmt_tokens;     /* tokens since the statement began */
} expect_state;

static expect_state *expect_of(brn_parser *p);

static const char *expected(const expect_state *s)
{
	if (s->stmt_tokens == 0)
		return "a statement (model, batch, input, labels, schedule, defaults, loss, output, or name = ...)";
	switch (s->prev) {
	case TK_MODEL: case TK_INPUT: case TK_LABELS: case TK_OUTPUT:
		return "a name";
	case TK_BATCH: return "an integer";
	case TK_SCHEDULE: return "a string (a schedule name or path)";
	case TK_DEFAULTS: return "keyword arguments, e.g. eps=1e-5, alpha=0.1";
	case TK_LOSS: return "a call, e.g. softmax_cross_entropy(logits, y)";
	case TK_ASSIGN: case TK_LPAREN: case TK_COMMA: case TK_LBRACKET:
		return "an expression";
	case TK_MINUS: return "a number";
	case TK_NAME:
		if (s->stmt_tokens == 1)
			return "'='";
		if (s->prev2 == TK_INPUT || s->prev2 == TK_LABELS)
			return "a shape such as [1, 28, 28]";
		if (s->prev2 == TK_ASSIGN && s->depth == 0)
			return "'(' or ';'";
		break;
	}
	if (s->depth == 0)
		return "';'";
	return s->open[s->depth - 1] == TK_LPAREN ? "',' or ')'" : "',' or ']'";
}

/* How the offending token reads: "name 'd'", "number 3", "keyword 'input'". */
static void found(const brn_token *t, int kind, char *buf, size_t n)
{
	switch (kind) {
	case 0: snprintf(buf, n, "end of file"); return;
	case TK_NAME: snprintf(buf, n, "name '%s'", t->text); return;
	case TK_STRING: snprintf(buf, n, "string \"%s\"", t->text); return;
	case TK_INT: snprintf(buf, n, "number %lld", t->ival); return;
	case TK_FLOAT: snprintf(buf, n, "number %g", t->fval); return;
	}
	const char *d = brn_lex_describe(kind);
	if (d[0] == '\'')
		snprintf(buf, n, "%s", d);
	else
		snprintf(buf, n, "keyword '%s'", d);
}

void brn_build_syntax_error(brn_parser *p, const brn_token *t, int kind)
{
	if (p->failed)
		return;
	p->failed = 1;
	char what[200];
	found(t, kind, what, sizeof what);
	brn_diag_error(p->diag, p->ast->file, t->line, t->col, "unexpected %s; expected %s",
	               what, expected(expect_of(p)));
}

void brn_build_overflow(brn_parser *p)
{
	p->failed = 2; /* brn_parse reports it at the last token */
}

void brn_build_model(brn_parser *p, const brn_token *k, const brn_token *name)
{
	set_name(new_stmt(p, BRN_ST_MODEL, k), name);
}

void brn_build_batch(brn_parser *p, const brn_token *k, const brn_token *v)
{
	brn_stmt *s = new_stmt(p, BRN_ST_BATCH, k);
	if (s)
		s->value = brn_build_atom(p, v);
}

void brn_build_tensor(brn_parser *p, brn_stmt_kind kind, const brn_token *k,
                      const brn_token *name, brn_expr *dims)
{
	brn_stmt *s = new_stmt(p, kind, k);
	set_name(s, name);
	if (s)
		s->value = dims;
}

void brn_build_schedule(brn_parser *p, const brn_token *k, const brn_token *str)
{
	brn_stmt *s = new_stmt(p, BRN_ST_SCHEDULE, k);
	if (s)
		s->value = brn_build_atom(p, str);
}

/* defaults eps=..., alpha=...;  the arguments as a call named "defaults" */
void brn_build_defaults(brn_parser *p, const brn_token *k, brn_expr *args)
{
	brn_stmt *s = new_stmt(p, BRN_ST_DEFAULTS, k);
	brn_token name = *k;
	name.text = "defaults";
	if (s)
		s->value = brn_build_call(p, &name, args);
}

void brn_build_assign(brn_parser *p, const brn_token *target, brn_expr *e)
{
	brn_stmt *s = new_stmt(p, BRN_ST_ASSIGN, target);
	set_name(s, target);
	if (s)
		s->value = e;
}

void brn_build_loss(brn_parser *p, const brn_token *k, brn_expr *call)
{
	brn_stmt *s = new_stmt(p, BRN_ST_LOSS, k);
	if (s) {
		s->name = "loss";
		s->name_line = k->line;
		s->name_col = k->col;
		s->value = call;
	}
}

void brn_build_output(brn_parser *p, const brn_token *k, brn_expr *names)
{
	brn_stmt *s = new_stmt(p, BRN_ST_OUTPUT, k);
	if (s)
		s->value = names;
}

brn_expr *brn_build_atom(brn_parser *p, const brn_token *t)
{
	static const brn_expr_kind kind_of[][2] = {
		{TK_NAME, BRN_EX_NAME}, {TK_INT, BRN_EX_INT}, {TK_FLOAT, BRN_EX_FLOAT},
		{TK_STRING, BRN_EX_STRING}, {TK_TRUE, BRN_EX_BOOL}, {TK_FALSE, BRN_EX_BOOL},
	};
	brn_expr_kind kind = BRN_EX_NAME;
	for (size_t i = 0; i < sizeof kind_of / sizeof *kind_of; i++)
		if ((int)kind_of[i][0] == t->kind)
			kind = kind_of[i][1];
	brn_expr *e = new_expr(p, kind, t->line, t->col);
	if (e) {
		e->text = t->text;
		e->ival = t->kind == TK_TRUE ? 1 : t->ival;
		e->fval = t->fval;
	}
	return e;
}

brn_expr *brn_build_negative(brn_parser *p, const brn_token *minus, const brn_token *t)
{
	brn_expr *e = brn_build_atom(p, t);
	if (e) {
		e->line = minus->line;
		e->col = minus->col;
		e->ival = -e->ival;
		e->fval = -e->fval;
	}
	return e;
}

/* Appends item to a list (or an argument list), keeping source order. */
static brn_expr *append(brn_parser *p, brn_expr *list, brn_expr_kind kind,
                        const brn_token *key, brn_expr *value)
{
	if (!value)
		return list;
	if (!list && !(list = new_expr(p, kind, value->line, value->col)))
		return NULL;
	brn_arg *a = brn_arena_alloc(p->arena, sizeof *a);
	if (!a)
		return oom(p, value->line, value->col);
	a->value = value;
	a->key = key ? key->text : NULL;
	a->line = key ? key->line : value->line;
	a->col = key ? key->col : value->col;
	brn_arg **tail = &list->args;
	while (*tail)
		tail = &(*tail)->next;
	*tail = a;
	list->nargs++;
	return list;
}

brn_expr *brn_build_list(brn_parser *p, brn_expr *list, brn_expr *item)
{
	return append(p, list, BRN_EX_LIST, NULL, item);
}

brn_expr *brn_build_close_list(brn_parser *p, const brn_token *bracket, brn_expr *list)
{
	(void)p;
	if (list) {
		list->line = bracket->line;
		list->col = bracket->col;
	}
	return list;
}

brn_expr *brn_build_arg(brn_parser *p, brn_expr *call, const brn_token *key, brn_expr *value)
{
	return append(p, call, BRN_EX_CALL, key, value);
}

brn_expr *brn_build_call(brn_parser *p, const brn_token *name, brn_expr *args)
{
	brn_expr *e = args ? args : new_expr(p, BRN_EX_CALL, name->line, name->col);
	if (e) {
		e->kind = BRN_EX_CALL;
		e->text = name->text;
		e->line = name->line;
		e->col = name->col;
	}
	return e;
}

/* The driver: lexes and feeds lemon one token at a time. */
typedef struct driver {
	brn_parser p;         /* first, so expect_of can find the state */
	expect_state s;
	brn_token last;
} driver;

static expect_state *expect_of(brn_parser *p)
{
	return &((driver *)p)->s;
}

static void track(expect_state *s, int kind)
{
	if ((kind == TK_LPAREN || kind == TK_LBRACKET) && s->depth < MAX_NESTING)
		s->open[s->depth++] = kind;
	if ((kind == TK_RPAREN || kind == TK_RBRACKET) && s->depth > 0)
		s->depth--;
	s->prev2 = s->prev;
	s->prev = kind;
	s->stmt_tokens = kind == TK_SEMI ? 0 : s->stmt_tokens + 1;
}

int brn_parse(const char *file, const char *src, size_t len, brn_arena *arena,
              brn_ast *ast, brn_diag *diag)
{
	driver d;
	brn_lexer lx;
	memset(&d, 0, sizeof d);
	memset(ast, 0, sizeof *ast);
	ast->file = file;
	brn_lex_init(&lx, file, src, len, arena, diag);
	d.p.lx = &lx;
	d.p.ast = ast;
	d.p.arena = arena;
	d.p.diag = diag;
	void *parser = brn_lemonAlloc(malloc, &d.p);
	if (!parser)
		return brn_diag_error(diag, file, 0, 0, "out of memory");
	brn_token t;
	for (;;) {
		if (brn_lex_next(&lx, &t) < 0) {
			d.p.failed = 1;
			break;
		}
		d.last = t;
		if ((t.kind == TK_LPAREN || t.kind == TK_LBRACKET) && d.s.depth >= MAX_NESTING) {
			brn_diag_error(diag, file, t.line, t.col, "expression nested too deeply; "
			               "at most %d levels of '(' and '[' are allowed", MAX_NESTING);
			d.p.failed = 1;
			break;
		}
		brn_lemon(parser, t.kind, t);
		if (d.p.failed || t.kind == 0)
			break;
		track(&d.s, t.kind);
	}
	brn_lemonFree(parser, free);
	if (d.p.failed == 2)
		brn_diag_error(diag, file, d.last.line, d.last.col,
		               "expression too complex for the parser's stack");
	if (d.p.failed)
		return -1;
	if (!ast->first)
		return brn_diag_error(diag, file, 1, 1, "empty model; expected 'model NAME;' first");
	return 0;
}
