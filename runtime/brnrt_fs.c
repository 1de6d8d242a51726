/* libbrnrt file helpers: see brnrt_fs.h. */
#include "brnrt_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void brnrt_fs_remove_stale_temps(const char *path, const char *marker)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t blen = strlen(base), mlen = strlen(marker);
	char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *ent;
	struct stat st;

	while (d && (ent = readdir(d)) != NULL) {
		const char *s = ent->d_name, *digits = s + blen + mlen;
		char *end;
		if (strncmp(s, base, blen) != 0 || strncmp(s + blen, marker, mlen) != 0 ||
		    *digits < '1' || *digits > '9')
			continue;
		errno = 0;
		long pid = strtol(digits, &end, 10);
		if ((*end && *end != '.') || errno || pid == (long)getpid() || (pid_t)pid != pid)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (fstatat(dirfd(d), s, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			unlinkat(dirfd(d), s, 0);
	}
	if (d)
		closedir(d);
	free(dir);
}
