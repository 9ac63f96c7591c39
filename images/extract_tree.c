/* Beneath the root: entry names, their resolution and removals that never leave the tree. */
#include "images/extract.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"

void
extract_show(const char *s, char *out, size_t size)
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

int
node_refuse(const struct tree *t, const struct node *n, const char *why, struct kci_err *err)
{
	return kci_err_set(err, KCI_INVALID, "%s '%s': %s", t->p->entry, n->shown, why);
}

/*
 * Errors that mean the archive asked for something impossible (a parent that
 * is a file, a dangling target) are its fault, KCI_INVALID; the rest (ENOSPC,
 * EIO) are ours.
 */
int
node_fail(const struct tree *t, const struct node *n, int errnum, const char *what,
	  struct kci_err *err)
{
	kci_err_sys(err, errnum, "%s '%s': %s", t->p->entry, n->shown, what);
	err->code = kci_err_code_for_input_errno(errnum);
	return err->code;
}

int
tree_count_name(struct tree *t, struct kci_err *err)
{
	if (t->stats->names >= t->p->max_names)
		return kci_err_set(err, KCI_INVALID, "%s: more than %" PRIu64 " files",
				   t->p->archive, t->p->max_names);
	t->stats->names++;
	return 0;
}

/* ---- the inode set ---- */

static size_t
ino_set_slot(const struct ino_set *s, uint64_t dev, uint64_t ino)
{
	return (size_t)(((ino ^ (dev << 40)) * 0x9e3779b97f4a7c15ULL) >> 20) & (s->cap - 1);
}

bool
ino_set_has(const struct ino_set *s, const struct stat *st)
{
	if (!s || !s->cap)
		return false;
	for (size_t i = ino_set_slot(s, st->st_dev, st->st_ino);; i = (i + 1) & (s->cap - 1)) {
		if (s->slot[i].ino == 0)
			return false;
		if (s->slot[i].ino == st->st_ino && s->slot[i].dev == st->st_dev)
			return true;
	}
}

void
ino_set_add(struct ino_set *s, const struct stat *st)
{
	if (st->st_ino == 0 || ino_set_has(s, st))
		return;
	if (2 * (s->len + 1) > s->cap) {
		struct ino_set grown = { kci_xcalloc(s->cap ? 2 * s->cap : 1024, sizeof(*s->slot)),
					 s->cap ? 2 * s->cap : 1024, 0 };
		for (size_t i = 0; i < s->cap; i++) {
			struct stat old = { .st_dev = s->slot[i].dev, .st_ino = s->slot[i].ino };
			if (old.st_ino)
				ino_set_add(&grown, &old);
		}
		free(s->slot);
		*s = grown;
	}
	size_t i = ino_set_slot(s, st->st_dev, st->st_ino);
	while (s->slot[i].ino)
		i = (i + 1) & (s->cap - 1);
	s->slot[i] = (struct ino_key){ st->st_dev, st->st_ino };
	s->len++;
}

/* ---- names ---- */

static int
split_refuse(const struct tree *t, const struct node *n, const struct node *of, const char *why,
	     struct kci_err *err)
{
	char msg[EXTRACT_SHOWN_MAX + 128];

	if (!of)
		return node_refuse(t, n, why, err);
	snprintf(msg, sizeof(msg), "hardlink to '%s': %s", n->shown, why);
	return node_refuse(t, of, msg, err);
}

