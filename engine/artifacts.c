/*
 * Artifacts: a job's tar stream from the (hostile) guest, extracted beneath a host directory.
 *
 * Everything is created in-process, each name through a parent directory that
 * was reached one component at a time with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), and then by a single-component *at() call that cannot
 * follow a symlink (O_EXCL | O_NOFOLLOW, mkdirat, symlinkat, linkat without
 * AT_SYMLINK_FOLLOW). So no entry can write outside dest, and a symlink the
 * archive made is never followed while extracting ("d" -> "/etc", then "d/x",
 * fails on "d").
 *
 * Not a confined child (as images/unpack_child.c is), deliberately: only
 * libarchive's tar reader sees the bytes (no decompression filters, so never
 * an external program), the whole stream is capped, and what it creates is
 * the short list above with no owners, devices, setuid bits or xattrs. The
 * residual risk is a memory-safety bug in that reader running in kci itself;
 * images/' confinement is private to that module and forking the
 * multi-threaded engine has costs of its own, so that is left for a shared
 * helper if it ever becomes public.
 *
 * Policy, beyond what engine/internal.h states:
 * - Names: "./" prefixes, "." and empty components are dropped; absolute
 *   names, ".." anywhere and control characters are refused. An entry naming
 *   dest itself ("./") is skipped if it is a directory.
 * - Symlink targets must be relative, may only start with "..", never have
 *   ".." after a name, and may not climb above dest. Lexically checking
 *   "a/../b" would be unsound once "a" is itself a symlink, so it is refused.
 *   Even a link that stays inside is never written through: "d" -> "real",
 *   then "d/x", fails with "parent d is a symlink" (tar lists "real/x").
 * - A name seen twice (tar -c -- d d/f lists d/f twice): a directory over a
 *   directory takes the new mode; a file, hardlink or symlink replaces a file
 *   or a symlink of its own kind (removed first, never followed); any other
 *   change of kind is refused. Directories are never removed, so a parent
 *   resolved once cannot later become a symlink.
 * - Limits: every name created (implicit parents and replacements included)
 *   counts as a file; each regular file's declared size counts as bytes
 *   before a byte is written, and no data block may reach past it. The raw
 *   stream is capped too, so skipped data cannot keep kci reading forever.
 * - Modes: directories (mode & 0755) | 0700; files mode & 0777. Owners are
 *   never set. Files and symlinks keep their mtime, best effort; directories
 *   do not (adding entries changes it).
 */
#include "engine/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"

#define ART_CHUNK      (64 * 1024)
#define ART_PATH_MAX   4096	   /* entry names and link targets */
#define ART_SHOWN_MAX  96	   /* a name as messages render it */
#define ART_HEADER_MAX (64 * 1024) /* raw stream allowance per entry: headers, pax records */

/* Inodes of the regular files this archive created: the only hardlink targets. */
struct ino_set {
	struct ino_key {
		uint64_t dev, ino;
	} * slot;
	size_t cap, len; /* cap is a power of two; ino 0 marks a free slot */
};

struct art {
	int dest_fd;
	const struct art_limits *lim;
	struct art_stats *st;
	struct archive *a;
	int in_fd;
	uint64_t in_bytes, in_max; /* raw stream read so far, and its cap */
	char *chunk;
	int stream_rc; /* an error the read callback already put in err */
	struct kci_err *err;
	struct ino_set files;
};

/* One archive entry's name: canonical path, split, and how messages show it. */
struct name {
	char *path; /* components joined by "/", no ".", "..", or empty ones; "" is dest */
	char *parent, *base;
	int dir_fd; /* the parent, once opened */
	char shown[ART_SHOWN_MAX];
};

/* ---- names ---- */

/* Copies an untrusted name for a message: bounded, non-printable bytes escaped. */
static void
show(const char *s, char *out, size_t size)
{
	size_t o = 0;

	while (s[0] == '.' && s[1] == '/')
		s += 2;
	if (!*s && size > 1)
		s = ".";
	for (; *s && o + 8 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
	}
	if (*s)
		o += (size_t)snprintf(out + o, size - o, "...");
	out[o] = '\0';
}

