/* fuzz_rng.h: the fuzz tests' random numbers, xorshift64* (deterministic
 * across platforms). The test seeds rng (never 0). */
#ifndef FUZZ_RNG_H
#define FUZZ_RNG_H
#include <stddef.h>
#include <stdint.h>

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1DULL;
}

/* uniform in 0 .. n-1 (0 for n = 0) */
static size_t below(size_t n)
{
	return n ? (size_t)(next() % n) : 0;
}

#endif
