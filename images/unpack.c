/* Layer unpacking: one OCI layer tar stream, verified and applied beneath a root fd. */
#include "images/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/xalloc.h"

#define STREAM_CHUNK (128 * 1024)
#define WHITEOUT     ".wh."
#define OPAQUE	     ".wh..wh..opq"
#define AUFS_META    ".wh..wh."

/* A directory whose times are set once the layer is done, when nothing adds to it any more. */
struct dir_time {
	char *name;
	uint64_t dev, ino;
	struct timespec ts[2];
};

struct layer {
	struct tree tree; /* root fd, path cap, inodes this layer wrote */
	const struct unpack_limits *lim;
	struct unpack_stats *stats;
	struct archive *raw; /* blob -> uncompressed tar stream */
	struct archive *tar; /* tar stream (via stream_read) -> entries */
	struct kci_sha256 *hash;
	struct kci_err *err;
	int stream_rc; /* an error stream_read already put in err */
	char *chunk;
	struct dir_time *dirs;
	size_t n_dirs, cap_dirs;
};

static const char *
aerr(struct archive *a)
{
	const char *s = archive_error_string(a);
	return s ? s : "unknown error";
}

/* ---- the stream: blob -> (decompress, hash, count) -> tar reader ---- */

static la_ssize_t
stream_read(struct archive *a, void *opaque, const void **out)
{
	struct layer *l = opaque;
	la_ssize_t n = 0, got = 0;

	(void)a;
	/*
	 * Fill the whole chunk: the decompressor hands out small pieces, and the
	 * tar reader's data blocks (so our writes) are never larger than what we
	 * return here; small returns meant one write syscall per kilobyte.
	 */
	while (n < STREAM_CHUNK &&
	       (got = archive_read_data(l->raw, l->chunk + n, (size_t)(STREAM_CHUNK - n))) > 0)
		n += got;
	if (n == 0 || got < 0)
		n = got;
	if (n < 0) {
		l->stream_rc =
			kci_err_set(l->err, KCI_INVALID, "decompress layer: %s", aerr(l->raw));
		return -1;
	}
	l->stats->bytes += (uint64_t)n;
	if (l->stats->bytes > l->lim->max_bytes) {
		l->stream_rc = kci_err_set(l->err, KCI_INVALID,
					   "layer exceeds %" PRIu64 " bytes uncompressed",
					   l->lim->max_bytes);
		return -1;
	}
	kci_sha256_update(l->hash, l->chunk, (size_t)n);
	*out = l->chunk;
	return n;
}

static int
stream_open(struct layer *l, int blob_fd, struct kci_err *err)
{
	struct archive_entry *e;
	int r;

	l->raw = archive_read_new();
	l->tar = archive_read_new();
	if (!l->raw || !l->tar)
		abort();
	/*
	 * Only the codecs OCI layers use, and only built in: for a codec it was
	 * built without, libarchive would run an external program instead.
	 */
	if (archive_read_support_filter_gzip(l->raw) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(l->raw) != ARCHIVE_OK ||
	    archive_read_support_format_raw(l->raw) != ARCHIVE_OK)
		return kci_err_set(err, KCI_ERROR, "libarchive lacks built-in gzip or zstd: %s",
				   aerr(l->raw));
	if (archive_read_open_fd(l->raw, blob_fd, STREAM_CHUNK) != ARCHIVE_OK)
		return kci_err_set(err, KCI_INVALID, "read layer: %s", aerr(l->raw));
	if ((r = archive_read_next_header(l->raw, &e)) != ARCHIVE_OK)
		return kci_err_set(err, KCI_INVALID, "read layer: %s",
				   r == ARCHIVE_EOF ? "empty blob" : aerr(l->raw));
	if (archive_read_support_format_tar(l->tar) != ARCHIVE_OK)
		return kci_err_set(err, KCI_ERROR, "libarchive: %s", aerr(l->tar));
	if (archive_read_open(l->tar, l, NULL, stream_read, NULL) != ARCHIVE_OK)
		return l->stream_rc ? l->stream_rc
				    : kci_err_set(err, KCI_INVALID, "read layer: %s", aerr(l->tar));
	return 0;
}

