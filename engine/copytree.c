/* Copying files and trees between directory fds, never following a symlink. */
#include "engine/copytree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xalloc.h"

/* A path that stopped existing (or became a symlink) while we copied: skipped, not an error. */
int
ct_vanished(int e)
{
	return e == ENOENT || e == ENOTDIR || e == ELOOP;
}

/* ---- copying one entry, never following a symlink ---- */

static int
copy_data(int in, int out, off_t size, const char *shown, struct kci_err *err)
{
	size_t cap = 128 * 1024;
	off_t copied = 0;
	char *buf = NULL;
	ssize_t n;
	int rc = 0;

	/* copy_file_range shares extents where the file system can; anything else falls back. */
	for (;;) {
		n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		/* Stopping at the size fstat saw saves a call per file; the copy is a snapshot. */
		if (n > 0 && (copied += n) >= size)
			return 0;
		if (n > 0)
			continue;
		if (n == 0 && (copied > 0 || size == 0))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
		    errno != EOPNOTSUPP && errno != EBADF)
			return kci_err_sys(err, errno, "copy %s", shown);
		break; /* unsupported here, or it claims EOF on a non-empty file: read/write */
	}
	buf = kci_xmalloc(cap);
	for (;;) {
		n = read(in, buf, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = kci_err_sys(err, errno, "read %s", shown);
			break;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = kci_err_sys(err, errno, "write %s", shown);
				goto out;
			}
			off += w;
		}
	}
out:
	free(buf);
	return rc;
}

/* Git records only the exec bit; the staged tree gets git's two modes. */
static int
copy_regular(int sfd, int dfd, const char *name, const char *shown, struct kci_err *err)
{
	struct stat sb;
	int in = -1, out = -1, rc = 0;

	/* O_NONBLOCK: if a FIFO replaced the file since lstat, opening it must not hang. */
	in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (in < 0)
		return ct_vanished(errno) ? 1 : kci_err_sys(err, errno, "open %s", shown);
	if (fstat(in, &sb) < 0) {
		rc = kci_err_sys(err, errno, "stat %s", shown);
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = 1;
		goto out;
	}
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = kci_err_sys(err, errno, "create %s", shown);
		goto out;
	}
	if ((rc = copy_data(in, out, sb.st_size, shown, err)) < 0)
		goto out;
	if (fchmod(out, (sb.st_mode & S_IXUSR) ? 0755 : 0644) < 0)
		rc = kci_err_sys(err, errno, "chmod %s", shown);
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* The target is copied verbatim: it is data in the staged tree, never resolved here. */
static int
copy_symlink(int sfd, int dfd, const char *name, const char *shown, struct kci_err *err)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(sfd, name, target, sizeof(target));

	if (n < 0)
		return ct_vanished(errno) || errno == EINVAL
			       ? 1
			       : kci_err_sys(err, errno, "readlink %s", shown);
	if ((size_t)n >= sizeof(target))
		return kci_err_set(err, KCI_INVALID, "%s: symlink target too long", shown);
	target[n] = '\0';
	if (symlinkat(target, dfd, name) < 0)
		return kci_err_sys(err, errno, "symlink %s", shown);
	return 0;
}

/*
 * Copies the non-directory `name` from sfd to dfd. Returns 0 when a file or
 * symlink was copied, 1 when there was nothing to copy (vanished, or a FIFO,
 * socket or device, which a snapshot cannot carry), < 0 on error. `replace`
 * removes an existing entry at the destination first.
 */
int
ct_copy_entry(int sfd, int dfd, const char *name, const char *shown, int replace,
	      struct kci_err *err)
{
	struct stat sb;

	if (fstatat(sfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return ct_vanished(errno) ? 1 : kci_err_sys(err, errno, "stat %s", shown);
	if (!S_ISLNK(sb.st_mode) && !S_ISREG(sb.st_mode))
		return 1;
	if (replace && unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return kci_err_sys(err, errno, "replace %s", shown);
	if (S_ISLNK(sb.st_mode))
		return copy_symlink(sfd, dfd, name, shown, err);
	return copy_regular(sfd, dfd, name, shown, err);
}

/* mkdir + open of a destination directory, refusing a symlink in its place. */
int
ct_open_dest_dir(int dfd, const char *name, const char *shown, struct kci_err *err)
{
	int fd;

	if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
		return kci_err_sys(err, errno, "mkdir %s", shown);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kci_err_sys(err, errno, "open %s", shown);
	return fd;
}

/* ---- copying a whole tree (outside git, and .git itself) ---- */

static int
skipped(const struct tree_opts *o, const char *name, int depth)
{
	size_t n = strlen(name);

	if (o->skip_locks && n > 5 && strcmp(name + n - 5, ".lock") == 0)
		return 1;
	for (size_t i = 0; depth == 0 && o->skip_top && o->skip_top[i]; i++)
		if (strcmp(name, o->skip_top[i]) == 0)
			return 1;
	return 0;
}

static int
copy_subdir(int sfd, int dfd, const char *name, const char *shown, int depth,
	    const struct tree_opts *o, struct kci_err *err)
{
	int src, dst, rc;

	if (depth >= WALK_MAX)
		return kci_err_set(err, KCI_INVALID, "%s: directories nested too deeply", shown);
	src = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (src < 0)
		return ct_vanished(errno) ? 0 : kci_err_sys(err, errno, "open %s", shown);
	if ((dst = ct_open_dest_dir(dfd, name, shown, err)) < 0) {
		close(src);
		return dst;
	}
	rc = ct_copy_tree(src, dst, shown, depth + 1, o, err);
	close(dst);
	return rc;
}

/* Copies the directory sfd (consumed) into dfd, recursively. */
int
ct_copy_tree(int sfd, int dfd, const char *shown, int depth, const struct tree_opts *o,
	     struct kci_err *err)
{
	DIR *d = fdopendir(sfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		rc = kci_err_sys(err, errno, "opendir %s", shown);
		close(sfd);
		return rc;
	}
	while (rc >= 0 && (errno = 0, de = readdir(d))) {
		char *path;
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    skipped(o, de->d_name, depth))
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (!ct_vanished(errno))
				rc = kci_err_sys(err, errno, "stat %s/%s", shown, de->d_name);
			continue;
		}
		if (S_ISDIR(sb.st_mode) && sb.st_dev == o->dest_dev && sb.st_ino == o->dest_ino)
			continue;
		path = kci_xasprintf("%s/%s", shown, de->d_name);
		if (S_ISDIR(sb.st_mode))
			rc = copy_subdir(dirfd(d), dfd, de->d_name, path, depth, o, err);
		else if ((rc = ct_copy_entry(dirfd(d), dfd, de->d_name, path, o->replace, err)) ==
				 0 &&
			 o->count)
			(*o->count)++;
		free(path);
	}
	if (rc >= 0 && errno)
		rc = kci_err_sys(err, errno, "readdir %s", shown);
	closedir(d);
	return rc < 0 ? rc : 0;
}

int
ct_copy_dir_at(const char *src, int dfd, const char *name, const struct tree_opts *o,
	       struct kci_err *err)
{
	int sfd, dst, rc;

	sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return kci_err_sys(err, errno, "open %s", src);
	if ((dst = ct_open_dest_dir(dfd, name, name, err)) < 0) {
		close(sfd);
		return dst;
	}
	rc = ct_copy_tree(sfd, dst, src, 0, o, err);
	close(dst);
	return rc;
}