/* Why s cannot be a name or link target at all, or NULL. */
static const char *
bad_chars(const char *s)
{
	size_t len = strlen(s);

	if (len == 0)
		return "empty name";
	if (len > ART_PATH_MAX)
		return "name longer than 4096 bytes";
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return "control character in the name";
	return NULL;
}

/*
 * Canonical form of an entry name into *out (malloc'd): relative, with "."
 * and empty components dropped. Returns NULL, or why the name is refused.
 */
static const char *
clean_path(const char *in, char **out)
{
	const char *why, *s = in;
	char *p;
	size_t len;

	*out = NULL;
	if ((why = bad_chars(in)))
		return why;
	if (in[0] == '/')
		return "absolute path";
	p = *out = kci_xcalloc(strlen(in) + 1, 1);
	while (*s) {
		len = strcspn(s, "/");
		if (len == 2 && s[0] == '.' && s[1] == '.')
			return "'..' in the path";
		if (len > 0 && !(len == 1 && s[0] == '.')) {
			if (p != *out)
				*p++ = '/';
			memcpy(p, s, len);
			p += len;
		}
		s += len + (s[len] == '/');
	}
	*p = '\0';
	return NULL;
}

/* Splits n->path into parent ("" for dest) and base; the path is not "". */
static void
split(struct name *n)
{
	char *slash = strrchr(n->path, '/');

	n->parent = kci_xstrdup(n->path);
	if (slash) {
		n->parent[slash - n->path] = '\0';
		n->base = slash + 1;
	} else {
		n->parent[0] = '\0';
		n->base = n->path;
	}
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
 * Why a symlink in directory `parent` may not point at target, or NULL. Only
 * leading ".." may climb, and not above dest; every later component descends,
 * through real directories or links that obey the same rule, so the link
 * resolves inside dest whatever else the archive creates.
 */
static const char *
bad_target(const char *parent, const char *target)
{
	const char *s = target;
	size_t len, up = 0;
	bool named = false;

	if (bad_chars(target))
		return "is empty, too long or has control characters";
	if (target[0] == '/')
		return "leaves the workspace";
	while (*s) {
		len = strcspn(s, "/");
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			if (named)
				return "has '..' after a name, which could leave the workspace";
			if (++up > depth_of(parent))
				return "leaves the workspace";
		} else if (len > 0 && !(len == 1 && s[0] == '.')) {
			named = true;
		}
		s += len + (s[len] == '/');
	}
	return NULL;
}

/* ---- the inode set ---- */

static size_t
ino_slot(const struct ino_set *s, uint64_t dev, uint64_t ino)
{
	return (size_t)(((ino ^ (dev << 40)) * 0x9e3779b97f4a7c15ULL) >> 20) & (s->cap - 1);
}

static bool
ino_has(const struct ino_set *s, const struct stat *st)
{
	if (!s->cap)
		return false;
	for (size_t i = ino_slot(s, st->st_dev, st->st_ino);; i = (i + 1) & (s->cap - 1)) {
		if (s->slot[i].ino == 0)
			return false;
		if (s->slot[i].ino == st->st_ino && s->slot[i].dev == st->st_dev)
			return true;
	}
}

static void
ino_add(struct ino_set *s, const struct stat *st)
{
	size_t i;

	if (st->st_ino == 0 || ino_has(s, st))
		return;
	if (2 * (s->len + 1) > s->cap) {
		struct ino_set grown = { kci_xcalloc(s->cap ? 2 * s->cap : 256, sizeof(*s->slot)),
					 s->cap ? 2 * s->cap : 256, 0 };
		for (i = 0; i < s->cap; i++) {
			struct stat old = { .st_dev = s->slot[i].dev, .st_ino = s->slot[i].ino };
			if (old.st_ino)
				ino_add(&grown, &old);
		}
		free(s->slot);
		*s = grown;
	}
	for (i = ino_slot(s, st->st_dev, st->st_ino); s->slot[i].ino; i = (i + 1) & (s->cap - 1))
		;
	s->slot[i] = (struct ino_key){ st->st_dev, st->st_ino };
	s->len++;
}

