/* brnrun_dist: see brnrun_dist.h. */
#include "brnrun_dist.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef BRN_MPI
#include <mpi.h>

#include "brnrt_mpi.h"

typedef int (*dist_reduce)(void *ctx, float *buf, size_t n);

int dist_open(dist *d, char *err, size_t errlen)
{
	brnrt_error e;
	*d = (dist){0, 1, NULL, NULL, NULL, NULL};
	brnrt_mpi *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return 1;
	}
	if (brnrt_mpi_open(c, NULL, NULL, &e)) {
		free(c);
		snprintf(err, errlen, "%s", e.msg);
		return 1;
	}
	d->mpi = c;
	d->rank = c->rank;
	d->size = c->size;
	return 0;
}

static void *model_sym(void *lib, const char *name, const char *suffix)
{
	char s[512];
	snprintf(s, sizeof s, "%s_%s", name, suffix);
	return dlsym(lib, s);
}

int dist_attach(dist *d, void *lib, const char *name, void *m, const char *(*error)(const void *m),
                char *err, size_t errlen)
{
	if (d->size == 1)
		return 0; /* one rank: the plain, fused step */
	brnrt_mpi *c = d->mpi;
	int (*set_allreduce)(void *, dist_reduce, void *);
	int (*broadcast)(void *, dist_reduce, void *);
	int64_t (*step)(const void *);
	*(void **)&set_allreduce = model_sym(lib, name, "set_allreduce");
	*(void **)&broadcast = model_sym(lib, name, "broadcast");
	*(void **)&d->average_stats = model_sym(lib, name, "average_stats");
	*(void **)&step = model_sym(lib, name, "step");
	if (!set_allreduce || !broadcast || !d->average_stats || !step) {
		snprintf(err, errlen, "%s has no %s_set_allreduce; rebuild it with this brnc for more than one rank",
		         name, name);
		return 1;
	}
	d->m = m;
	d->error = error;
	int64_t lo, hi;
	if (brnrt_mpi_minmax(c, step(m), &lo, &hi)) {
		snprintf(err, errlen, "%s", c->err);
		return 1;
	}
	if (lo != hi) {
		snprintf(err, errlen, "the ranks start at different steps (%lld .. %lld); give them the same --weights",
		         (long long)lo, (long long)hi);
		return 1;
	}
	if (broadcast(m, brnrt_mpi_bcast0, c) || set_allreduce(m, brnrt_mpi_allreduce_mean, c)) {
		snprintf(err, errlen, "%s: %s%s%s", name, error(m), c->err[0] ? ": " : "", c->err);
		return 1;
	}
	return 0;
}

int dist_average(dist *d, char *err, size_t errlen)
{
	if (d->size == 1 || !d->m)
		return 0;
	brnrt_mpi *c = d->mpi;
	if (d->average_stats(d->m)) {
		snprintf(err, errlen, "%s%s%s", d->error(d->m), c->err[0] ? ": " : "", c->err);
		return 1;
	}
	return 0;
}

void dist_close(dist *d, int rc)
{
	if (rc && d->size > 1)
		MPI_Abort(MPI_COMM_WORLD, 1); /* the other ranks would wait for this one */
	if (d->mpi)
		brnrt_mpi_close(d->mpi);
	free(d->mpi);
	d->mpi = NULL;
}

#else

int dist_open(dist *d, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	*d = (dist){0, 1, NULL, NULL, NULL, NULL};
	return 0;
}

int dist_attach(dist *d, void *lib, const char *name, void *m, const char *(*error)(const void *m),
                char *err, size_t errlen)
{
	(void)d, (void)lib, (void)name, (void)m, (void)error, (void)err, (void)errlen;
	return 0;
}

int dist_average(dist *d, char *err, size_t errlen)
{
	(void)d, (void)err, (void)errlen;
	return 0;
}

void dist_close(dist *d, int rc)
{
	(void)d, (void)rc;
}

#endif
