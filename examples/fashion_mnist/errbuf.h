/* errbuf: the example library's errors, a BRN_E* code and a message in
 * the caller's buffer, formatted in one place for idx, paths and sampler. */
#ifndef ERRBUF_H
#define ERRBUF_H

#include <stddef.h>

/* Formats the message into err (when err is not NULL and errlen > 0) and
 * returns code, so callers can write `return errbuf_fail(...)`. */
int errbuf_fail(char *err, size_t errlen, int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

#endif