/* ---- errors ---- */

/*
 * A failed system call for an entry. Errors that mean the archive asked for
 * the impossible are its fault, KCI_INVALID; the rest (ENOSPC, EIO) are ours.
 */
static int
sys_fail(const struct name *n, int errnum, const char *what, struct kci_err *err)
{
	kci_err_sys(err, errnum, "artifact %s: %s", n->shown, what);
	err->code = kci_err_code_for_input_errno(errnum);
	return err->code;
}

static int
refuse(const struct name *n, const char *why, struct kci_err *err)
{
	return kci_err_set(err, KCI_INVALID, "artifact %s: %s", n->shown, why);
}

static int
corrupt(struct art *x, struct kci_err *err)
{
	const char *s = archive_error_string(x->a);

	if (x->stream_rc)
		return x->stream_rc;
	return kci_err_set(err, KCI_INVALID, "artifacts: corrupt archive from the guest: %s",
			   s ? s : "unknown error");
}

/* Counts one more name created, or refuses it. */
static int
count_file(struct art *x, struct kci_err *err)
{
	if (x->st->files >= x->lim->max_files)
		return kci_err_set(err, KCI_INVALID, "artifacts exceed %zu files",
				   x->lim->max_files);
	x->st->files++;
	return 0;
}

static int
exceed_bytes(const struct art *x, struct kci_err *err)
{
	uint64_t max = x->lim->max_bytes;

	if (max >= (1ULL << 20) && max % (1ULL << 20) == 0)
		return kci_err_set(err, KCI_INVALID, "artifacts exceed %" PRIu64 " MiB", max >> 20);
	return kci_err_set(err, KCI_INVALID, "artifacts exceed %" PRIu64 " bytes", max);
}

/* ---- the stream ---- */

static la_ssize_t
stream_read(struct archive *a, void *opaque, const void **out)
{
	struct art *x = opaque;
	ssize_t n;

	(void)a;
	while ((n = read(x->in_fd, x->chunk, ART_CHUNK)) < 0 && errno == EINTR)
		;
	if (n < 0) {
		x->stream_rc = kci_err_sys(x->err, errno, "artifacts: read from the guest");
		return -1;
	}
	/* untrusted: the whole stream <= in_max, checked here */
	x->in_bytes += (uint64_t)n;
	if (x->in_bytes > x->in_max) {
		x->stream_rc = kci_err_set(
			x->err, KCI_INVALID,
			"artifacts: archive from the guest exceeds %" PRIu64 " bytes", x->in_max);
		return -1;
	}
	*out = x->chunk;
	return n;
}

/* ---- beneath dest ---- */

