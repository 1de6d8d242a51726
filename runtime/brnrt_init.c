/* Counter-based normal generator for fresh weights (see brnrt_init.h). */
#include "brnrt_init.h"

#include <math.h>

uint64_t brnrt_name_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double brnrt_normal(uint64_t seed, uint64_t stream, uint64_t i)
{
	uint64_t base = mix(seed ^ mix(stream)) ^ (i * 0xd1b54a32d192ed03ull);
	/* two uniforms in (0, 1], never 0 so the log is finite */
	double u1 = ((double)(mix(base) >> 11) + 1.0) * 0x1.0p-53;
	double u2 = (double)(mix(base ^ 0x5851f42d4c957f2dull) >> 11) * 0x1.0p-53;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void brnrt_init_he(float *w, long n, double fan_in, uint64_t seed, const char *name)
{
	uint64_t stream = brnrt_name_hash(name);
	double std = sqrt(2.0 / fan_in);
	for (long i = 0; i < n; i++)
		w[i] = (float)(std * brnrt_normal(seed, stream, (uint64_t)i));
}