/* The digest covers the whole stream, including what follows the tar's end marker. */
static int
stream_drain(struct layer *l)
{
	const void *buf;
	la_ssize_t n;

	while ((n = stream_read(NULL, l, &buf)) > 0)
		;
	return n < 0 ? l->stream_rc : 0;
}

static int
stream_fail(struct layer *l, const struct node *n, struct kci_err *err)
{
	if (l->stream_rc)
		return l->stream_rc;
	if (n)
		return kci_err_set(err, KCI_INVALID, "layer entry '%s': %s", n->shown,
				   aerr(l->tar));
	return kci_err_set(err, KCI_INVALID, "read layer: %s", aerr(l->tar));
}

/* ---- whiteouts ---- */

static int
apply_whiteout(struct layer *l, struct node *n, struct kci_err *err)
{
	const char *victim = n->base + strlen(WHITEOUT);
	struct stat st;
	int rc, fd;

	if (strcmp(n->base, OPAQUE) == 0) {
		fd = tree_resolve(l->tree.root_fd, n->parent, O_RDONLY | O_DIRECTORY);
		if (fd == -ENOENT)
			return 0;
		if (fd < 0)
			return node_fail(n, -fd, "resolve opaque directory", err);
		l->stats->whiteouts++;
		/* Opacity hides lower layers: what this layer wrote before the marker stays. */
		return tree_clear_dir(fd, &l->tree.seen, n, err);
	}
	if (strncmp(n->base, AUFS_META, strlen(AUFS_META)) == 0) {
		/* aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs), not image content. */
		l->stats->skipped++;
		return 0;
	}
	if (!*victim || name_is_dot(victim))
		return kci_err_set(err, KCI_INVALID, "layer entry '%s': whiteout of '%s' refused",
				   n->shown, victim);
	if ((rc = node_open_parent(&l->tree, n, false, err)) <= 0)
		return rc;
	l->stats->whiteouts++;
	if (fstatat(n->dir_fd, victim, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : node_fail(n, errno, "stat whiteout target", err);
	/* A whiteout hides lower layers only; what this layer itself wrote stays. */
	if (ino_set_has(&l->tree.seen, &st))
		return 0;
	return tree_remove(n->dir_fd, victim, &st, n, err);
}

/* ---- metadata ---- */

struct meta {
	uid_t uid;
	gid_t gid;
	mode_t perm;
	struct timespec ts[2]; /* atime, mtime */
};

static int
meta_of(const struct node *n, struct archive_entry *e, struct meta *m, struct kci_err *err)
{
	la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);

	/* (uid_t)-1 would tell chown "leave unchanged"; nothing that large is a real owner. */
	if (uid < 0 || gid < 0 || uid >= UINT32_MAX || gid >= UINT32_MAX)
		return kci_err_set(err, KCI_INVALID,
				   "layer entry '%s': owner %lld:%lld out of range", n->shown,
				   (long long)uid, (long long)gid);
	m->uid = (uid_t)uid;
	m->gid = (gid_t)gid;
	m->perm = archive_entry_perm(e) & 07777;
	m->ts[1].tv_sec = archive_entry_mtime(e);
	m->ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (archive_entry_atime_is_set(e)) {
		m->ts[0].tv_sec = archive_entry_atime(e);
		m->ts[0].tv_nsec = archive_entry_atime_nsec(e);
	} else {
		m->ts[0] = m->ts[1];
	}
	for (int i = 0; i < 2; i++)
		if (m->ts[i].tv_nsec < 0 || m->ts[i].tv_nsec > 999999999)
			m->ts[i].tv_nsec = 0;
	return 0;
}

/*
 * Kept: user.* (minus user.overlay.*, which overlayfs with userxattr reads as
 * its own metadata) and security.capability (file capabilities images rely on,
 * e.g. ping). Dropped: trusted.* (overlayfs metadata the guest's overlay would
 * obey), the rest of security.* (host LSM labels) and system.* (ACLs).
 */
static bool
xattr_kept(const char *key)
{
	if (strncmp(key, "user.", 5) == 0)
		return strncmp(key, "user.overlay.", 13) != 0;
	return strcmp(key, "security.capability") == 0;
}

/* Sets the entry's xattrs on fd; fd < 0 (symlinks, devices) only checks and counts them. */
static int
set_xattrs(struct layer *l, const struct node *n, int fd, struct archive_entry *e,
	   struct kci_err *err)
{
	const char *key;
	const void *val;
	size_t size;
	char shown_key[UNPACK_SHOWN_MAX];

	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &key, &val, &size) == ARCHIVE_OK) {
		if (size > l->lim->max_xattr) {
			unpack_show(key, shown_key, sizeof(shown_key));
			return kci_err_set(err, KCI_INVALID,
					   "layer exceeds %zu-byte xattrs: '%s' of entry '%s'",
					   l->lim->max_xattr, shown_key, n->shown);
		}
		if (fd < 0 || !xattr_kept(key)) {
			l->stats->skipped_xattrs++;
			continue;
		}
		if (fsetxattr(fd, key, val, size, 0) == 0)
			continue;
		if (errno != EOPNOTSUPP)
			return node_fail(n, errno, "set xattr", err);
		l->stats->skipped_xattrs++;
	}
	return 0;
}

