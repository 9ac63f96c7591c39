/* engine/ internals shared between its files. */
#ifndef KCI_ENGINE_INTERNAL_H
#define KCI_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- artifacts.c: copying a job's artifacts out of a (hostile) guest ---- */

#define ART_MAX_BYTES (1ULL << 30) /* per job, sum of regular file sizes */
#define ART_MAX_FILES 10000	   /* per job, entries of any kind */

struct art_limits {
	uint64_t max_bytes;
	size_t max_files;
};

struct art_stats {
	size_t files;	/* entries created */
	uint64_t bytes; /* regular file bytes written */
};

/*
 * Extracts the tar archive read from fd (written by the guest: every byte is
 * hostile) into the existing empty directory `dest`. Only directories,
 * regular files, symlinks whose target is relative and stays inside dest,
 * and hardlinks to files already extracted are created, all strictly below
 * dest; anything else is refused. Errors: KCI_INVALID with "artifact PATH:
 * why" (e.g. "artifact etc: symlink to /etc leaves the workspace"), or a
 * limit ("artifacts exceed 1024 MiB"); KCI_ERROR for I/O. On error dest may
 * hold a partial tree; the caller removes it.
 */
int art_extract(int fd, const char *dest, const struct art_limits *lim, struct art_stats *st,
		struct kci_err *err);

#endif
