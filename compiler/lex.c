/* Lexer for .brn: names, keywords, numbers, strings, punctuation, '#'
 * comments. Any byte the language has no use for is an error at its place. */
#include "lex.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static const struct {
	const char *word;
	int kind;
} keywords[] = {
	{"model", TK_MODEL}, {"batch", TK_BATCH}, {"input", TK_INPUT},
	{"labels", TK_LABELS}, {"schedule", TK_SCHEDULE}, {"loss", TK_LOSS},
	{"output", TK_OUTPUT}, {"defaults", TK_DEFAULTS}, {"true", TK_TRUE}, {"false", TK_FALSE},
};

static const struct {
	char c;
	int kind;
} punct[] = {
	{';', TK_SEMI}, {'=', TK_ASSIGN}, {'(', TK_LPAREN}, {')', TK_RPAREN},
	{'[', TK_LBRACKET}, {']', TK_RBRACKET}, {',', TK_COMMA}, {'-', TK_MINUS},
};

void brn_lex_init(brn_lexer *lx, const char *file, const char *src, size_t len,
                  brn_arena *arena, brn_diag *diag)
{
	lx->file = file;
	lx->src = lx->at = lx->line_start = src;
	lx->end = src + len;
	lx->line = 1;
	lx->arena = arena;
	lx->diag = diag;
}

const char *brn_lex_describe(int kind)
{
	switch (kind) {
	case 0: return "end of file";
	case TK_NAME: return "a name";
	case TK_INT: return "an integer";
	case TK_FLOAT: return "a number";
	case TK_STRING: return "a string";
	}
	for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
		if (keywords[i].kind == kind)
			return keywords[i].word;
	static const char *const quoted[] = {"';'", "'='", "'('", "')'", "'['", "']'", "','", "'-'"};
	for (size_t i = 0; i < sizeof punct / sizeof *punct; i++)
		if (punct[i].kind == kind)
			return quoted[i];
	return "a token";
}

static int col_of(const brn_lexer *lx, const char *p)
{
	return (int)(p - lx->line_start) + 1;
}

static int fail(brn_lexer *lx, const char *p, const char *fmt, const char *arg)
{
	return brn_diag_error(lx->diag, lx->file, lx->line, col_of(lx, p), fmt, arg);
}

static int is_name_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static void skip_space(brn_lexer *lx)
{
	while (lx->at < lx->end) {
		char c = *lx->at;
		if (c == '\n') {
			lx->line++;
			lx->line_start = ++lx->at;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			lx->at++;
		} else if (c == '#') {
			while (lx->at < lx->end && *lx->at != '\n')
				lx->at++;
		} else {
			break;
		}
	}
}

static int lex_number(brn_lexer *lx, brn_token *t)
{
	const char *p = lx->at, *start = p;
	int is_float = 0;
	while (p < lx->end && is_digit(*p))
		p++;
	if (p < lx->end && *p == '.') {
		is_float = 1;
		p++;
		while (p < lx->end && is_digit(*p))
			p++;
	}
	if (p < lx->end && (*p == 'e' || *p == 'E')) {
		const char *q = p + 1;
		if (q < lx->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= lx->end || !is_digit(*q))
			return fail(lx, p, "malformed number: exponent has no digits%s", "");
		is_float = 1;
		p = q;
		while (p < lx->end && is_digit(*p))
			p++;
	}
	if (p < lx->end && (is_name_start(*p) || *p == '.'))
		return fail(lx, p, "malformed number: unexpected '%.1s' after digits", p);
	char buf[64];
	size_t n = (size_t)(p - start);
	if (n >= sizeof buf)
		return fail(lx, start, "number literal too long%s", "");
	memcpy(buf, start, n);
	buf[n] = 0;
	errno = 0;
	if (is_float) {
		t->kind = TK_FLOAT;
		t->fval = strtod(buf, NULL);
		if (errno == ERANGE && (isinf(t->fval) || t->fval == 0))
			return fail(lx, start, "number %s is out of range", buf);
	} else {
		t->kind = TK_INT;
		t->ival = strtoll(buf, NULL, 10);
		if (errno == ERANGE || t->ival > INT_MAX)
			return fail(lx, start, "integer %s is too large (at most 2147483647)", buf);
		t->fval = (double)t->ival;
	}
	lx->at = p;
	return 0;
}

static int lex_string(brn_lexer *lx, brn_token *t)
{
	const char *start = lx->at, *p = start + 1;
	while (p < lx->end && *p != '"') {
		if (*p == '\n' || *p == 0)
			break;
		if ((unsigned char)*p < 32 && *p != '\t')
			return fail(lx, p, "control character in string%s", "");
		p++;
	}
	if (p >= lx->end || *p != '"')
		return fail(lx, start, "unterminated string; expected a closing '\"' on the same line%s", "");
	t->kind = TK_STRING;
	t->text = brn_arena_strndup(lx->arena, start + 1, (size_t)(p - start - 1));
	if (!t->text)
		return fail(lx, start, "out of memory%s", "");
	lx->at = p + 1;
	return 0;
}

int brn_lex_next(brn_lexer *lx, brn_token *t)
{
	memset(t, 0, sizeof *t);
	/* end of input is placed just past the last token: where text is missing */
	t->line = lx->line;
	t->col = col_of(lx, lx->at);
	skip_space(lx);
	if (lx->at >= lx->end)
		return 0; /* kind 0: end of input */
	t->line = lx->line;
	t->col = col_of(lx, lx->at);
	const char *p = lx->at;
	unsigned char c = (unsigned char)*p;
	if (is_name_start(c)) {
		const char *q = p;
		while (q < lx->end && (is_name_start(*q) || is_digit(*q)))
			q++;
		size_t n = (size_t)(q - p);
		if (n > 128)
			return fail(lx, p, "name is too long (at most 128 characters)%s", "");
		t->kind = TK_NAME;
		for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
			if (strlen(keywords[i].word) == n && memcmp(keywords[i].word, p, n) == 0)
				t->kind = keywords[i].kind;
		t->text = brn_arena_strndup(lx->arena, p, n);
		if (!t->text)
			return fail(lx, p, "out of memory%s", "");
		lx->at = q;
		return 0;
	}
	if (is_digit(c) || (c == '.' && p + 1 < lx->end && is_digit(p[1])))
		return lex_number(lx, t);
	if (c == '"')
		return lex_string(lx, t);
	for (size_t i = 0; i < sizeof punct / sizeof *punct; i++)
		if (punct[i].c == (char)c) {
			t->kind = punct[i].kind;
			lx->at++;
			return 0;
		}
	if (c == 0)
		return fail(lx, p, "NUL byte in model text%s", "");
	if (c >= 32 && c < 127)
		return fail(lx, p, "unexpected character '%.1s'", p);
	char hex[8];
	static const char digits[] = "0123456789abcdef";
	hex[0] = '0';
	hex[1] = 'x';
	hex[2] = digits[c >> 4];
	hex[3] = digits[c & 15];
	hex[4] = 0;
	return fail(lx, p, "unexpected byte %s (model files are ASCII text)", hex);
}
