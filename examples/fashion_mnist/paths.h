/* paths: checks on an output file made before a long run, so that a run
 * neither ends by failing to save nor saves over what it reads. Errors come
 * back as a BRN_E* code and a message in the caller's buffer. */
#ifndef PATHS_H
#define PATHS_H

#include <stddef.h>

/* 0 when path can be written as an output: its directory exists and is
 * writable, path is not a directory, and it is not the same file
 * (st_dev, st_ino) as any of the n inputs (NULL or missing ones are
 * skipped). flag names the option in messages ("--ckpt"). */
int paths_check_output(const char *flag, const char *path, const char *const *inputs, int n,
		       char *err, size_t errlen);

#endif
