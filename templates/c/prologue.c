/* Dialect of the kernel bodies for C: plain pointers, float math. FMAX and
 * FMIN are plain comparisons (no NaN rules) so they inline. */
#define GLOBAL
#define SQRT sqrtf
#define FMAX(a, b) ((a) > (b) ? (a) : (b))
#define FMIN(a, b) ((a) < (b) ? (a) : (b))
#define EXP expf
#define LOG logf
