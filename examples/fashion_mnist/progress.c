/* progress: the training progress bar (progress.h). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, isatty */
#endif
#include "progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

double progress_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_start(progress *p, int quiet, int64_t first, int64_t total)
{
	*p = (progress){.tty = isatty(2), .quiet = quiet, .first = first, .total = total,
	                .last_line = first, .t0 = progress_now()};
}

void progress_draw(progress *p, int64_t step, double loss, long batch, float r_max, float d_max)
{
	char bar[21];
	double t = progress_now(), rate, eta;
	int filled = p->total ? (int)(20 * step / p->total) : 20;

	if (p->quiet)
		return;
	if (p->tty && step < p->total && t - p->last_draw < 0.1)
		return;
	if (!p->tty && step < p->total && step - p->last_line < (p->total + 19) / 20)
		return;
	p->last_draw = t;
	p->last_line = step;
	for (int i = 0; i < 20; i++)
		bar[i] = i < filled ? '=' : ' ';
	bar[20] = 0;
	rate = (double)(step - p->first) / fmax(t - p->t0 - p->paused, 1e-9);
	eta = rate > 0 ? (double)(p->total - step) / rate : 0;
	fprintf(stderr, "%s%7lld/%lld [%s] loss %.4f r_max %.3g d_max %.3g %6.0f ex/s ETA %d:%02d:%02d%s",
	        p->tty ? "\r" : "", (long long)step, (long long)p->total, bar, loss, r_max, d_max,
	        rate * (double)batch, (int)eta / 3600, (int)eta / 60 % 60, (int)eta % 60,
	        p->tty ? "\033[K" : "\n");
	if (p->tty && step == p->total)
		fputc('\n', stderr);
}

void progress_say(const progress *p, const char *fmt, ...)
{
	va_list ap;
	if (p->quiet)
		return;
	if (p->tty)
		fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}
