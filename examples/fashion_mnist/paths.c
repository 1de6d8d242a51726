/* paths: an output is checked before the run that writes it (see paths.h):
 * the directory by stat and access, the file against the inputs by inode,
 * so that another name (a link, "./x", "../dir/x") of an input is caught. */
#include "paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "brnrt.h"
#include "errbuf.h"

int paths_check_output(const char *flag, const char *path, const char *const *inputs, int n,
		       char *err, size_t errlen)
{
	struct stat out, in;
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
	int rc = BRN_OK;

	if (!dir)
		return errbuf_fail(err, errlen, BRN_ENOMEM, "out of memory");
	if (!*path)
		rc = errbuf_fail(err, errlen, BRN_EARG, "%s: the path is empty", flag);
	else if (stat(dir, &in) != 0)
		rc = errbuf_fail(err, errlen, BRN_EIO, "%s %s: cannot write in %s: %s", flag, path, dir,
			  strerror(errno));
	else if (!S_ISDIR(in.st_mode))
		rc = errbuf_fail(err, errlen, BRN_EIO, "%s %s: %s is not a directory", flag, path, dir);
	else if (access(dir, W_OK | X_OK) != 0)
		rc = errbuf_fail(err, errlen, BRN_EIO, "%s %s: cannot write in %s: %s", flag, path, dir,
			  strerror(errno));
	else if (stat(path, &out) == 0 && S_ISDIR(out.st_mode))
		rc = errbuf_fail(err, errlen, BRN_EIO, "%s %s: is a directory", flag, path);
	else if (stat(path, &out) == 0)
		for (int i = 0; i < n && rc == BRN_OK; i++)
			if (inputs[i] && stat(inputs[i], &in) == 0 && in.st_dev == out.st_dev &&
			    in.st_ino == out.st_ino)
				rc = errbuf_fail(err, errlen, BRN_EARG,
					  "%s %s: is the input %s; it would be replaced", flag, path,
					  inputs[i]);
	free(dir);
	return rc;
}