/* Owner before mode: chown clears setuid/setgid bits and file capabilities. */
static int
set_meta_fd(struct layer *l, const struct node *n, int fd, struct archive_entry *e,
	    const struct meta *m, struct kci_err *err)
{
	if (fchown(fd, m->uid, m->gid) < 0)
		return node_fail(n, errno, "chown", err);
	if (fchmod(fd, m->perm) < 0)
		return node_fail(n, errno, "chmod", err);
	return set_xattrs(l, n, fd, e, err);
}

/*
 * chmod without following a symlink. fchmodat2 (Linux 6.6) does that itself;
 * without it, check the name is no symlink and use fchmodat, which follows:
 * nothing else writes the tree while a layer is applied, so nothing can swap
 * the name in between.
 */
static int
chmod_nofollow(int dir_fd, const char *base, mode_t mode)
{
	struct stat st;

	if (syscall(SYS_fchmodat2, dir_fd, base, mode, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	/* EPERM too: container seccomp profiles that predate fchmodat2 refuse it so. */
	if (errno != ENOSYS && errno != EPERM)
		return -1;
	if (fstatat(dir_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (S_ISLNK(st.st_mode)) {
		errno = ELOOP;
		return -1;
	}
	return fchmodat(dir_fd, base, mode, 0);
}

/* Metadata of a name that cannot be opened for it (symlink, device, fifo). */
static int
set_meta_at(struct layer *l, const struct node *n, struct archive_entry *e, const struct meta *m,
	    bool chmod, struct kci_err *err)
{
	struct stat st;
	int rc;

	if (fchownat(n->dir_fd, n->base, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return node_fail(n, errno, "chown", err);
	if (chmod && chmod_nofollow(n->dir_fd, n->base, m->perm) < 0)
		return node_fail(n, errno, "chmod", err);
	if ((rc = set_xattrs(l, n, -1, e, err)) < 0)
		return rc;
	if (utimensat(n->dir_fd, n->base, m->ts, AT_SYMLINK_NOFOLLOW) < 0)
		return node_fail(n, errno, "set times", err);
	if (fstatat(n->dir_fd, n->base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return node_fail(n, errno, "stat", err);
	ino_set_add(&l->tree.seen, &st);
	return 0;
}

/* ---- entries by type ---- */

static int
write_data(struct layer *l, const struct node *n, int fd, la_int64_t size, struct kci_err *err)
{
	const void *buf;
	size_t len;
	la_int64_t off, end = 0;
	ssize_t k;
	int r;

	/* untrusted: offsets come from the archive, <= max_bytes, checked below */
	while ((r = archive_read_data_block(l->tar, &buf, &len, &off)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return stream_fail(l, n, err);
		if (off < 0 || (uint64_t)off > l->lim->max_bytes)
			return kci_err_set(err, KCI_INVALID, "layer entry '%s': bad data offset",
					   n->shown);
		for (size_t done = 0; done < len; done += (size_t)k) {
			k = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
			if (k < 0 && errno == EINTR)
				k = 0;
			else if (k < 0)
				return node_fail(n, errno, "write", err);
		}
		end = off + (la_int64_t)len;
	}
	/* A sparse file may end in a hole. */
	if (end < size && ftruncate(fd, size) < 0)
		return node_fail(n, errno, "truncate", err);
	return 0;
}

static int
put_file(struct layer *l, const struct node *n, struct archive_entry *e, const struct meta *m,
	 struct kci_err *err)
{
	la_int64_t size = archive_entry_size(e);
	struct stat st;
	int fd, rc;

	if (size < 0 || (uint64_t)size > l->lim->max_bytes)
		return kci_err_set(err, KCI_INVALID, "layer exceeds %" PRIu64 " bytes: file '%s'",
				   l->lim->max_bytes, n->shown);
	if ((rc = node_clear_slot(n, false, err)) < 0)
		return rc;
	/* O_EXCL: the name is fresh, so no symlink can stand in for it. */
	fd = openat(n->dir_fd, n->base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return node_fail(n, errno, "create", err);
	if ((rc = write_data(l, n, fd, size, err)) == 0 &&
	    (rc = set_meta_fd(l, n, fd, e, m, err)) == 0) {
		if (futimens(fd, m->ts) < 0 || fstat(fd, &st) < 0)
			rc = node_fail(n, errno, "set times", err);
		else
			ino_set_add(&l->tree.seen, &st);
	}
	close(fd);
	return rc;
}

/* fd is the directory (consumed); its times wait for the end of the layer. */
static int
finish_dir(struct layer *l, const struct node *n, int fd, struct archive_entry *e,
	   const struct meta *m, struct kci_err *err)
{
	struct stat st;
	int rc;

	if ((rc = set_meta_fd(l, n, fd, e, m, err)) == 0 && fstat(fd, &st) < 0)
		rc = node_fail(n, errno, "stat", err);
	close(fd);
	if (rc < 0)
		return rc;
	ino_set_add(&l->tree.seen, &st);
	if (l->n_dirs == l->cap_dirs) {
		l->cap_dirs = l->cap_dirs ? 2 * l->cap_dirs : 256;
		l->dirs = kci_xrealloc(l->dirs, l->cap_dirs * sizeof(*l->dirs));
	}
	l->dirs[l->n_dirs++] = (struct dir_time){
		kci_xstrdup(n->name), st.st_dev, st.st_ino, { m->ts[0], m->ts[1] }
	};
	return 0;
}

static int
put_dir(struct layer *l, const struct node *n, struct archive_entry *e, const struct meta *m,
	struct kci_err *err)
{
	int rc, fd;

	if ((rc = node_clear_slot(n, true, err)) < 0)
		return rc;
	if (rc == 0 && mkdirat(n->dir_fd, n->base, 0700) < 0)
		return node_fail(n, errno, "mkdir", err);
	fd = openat(n->dir_fd, n->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return node_fail(n, errno, "open directory", err);
	return finish_dir(l, n, fd, e, m, err);
}

static int
put_symlink(struct layer *l, const struct node *n, struct archive_entry *e, const struct meta *m,
	    struct kci_err *err)
{
	const char *target = archive_entry_symlink(e);
	int rc;

	if (!target || !*target)
		return kci_err_set(err, KCI_INVALID, "layer entry '%s': symlink without a target",
				   n->shown);
	if (strlen(target) > l->lim->max_path)
		return kci_err_set(err, KCI_INVALID, "layer exceeds %zu-byte paths: target of '%s'",
				   l->lim->max_path, n->shown);
	if ((rc = node_clear_slot(n, false, err)) < 0)
		return rc;
	/* Stored verbatim; it is only ever resolved later, and then beneath a root. */
	if (symlinkat(target, n->dir_fd, n->base) < 0)
		return node_fail(n, errno, "symlink", err);
	return set_meta_at(l, n, e, m, false, err);
}

static int
put_special(struct layer *l, const struct node *n, struct archive_entry *e, const struct meta *m,
	    struct kci_err *err)
{
	mode_t type = archive_entry_filetype(e);
	dev_t rdev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
	int rc;

	if ((rc = node_clear_slot(n, false, err)) < 0)
		return rc;
	if (mknodat(n->dir_fd, n->base, type | (m->perm & 0777), type == AE_IFIFO ? 0 : rdev) < 0)
		return node_fail(n, errno, "mknod", err);
	return set_meta_at(l, n, e, m, true, err);
}

/*
 * The target is resolved beneath the root like any name, must exist and must
 * not be a directory; linkat without AT_SYMLINK_FOLLOW links a symlink itself,
 * never what it points to. Links carry no metadata of their own.
 */
static int
put_hardlink(struct layer *l, const struct node *n, const char *target, struct kci_err *err)
{
	struct node t;
	struct stat st, cur;
	char *buf = NULL;
	int rc;

	if ((rc = node_split(&l->tree, target, "hardlink target", &t, &buf, err)) != 0) {
		if (rc > 0)
			rc = kci_err_set(err, KCI_INVALID, "layer entry '%s': hardlink to the root",
					 n->shown);
		goto out;
	}
	if ((rc = node_open_parent(&l->tree, &t, false, err)) < 0)
		goto out;
	if (rc == 0 || fstatat(t.dir_fd, t.base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = kci_err_set(err, KCI_INVALID,
				 "layer entry '%s': hardlink target '%s' not found", n->shown,
				 t.shown);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = kci_err_set(err, KCI_INVALID, "layer entry '%s': hardlink to directory '%s'",
				 n->shown, t.shown);
		goto out;
	}
	rc = 0;
	if (fstatat(n->dir_fd, n->base, &cur, AT_SYMLINK_NOFOLLOW) < 0 || !same_inode(&st, &cur)) {
		if ((rc = node_clear_slot(n, false, err)) < 0)
			goto out;
		if (linkat(t.dir_fd, t.base, n->dir_fd, n->base, 0) < 0) {
			rc = node_fail(n, errno, "link", err);
			goto out;
		}
		rc = 0;
	}
	ino_set_add(&l->tree.seen, &st);
out:
	if (t.dir_fd >= 0)
		close(t.dir_fd);
	free(buf);
	return rc;
}

static int
apply_node(struct layer *l, struct node *n, struct archive_entry *e, struct kci_err *err)
{
	const char *hardlink = archive_entry_hardlink(e);
	struct meta m;
	int rc;

	if (hardlink)
		return put_hardlink(l, n, hardlink, err);
	if ((rc = meta_of(n, e, &m, err)) < 0)
		return rc;
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		return put_file(l, n, e, &m, err);
	case AE_IFDIR:
		return put_dir(l, n, e, &m, err);
	case AE_IFLNK:
		return put_symlink(l, n, e, &m, err);
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
		return put_special(l, n, e, &m, err);
	default:
		/* Sockets: meaningless in an image, and nothing could be listening. */
		l->stats->skipped++;
		return 0;
	}
}

/* "./" or "/": the layer sets the root directory's own metadata. */
static int
apply_root(struct layer *l, struct node *n, struct archive_entry *e, struct kci_err *err)
{
	struct meta m;
	int rc, fd;

	if (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e))
		return kci_err_set(err, KCI_INVALID,
				   "layer entry '%s': names the root but is not a directory",
				   n->shown);
	if ((rc = meta_of(n, e, &m, err)) < 0)
		return rc;
	if ((fd = openat(l->tree.root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return node_fail(n, errno, "open root", err);
	return finish_dir(l, n, fd, e, &m, err);
}

static int
apply_entry(struct layer *l, struct archive_entry *e, struct kci_err *err)
{
	struct node n;
	char *buf = NULL;
	int rc;

	rc = node_split(&l->tree, archive_entry_pathname(e), "entry", &n, &buf, err);
	if (rc > 0)
		rc = apply_root(l, &n, e, err);
	else if (rc == 0 && strncmp(n.base, WHITEOUT, strlen(WHITEOUT)) == 0)
		rc = apply_whiteout(l, &n, err);
	else if (rc == 0 && (rc = node_open_parent(&l->tree, &n, true, err)) > 0)
		rc = apply_node(l, &n, e, err);
	if (n.dir_fd >= 0)
		close(n.dir_fd);
	free(buf);
	return rc;
}

/* Directory times, last: adding entries to a directory changes its mtime. */
static int
finish_dirs(struct layer *l, struct kci_err *err)
{
	struct kci_err gone = KCI_ERR_INIT; /* a directory not found again is no error */
	struct node n;
	struct stat st;
	char *buf;
	int fd, rc = 0;

	for (size_t i = 0; rc == 0 && i < l->n_dirs; i++) {
		buf = NULL;
		fd = -1;
		if (node_split(&l->tree, l->dirs[i].name, "entry", &n, &buf, &gone) > 0)
			fd = openat(l->tree.root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		else if (node_open_parent(&l->tree, &n, false, &gone) > 0)
			fd = openat(n.dir_fd, n.base,
				    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		/* Gone or replaced by a later entry of this layer: that one's times stand. */
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == l->dirs[i].dev &&
		    st.st_ino == l->dirs[i].ino && futimens(fd, l->dirs[i].ts) < 0)
			rc = node_fail(&n, errno, "set times", err);
		if (fd >= 0)
			close(fd);
		if (n.dir_fd >= 0)
			close(n.dir_fd);
		free(buf);
	}
	return rc;
}

static int
check_diff_id(const char *diff_id, struct kci_err *err)
{
	char shown[UNPACK_SHOWN_MAX];

	if (strncmp(diff_id, "sha256:", 7) == 0 && strlen(diff_id) == 7 + 64 &&
	    strspn(diff_id + 7, "0123456789abcdef") == 64)
		return 0;
	unpack_show(diff_id, shown, sizeof(shown));
	return kci_err_set(err, KCI_INVALID, "layer diff_id '%s' is not sha256:<64 hex>", shown);
}

int
unpack_layer(int root_fd, int blob_fd, const char *diff_id, const struct unpack_limits *lim,
	     struct unpack_stats *stats, struct kci_err *err)
{
	static const struct unpack_limits defaults = UNPACK_LIMITS_INIT;
	struct unpack_stats scratch;
	struct layer l = { .lim = lim ? lim : &defaults, .err = err };
	struct archive_entry *e;
	char hex[65];
	int rc, r;

	l.tree.root_fd = root_fd;
	l.tree.max_path = l.lim->max_path;
	l.stats = stats ? stats : &scratch;
	memset(l.stats, 0, sizeof(*l.stats));
	if (diff_id && (rc = check_diff_id(diff_id, err)) < 0)
		return rc;
	l.hash = kci_sha256_new();
	l.chunk = kci_xmalloc(STREAM_CHUNK);
	if ((rc = stream_open(&l, blob_fd, err)) < 0)
		goto out;
	while ((r = archive_read_next_header(l.tar, &e)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = stream_fail(&l, NULL, err);
			goto out;
		}
		if (++l.stats->entries > l.lim->max_entries) {
			rc = kci_err_set(err, KCI_INVALID, "layer exceeds %" PRIu64 " entries",
					 l.lim->max_entries);
			goto out;
		}
		if ((rc = apply_entry(&l, e, err)) < 0)
			goto out;
	}
	if ((rc = stream_drain(&l)) < 0)
		goto out;
	kci_sha256_hex(l.hash, hex);
	l.hash = NULL;
	if (diff_id && strcmp(diff_id + 7, hex) != 0) {
		rc = kci_err_set(err, KCI_DIGEST,
				 "layer diff_id mismatch: expected %s, got sha256:%s", diff_id,
				 hex);
		goto out;
	}
	rc = finish_dirs(&l, err);
out:
	for (size_t i = 0; i < l.n_dirs; i++)
		free(l.dirs[i].name);
	free(l.dirs);
	free(l.tree.seen.slot);
	free(l.chunk);
	kci_sha256_free(l.hash);
	if (l.tar)
		archive_read_free(l.tar);
	if (l.raw)
		archive_read_free(l.raw);
	return rc;
}
