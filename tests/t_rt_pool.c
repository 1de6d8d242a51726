/* t_rt_pool: the CPU parallel-for. Every index in [0, n) is visited exactly
 * once, chunks are contiguous and follow n and the thread count only, and
 * a pool survives many runs in a row. */
#include "brnrt.h"
#include "tap.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sum_ctx {
	long *hits;         /* hits[i] counts visits of i */
	double *partial;    /* partial[i] = f(i), summed serially afterwards */
	long calls;         /* chunks handed out (atomic enough: under a lock) */
	long max_chunk;
	pthread_mutex_t mu;
};

static double f(long i)
{
	return 1.0 / (double)(i + 1) + (double)(i % 7);
}

static void visit(void *p, long begin, long end)
{
	struct sum_ctx *c = p;

	for (long i = begin; i < end; i++) {
		c->hits[i]++;
		c->partial[i] = f(i);
	}
	pthread_mutex_lock(&c->mu);
	c->calls++;
	if (end - begin > c->max_chunk)
		c->max_chunk = end - begin;
	pthread_mutex_unlock(&c->mu);
}

/* Runs visit over n items; returns 1 when every index was hit once and
 * the sum matches the serial one bit for bit. */
static int run_sum(brnrt_pool *pool, long n, long *calls, long *max_chunk)
{
	struct sum_ctx c = {0};
	double serial = 0, parallel = 0;
	int good = 1;

	c.hits = calloc((size_t)n + 1, sizeof *c.hits);
	c.partial = calloc((size_t)n + 1, sizeof *c.partial);
	if (!c.hits || !c.partial) {
		free(c.hits);
		free(c.partial);
		return 0;
	}
	pthread_mutex_init(&c.mu, NULL);
	brnrt_pool_run(pool, n, visit, &c);
	for (long i = 0; i < n; i++) {
		good &= c.hits[i] == 1;
		serial += f(i);
		parallel += c.partial[i];
	}
	good &= serial == parallel;
	*calls = c.calls;
	*max_chunk = c.max_chunk;
	pthread_mutex_destroy(&c.mu);
	free(c.hits);
	free(c.partial);
	return good;
}

/* Records the chunk boundaries a run hands out. */
struct bounds_ctx {
	long begin[64], end[64];
	int count;
	pthread_mutex_t mu;
};

static void record(void *p, long begin, long end)
{
	struct bounds_ctx *c = p;

	pthread_mutex_lock(&c->mu);
	if (c->count < 64) {
		c->begin[c->count] = begin;
		c->end[c->count] = end;
	}
	c->count++;
	pthread_mutex_unlock(&c->mu);
}

static void count_calls(void *p, long begin, long end)
{
	long *total = p;

	/* Runs inline for these checks, so no lock is needed. */
	*total += end - begin;
}

static void test_sums(void)
{
	static const int threads[] = {1, 2, 3, 4, 7, 8, 16};
	static const long sizes[] = {0, 1, 2, 3, 5, 7, 8, 15, 16, 17, 100, 1000, 4097, 100003};

	for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
		brnrt_pool *pool = NULL;
		brnrt_error e = {{0}};
		int rc = brnrt_pool_open(&pool, threads[t], &e);
		is_int(rc, BRN_OK, "open a pool of %d threads", threads[t]);
		if (rc != BRN_OK) {
			diag("%s", e.msg);
			continue;
		}
		is_int(brnrt_pool_threads(pool), threads[t], "pool reports %d threads", threads[t]);
		int all = 1;
		for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
			long n = sizes[s], calls, max_chunk;
			int good = run_sum(pool, n, &calls, &max_chunk);
			long want_calls = n < threads[t] ? n : threads[t];
			long want_max = n == 0 ? 0 : (n + threads[t] - 1) / threads[t];
			if (!good || calls != want_calls || max_chunk != want_max) {
				diag("threads %d n %ld: good %d calls %ld (want %ld) max chunk %ld (want %ld)",
				     threads[t], n, good, calls, want_calls, max_chunk, want_max);
				all = 0;
			}
		}
		ok(all, "%d threads: every n visits each index once, sums match, chunks even",
		   threads[t]);
		brnrt_pool_close(pool);
	}
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

static void test_chunks(void)
{
	brnrt_pool *pool = NULL;
	struct bounds_ctx c = {{0}, {0}, 0, PTHREAD_MUTEX_INITIALIZER};
	long begins[64];

	is_int(brnrt_pool_open(&pool, 4, NULL), BRN_OK, "open a pool of 4");
	brnrt_pool_run(pool, 10, record, &c);
	is_int(c.count, 4, "10 items over 4 threads: 4 chunks");
	for (int i = 0; i < c.count && i < 64; i++)
		begins[i] = c.begin[i];
	qsort(begins, (size_t)c.count, sizeof begins[0], cmp_long);
	/* 10 = 3 + 3 + 2 + 2, first chunks larger. */
	ok(begins[0] == 0 && begins[1] == 3 && begins[2] == 6 && begins[3] == 8,
	   "chunks start at 0, 3, 6, 8");

	c.count = 0;
	brnrt_pool_run(pool, 2, record, &c);
	is_int(c.count, 2, "2 items over 4 threads: 2 calls, no empty chunks");
	brnrt_pool_close(pool);
}

