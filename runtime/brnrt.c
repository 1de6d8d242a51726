/* libbrnrt core: error strings and the CPU thread pool. The pool's threads
 * are made once in brnrt_pool_open and sleep on a condition variable between
 * runs, so a parallel-for costs a wake-up, not a thread creation. */
#include "brnrt.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX_THREADS 1024

const char *brnrt_strerror(int code)
{
	switch (code) {
	case BRN_OK: return "BRN_OK";
	case BRN_EIO: return "BRN_EIO";
	case BRN_EFORMAT: return "BRN_EFORMAT";
	case BRN_EMISMATCH: return "BRN_EMISMATCH";
	case BRN_ENOMEM: return "BRN_ENOMEM";
	case BRN_ECL: return "BRN_ECL";
	case BRN_EARG: return "BRN_EARG";
	case BRN_ENODEV: return "BRN_ENODEV";
	case BRN_ENUMERIC: return "BRN_ENUMERIC";
	}
	return "BRN_E?";
}

int brnrt_errorf(brnrt_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* One run is described by task/ctx/n; generation counts runs so a worker
 * knows a wake-up is new work and not a spurious one. pending counts the
 * workers still busy with the current run. All fields are read and written
 * under mu, except a worker's own chunk, which it computes under mu too. */
enum { POOL_PROF_ROWS = 256 };

struct brnrt_pool {
	int nthreads;          /* including the caller's thread */
	pthread_t *threads;    /* nthreads - 1 workers */
	pthread_mutex_t mu;
	pthread_cond_t work;   /* signalled when a run starts or on close */
	pthread_cond_t done;   /* signalled when pending drops to 0 */
	_Atomic unsigned long generation;
	_Atomic int pending;
	int quit;
	brnrt_task task;
	void *ctx;
	long n;
	int profile;           /* $BRN_PROFILE: time named runs, print at close */
	int nrows;
	brnrt_prof_row rows[POOL_PROF_ROWS];
};

struct worker_arg {
	brnrt_pool *pool;
	int index;             /* 1..nthreads-1; chunk 0 is the caller's */
};

/* Chunk i of n items over t threads: the first n % t chunks get one more. */
/* Spins of a worker waiting for the next run, and of the caller waiting
 * for the workers, before they block (about 0.1 ms). */
enum { POOL_SPINS = 4000 };

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void chunk(long n, int t, int i, long *begin, long *end)
{
	long base = n / t, rem = n % t;

	*begin = i * base + (i < rem ? i : rem);
	*end = *begin + base + (i < rem ? 1 : 0);
}

static void *worker(void *p)
{
	struct worker_arg *arg = p;
	brnrt_pool *pool = arg->pool;
	int index = arg->index;
	unsigned long seen = 0;

	free(arg);
	for (;;) {
		/* a short spin first: a kernel is often followed by another within
		 * microseconds, and a futex wake-up costs tens of them */
		for (int i = 0; i < POOL_SPINS && atomic_load(&pool->generation) == seen; i++)
			cpu_relax();
		pthread_mutex_lock(&pool->mu);
		while (!pool->quit && pool->generation == seen)
			pthread_cond_wait(&pool->work, &pool->mu);
		if (pool->quit)
			break;
		seen = pool->generation;
		brnrt_task task = pool->task;
		void *ctx = pool->ctx;
		long begin, end;
		chunk(pool->n, pool->nthreads, index, &begin, &end);
		pthread_mutex_unlock(&pool->mu);
		if (begin < end)
			task(ctx, begin, end);
		pthread_mutex_lock(&pool->mu);
		if (--pool->pending == 0)
			pthread_cond_signal(&pool->done);
		pthread_mutex_unlock(&pool->mu);
	}
	pthread_mutex_unlock(&pool->mu);
	return NULL;
}

/* $BRN_THREADS when set (it must be a count in range), else the CPUs. */
static int default_threads(int *nthreads, brnrt_error *e)
{
	const char *s = getenv("BRN_THREADS");

	if (s && *s) {
		char *end;
		errno = 0;
		long v = strtol(s, &end, 10);
		if (errno || *end || v < 1 || v > POOL_MAX_THREADS)
			return brnrt_errorf(e, BRN_EARG,
			                    "BRN_THREADS='%s' is not a thread count (1..%d)",
			                    s, POOL_MAX_THREADS);
		*nthreads = (int)v;
		return BRN_OK;
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	*nthreads = cpus < 1 ? 1 : cpus > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)cpus;
	return BRN_OK;
}

/* Stops and joins the first `started` workers. */
static void stop_workers(brnrt_pool *pool, int started)
{
	pthread_mutex_lock(&pool->mu);
	pool->quit = 1;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->mu);
	for (int i = 0; i < started; i++)
		pthread_join(pool->threads[i], NULL);
}

static void free_pool(brnrt_pool *pool)
{
	pthread_cond_destroy(&pool->done);
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->mu);
	free(pool->threads);
	free(pool);
}

