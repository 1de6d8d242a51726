/* Dialect of the kernel bodies for C: plain pointers, float math. FMAX and
 * FMIN are plain comparisons (no NaN rules) so they inline. */
#define GLOBAL
#define SQRT sqrtf
#define FMAX(a, b) ((a) > (b) ? (a) : (b))
#define FMIN(a, b) ((a) < (b) ? (a) : (b))
#define EXP expf
#define LOG logf

/* Vector kernels (conv16): GCC/clang vector types, one function per ISA
 * with a target attribute, chosen once at open by CPU features, so the
 * fast path needs no -march. GCC under -std=c11 contracts no a*b+c into an
 * FMA; those functions ask for it (clang contracts within a statement). */
#if defined(__x86_64__) || defined(__i386__)
#define BRN_X86 1
#else
#define BRN_X86 0
#endif
#if defined(__clang__)
#define BRN_UNROLL _Pragma("unroll")
#else
#define BRN_UNROLL _Pragma("GCC unroll 32")
#endif
/* Division rounding up and down, for tile bounds that may be negative. */
#define BRN_CEIL_DIV(a, s) ((a) >= 0 ? ((a) + (s) - 1) / (s) : -(-(a) / (s)))
#define BRN_FLOOR_DIV(a, s) ((a) >= 0 ? (a) / (s) : -((-(a) + (s) - 1) / (s)))
typedef float brn_vf16 __attribute__((vector_size(64), aligned(4), may_alias));
typedef float brn_vf8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef float brn_vf4 __attribute__((vector_size(16), aligned(4), may_alias));
static int brn_isa; /* 2: AVX-512, 1: AVX2 + FMA, 0: generic */

static void brn_isa_select(void)
{
#if BRN_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		brn_isa = 2;
	else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		brn_isa = 1;
#endif
	/* BRN_ISA=avx2 or generic: a lower variant (tests, comparisons) */
	const char *e = getenv("BRN_ISA");
	if (e && !strcmp(e, "generic"))
		brn_isa = 0;
	else if (e && !strcmp(e, "avx2") && brn_isa > 1)
		brn_isa = 1;
}
