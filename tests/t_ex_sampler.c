/* t_ex_sampler: the minibatch samplers of examples/fashion_mnist: coverage
 * per epoch (iid), label structure and balance (non-iid), and that a batch
 * depends on (seed, step) alone. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "brnrt.h"
#include "sampler.h"
#include "tap.h"

#define N 1003 /* not a multiple of any batch size used, so batches straddle epochs */
#define CLASSES 10

static int32_t labels[N];
static char err[1024];

/* Every example exactly once in each of the first three epochs. */
static void test_iid_epochs(int batch)
{
	static int seen[N], idx[64];
	int64_t pos = 0, steps = (3 * N + batch - 1) / batch;
	int bad = 0;
	sampler s;

	is_int(sampler_open(&s, SAMPLER_IID, 7, N, labels, CLASSES, batch, 0, err, sizeof err),
	       BRN_OK, "iid sampler opens (batch %d)", batch);
	memset(seen, 0, sizeof seen);
	for (int64_t t = 0; t < steps; t++) {
		sampler_batch(&s, t, idx);
		for (int j = 0; j < batch; j++, pos++) {
			if (idx[j] < 0 || idx[j] >= N) {
				bad++;
				continue;
			}
			seen[idx[j]]++;
			if (pos % N == N - 1) { /* an epoch ends: all seen once */
				for (int i = 0; i < N; i++)
					bad += seen[i] != 1;
				memset(seen, 0, sizeof seen);
			}
		}
	}
	is_int(bad, 0, "iid batch %d: each example once per epoch over 3 epochs", batch);
	sampler_close(&s);
}

static void test_iid_shuffles(void)
{
	int a[N], b[N], same = 0, sorted = 1;
	sampler s;
	sampler_open(&s, SAMPLER_IID, 7, N, labels, CLASSES, N, 0, err, sizeof err);
	sampler_batch(&s, 0, a);
	sampler_batch(&s, 1, b);
	for (int i = 0; i < N; i++) {
		same += a[i] == b[i];
		sorted &= i == 0 || a[i] > a[i - 1];
	}
	ok(!sorted, "iid epoch 0 is shuffled");
	ok(same < 20, "iid epochs 0 and 1 differ (%d positions agree)", same);
	sampler_close(&s);
	sampler_open(&s, SAMPLER_IID, 8, N, labels, CLASSES, N, 0, err, sizeof err);
	sampler_batch(&s, 0, b);
	same = 0;
	for (int i = 0; i < N; i++)
		same += a[i] == b[i];
	ok(same < 20, "iid seeds 7 and 8 differ (%d positions agree)", same);
	sampler_close(&s);
}

/* Each batch: exactly L distinct labels, batch/L distinct examples each. */
static void test_noniid_structure(int batch, int L)
{
	int idx[64], bad = 0, per = batch / L;
	long freq[CLASSES] = {0}, total = 0, worst = 0, steps = 20000;
	sampler s;

	is_int(sampler_open(&s, SAMPLER_NONIID, 3, N, labels, CLASSES, batch, L, err, sizeof err),
	       BRN_OK, "non-iid sampler opens (batch %d, %d labels)", batch, L);
	for (long t = 0; t < steps; t++) {
		int count[CLASSES] = {0}, distinct = 0;
		sampler_batch(&s, t, idx);
		for (int j = 0; j < batch; j++) {
			if (idx[j] < 0 || idx[j] >= N) {
				bad++;
				continue;
			}
			for (int k = 0; k < j; k++)
				bad += idx[k] == idx[j]; /* no repeats within a batch */
			distinct += count[labels[idx[j]]]++ == 0;
		}
		bad += distinct != L;
		for (int c = 0; c < CLASSES; c++) {
			bad += count[c] != 0 && count[c] != per;
			freq[c] += count[c];
			total += count[c];
		}
	}
	is_int(bad, 0, "non-iid %d/%d: %d labels of %d examples each, no repeats", batch, L, L, per);
	for (int c = 0; c < CLASSES; c++) {
		long dev = labs(freq[c] - total / CLASSES);
		worst = dev > worst ? dev : worst;
	}
	/* Each class is a binomial count of ~steps*L/10 draws of per examples;
	 * 5% of the mean is over 5 standard deviations. */
	ok(worst < total / CLASSES / 20, "non-iid %d/%d: label frequencies near uniform (worst %ld of %ld)",
	   batch, L, worst, total / CLASSES);
	sampler_close(&s);
}

