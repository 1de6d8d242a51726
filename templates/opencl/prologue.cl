/* Dialect of the kernel bodies for OpenCL C 1.2: global address space,
 * overloaded float math. */
#define GLOBAL __global
#define SQRT sqrt
#define FMAX fmax
#define FMIN fmin
#define EXP exp
#define LOG log