static void test_many_runs(void)
{
	brnrt_pool *pool = NULL;
	int all = 1;

	is_int(brnrt_pool_open(&pool, 5, NULL), BRN_OK, "open a pool of 5");
	for (int r = 0; r < 2000 && all; r++) {
		long calls, max_chunk;
		all = run_sum(pool, r % 37, &calls, &max_chunk);
	}
	ok(all, "2000 runs in a row on one pool");
	brnrt_pool_close(pool);
}

static void test_inline_and_env(void)
{
	brnrt_pool *pool = NULL;
	brnrt_error e = {{0}};
	long total = 0;

	brnrt_pool_run(NULL, 5, count_calls, &total);
	is_int(total, 5, "a NULL pool runs the range inline");
	is_int(brnrt_pool_threads(NULL), 1, "a NULL pool has one thread");
	brnrt_pool_close(NULL);

	setenv("BRN_THREADS", "3", 1);
	is_int(brnrt_pool_open(&pool, 0, &e), BRN_OK, "nthreads 0 reads BRN_THREADS");
	is_int(brnrt_pool_threads(pool), 3, "BRN_THREADS=3 gives 3 threads");
	brnrt_pool_close(pool);

	setenv("BRN_THREADS", "lots", 1);
	pool = (brnrt_pool *)&e; /* must be reset to NULL on failure */
	is_int(brnrt_pool_open(&pool, -1, &e), BRN_EARG, "a bad BRN_THREADS is an error");
	is_str(e.msg, "BRN_THREADS='lots' is not a thread count (1..1024)", "its message");
	ok(pool == NULL, "the pool pointer is NULL after a failed open");

	unsetenv("BRN_THREADS");
	is_int(brnrt_pool_open(&pool, 0, &e), BRN_OK, "nthreads 0 without BRN_THREADS");
	ok(brnrt_pool_threads(pool) >= 1, "uses the online CPUs (%d)", brnrt_pool_threads(pool));
	brnrt_pool_close(pool);

	is_int(brnrt_pool_open(NULL, 1, &e), BRN_EARG, "a NULL out pointer is an error");
	is_int(brnrt_pool_open(&pool, 5000, &e), BRN_EARG, "too many threads is an error");
	is_str(e.msg, "brnrt_pool_open: 5000 threads is more than 1024", "its message");
}

static void test_errors(void)
{
	brnrt_error e = {{0}};

	is_str(brnrt_strerror(BRN_OK), "BRN_OK", "strerror OK");
	is_str(brnrt_strerror(BRN_EMISMATCH), "BRN_EMISMATCH", "strerror EMISMATCH");
	is_str(brnrt_strerror(BRN_ENODEV), "BRN_ENODEV", "strerror ENODEV");
	is_str(brnrt_strerror(42), "BRN_E?", "strerror unknown");
	is_int(brnrt_errorf(&e, BRN_EIO, "%s: %d", "x", 7), BRN_EIO, "errorf returns the code");
	is_str(e.msg, "x: 7", "errorf formats");
	is_int(brnrt_errorf(NULL, BRN_EARG, "ignored"), BRN_EARG, "errorf takes a NULL error");
}

static void nothing(void *ctx, long begin, long end)
{
	(void)ctx; (void)begin; (void)end;
}

/* BRN_PROFILE=1: named runs are timed, and close prints one row per name
 * (sorted by time) on stderr; without it nothing is printed. */
static void test_profile(void)
{
	char path[] = "/tmp/t_rt_pool_XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	brnrt_pool *pool = NULL;
	if (fd < 0 || saved < 0) {
		ok(0, "profile: temp file");
		return;
	}
	fflush(stderr);
	dup2(fd, 2);
	setenv("BRN_PROFILE", "1", 1);
	int rc = brnrt_pool_open(&pool, 2, NULL);
	unsetenv("BRN_PROFILE");
	brnrt_pool_run_named(pool, "k_a", 100, nothing, NULL);
	brnrt_pool_run_named(pool, "k_a", 100, nothing, NULL);
	brnrt_pool_run_named(pool, "k_b", 100, nothing, NULL);
	brnrt_pool_close(pool);
	brnrt_pool_open(&pool, 2, NULL);
	brnrt_pool_run_named(pool, "k_quiet", 100, nothing, NULL);
	brnrt_pool_close(pool);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char text[2048] = "";
	FILE *f = fopen(path, "r");
	size_t got = f ? fread(text, 1, sizeof text - 1, f) : 0;
	text[got] = 0;
	if (f)
		fclose(f);
	close(fd);
	unlink(path);
	const char *a = strstr(text, "\nk_a "), *b = strstr(text, "\nk_b ");
	long la = 0, lb = 0;
	if (a)
		sscanf(a + 4, "%ld", &la);
	if (b)
		sscanf(b + 4, "%ld", &lb);
	ok(rc == 0 && strncmp(text, "brnrt profile on cpu (C, 2 threads): 3 launches, ", 49) == 0,
	   "profile: a title with the launches");
	ok(la == 2 && lb == 1, "profile: one row per name with its launches (k_a %ld, k_b %ld)", la, lb);
	ok(!strstr(text, "k_quiet"), "profile: nothing printed without BRN_PROFILE");
}

int main(void)
{
	test_sums();
	test_chunks();
	test_many_runs();
	test_inline_and_env();
	test_errors();
	test_profile();
	return done_testing();
}
