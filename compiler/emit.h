/* Emitters: render a plan (fuse.h) as C or OpenCL code plus a header with
 * the model's API (DESIGN.md §6). The two targets share every template but
 * the small dialect files in templates/c/ and templates/opencl/. */
#ifndef BRN_EMIT_H
#define BRN_EMIT_H

#include "diag.h"
#include "fuse.h"

typedef struct brn_emit_options {
	const char *base;         /* output path without extension */
	const char *target;       /* "c" or "opencl" */
	const char *source;       /* the model file, for the header comment */
	const char *command;      /* the command line, for the header comment */
} brn_emit_options;

int brn_emit(const brn_plan *p, const brn_emit_options *o, brn_diag *d);

#endif
