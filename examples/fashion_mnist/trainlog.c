/* trainlog: see trainlog.h. Each row is flushed, so an interrupted run
 * keeps its curve. */
#include "trainlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "brnrt.h"
#include "errbuf.h"
#include "progress.h"

/* The step a row starts with, or -1 (a header, a malformed row). */
static long long row_step(const char *line)
{
	char *end;
	errno = 0;
	long long s = strtoll(line, &end, 10);
	return end == line || *end != ',' || errno || s < 0 ? -1 : s;
}

int trainlog_keep_until(const char *path, int64_t step, char *err, size_t errlen)
{
	FILE *in = fopen(path, "r");
	if (!in)
		return errno == ENOENT ? BRN_OK : errbuf_fail(err, errlen, BRN_EIO, "cannot read %s: %s", path, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	int later = 0;
	while (getline(&line, &cap, in) > 0)
		later |= row_step(line) > step;
	if (!later || ferror(in)) {
		int bad = ferror(in);
		free(line);
		fclose(in);
		return bad ? errbuf_fail(err, errlen, BRN_EIO, "cannot read %s", path) : BRN_OK;
	}
	size_t n = strlen(path) + 5;
	char *tmp = malloc(n);
	FILE *out = tmp ? (snprintf(tmp, n, "%s.tmp", path), fopen(tmp, "w")) : NULL;
	int rc = BRN_OK;
	if (!out) {
		rc = errbuf_fail(err, errlen, BRN_EIO, "cannot write %s.tmp: %s", path, tmp ? strerror(errno) : "out of memory");
	} else {
		rewind(in);
		int bad = 0;
		while (getline(&line, &cap, in) > 0)
			if (row_step(line) <= step)
				bad |= fputs(line, out) < 0;
		bad |= ferror(in);
		if (fclose(out) || bad || rename(tmp, path)) {
			rc = errbuf_fail(err, errlen, BRN_EIO, "cannot rewrite %s: %s", path, strerror(errno));
			remove(tmp);
		}
	}
	free(tmp);
	free(line);
	fclose(in);
	return rc;
}

int trainlog_open(trainlog *l, const char *path, int64_t step, char *err, size_t errlen)
{
	char first[128] = "";
	memset(l, 0, sizeof *l);
	l->path = path;
	l->step = step;
	l->t = progress_now();
	if (step > 0 && trainlog_keep_until(path, step, err, errlen))
		return BRN_EIO;
	FILE *old = step > 0 ? fopen(path, "r") : NULL;
	int append = 0;
	if (old) {
		append = fgets(first, sizeof first, old) && strcmp(first, TRAINLOG_HEADER "\n") == 0;
		fclose(old);
	}
	if (!(l->f = fopen(path, append ? "a" : "w")))
		return errbuf_fail(err, errlen, BRN_EIO, "cannot open %s: %s", path, strerror(errno));
	if (!append && (fputs(TRAINLOG_HEADER "\n", l->f) < 0 || fflush(l->f)))
		return errbuf_fail(err, errlen, BRN_EIO, "cannot write %s: %s", path, strerror(errno));
	return BRN_OK;
}

void trainlog_loss(trainlog *l, double loss)
{
	l->loss_sum += loss;
	l->loss_n++;
}

void trainlog_pause(trainlog *l, double seconds)
{
	l->paused += seconds;
}

int trainlog_row(trainlog *l, int64_t step, long batch, float r_max, float d_max, double lr, double acc,
                 char *err, size_t errlen)
{
	double now = progress_now(), busy = now - l->t - l->paused;
	double rate = busy > 0 ? (double)(step - l->step) * batch / busy : 0;
	int bad = fprintf(l->f, "%lld,", (long long)step) < 0;
	if (l->loss_n)
		bad |= fprintf(l->f, "%.6g", l->loss_sum / l->loss_n) < 0;
	bad |= fprintf(l->f, ",%.6g,%.6g,%.6g,%.1f,", r_max, d_max, lr, rate) < 0;
	if (acc >= 0)
		bad |= fprintf(l->f, "%.4f", acc) < 0;
	bad |= fputc('\n', l->f) == EOF || fflush(l->f) != 0;
	l->step = step;
	l->t = now;
	l->paused = 0;
	l->loss_sum = 0;
	l->loss_n = 0;
	return bad ? errbuf_fail(err, errlen, BRN_EIO, "cannot write %s: %s", l->path, strerror(errno)) : BRN_OK;
}

int trainlog_close(trainlog *l, char *err, size_t errlen)
{
	int bad = l->f && fclose(l->f) != 0;
	l->f = NULL;
	return bad ? errbuf_fail(err, errlen, BRN_EIO, "cannot write %s: %s", l->path, strerror(errno)) : BRN_OK;
}
