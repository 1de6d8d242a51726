/* libbrnrt's file helpers shared by its halves (internal: not installed). */
#ifndef BRNRT_FS_H
#define BRNRT_FS_H

/* A write killed before its rename (kill -9, a crash) leaves a temporary
 * <path><marker><pid>, optionally followed by '.' and more (a salt).
 * Removes those, regular files only, of processes that no longer run; one
 * of a live process (or of another host sharing the directory, whose pid
 * means nothing here) may be a write under way and is kept. */
void brnrt_fs_remove_stale_temps(const char *path, const char *marker);

#endif