/* Why the raw name cannot be one at all under the policy, or NULL. */
static const char *
bad_name(const struct kci_extract_policy *p, const char *name, char *why, size_t size)
{
	if (strlen(name) > p->max_path) {
		snprintf(why, size, "name longer than %zu bytes", p->max_path);
		return why;
	}
	if (p->in_root)
		return NULL;
	if (name[0] == '/')
		return "absolute path";
	for (const char *s = name; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return "control character in the name";
	return NULL;
}

/*
 * Canonical form of name into out (room for strlen(name) + 1): "." and empty
 * components dropped, so no leading "/" either. ".." stays where the policy
 * resolves names in the root (it stops there) and is refused otherwise.
 * Returns NULL or why the name is refused.
 */
static const char *
canonical(const struct kci_extract_policy *p, const char *name, char *out)
{
	const char *s = name, *last = "";
	char *o = out;
	size_t len, last_len = 0;

	while (*s) {
		len = strcspn(s, "/");
		if (len == 2 && s[0] == '.' && s[1] == '.' && !p->in_root)
			return "'..' in the path";
		if (len > 0) {
			last = s;
			last_len = len;
		}
		if (len > 0 && !(len == 1 && s[0] == '.')) {
			if (o != out)
				*o++ = '/';
			memcpy(o, s, len);
			o += len;
		}
		s += len + (s[len] == '/');
	}
	*o = '\0';
	/* "a/." or "a/..": which directory that means is no archive's to decide. */
	if (p->in_root && *out &&
	    ((last_len == 1 && last[0] == '.') ||
	     (last_len == 2 && last[0] == '.' && last[1] == '.')))
		return "final component '.' or '..' refused";
	return NULL;
}

int
node_split(const struct tree *t, const char *name, const struct node *of, struct node *n,
	   struct kci_err *err)
{
	char buf[64];
	const char *why;
	char *slash;
	size_t len;

	memset(n, 0, sizeof(*n));
	n->dir_fd = -1;
	/* untrusted: the name is a C string from libarchive; len <= p->max_path, checked here */
	if (!name || !*name) {
		if (of)
			return split_refuse(t, n, of, "an empty name", err);
		return kci_err_set(err, KCI_INVALID, "%s: an entry has %s name", t->p->archive,
				   name ? "an empty" : "an unreadable");
	}
	extract_show(name, n->shown, sizeof(n->shown));
	if ((why = bad_name(t->p, name, buf, sizeof(buf))))
		return split_refuse(t, n, of, why, err);
	len = strlen(name);
	n->path = kci_xmalloc(len + 1);
	if ((why = canonical(t->p, name, n->path)))
		return split_refuse(t, n, of, why, err);
	/* As it lands ("./d/" is d), where names cannot climb; in a root, as the archive has it. */
	if (!t->p->in_root)
		extract_show(n->path, n->shown, sizeof(n->shown));
	if (!*n->path)
		return 1;
	n->buf = kci_xstrdup(n->path);
	if ((slash = strrchr(n->buf, '/'))) {
		*slash = '\0';
		n->parent = n->buf;
		n->base = slash + 1;
	} else {
		n->parent = "";
		n->base = n->buf;
	}
	if (name_is_dot(n->base))
		return split_refuse(t, n, of, "final component '.' or '..' refused", err);
	return 0;
}

void
node_clear(struct node *n)
{
	if (n->dir_fd >= 0)
		close(n->dir_fd);
	n->dir_fd = -1;
	free(n->path);
	free(n->buf);
	n->path = n->buf = NULL;
}

/* ---- resolution ---- */

int
tree_resolve(const struct tree *t, const char *path, int flags)
{
	/*
	 * In the root, absolute symlinks and ".." stop at the root; beneath it,
	 * no symlink is followed at all. /proc magic links never.
	 */
	uint64_t how = t->p->in_root
			       ? RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
			       : RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

	return kci_openat2(t->root_fd, *path ? path : ".", flags, how);
}

/* Directories the archive implies by naming what is in them. */
static mode_t
parent_mode(const struct kci_extract_policy *p)
{
	return p->modes == KCI_EXTRACT_MODES_PRIVATE ? 0700 : 0755;
}

/*
 * Why prefix (a parent of n) does not resolve to a directory, as a message.
 * The walk below calls it with the first prefix that fails.
 */
static int
parent_fail(const struct tree *t, const struct node *n, const char *prefix, int errnum,
	    struct kci_err *err)
{
	char shown[EXTRACT_SHOWN_MAX], msg[EXTRACT_SHOWN_MAX + 64];

	extract_show(prefix, shown, sizeof(shown));
	if (errnum == ENOENT) /* it exists (mkdir said so) yet does not resolve */
		snprintf(msg, sizeof(msg), "parent '%s' is a dangling symlink", shown);
	else if (errnum == ELOOP && !t->p->in_root)
		snprintf(msg, sizeof(msg), "parent '%s' is a symlink", shown);
	else if (errnum == ENOTDIR)
		snprintf(msg, sizeof(msg), "parent '%s' is not a directory", shown);
	else
		return node_fail(t, n, errnum, "resolve parent directory", err);
	return node_refuse(t, n, msg, err);
}

/*
 * Walks n->parent one component at a time, each prefix resolved anew from
 * the root, creating what is missing. Returns 1 with n->dir_fd set, or an
 * error naming the first prefix that is no directory.
 */
static int
walk_parents(struct tree *t, struct node *n, struct kci_err *err)
{
	char *path = kci_xstrdup(n->parent), *slash, *comp;
	int dir = tree_resolve(t, "", O_PATH | O_DIRECTORY), fd = -1, rc = 0;
	struct stat st;

	if (dir < 0) {
		free(path);
		return node_fail(t, n, -dir, "open root", err);
	}
	for (char *s = path; rc == 0; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;
		*s = '\0';
		slash = strrchr(path, '/');
		comp = slash ? slash + 1 : path;
		fd = tree_resolve(t, path, O_PATH | O_DIRECTORY);
		if (fd == -ENOENT) {
			if (mkdirat(dir, comp, parent_mode(t->p)) == 0)
				rc = tree_count_name(t, err);
			else if (errno != EEXIST)
				rc = node_fail(t, n, errno, "create parent directory", err);
			if (rc == 0)
				fd = tree_resolve(t, path, O_PATH | O_DIRECTORY);
			if (fd >= 0 && fstat(fd, &st) == 0)
				ino_set_add(&t->seen, &st);
		}
		if (rc == 0 && fd < 0)
			rc = parent_fail(t, n, path, -fd, err);
		if (rc == 0) {
			close(dir);
			dir = fd;
			fd = -1;
		}
		*s = c;
		if (!c)
			break;
	}
	free(path);
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		close(dir);
		return rc;
	}
	n->dir_fd = dir;
	return 1;
}

