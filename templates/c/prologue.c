/* Dialect of the kernel bodies for C: plain pointers, float math. */
#define GLOBAL
#define SQRT sqrtf
#define FMAX fmaxf
#define FMIN fminf
#define EXP expf
#define LOG logf
