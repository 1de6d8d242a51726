/* trainlog: a training run's CSV log, one row every few steps:
 *   step,loss,r_max,d_max,lr,examples_per_s,test_acc
 * loss is the mean over the steps since the previous row, examples_per_s
 * their rate (time spent evaluating left out), test_acc empty when the row
 * has no evaluation. `brnrun plot` draws it. Errors come back as a BRN_E*
 * code and a message in the caller's buffer. */
#ifndef TRAINLOG_H
#define TRAINLOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TRAINLOG_HEADER "step,loss,r_max,d_max,lr,examples_per_s,test_acc"

typedef struct trainlog {
	FILE *f;
	const char *path;
	int64_t step;      /* of the previous row */
	double t, paused;  /* when it was written; seconds not training since */
	double loss_sum;
	long loss_n;
} trainlog;

/* Drops the rows of the CSV log at path whose first field is a step after
 * step: a run resumed from a checkpoint older than the log's last row
 * would otherwise log those steps twice. The first line (the header) and
 * rows that do not start with a step are kept; the file is rewritten
 * through path.tmp and a rename, and only when a row goes. A missing file
 * is not an error. */
int trainlog_keep_until(const char *path, int64_t step, char *err, size_t errlen);
/* Opens path for a run starting at step (trainlog_keep_until first). A run that resumes (step > 0)
 * appends to a log that already has the header; otherwise the file is
 * written anew, header first. */
int trainlog_open(trainlog *l, const char *path, int64_t step, char *err, size_t errlen);
/* One training step's loss. */
void trainlog_loss(trainlog *l, double loss);
/* Seconds that were not training (an evaluation), left out of the rate. */
void trainlog_pause(trainlog *l, double seconds);
/* A row at step (done steps); acc < 0: no evaluation. */
int trainlog_row(trainlog *l, int64_t step, long batch, float r_max, float d_max, double lr, double acc,
                 char *err, size_t errlen);
int trainlog_close(trainlog *l, char *err, size_t errlen);

#endif
