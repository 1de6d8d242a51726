/* t_opencl: the same checks as t_codegen for --target opencl, on the
 * OpenCL device the runtime picks (POCL here and in CI): every fixture,
 * fused and --no-fuse, knobs, batch sizes 1, 2, 3 (prime), 8, against the
 * interpreter with the tolerances of t_codegen, so OpenCL and C agree. */
#define CODEGEN_TARGET "opencl"
#include "t_codegen.c"
