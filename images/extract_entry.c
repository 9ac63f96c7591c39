/* Entries by kind: what the policy does with each, and creating it beneath the root. */
#include "images/extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/xalloc.h"

int
entry_read_fail(struct xt *x, const struct node *n, struct kci_err *err)
{
	const char *why = archive_error_string(x->tar);
	char msg[256];

	if (x->stream_rc)
		return x->stream_rc;
	snprintf(msg, sizeof(msg), "corrupt archive: %s", why ? why : "unknown error");
	if (!n)
		return kci_err_set(err, KCI_INVALID, "%s: %s", x->p->archive, msg);
	return node_refuse(&x->tree, n, msg, err);
}

struct meta {
	uid_t uid;
	gid_t gid;
	mode_t perm;
	struct timespec ts[2]; /* atime, mtime */
};

static int
meta_of(struct xt *x, const struct node *n, struct archive_entry *e, struct meta *m,
	struct kci_err *err)
{
	la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	char why[96];

	/* (uid_t)-1 would tell chown "leave unchanged"; nothing that large is a real owner. */
	if (x->p->owners && (uid < 0 || gid < 0 || uid >= UINT32_MAX || gid >= UINT32_MAX)) {
		snprintf(why, sizeof(why), "owner %lld:%lld out of range", (long long)uid,
			 (long long)gid);
		return node_refuse(&x->tree, n, why, err);
	}
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
 * The mode a new file, directory or node is created with. Exact modes are
 * set afterwards with fchmod (past the umask, setuid included); private and
 * clamped ones are final here, the umask applying, so whatever the archive
 * says nothing is setuid, setgid, sticky, or writable by group or others.
 */
static mode_t
create_mode(const struct kci_extract_policy *p, mode_t type, mode_t perm)
{
	if (p->modes == KCI_EXTRACT_MODES_CLAMP)
		return type == S_IFDIR || (perm & S_IXUSR) ? 0755 : 0644;
	return type == S_IFDIR ? 0700 : 0600;
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

/* Sets the entry's xattrs on fd where the policy keeps owners; else, or fd < 0, counts them. */
static int
set_xattrs(struct xt *x, const struct node *n, int fd, struct archive_entry *e, struct kci_err *err)
{
	const char *key;
	const void *val;
	size_t size;
	char shown_key[EXTRACT_SHOWN_MAX], why[2 * EXTRACT_SHOWN_MAX];

	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &key, &val, &size) == ARCHIVE_OK) {
		if (size > x->p->max_xattr) {
			extract_show(key, shown_key, sizeof(shown_key));
			snprintf(why, sizeof(why), "xattr '%s' larger than %zu bytes", shown_key,
				 x->p->max_xattr);
			return node_refuse(&x->tree, n, why, err);
		}
		if (fd < 0 || !x->p->owners || !xattr_kept(key)) {
			x->stats->skipped_xattrs++;
			continue;
		}
		if (fsetxattr(fd, key, val, size, 0) == 0)
			continue;
		if (errno != EOPNOTSUPP)
			return node_fail(&x->tree, n, errno, "set xattr", err);
		x->stats->skipped_xattrs++;
	}
	return 0;
}

/* Owner before mode: chown clears setuid/setgid bits and file capabilities. */
static int
set_meta_fd(struct xt *x, const struct node *n, int fd, struct archive_entry *e,
	    const struct meta *m, struct kci_err *err)
{
	if (x->p->owners && fchown(fd, m->uid, m->gid) < 0)
		return node_fail(&x->tree, n, errno, "chown", err);
	if (x->p->modes == KCI_EXTRACT_MODES_EXACT && fchmod(fd, m->perm) < 0)
		return node_fail(&x->tree, n, errno, "chmod", err);
	return set_xattrs(x, n, fd, e, err);
}

/*
 * chmod without following a symlink. fchmodat2 (Linux 6.6) does that itself;
 * without it, check the name is no symlink and use fchmodat, which follows:
 * nothing else writes the tree while an archive is extracted, so nothing can
 * swap the name in between.
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
set_meta_at(struct xt *x, const struct node *n, struct archive_entry *e, const struct meta *m,
	    bool chmod, struct kci_err *err)
{
	struct stat st;
	int rc;

	if (x->p->owners && fchownat(n->dir_fd, n->base, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return node_fail(&x->tree, n, errno, "chown", err);
	if (chmod && x->p->modes == KCI_EXTRACT_MODES_EXACT &&
	    chmod_nofollow(n->dir_fd, n->base, m->perm) < 0)
		return node_fail(&x->tree, n, errno, "chmod", err);
	if ((rc = set_xattrs(x, n, -1, e, err)) < 0)
		return rc;
	if (x->p->times && utimensat(n->dir_fd, n->base, m->ts, AT_SYMLINK_NOFOLLOW) < 0)
		return node_fail(&x->tree, n, errno, "set times", err);
	if (fstatat(n->dir_fd, n->base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return node_fail(&x->tree, n, errno, "stat", err);
	ino_set_add(&x->tree.seen, &st);
	return 0;
}

/* ---- entries by kind ---- */