int
node_open_parent(struct tree *t, struct node *n, bool create, struct kci_err *err)
{
	int fd = tree_resolve(t, n->parent, O_PATH | O_DIRECTORY);

	if (fd >= 0) {
		n->dir_fd = fd;
		return 1;
	}
	/* Looking up (a hardlink's target, a whiteout's): anything but a directory is "missing". */
	if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
		return create ? walk_parents(t, n, err) : 0;
	return node_fail(t, n, -fd, "resolve parent directory", err);
}

/* ---- removal ---- */

/*
 * Nesting a removal descends at most, one fd each. Layers can build deeper
 * trees only by writing through symlinked parents; refusing to delete those is
 * better than running out of fds or stack on them.
 */
#define TREE_DEPTH_MAX 512

static int remove_at(const struct tree *t, int dir_fd, const char *base, const struct stat *st,
		     const struct node *n, unsigned depth, struct kci_err *err);

/*
 * Empties the directory open at fd (consumed), sparing entries whose inode is
 * in keep and, inside spared directories, recursing: an opaque directory hides
 * everything from lower layers however deep.
 */
static int
clear_dir(const struct tree *t, int fd, const struct ino_set *keep, const struct node *n,
	  unsigned depth, struct kci_err *err)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	struct stat st;
	int rc = 0, sub;

	if (!d) {
		rc = node_fail(t, n, errno, "open directory", err);
		close(fd);
		return rc;
	}
	if (depth > TREE_DEPTH_MAX)
		rc = kci_err_set(err, KCI_INVALID, "%s '%s': tree deeper than %d levels",
				 t->p->entry, n->shown, TREE_DEPTH_MAX);
	while (rc == 0 && (errno = 0, de = readdir(d))) {
		if (name_is_dot(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = node_fail(t, n, errno, "stat in directory", err);
		} else if (!ino_set_has(keep, &st)) {
			rc = remove_at(t, dirfd(d), de->d_name, &st, n, depth + 1, err);
		} else if (S_ISDIR(st.st_mode)) {
			sub = openat(dirfd(d), de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			rc = sub < 0 ? node_fail(t, n, errno, "open directory", err)
				     : clear_dir(t, sub, keep, n, depth + 1, err);
		}
	}
	if (rc == 0 && errno)
		rc = node_fail(t, n, errno, "read directory", err);
	closedir(d);
	return rc;
}

static int
remove_at(const struct tree *t, int dir_fd, const char *base, const struct stat *st,
	  const struct node *n, unsigned depth, struct kci_err *err)
{
	int fd, rc;

	if (!S_ISDIR(st->st_mode))
		return unlinkat(dir_fd, base, 0) < 0 ? node_fail(t, n, errno, "remove", err) : 0;
	if ((fd = openat(dir_fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return node_fail(t, n, errno, "open directory", err);
	if ((rc = clear_dir(t, fd, NULL, n, depth, err)) < 0)
		return rc;
	return unlinkat(dir_fd, base, AT_REMOVEDIR) < 0 ? node_fail(t, n, errno, "remove", err) : 0;
}

int
tree_clear_dir(const struct tree *t, int fd, const struct ino_set *keep, const struct node *n,
	       struct kci_err *err)
{
	return clear_dir(t, fd, keep, n, 0, err);
}

int
tree_remove(const struct tree *t, int dir_fd, const char *base, const struct stat *st,
	    const struct node *n, struct kci_err *err)
{
	return remove_at(t, dir_fd, base, st, n, 0, err);
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
 * With p->replace, as in a layer's view: a file replaces a directory and its
 * contents, and the reverse. Otherwise directories are never removed, so a
 * parent resolved once cannot later become something else, and only a file
 * or symlink of the entry's own kind is (a tar listing a name twice).
 */
int
node_clear_slot(struct tree *t, const struct node *n, mode_t type, struct kci_err *err)
{
	char why[64];
	struct stat st;

	if (fstatat(n->dir_fd, n->base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : node_fail(t, n, errno, "stat", err);
	if (type == S_IFDIR && S_ISDIR(st.st_mode))
		return 1;
	if (t->p->replace)
		return remove_at(t, n->dir_fd, n->base, &st, n, 0, err);
	if ((st.st_mode & S_IFMT) != type || S_ISDIR(st.st_mode)) {
		snprintf(why, sizeof(why), "already extracted as %s", kind_of(st.st_mode));
		return node_refuse(t, n, why, err);
	}
	if (unlinkat(n->dir_fd, n->base, 0) < 0)
		return node_fail(t, n, errno, "replace", err);
	return 0;
}
