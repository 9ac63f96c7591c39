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

/* ---- logbuf.c: guest output as masked lines ---- */

#define LOG_LINE_MAX 8192 /* longer lines are cut into pieces of about this size */

/* Secret values to hide; each occurrence in a line becomes "***". */
struct masker {
	char **values; /* longest first, so a secret containing another is hidden whole */
	size_t n, maxlen;
};

/* From "NAME=VALUE" entries; empty values are ignored. */
void mask_init(struct masker *m, char *const *secrets);
void mask_free(struct masker *m);
/* A malloc'd copy of s (len bytes) with every secret replaced; *outlen its length. */
char *mask_str(const struct masker *m, const char *s, size_t len, size_t *outlen);

typedef void (*line_fn)(void *ctx, const char *line, size_t len);

/* Splits one output stream into lines, masking each before it leaves. */
struct logbuf {
	char *buf; /* LOG_LINE_MAX + the longest secret: room to never cut one */
	size_t len, cap;
};

/*
 * Feeds bytes; emit() gets each complete line (without "\n" or a trailing
 * "\r"), masked, NUL-terminated. A line longer than LOG_LINE_MAX leaves in
 * pieces, cut where no secret can straddle the cut, however long the secret.
 */
void logbuf_feed(struct logbuf *b, const struct masker *m, const char *data, size_t len,
		 line_fn emit, void *ctx);
/* Emits what is left as a last line (a process that did not end with "\n"). */
void logbuf_flush(struct logbuf *b, const struct masker *m, line_fn emit, void *ctx);
void logbuf_free(struct logbuf *b);

#endif