static int
limit_bytes(const struct xt *x, struct kci_err *err)
{
	uint64_t max = x->p->max_bytes;

	if (max >= (1ULL << 20) && max % (1ULL << 20) == 0)
		return kci_err_set(err, KCI_NOSPACE,
				   "%s: files add up to more than %" PRIu64 " MiB", x->p->archive,
				   max >> 20);
	return kci_err_set(err, KCI_NOSPACE, "%s: files add up to more than %" PRIu64 " bytes",
			   x->p->archive, max);
}

static int
write_data(struct xt *x, const struct node *n, int fd, la_int64_t size, struct kci_err *err)
{
	const void *buf;
	size_t len;
	la_int64_t off, end = 0;
	ssize_t k;
	int r;

	/* untrusted: offset and length from the archive; off + len <= size, checked here */
	while ((r = archive_read_data_block(x->tar, &buf, &len, &off)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return entry_read_fail(x, n, err);
		if (off < 0 || off > size || (uint64_t)len > (uint64_t)(size - off))
			return node_refuse(&x->tree, n, "data beyond the file's size", err);
		for (size_t done = 0; done < len; done += (size_t)k) {
			k = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
			if (k < 0 && errno == EINTR)
				k = 0;
			else if (k < 0)
				return node_fail(&x->tree, n, errno, "write", err);
		}
		if (off + (la_int64_t)len > end)
			end = off + (la_int64_t)len;
	}
	/* A sparse file may end in a hole. */
	if (end < size && ftruncate(fd, size) < 0)
		return node_fail(&x->tree, n, errno, "truncate", err);
	return 0;
}

static int
put_file(struct xt *x, const struct node *n, struct archive_entry *e, const struct meta *m,
	 struct kci_err *err)
{
	la_int64_t size = archive_entry_size(e);
	char why[64];
	struct stat st;
	int fd, rc;

	if (size < 0)
		return node_refuse(&x->tree, n, "negative size", err);
	if (!x->p->sparse && archive_entry_sparse_count(e) > 0)
		return node_refuse(&x->tree, n, "sparse files are not extracted", err);
	if ((uint64_t)size > x->p->max_file) {
		snprintf(why, sizeof(why), "larger than %" PRIu64 " bytes", x->p->max_file);
		return node_refuse(&x->tree, n, why, err);
	}
	/* Counted before a byte is written, so a refused file never exists. */
	if ((uint64_t)size > x->p->max_bytes - x->stats->bytes)
		return limit_bytes(x, err);
	if ((rc = node_clear_slot(&x->tree, n, S_IFREG, err)) < 0 ||
	    (rc = tree_count_name(&x->tree, err)) < 0)
		return rc;
	/* O_EXCL: the name is fresh, so no symlink can stand in for it. */
	fd = openat(n->dir_fd, n->base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    create_mode(x->p, S_IFREG, m->perm));
	if (fd < 0)
		return node_fail(&x->tree, n, errno, "create", err);
	x->stats->bytes += (uint64_t)size;
	if ((rc = write_data(x, n, fd, size, err)) == 0 &&
	    (rc = set_meta_fd(x, n, fd, e, m, err)) == 0) {
		if ((x->p->times && futimens(fd, m->ts) < 0) || fstat(fd, &st) < 0)
			rc = node_fail(&x->tree, n, errno, "set times", err);
		else
			ino_set_add(&x->tree.seen, &st);
	}
	close(fd);
	return rc;
}

/* fd is the directory (consumed); its times wait for the end of the archive. */
static int
finish_dir(struct xt *x, const struct node *n, int fd, struct archive_entry *e,
	   const struct meta *m, struct kci_err *err)
{
	struct stat st;
	int rc;

	if ((rc = set_meta_fd(x, n, fd, e, m, err)) == 0 && fstat(fd, &st) < 0)
		rc = node_fail(&x->tree, n, errno, "stat", err);
	close(fd);
	if (rc < 0)
		return rc;
	ino_set_add(&x->tree.seen, &st);
	if (!x->p->times)
		return 0;
	if (x->n_dirs == x->cap_dirs) {
		x->cap_dirs = x->cap_dirs ? 2 * x->cap_dirs : 256;
		x->dirs = kci_xrealloc(x->dirs, x->cap_dirs * sizeof(*x->dirs));
	}
	x->dirs[x->n_dirs++] = (struct dir_time){
		kci_xstrdup(n->path), st.st_dev, st.st_ino, { m->ts[0], m->ts[1] }
	};
	return 0;
}

static int
put_dir(struct xt *x, const struct node *n, struct archive_entry *e, const struct meta *m,
	struct kci_err *err)
{
	int rc, fd;

	if ((rc = node_clear_slot(&x->tree, n, S_IFDIR, err)) < 0)
		return rc;
	if (rc == 0 && (rc = tree_count_name(&x->tree, err)) < 0)
		return rc;
	if (rc == 0 && mkdirat(n->dir_fd, n->base, create_mode(x->p, S_IFDIR, m->perm)) < 0)
		return node_fail(&x->tree, n, errno, "mkdir", err);
	fd = openat(n->dir_fd, n->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return node_fail(&x->tree, n, errno, "open directory", err);
	return finish_dir(x, n, fd, e, m, err);
}

static size_t
depth_of(const char *path)
{
	size_t depth = *path ? 1 : 0;

	for (; *path; path++)
		depth += *path == '/';
	return depth;
}

/*
 * Why a symlink in directory `parent` (canonical) may not point at target,
 * or NULL. Only leading ".." may climb, and not above the root; every later
 * component descends, through real directories or links that obey the same
 * rule, so the link resolves inside whatever else the archive creates.
 * Lexically checking "a/../b" would be unsound once "a" is itself a symlink.
 */
static const char *
bad_target(const char *parent, const char *target)
{
	const char *s = target;
	size_t len, up = 0;
	bool named = false;

	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return "has control characters";
	if (target[0] == '/')
		return "points outside the archive";
	for (s = target; *s;) {
		len = strcspn(s, "/");
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			if (named)
				return "has '..' after a name, which could point outside the "
				       "archive";
			if (++up > depth_of(parent))
				return "points outside the archive";
		} else if (len > 0 && !(len == 1 && s[0] == '.')) {
			named = true;
		}
		s += len + (s[len] == '/');
	}
	return NULL;
}

static int
put_symlink(struct xt *x, const struct node *n, struct archive_entry *e, const struct meta *m,
	    struct kci_err *err)
{
	const char *target = archive_entry_symlink(e), *bad;
	char shown[EXTRACT_SHOWN_MAX], why[EXTRACT_SHOWN_MAX + 96];
	int rc;

	if (!target || !*target)
		return node_refuse(&x->tree, n, "symlink without a target", err);
	if (strlen(target) > x->p->max_path) {
		snprintf(why, sizeof(why), "symlink target longer than %zu bytes", x->p->max_path);
		return node_refuse(&x->tree, n, why, err);
	}
	if (x->p->symlinks_inside && (bad = bad_target(n->parent, target))) {
		extract_show(target, shown, sizeof(shown));
		snprintf(why, sizeof(why), "symlink to '%s' %s", shown, bad);
		return node_refuse(&x->tree, n, why, err);
	}
	if ((rc = node_clear_slot(&x->tree, n, S_IFLNK, err)) < 0 ||
	    (rc = tree_count_name(&x->tree, err)) < 0)
		return rc;
	/* Stored verbatim: never followed while extracting, and the check above holds for it. */
	if (symlinkat(target, n->dir_fd, n->base) < 0)
		return node_fail(&x->tree, n, errno, "symlink", err);
	return set_meta_at(x, n, e, m, false, err);
}

static int
put_special(struct xt *x, const struct node *n, struct archive_entry *e, const struct meta *m,
	    struct kci_err *err)
{
	mode_t type = archive_entry_filetype(e);
	dev_t rdev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
	int rc;

	if ((rc = node_clear_slot(&x->tree, n, type, err)) < 0 ||
	    (rc = tree_count_name(&x->tree, err)) < 0)
		return rc;
	if (mknodat(n->dir_fd, n->base, type | (create_mode(x->p, type, m->perm) & 0777),
		    type == AE_IFIFO ? 0 : rdev) < 0)
		return node_fail(&x->tree, n, errno, "mknod", err);
	return set_meta_at(x, n, e, m, true, err);
}

/*
 * The target is resolved beneath the root like any name, must exist and must
 * not be a directory (with p->hardlinks_extracted: must be a regular file
 * this archive created); linkat without AT_SYMLINK_FOLLOW links a symlink
 * itself, never what it points to. Links carry no metadata of their own.
 */
static int
put_hardlink(struct xt *x, const struct node *n, const char *target, struct kci_err *err)
{
	char why[EXTRACT_SHOWN_MAX + 64];
	struct stat st, cur;
	struct node t;
	int rc;

	if ((rc = node_split(&x->tree, target, n, &t, err)) != 0) {
		if (rc > 0)
			rc = node_refuse(&x->tree, n, "hardlink to the root", err);
		goto out;
	}
	if ((rc = node_open_parent(&x->tree, &t, false, err)) < 0)
		goto out;
	if (rc == 0 || fstatat(t.dir_fd, t.base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		snprintf(why, sizeof(why), "hardlink to '%s': not found", t.shown);
		rc = node_refuse(&x->tree, n, why, err);
		goto out;
	}
	if (x->p->hardlinks_extracted &&
	    (!S_ISREG(st.st_mode) || !ino_set_has(&x->tree.seen, &st))) {
		snprintf(why, sizeof(why), "hardlink to '%s', not a file extracted before it",
			 t.shown);
		rc = node_refuse(&x->tree, n, why, err);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(why, sizeof(why), "hardlink to directory '%s'", t.shown);
		rc = node_refuse(&x->tree, n, why, err);
		goto out;
	}
	rc = 0;
	if (fstatat(n->dir_fd, n->base, &cur, AT_SYMLINK_NOFOLLOW) < 0 || !same_inode(&st, &cur)) {
		if ((rc = node_clear_slot(&x->tree, n, S_IFREG, err)) < 0 ||
		    (rc = tree_count_name(&x->tree, err)) < 0)
			goto out;
		if (linkat(t.dir_fd, t.base, n->dir_fd, n->base, 0) < 0) {
			rc = node_fail(&x->tree, n, errno, "link", err);
			goto out;
		}
	}
	ino_set_add(&x->tree.seen, &st);
out:
	node_clear(&t);
	return rc;
}

/* What the policy does with an entry of this kind; *kind names the kind for a refusal. */
static enum kci_extract_action
action_of(const struct kci_extract_policy *p, const char *hardlink, mode_t type, const char **kind)
{
	if (hardlink) {
		*kind = "hardlinks";
		return p->hardlinks;
	}
	switch (type) {
	case AE_IFREG:
	case AE_IFDIR:
		return KCI_EXTRACT_CREATE;
	case AE_IFLNK:
		*kind = "symlinks";
		return p->symlinks;
	case AE_IFCHR:
	case AE_IFBLK:
		*kind = "device files";
		return p->devices;
	case AE_IFIFO:
		*kind = "fifos";
		return p->fifos;
	case AE_IFSOCK:
		*kind = "sockets";
		return p->others;
	default:
		/* Nothing to create one as: passed over at most. */
		*kind = "entries of unknown type";
		return p->others == KCI_EXTRACT_CREATE ? KCI_EXTRACT_SKIP : p->others;
	}
}

int
entry_apply(struct xt *x, struct node *n, struct archive_entry *e, struct kci_err *err)
{
	/* A pax hardlink may carry data and claim to be a file: the link decides, data unread. */
	const char *hardlink = archive_entry_hardlink(e), *kind = NULL;
	mode_t type = archive_entry_filetype(e);
	char why[64];
	struct meta m;
	int rc;

	switch (action_of(x->p, hardlink, type, &kind)) {
	case KCI_EXTRACT_SKIP:
		x->stats->skipped++;
		return 0;
	case KCI_EXTRACT_REFUSE:
		snprintf(why, sizeof(why), "%s are not extracted", kind);
		return node_refuse(&x->tree, n, why, err);
	case KCI_EXTRACT_CREATE:
		break;
	}
	if ((rc = node_open_parent(&x->tree, n, true, err)) < 0)
		return rc;
	if (hardlink)
		return put_hardlink(x, n, hardlink, err);
	if ((rc = meta_of(x, n, e, &m, err)) < 0)
		return rc;
	switch (type) {
	case AE_IFREG:
		return put_file(x, n, e, &m, err);
	case AE_IFDIR:
		return put_dir(x, n, e, &m, err);
	case AE_IFLNK:
		return put_symlink(x, n, e, &m, err);
	default:
		return put_special(x, n, e, &m, err);
	}
}

/* "./" or "/": a directory, whose metadata the archive may set where modes are exact. */
int
entry_apply_root(struct xt *x, struct node *n, struct archive_entry *e, struct kci_err *err)
{
	struct meta m;
	int rc, fd;

	if (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e))
		return node_refuse(&x->tree, n, "names the root but is not a directory", err);
	if (x->p->modes != KCI_EXTRACT_MODES_EXACT)
		return 0;
	if ((rc = meta_of(x, n, e, &m, err)) < 0)
		return rc;
	if ((fd = openat(x->tree.root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return node_fail(&x->tree, n, errno, "open root", err);
	return finish_dir(x, n, fd, e, &m, err);
}
