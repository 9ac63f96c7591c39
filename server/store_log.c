/*
 * Jobs' logs: data/logs/<build>/<file_name>.log, written only at their end. An agent resends
 * a chunk it is unsure of, so a chunk the log already holds is accepted and changes nothing;
 * one that would leave a gap is refused.
 */
#include "server/store_db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/fs.h"
#include "common/xalloc.h"

/* NULL when file_name is not one safe path component or build is not an id. */
char *
store_log_path(struct store *s, int64_t build, const char *file_name)
{
	if (build <= 0 || !store_log_name_ok(file_name))
		return NULL;
	return kci_xasprintf("%s/logs/%lld/%s.log", s->dir, (long long)build, file_name);
}

/* Appends what of data at offset the log at fd (locked) lacks; *size gets its new size. */
static int
log_write(int fd, const char *path, uint64_t offset, const void *data, size_t len, uint64_t *size,
	  struct kci_err *err)
{
	struct stat st;
	uint64_t cur, skip;
	int e;

	if (fstat(fd, &st) < 0)
		return kci_err_sys(err, errno, "stat %s", path);
	cur = (uint64_t)st.st_size;
	if (offset > cur)
		return kci_err_set(err, KCI_INVALID,
				   "log %s: a chunk at %llu would leave a gap after %llu", path,
				   (unsigned long long)offset, (unsigned long long)cur);
	*size = cur;
	if (offset + len <= cur)
		return 0;
	/* Part of the chunk may be there already (a write cut short, then resent). */
	skip = cur - offset;
	if ((e = kci_write_all(fd, (const char *)data + skip, len - skip)) < 0) {
		/* Leave the log as it was, so the resend starts from a known end. */
		if (ftruncate(fd, (off_t)cur) < 0)
			return kci_err_sys(err, errno, "truncate %s after a failed write", path);
		return kci_err_sys(err, -e, "write %s", path);
	}
	*size = offset + len;
	return 0;
}

int
store_log_append(struct store *s, int64_t build, const char *file_name, uint64_t offset,
		 const void *data, size_t len, uint64_t *size, struct kci_err *err)
{
	char *path = store_log_path(s, build, file_name), *dir = NULL;
	int fd = -1, rc;

	if (!path) {
		rc = kci_err_set(err, KCI_INVALID, "build %lld: \"%s\" is not a log name",
				 (long long)build, file_name ? file_name : "");
		goto out;
	}
	if (offset > UINT64_MAX - len || offset + len > (uint64_t)INT64_MAX) {
		rc = kci_err_set(err, KCI_INVALID, "log %s: a chunk at %llu is out of range", path,
				 (unsigned long long)offset);
		goto out;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == ENOENT) {
		/* The build's first log. */
		dir = kci_xstrndup(path, (size_t)(strrchr(path, '/') - path));
		if ((rc = kci_mkdir_p(dir, 0700, err)) < 0)
			goto out;
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd < 0) {
		rc = kci_err_sys(err, errno, "open %s", path);
		goto out;
	}
	/* The lock orders concurrent appends to one log: each sees the size the last one left. */
	if (flock(fd, LOCK_EX) < 0) {
		rc = kci_err_sys(err, errno, "lock %s", path);
		goto out;
	}
	rc = log_write(fd, path, offset, data, len, size, err);
out:
	if (fd >= 0)
		close(fd);
	free(dir);
	free(path);
	return rc;
}