/* Batch t computed directly equals batch t after steps 0..t-1, in a fresh
 * sampler and in one that has been elsewhere. */
static void test_stateless(int kind, int batch, int L)
{
	const char *name = kind == SAMPLER_IID ? "iid" : "non-iid";
	int a[64], b[64], diff = 0;
	sampler walk, jump;

	sampler_open(&walk, kind, 11, N, labels, CLASSES, batch, L, err, sizeof err);
	sampler_open(&jump, kind, 11, N, labels, CLASSES, batch, L, err, sizeof err);
	for (int64_t t = 0; t < 1500; t++) {
		sampler_batch(&walk, t, a);
		if (t % 97 == 0 || t == 1499) {
			sampler_batch(&jump, 100000 - t, b); /* somewhere else first */
			sampler_batch(&jump, t, b);
			diff += memcmp(a, b, (size_t)batch * sizeof *a) != 0;
		}
	}
	is_int(diff, 0, "%s: batch t is the same directly and after steps 0..t-1", name);
	sampler_close(&jump);
	sampler_open(&jump, kind, 11, N, labels, CLASSES, batch, L, err, sizeof err);
	sampler_batch(&jump, 1499, b);
	ok(memcmp(a, b, (size_t)batch * sizeof *a) == 0, "%s: a fresh sampler gives batch 1499 alone",
	   name);
	sampler_close(&walk);
	sampler_close(&jump);
}

static void test_errors(void)
{
	int32_t few[12] = {0, 0, 0, 1, 1, 1, 2, 3, 4, 5, 6, 7};
	sampler s;
	is_int(sampler_open(&s, SAMPLER_NONIID, 1, N, labels, CLASSES, 6, 4, err, sizeof err), BRN_EARG,
	       "L must divide the batch");
	is_str(err, "sampler: 4 labels per batch must be in 1..10 and divide the batch of 6",
	       "L not dividing the batch: message");
	is_int(sampler_open(&s, SAMPLER_NONIID, 1, 12, few, CLASSES, 9, 3, err, sizeof err), BRN_EARG,
	       "too few classes with enough examples");
	is_str(err, "sampler: only 2 classes have at least 3 examples; 3 labels per batch need 3",
	       "too few classes: message");
	is_int(sampler_open(&s, SAMPLER_NONIID, 1, 12, few, CLASSES, 4, 2, err, sizeof err), BRN_OK,
	       "classes with fewer than batch/L examples are skipped, not fatal");
	sampler_close(&s);
}

static void test_generator(void)
{
	uint64_t g = 42, hist[7] = {0};
	int bad = 0;
	for (int i = 0; i < 70000; i++) {
		uint64_t r = sampler_below(&g, 7);
		if (r < 7)
			hist[r]++;
		else
			bad++;
	}
	for (int i = 0; i < 7; i++)
		bad += hist[i] < 9500 || hist[i] > 10500;
	is_int(bad, 0, "sampler_below(7) is in range and near uniform");
	g = 0;
	ok(sampler_next(&g) == 0xe220a8397b1dcdafull, "splitmix64 matches the reference first output");
}

int main(void)
{
	/* Unbalanced classes: 0, 1 and 2 have twice the examples of the rest. */
	for (int i = 0; i < N; i++)
		labels[i] = i % 13 % CLASSES;
	test_generator();
	test_errors();
	test_iid_epochs(1);
	test_iid_epochs(4);
	test_iid_epochs(32);
	test_iid_shuffles();
	test_noniid_structure(4, 2);
	test_noniid_structure(8, 2);
	test_noniid_structure(32, 4);
	test_noniid_structure(10, 10);
	test_stateless(SAMPLER_IID, 32, 0);
	test_stateless(SAMPLER_NONIID, 8, 2);
	return done_testing();
}