int brnrt_pool_open(brnrt_pool **out, int nthreads, brnrt_error *e)
{
	brnrt_pool *pool;
	int rc;

	if (!out)
		return brnrt_errorf(e, BRN_EARG, "brnrt_pool_open: pool is NULL");
	*out = NULL;
	if (nthreads > POOL_MAX_THREADS)
		return brnrt_errorf(e, BRN_EARG, "brnrt_pool_open: %d threads is more than %d",
		                    nthreads, POOL_MAX_THREADS);
	if (nthreads <= 0 && (rc = default_threads(&nthreads, e)) != BRN_OK)
		return rc;

	pool = calloc(1, sizeof *pool);
	if (!pool)
		return brnrt_errorf(e, BRN_ENOMEM, "brnrt_pool_open: out of memory");
	pool->nthreads = nthreads;
	const char *prof = getenv("BRN_PROFILE");
	pool->profile = prof && *prof && strcmp(prof, "0") != 0;
	if (pthread_mutex_init(&pool->mu, NULL) != 0) {
		free(pool);
		return brnrt_errorf(e, BRN_ENOMEM, "brnrt_pool_open: cannot create a mutex");
	}
	if (pthread_cond_init(&pool->work, NULL) != 0) {
		pthread_mutex_destroy(&pool->mu);
		free(pool);
		return brnrt_errorf(e, BRN_ENOMEM, "brnrt_pool_open: cannot create a condition");
	}
	if (pthread_cond_init(&pool->done, NULL) != 0) {
		pthread_cond_destroy(&pool->work);
		pthread_mutex_destroy(&pool->mu);
		free(pool);
		return brnrt_errorf(e, BRN_ENOMEM, "brnrt_pool_open: cannot create a condition");
	}
	if (nthreads > 1) {
		pool->threads = calloc((size_t)nthreads - 1, sizeof *pool->threads);
		if (!pool->threads) {
			free_pool(pool);
			return brnrt_errorf(e, BRN_ENOMEM, "brnrt_pool_open: out of memory");
		}
	}
	for (int i = 0; i < nthreads - 1; i++) {
		struct worker_arg *arg = malloc(sizeof *arg);
		int err = arg ? 0 : ENOMEM;
		if (arg) {
			arg->pool = pool;
			arg->index = i + 1;
			err = pthread_create(&pool->threads[i], NULL, worker, arg);
			if (err)
				free(arg);
		}
		if (err) {
			stop_workers(pool, i);
			free_pool(pool);
			return brnrt_errorf(e, BRN_ENOMEM,
			                    "brnrt_pool_open: cannot start thread %d of %d (%s)",
			                    i + 2, nthreads, strerror(err));
		}
	}
	*out = pool;
	return BRN_OK;
}

int brnrt_pool_threads(const brnrt_pool *pool)
{
	return pool ? pool->nthreads : 1;
}

/* One run at a time per pool; a task must not call brnrt_pool_run on the
 * pool that runs it. A NULL pool runs the whole range inline. */
void brnrt_pool_run(brnrt_pool *pool, long n, brnrt_task task, void *ctx)
{
	long begin, end;

	if (n <= 0 || !task)
		return;
	if (!pool || pool->nthreads == 1 || n == 1) {
		task(ctx, 0, n);
		return;
	}
	pthread_mutex_lock(&pool->mu);
	pool->task = task;
	pool->ctx = ctx;
	pool->n = n;
	pool->pending = pool->nthreads - 1;
	pool->generation++;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->mu);

	chunk(n, pool->nthreads, 0, &begin, &end);
	task(ctx, begin, end);

	for (int i = 0; i < POOL_SPINS && atomic_load(&pool->pending) > 0; i++)
		cpu_relax();
	pthread_mutex_lock(&pool->mu);
	while (pool->pending > 0)
		pthread_cond_wait(&pool->done, &pool->mu);
	pthread_mutex_unlock(&pool->mu);
}

void brnrt_pool_run_named(brnrt_pool *pool, const char *name, long n, brnrt_task task, void *ctx)
{
	struct timespec t0, t1;
	if (!pool || !pool->profile) {
		brnrt_pool_run(pool, n, task, ctx);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	brnrt_pool_run(pool, n, task, ctx);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int i = 0;
	while (i < pool->nrows && i < POOL_PROF_ROWS - 1 && strcmp(pool->rows[i].name, name))
		i++;
	if (i == pool->nrows) {
		pool->rows[i].name = i == POOL_PROF_ROWS - 1 ? "(others)" : name;
		pool->nrows++;
	}
	pool->rows[i].launches++;
	pool->rows[i].ns += (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
}

static int by_time(const void *a, const void *b)
{
	double x = ((const brnrt_prof_row *)a)->ns, y = ((const brnrt_prof_row *)b)->ns;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* The table asked for with BRN_PROFILE=1 (pool and OpenCL alike): the one
 * place libbrnrt prints. Sorts rows by time. */
void brnrt_prof_print(const char *device, brnrt_prof_row *rows, int n)
{
	double total = 0;
	long launches = 0;
	qsort(rows, (size_t)n, sizeof rows[0], by_time);
	for (int i = 0; i < n; i++)
		total += rows[i].ns, launches += rows[i].launches;
	fprintf(stderr, "brnrt profile on %s: %ld launches, %.3f ms\n", device, launches, total / 1e6);
	fprintf(stderr, "%-40s %9s %12s %12s\n", "kernel", "launches", "total ms", "mean us");
	for (int i = 0; i < n; i++)
		fprintf(stderr, "%-40s %9ld %12.3f %12.1f\n", rows[i].name, rows[i].launches, rows[i].ns / 1e6,
		        rows[i].launches ? rows[i].ns / 1e3 / (double)rows[i].launches : 0.0);
}

void brnrt_pool_close(brnrt_pool *pool)
{
	if (!pool)
		return;
	if (pool->profile && pool->nrows) {
		char device[64];
		snprintf(device, sizeof device, "cpu (C, %d threads)", pool->nthreads);
		brnrt_prof_print(device, pool->rows, pool->nrows);
	}
	stop_workers(pool, pool->nthreads - 1);
	free_pool(pool);
}
