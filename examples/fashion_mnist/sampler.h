/* sampler: which training examples make up minibatch t. Every batch is a
 * pure function of (seed, step), so a run resumed from a checkpoint at step
 * t sees exactly the batches an uninterrupted run would; the sampler keeps
 * caches but no state that matters. */
#ifndef SAMPLER_H
#define SAMPLER_H

#include <stddef.h>
#include <stdint.h>

enum { SAMPLER_IID, SAMPLER_NONIID };

typedef struct sampler {
	int kind, n, batch, labels_per_batch, nclasses;
	uint64_t seed;
	/* iid: the permutation of one epoch, cached. */
	int *perm;
	int64_t perm_epoch;
	/* noniid: example indices grouped by class; class c holds
	 * pool[start[c] .. start[c] + count[c]). */
	int *pool, *start, *count;
	int *eligible, neligible; /* classes with at least batch/L examples */
} sampler;

/* iid: the examples are shuffled per epoch with a permutation seeded by
 * (seed, epoch), and batch t takes positions [t*batch, (t+1)*batch) of the
 * concatenated epochs, so every example appears once per epoch.
 * noniid (the paper's label-sampled minibatches): batch t picks L distinct
 * classes and batch/L distinct examples of each, uniformly, from a
 * generator seeded by (seed, t). batch must be a multiple of L. labels
 * (n of them, in 0..nclasses-1) must outlive the sampler; iid ignores them
 * and L. */
int sampler_open(sampler *s, int kind, uint64_t seed, int n, const int32_t *labels,
		 int nclasses, int batch, int labels_per_batch, char *err, size_t errlen);
void sampler_close(sampler *s);

/* Fills idx[0..batch) with the example indices of batch `step`. */
void sampler_batch(sampler *s, int64_t step, int *idx);

/* The generator, exposed for tests: splitmix64 step, and a uniform
 * integer in [0, bound) by rejection (bound >= 1). */
uint64_t sampler_next(uint64_t *state);
uint64_t sampler_below(uint64_t *state, uint64_t bound);

#endif