/* Opens one component below dir_fd, never through a symlink. Returns an fd or -errno. */
static int
open_beneath(int dir_fd, const char *comp)
{
	return kci_openat2(dir_fd, comp, O_RDONLY | O_DIRECTORY,
			   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

/*
 * Opens parent (a canonical path, "" for dest) into *out, one component at a
 * time, making missing directories if create. Returns 1, 0 when it is missing
 * and !create, or an error naming the component that is no directory.
 */
static int
open_dir(struct art *x, const struct name *n, const char *parent, bool create, int *out,
	 struct kci_err *err)
{
	char *path = kci_xstrdup(parent), *comp = path, shown[ART_SHOWN_MAX];
	int dir = open_beneath(x->dest_fd, "."), fd = -1, rc = 1;
	bool last = !*path;

	while (dir >= 0 && !last) {
		size_t len = strcspn(comp, "/");
		last = comp[len] == '\0';
		comp[len] = '\0';
		fd = open_beneath(dir, comp);
		if (fd == -ENOENT && create) {
			if (count_file(x, err) < 0) {
				rc = KCI_INVALID;
				break;
			}
			if (mkdirat(dir, comp, 0700) < 0) {
				rc = sys_fail(n, errno, "create parent directory", err);
				break;
			}
			if ((fd = open_beneath(dir, comp)) >= 0 && fchmod(fd, 0755) < 0) {
				rc = sys_fail(n, errno, "chmod parent directory", err);
				break;
			}
		}
		if (fd < 0) {
			comp[len] = '\0';
			show(path, shown, sizeof(shown));
			/* Looking up (a hardlink's target): anything but a directory is "missing".
			 */
			if (!create && (fd == -ENOENT || fd == -ELOOP || fd == -ENOTDIR))
				rc = 0;
			else if (fd == -ELOOP)
				rc = kci_err_set(err, KCI_INVALID,
						 "artifact %s: parent %s is a symlink", n->shown,
						 shown);
			else if (fd == -ENOTDIR)
				rc = kci_err_set(err, KCI_INVALID,
						 "artifact %s: parent %s is not a directory",
						 n->shown, shown);
			else
				rc = sys_fail(n, -fd, "open parent directory", err);
			break;
		}
		close(dir);
		dir = fd;
		fd = -1;
		if (!last)
			comp[len] = '/';
		comp += len + 1;
	}
	if (dir < 0 && rc > 0)
		rc = sys_fail(n, -dir, "open destination", err);
	if (fd >= 0)
		close(fd);
	if (rc > 0)
		*out = dir;
	else if (dir >= 0)
		close(dir);
	free(path);
	return rc;
}

static const char *
kind_of(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISLNK(mode))
		return "a symlink";
	if (S_ISREG(mode))
		return "a file";
	return "something else";
}

/*
 * Makes room for a new entry of kind `type` at n: a missing name is fine, and
 * a file or symlink of that same kind is removed (never followed). Anything
 * else refuses the entry.
 */
static int
clear_slot(const struct name *n, mode_t type, struct kci_err *err)
{
	char why[64];
	struct stat st;

	if (fstatat(n->dir_fd, n->base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : sys_fail(n, errno, "stat", err);
	if ((st.st_mode & S_IFMT) != type || S_ISDIR(st.st_mode)) {
		snprintf(why, sizeof(why), "already extracted as %s", kind_of(st.st_mode));
		return refuse(n, why, err);
	}
	if (unlinkat(n->dir_fd, n->base, 0) < 0)
		return sys_fail(n, errno, "replace", err);
	return 0;
}

static void
times_of(struct archive_entry *e, struct timespec ts[2])
{
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (ts[1].tv_nsec < 0 || ts[1].tv_nsec > 999999999)
		ts[1].tv_nsec = 0;
	ts[0] = ts[1];
}

/* ---- entries by kind ---- */

static int
write_data(struct art *x, const struct name *n, int fd, la_int64_t size, struct kci_err *err)
{
	const void *buf;
	size_t len;
	la_int64_t off, end = 0;
	ssize_t k;
	int r;

	/* untrusted: offset and length from the archive; off + len <= size, checked here */
	while ((r = archive_read_data_block(x->a, &buf, &len, &off)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return corrupt(x, err);
		if (off < 0 || off > size || (uint64_t)len > (uint64_t)(size - off))
			return refuse(n, "data beyond the file's size", err);
		for (size_t done = 0; done < len; done += (size_t)k) {
			k = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
			if (k < 0 && errno == EINTR)
				k = 0;
			else if (k < 0)
				return sys_fail(n, errno, "write", err);
		}
		if (off + (la_int64_t)len > end)
			end = off + (la_int64_t)len;
	}
	/* A sparse file may end in a hole. */
	if (end < size && ftruncate(fd, size) < 0)
		return sys_fail(n, errno, "truncate", err);
	return 0;
}

static int
put_file(struct art *x, const struct name *n, struct archive_entry *e, struct kci_err *err)
{
	la_int64_t size = archive_entry_size(e);
	struct timespec ts[2];
	struct stat st;
	int fd, rc;

	if (size < 0)
		return refuse(n, "negative size", err);
	if ((uint64_t)size > x->lim->max_bytes - x->st->bytes)
		return exceed_bytes(x, err);
	if ((rc = clear_slot(n, S_IFREG, err)) < 0 || (rc = count_file(x, err)) < 0)
		return rc;
	/* O_EXCL: the name is fresh, so no symlink can stand in for it. */
	fd = openat(n->dir_fd, n->base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return sys_fail(n, errno, "create", err);
	x->st->bytes += (uint64_t)size;
	times_of(e, ts);
	if ((rc = write_data(x, n, fd, size, err)) == 0) {
		if (fchmod(fd, archive_entry_perm(e) & 0777) < 0 || fstat(fd, &st) < 0)
			rc = sys_fail(n, errno, "chmod", err);
		else
			ino_add(&x->files, &st);
		(void)futimens(fd, ts);
	}
	close(fd);
	return rc;
}

static int
put_dir(struct art *x, const struct name *n, struct archive_entry *e, struct kci_err *err)
{
	struct stat st;
	int fd, rc;

	if (fstatat(n->dir_fd, n->base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISDIR(st.st_mode))
			return clear_slot(n, S_IFDIR, err);
	} else if (errno != ENOENT) {
		return sys_fail(n, errno, "stat", err);
	} else {
		if ((rc = count_file(x, err)) < 0)
			return rc;
		if (mkdirat(n->dir_fd, n->base, 0700) < 0)
			return sys_fail(n, errno, "mkdir", err);
	}
	if ((fd = open_beneath(n->dir_fd, n->base)) < 0)
		return sys_fail(n, -fd, "open directory", err);
	rc = fchmod(fd, (archive_entry_perm(e) & 0755) | 0700) < 0
		     ? sys_fail(n, errno, "chmod", err)
		     : 0;
	close(fd);
	return rc;
}

static int
put_symlink(struct art *x, const struct name *n, struct archive_entry *e, struct kci_err *err)
{
	const char *target = archive_entry_symlink(e), *why;
	char shown[ART_SHOWN_MAX], msg[ART_SHOWN_MAX + 96];
	struct timespec ts[2];
	int rc;

	if (!target)
		return refuse(n, "symlink without a target", err);
	if ((why = bad_target(n->parent, target))) {
		show(target, shown, sizeof(shown));
		snprintf(msg, sizeof(msg), "symlink to %s %s", shown, why);
		return refuse(n, msg, err);
	}
	if ((rc = clear_slot(n, S_IFLNK, err)) < 0 || (rc = count_file(x, err)) < 0)
		return rc;
	/* Stored verbatim: the check above holds for the target as written. */
	if (symlinkat(target, n->dir_fd, n->base) < 0)
		return sys_fail(n, errno, "symlink", err);
	times_of(e, ts);
	(void)utimensat(n->dir_fd, n->base, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/* Only a regular file this archive extracted, linked by name, never through a symlink. */
static int
put_hardlink(struct art *x, const struct name *n, const char *target, struct kci_err *err)
{
	struct name t = { .dir_fd = -1 };
	char msg[ART_SHOWN_MAX + 64];
	struct stat st, cur;
	const char *why;
	int rc;

	show(target, t.shown, sizeof(t.shown));
	if ((why = clean_path(target, &t.path)) || !*t.path) {
		snprintf(msg, sizeof(msg), "hardlink to %s: %s", t.shown,
			 why ? why : "names the workspace itself");
		rc = refuse(n, msg, err);
		goto out;
	}
	split(&t);
	if ((rc = open_dir(x, n, t.parent, false, &t.dir_fd, err)) < 0)
		goto out;
	if (rc == 0 || fstatat(t.dir_fd, t.base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode) || !ino_has(&x->files, &st)) {
		snprintf(msg, sizeof(msg), "hardlink to %s, not a file extracted before it",
			 t.shown);
		rc = refuse(n, msg, err);
		goto out;
	}
	rc = 0;
	if (fstatat(n->dir_fd, n->base, &cur, AT_SYMLINK_NOFOLLOW) == 0 &&
	    cur.st_ino == st.st_ino && cur.st_dev == st.st_dev)
		goto out;
	if ((rc = clear_slot(n, S_IFREG, err)) < 0 || (rc = count_file(x, err)) < 0)
		goto out;
	if (linkat(t.dir_fd, t.base, n->dir_fd, n->base, 0) < 0)
		rc = sys_fail(n, errno, "link", err);
out:
	if (t.dir_fd >= 0)
		close(t.dir_fd);
	free(t.parent);
	free(t.path);
	return rc;
}

static int
put_entry(struct art *x, struct name *n, struct archive_entry *e, struct kci_err *err)
{
	const char *hardlink = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	int rc;

	/* "./": the job listed the workspace itself; dest already stands for it. */
	if (!*n->path)
		return type == AE_IFDIR && !hardlink ? 0 : refuse(n, "names the workspace", err);
	split(n);
	if ((rc = open_dir(x, n, n->parent, true, &n->dir_fd, err)) < 0)
		return rc;
	if (hardlink)
		return put_hardlink(x, n, hardlink, err);
	switch (type) {
	case AE_IFREG:
		return put_file(x, n, e, err);
	case AE_IFDIR:
		return put_dir(x, n, e, err);
	case AE_IFLNK:
		return put_symlink(x, n, e, err);
	case AE_IFCHR:
	case AE_IFBLK:
		return refuse(n, "device files are not copied", err);
	case AE_IFIFO:
		return refuse(n, "fifos are not copied", err);
	case AE_IFSOCK:
		return refuse(n, "sockets are not copied", err);
	default:
		return refuse(n, "unknown file type", err);
	}
}

static int
extract_one(struct art *x, struct archive_entry *e, struct kci_err *err)
{
	const char *raw = archive_entry_pathname(e), *why;
	struct name n = { .dir_fd = -1 };
	int rc;

	if (!raw || !*raw)
		return kci_err_set(err, KCI_INVALID, "artifacts: an entry has %s name",
				   raw ? "an empty" : "an unreadable");
	show(raw, n.shown, sizeof(n.shown));
	if ((why = clean_path(raw, &n.path))) {
		rc = refuse(&n, why, err);
	} else {
		show(n.path, n.shown, sizeof(n.shown)); /* as it lands: "./d/" is d */
		rc = put_entry(x, &n, e, err);
	}
	if (n.dir_fd >= 0)
		close(n.dir_fd);
	free(n.parent);
	free(n.path);
	return rc;
}

int
art_extract(int fd, const char *dest, const struct art_limits *lim, struct art_stats *st,
	    struct kci_err *err)
{
	static const struct art_limits defaults = { ART_MAX_BYTES, ART_MAX_FILES };
	struct art_stats scratch;
	struct art x = { .dest_fd = -1, .in_fd = fd, .err = err };
	struct archive_entry *e;
	int rc = 0, r;

	x.lim = lim ? lim : &defaults;
	x.st = st ? st : &scratch;
	memset(x.st, 0, sizeof(*x.st));
	x.in_max = x.lim->max_bytes + ((uint64_t)x.lim->max_files + 2) * ART_HEADER_MAX;
	if (x.in_max < x.lim->max_bytes)
		x.in_max = UINT64_MAX;
	if ((x.dest_fd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return kci_err_sys(err, errno, "artifacts: open %s", dest);
	x.chunk = kci_xmalloc(ART_CHUNK);
	if (!(x.a = archive_read_new()))
		abort();
	/* tar in all its dialects (ustar, GNU, pax), and the empty stream of a job with none. */
	if (archive_read_support_format_tar(x.a) != ARCHIVE_OK ||
	    archive_read_support_format_empty(x.a) != ARCHIVE_OK) {
		rc = kci_err_set(err, KCI_ERROR, "libarchive: %s", archive_error_string(x.a));
		goto out;
	}
	if (archive_read_open(x.a, &x, NULL, stream_read, NULL) != ARCHIVE_OK) {
		rc = corrupt(&x, err);
		goto out;
	}
	while ((r = archive_read_next_header(x.a, &e)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = corrupt(&x, err);
			goto out;
		}
		if ((rc = extract_one(&x, e, err)) < 0)
			goto out;
	}
out:
	archive_read_free(x.a);
	free(x.files.slot);
	free(x.chunk);
	close(x.dest_fd);
	return rc;
}
