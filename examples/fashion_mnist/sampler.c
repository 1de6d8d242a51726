/* sampler: stateless minibatch sampling, iid and label-sampled (non-iid).
 * The generator is splitmix64; each epoch (iid) or step (non-iid) gets its
 * own stream, derived by hashing the seed with the epoch or step. */
#include "sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brnrt.h"
#include "errbuf.h"

#define TAG_IID 0x69696400u    /* "iid" */
#define TAG_NONIID 0x6e6f6e00u /* "non" */

/* splitmix64's output function: a good 64-bit mixer. */
static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t sampler_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return mix(*state);
}

uint64_t sampler_below(uint64_t *state, uint64_t bound)
{
	uint64_t limit = -bound % bound; /* 2^64 mod bound: values below are biased */
	uint64_t r;
	do
		r = sampler_next(state);
	while (r < limit);
	return r % bound;
}

/* The generator state of stream i (an epoch or a step) under tag. */
static uint64_t stream(uint64_t seed, uint64_t tag, int64_t i)
{
	return mix(mix(seed ^ tag << 32) + (uint64_t)i);
}

int sampler_open(sampler *s, int kind, uint64_t seed, int n, const int32_t *labels,
		 int nclasses, int batch, int labels_per_batch, char *err, size_t errlen)
{
	int per;

	memset(s, 0, sizeof *s);
	s->kind = kind;
	s->seed = seed;
	s->n = n;
	s->batch = batch;
	s->labels_per_batch = labels_per_batch;
	s->nclasses = nclasses;
	s->perm_epoch = -1;
	if (n < 1 || batch < 1)
		return errbuf_fail(err, errlen, BRN_EARG, "sampler: need at least one example and batch >= 1");
	if (kind == SAMPLER_IID) {
		s->perm = malloc((size_t)n * sizeof *s->perm);
		return s->perm ? BRN_OK : errbuf_fail(err, errlen, BRN_ENOMEM, "sampler: out of memory");
	}
	if (labels_per_batch < 1 || labels_per_batch > nclasses || batch % labels_per_batch)
		return errbuf_fail(err, errlen, BRN_EARG,
			    "sampler: %d labels per batch must be in 1..%d and divide the batch of %d",
			    labels_per_batch, nclasses, batch);
	s->pool = malloc((size_t)n * sizeof *s->pool);
	s->start = calloc((size_t)nclasses, sizeof *s->start);
	s->count = calloc((size_t)nclasses, sizeof *s->count);
	s->eligible = malloc((size_t)nclasses * sizeof *s->eligible);
	if (!s->pool || !s->start || !s->count || !s->eligible) {
		sampler_close(s);
		return errbuf_fail(err, errlen, BRN_ENOMEM, "sampler: out of memory");
	}
	for (int i = 0; i < n; i++) {
		if (labels[i] < 0 || labels[i] >= nclasses) {
			sampler_close(s);
			return errbuf_fail(err, errlen, BRN_EARG, "sampler: label %d of example %d is out of range 0..%d",
				    (int)labels[i], i, nclasses - 1);
		}
		s->count[labels[i]]++;
	}
	for (int c = 1; c < nclasses; c++)
		s->start[c] = s->start[c - 1] + s->count[c - 1];
	for (int c = 0, fill; c < nclasses; c++) {
		fill = s->start[c];
		for (int i = 0; i < n; i++)
			if (labels[i] == c)
				s->pool[fill++] = i;
	}
	per = batch / labels_per_batch;
	for (int c = 0; c < nclasses; c++)
		if (s->count[c] >= per)
			s->eligible[s->neligible++] = c;
	if (s->neligible < labels_per_batch) {
		int have = s->neligible;
		sampler_close(s);
		return errbuf_fail(err, errlen, BRN_EARG,
			    "sampler: only %d classes have at least %d examples; %d labels per batch need %d",
			    have, per, labels_per_batch, labels_per_batch);
	}
	return BRN_OK;
}

void sampler_close(sampler *s)
{
	free(s->perm);
	free(s->pool);
	free(s->start);
	free(s->count);
	free(s->eligible);
	memset(s, 0, sizeof *s);
}

/* Fisher-Yates over 0..n-1 with the epoch's own stream. */
static void shuffle_epoch(sampler *s, int64_t epoch)
{
	uint64_t g = stream(s->seed, TAG_IID, epoch);
	for (int i = 0; i < s->n; i++)
		s->perm[i] = i;
	for (int i = s->n - 1; i > 0; i--) {
		int j = (int)sampler_below(&g, (uint64_t)i + 1), t = s->perm[i];
		s->perm[i] = s->perm[j];
		s->perm[j] = t;
	}
	s->perm_epoch = epoch;
}

static int contains(const int *a, int n, int v)
{
	for (int i = 0; i < n; i++)
		if (a[i] == v)
			return 1;
	return 0;
}

/* Floyd's algorithm: k distinct values from 0..m-1 into out, in O(k^2). */
static void choose(uint64_t *g, int m, int k, int *out)
{
	int n = 0;
	for (int j = m - k; j < m; j++) {
		int t = (int)sampler_below(g, (uint64_t)j + 1);
		out[n] = contains(out, n, t) ? j : t;
		n++;
	}
}

void sampler_batch(sampler *s, int64_t step, int *idx)
{
	if (s->kind == SAMPLER_IID) {
		for (int j = 0; j < s->batch; j++) {
			int64_t p = step * s->batch + j;
			if (p / s->n != s->perm_epoch)
				shuffle_epoch(s, p / s->n);
			idx[j] = s->perm[p % s->n];
		}
		return;
	}
	uint64_t g = stream(s->seed, TAG_NONIID, step);
	int L = s->labels_per_batch, per = s->batch / L;
	/* The classes go into idx[0..L) first; group l then fills
	 * idx[l*per ..), last group first, so a class is read before its slot
	 * is overwritten (l <= l*per). */
	choose(&g, s->neligible, L, idx);
	for (int l = L - 1; l >= 0; l--) {
		int c = s->eligible[idx[l]], *out = idx + l * per;
		choose(&g, s->count[c], per, out);
		for (int k = 0; k < per; k++)
			out[k] = s->pool[s->start[c] + out[k]];
	}
}
