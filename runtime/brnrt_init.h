/* Fresh weights, the same in every backend and in the compiler's reference
 * interpreter: value i of a tensor is a pure function of (seed, the
 * tensor's name, i), so float and double fills agree and any chunking of
 * the fill gives the same numbers. He-normal: std sqrt(2 / fan_in). */
#ifndef BRNRT_INIT_H
#define BRNRT_INIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* FNV-1a of a tensor name, the stream key of its values. */
uint64_t brnrt_name_hash(const char *name);

/* A standard normal value, counter-based (splitmix64 + Box-Muller). */
double brnrt_normal(uint64_t seed, uint64_t stream, uint64_t i);

/* w[i] = std * normal(seed, hash(name), i), std = sqrt(2 / fan_in). */
void brnrt_init_he(float *w, long n, double fan_in, uint64_t seed, const char *name);

#ifdef __cplusplus
}
#endif

#endif
