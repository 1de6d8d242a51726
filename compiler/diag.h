/* Diagnostics: what went wrong and where. Library code fills a brn_diag and
 * returns an error status; only main() prints, via brn_diag_render. */
#ifndef BRN_DIAG_H
#define BRN_DIAG_H

#include <stddef.h>

typedef struct brn_diag {
	char file[256];    /* "" when not about a file */
	int line, col;     /* 1-based; 0 when not located (col 0: line only) */
	char msg[1024];
	char text[256];    /* the source line of the error, when known */
	int has_text;
	const char *src;   /* while compiling: the source, to capture text */
	size_t src_len;
	char src_file[256];
} brn_diag;

/* Records the first error only (later calls keep it) and returns -1, so
 * callers can write `return brn_diag_error(...)`. d may be NULL. */
int brn_diag_error(brn_diag *d, const char *file, int line, int col,
                   const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 5, 6)))
#endif
	;
/* Attaches source text of file: an error later recorded in that file
 * keeps a copy of its line, so rendering can show it with a caret after
 * the source is gone. brn_diag_source(d, NULL, NULL, 0) detaches. */
void brn_diag_source(brn_diag *d, const char *file, const char *src, size_t len);

/* "file:line:col: error: msg\n", then the source line and a caret line
 * when the source is known. Returns the length it wanted (like snprintf). */
int brn_diag_render(const brn_diag *d, char *buf, size_t n);

#endif
