/* progress: the training progress bar of train and brnrun on stderr:
 * step/total, loss, r_max, d_max, examples/s and ETA, redrawn in place on a
 * terminal, else one line per 5% of the run. */
#ifndef PROGRESS_H
#define PROGRESS_H

#include <stdint.h>

typedef struct progress {
	int tty, quiet;
	int64_t first, total, last_line;
	double t0, last_draw, paused; /* paused: seconds not training (evaluation) */
} progress;

/* Seconds on a monotonic clock. */
double progress_now(void);

/* A run from step first to total; quiet: draw nothing. */
void progress_start(progress *p, int quiet, int64_t first, int64_t total);

/* step has been done; loss as the caller averages it; batch examples a step. */
void progress_draw(progress *p, int64_t step, double loss, long batch, float r_max, float d_max);

/* A message between redraws starts on a clean line. */
void progress_say(const progress *p, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

#endif
