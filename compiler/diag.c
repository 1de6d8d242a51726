/* Diagnostics: recording the first error and rendering it with a caret. */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void capture(brn_diag *d);

int brn_diag_error(brn_diag *d, const char *file, int line, int col,
                   const char *fmt, ...)
{
	if (!d || d->msg[0])
		return -1;
	snprintf(d->file, sizeof d->file, "%s", file ? file : "");
	d->line = line;
	d->col = col;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof d->msg, fmt, ap);
	va_end(ap);
	if (!d->msg[0])
		snprintf(d->msg, sizeof d->msg, "error");
	capture(d);
	return -1;
}

void brn_diag_source(brn_diag *d, const char *file, const char *src, size_t len)
{
	if (d) {
		d->src = src;
		d->src_len = len;
		snprintf(d->src_file, sizeof d->src_file, "%s", file ? file : "");
	}
}

/* Copies line `line` of the attached source into d->text. */
static void capture(brn_diag *d)
{
	if (!d->src || d->line <= 0 || strcmp(d->file, d->src_file) != 0)
		return;
	const char *p = d->src, *end = d->src + d->src_len;
	for (int l = 1; l < d->line && p < end; p++)
		if (*p == '\n')
			l++;
	size_t k = 0;
	for (; p < end && *p != '\n' && k + 1 < sizeof d->text; p++)
		d->text[k++] = (*p == '\t' || (*p >= 32 && *p < 127)) ? *p : '?';
	d->text[k] = 0;
	d->has_text = 1;
}

/* Appends to buf as snprintf would, tracking the total wanted. */
static void put(char *buf, size_t n, size_t *at, const char *s, size_t len)
{
	if (*at < n) {
		size_t room = n - *at - 1;
		memcpy(buf + *at, s, len < room ? len : room);
		buf[*at + (len < room ? len : room)] = 0;
	}
	*at += len;
}

int brn_diag_render(const brn_diag *d, char *buf, size_t n)
{
	char head[2048];
	size_t at = 0;
	int k;
	if (n)
		buf[0] = 0;
	if (d->file[0] && d->line > 0 && d->col > 0)
		k = snprintf(head, sizeof head, "%s:%d:%d: error: %s\n", d->file, d->line, d->col, d->msg);
	else if (d->file[0] && d->line > 0)
		k = snprintf(head, sizeof head, "%s:%d: error: %s\n", d->file, d->line, d->msg);
	else if (d->file[0])
		k = snprintf(head, sizeof head, "%s: error: %s\n", d->file, d->msg);
	else
		k = snprintf(head, sizeof head, "error: %s\n", d->msg);
	put(buf, n, &at, head, (size_t)k < sizeof head ? (size_t)k : sizeof head - 1);
	if (!d->has_text || d->col <= 0)
		return (int)at;
	put(buf, n, &at, "  ", 2);
	put(buf, n, &at, d->text, strlen(d->text));
	put(buf, n, &at, "\n  ", 3);
	for (int i = 1; i < d->col && i < (int)sizeof d->text; i++) {
		char c = (i - 1 < (int)strlen(d->text) && d->text[i - 1] == '\t') ? '\t' : ' ';
		put(buf, n, &at, &c, 1);
	}
	put(buf, n, &at, "^\n", 2);
	return (int)at;
}
