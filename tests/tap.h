/* tap.h: a small TAP producer for brnc's C tests. Checks print "ok N - what"
 * on stdout; failures add file:line and the values on stderr, where plain
 * prove shows them. A test that checks nothing fails in done_testing(). */
#ifndef BRN_TAP_H
#define BRN_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed, tap_planned;

static void tap_vreport(int pass, const char *file, int line, const char *fmt, va_list ap)
{
	tap_n++;
	if (!pass)
		tap_failed++;
	printf("%sok %d - ", pass ? "" : "not ", tap_n);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	if (!pass)
		fprintf(stderr, "#   Failed test %d at %s:%d\n", tap_n, file, line);
}

static int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_vreport(pass, file, line, fmt, ap);
	va_end(ap);
	return pass;
}

static inline void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
}

static inline void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "# ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                   \
	do {                                                                     \
		long long g_ = (long long)(got), w_ = (long long)(want);         \
		if (!tap_ok(g_ == w_, __FILE__, __LINE__, __VA_ARGS__))          \
			diag("     got: %lld\n#   expected: %lld", g_, w_);     \
	} while (0)

#define is_str(got, want, ...)                                                   \
	do {                                                                     \
		const char *g_ = (got), *w_ = (want);                            \
		int p_ = g_ && w_ && strcmp(g_, w_) == 0;                        \
		if (!tap_ok(p_, __FILE__, __LINE__, __VA_ARGS__))                \
			diag("     got: '%s'\n#   expected: '%s'", g_ ? g_ : "(null)", \
			     w_ ? w_ : "(null)");                                \
	} while (0)

/* |got - want| <= tol (absolute). */
#define is_double_within(got, want, tol, ...)                                    \
	do {                                                                     \
		double g_ = (got), w_ = (want), t_ = (tol);                      \
		int p_ = !isnan(g_) && !isnan(w_) && fabs(g_ - w_) <= t_;        \
		if (!tap_ok(p_, __FILE__, __LINE__, __VA_ARGS__))                \
			diag("     got: %.10g\n#   expected: %.10g (within %g)", g_, w_, t_); \
	} while (0)

static inline int done_testing(void)
{
	if (!tap_planned)
		printf("1..%d\n", tap_n);
	if (tap_n == 0) {
		fprintf(stderr, "# no checks ran\n");
		return 1;
	}
	if (tap_planned && tap_planned != tap_n) {
		fprintf(stderr, "# planned %d checks, ran %d\n", tap_planned, tap_n);
		return 1;
	}
	return tap_failed ? 1 : 0;
}

#endif
