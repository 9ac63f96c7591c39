/* Beneath the root: entry names, their resolution and removals that never leave the tree. */
#include "images/unpack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"

/* Copies an untrusted name for a message: bounded, with non-printable bytes escaped. */
void
unpack_show(const char *s, char *out, size_t size)
{
	size_t o = 0;

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

/*
 * A failed system call on behalf of an entry. Errors that mean the layer asked
 * for something impossible (a parent that is a file, a dangling target) are
 * the layer's fault, KCI_INVALID; the rest (ENOSPC, EIO) are ours.
 */
int
node_fail(const struct node *n, int errnum, const char *what, struct kci_err *err)
{
	kci_err_sys(err, errnum, "layer entry '%s': %s", n->shown, what);
	err->code = kci_err_code_for_input_errno(errnum);
	return err->code;
}

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

/* Whether every component is "" or ".": the name denotes the root itself ("./", "/"). */
static bool
name_is_root(const char *name)
{
	for (const char *s = name; *s;) {
		size_t len = strcspn(s, "/");
		if (len > 1 || (len == 1 && *s != '.'))
			return false;
		s += len + (s[len] == '/');
	}
	return true;
}

/*
 * Fills n from name (copied into *buf, which the caller frees). Returns 1 when
 * the name is the root, 0 otherwise. Absolute names and ".." components need
 * no check here: they are resolved beneath the root like any other.
 */
int
node_split(const struct tree *t, const char *name, const char *what, struct node *n, char **buf,
	   struct kci_err *err)
{
	char *slash;
	size_t len;

	memset(n, 0, sizeof(*n));
	n->dir_fd = -1;
	n->name = name;
	/* untrusted: the name is a C string from libarchive; len <= lim->max_path, checked here */
	if (!name || !*name)
		return kci_err_set(err, KCI_INVALID, "layer %s has an empty name", what);
	unpack_show(name, n->shown, sizeof(n->shown));
	if ((len = strlen(name)) > t->max_path)
		return kci_err_set(err, KCI_INVALID, "layer exceeds %zu-byte paths: %s '%s'",
				   t->max_path, what, n->shown);
	if (name_is_root(name))
		return 1;
	*buf = kci_xstrdup(name);
	while (len > 0 && (*buf)[len - 1] == '/')
		(*buf)[--len] = '\0';
	if ((slash = strrchr(*buf, '/'))) {
		*slash = '\0';
		n->parent = **buf ? *buf : "/";
		n->base = slash + 1;
	} else {
		n->parent = ".";
		n->base = *buf;
	}
	if (name_is_dot(n->base))
		return kci_err_set(err, KCI_INVALID, "layer %s '%s': final component '%s' refused",
				   what, n->shown, n->base);
	return 0;
}

/*
 * Opens path beneath root_fd: absolute symlinks and ".." stop at the root, and
 * /proc magic links are refused. Returns an fd or -errno.
 */
int
tree_resolve(int root_fd, const char *path, int flags)
{
	return kci_openat2(root_fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

/* Resolves prefix, whose last component comp lies in dir, creating that directory if missing. */
static int
make_one(struct tree *t, const struct node *n, int dir, const char *prefix, const char *comp,
	 int *out, struct kci_err *err)
{
	char shown[UNPACK_SHOWN_MAX];
	struct stat st;
	int fd = tree_resolve(t->root_fd, prefix, O_PATH | O_DIRECTORY);

	if (fd == -ENOENT) {
		if (mkdirat(dir, comp, 0755) < 0 && errno != EEXIST)
			return node_fail(n, errno, "create parent directory", err);
		fd = tree_resolve(t->root_fd, prefix, O_PATH | O_DIRECTORY);
		if (fd >= 0 && fstat(fd, &st) == 0)
			ino_set_add(&t->seen, &st);
	}
	/* The name exists yet does not resolve: a symlink leading nowhere in the root. */
	if (fd == -ENOENT) {
		unpack_show(prefix, shown, sizeof(shown));
		return kci_err_set(err, KCI_INVALID,
				   "layer entry '%s': parent '%s' is a dangling symlink", n->shown,
				   shown);
	}
	if (fd < 0)
		return node_fail(n, -fd, "resolve parent directory", err);
	*out = fd;
	return 0;
}

/* Creates the missing directories of n->parent, one component at a time, each resolved anew. */
static int
node_make_parents(struct tree *t, struct node *n, struct kci_err *err)
{
	char *path = kci_xstrdup(n->parent), *slash, *comp;
	int dir = tree_resolve(t->root_fd, ".", O_PATH | O_DIRECTORY), fd, rc = 0;

	if (dir < 0) {
		free(path);
		return node_fail(n, -dir, "open root", err);
	}
	for (char *s = path;; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;
		*s = '\0';
		slash = strrchr(path, '/');
		comp = slash ? slash + 1 : path;
		if (*comp) {
			if ((rc = make_one(t, n, dir, path, comp, &fd, err)) < 0)
				break;
			close(dir);
			dir = fd;
		}
		*s = c;
		if (!c)
			break;
	}
	free(path);
	if (rc < 0) {
		close(dir);
		return rc;
	}
	n->dir_fd = dir;
	return 1;
}

/* Opens n's parent into n->dir_fd. Returns 1, or 0 if it is missing and !create. */
int
node_open_parent(struct tree *t, struct node *n, bool create, struct kci_err *err)
{
	int fd = tree_resolve(t->root_fd, n->parent, O_PATH | O_DIRECTORY);

	if (fd >= 0) {
		n->dir_fd = fd;
		return 1;
	}
	if (fd == -ENOENT && !create)
		return 0;
	if (fd == -ENOENT)
		return node_make_parents(t, n, err);
	return node_fail(n, -fd, "resolve parent directory", err);
}

/*
 * Nesting a removal descends at most, one fd each. Layers can build deeper
 * trees only by writing through symlinked parents; refusing to delete those is
 * better than running out of fds or stack on them.
 */
#define TREE_DEPTH_MAX 512

static int remove_at(int dir_fd, const char *base, const struct stat *st, const struct node *n,
		     unsigned depth, struct kci_err *err);

/*
 * Empties the directory open at fd (consumed), sparing entries whose inode is
 * in keep and, inside spared directories, recursing: an opaque directory hides
 * everything from lower layers however deep.
 */
static int
clear_dir(int fd, const struct ino_set *keep, const struct node *n, unsigned depth,
	  struct kci_err *err)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	struct stat st;
	int rc = 0, sub;

	if (!d) {
		rc = node_fail(n, errno, "open directory", err);
		close(fd);
		return rc;
	}
	if (depth > TREE_DEPTH_MAX)
		rc = kci_err_set(err, KCI_INVALID, "layer entry '%s': tree deeper than %d levels",
				 n->shown, TREE_DEPTH_MAX);
	while (rc == 0 && (errno = 0, de = readdir(d))) {
		if (name_is_dot(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = node_fail(n, errno, "stat in directory", err);
		} else if (!ino_set_has(keep, &st)) {
			rc = remove_at(dirfd(d), de->d_name, &st, n, depth + 1, err);
		} else if (S_ISDIR(st.st_mode)) {
			sub = openat(dirfd(d), de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			rc = sub < 0 ? node_fail(n, errno, "open directory", err)
				     : clear_dir(sub, keep, n, depth + 1, err);
		}
	}
	if (rc == 0 && errno)
		rc = node_fail(n, errno, "read directory", err);
	closedir(d);
	return rc;
}

static int
remove_at(int dir_fd, const char *base, const struct stat *st, const struct node *n, unsigned depth,
	  struct kci_err *err)
{
	int fd, rc;

	if (!S_ISDIR(st->st_mode))
		return unlinkat(dir_fd, base, 0) < 0 ? node_fail(n, errno, "remove", err) : 0;
	if ((fd = openat(dir_fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return node_fail(n, errno, "open directory", err);
	if ((rc = clear_dir(fd, NULL, n, depth, err)) < 0)
		return rc;
	return unlinkat(dir_fd, base, AT_REMOVEDIR) < 0 ? node_fail(n, errno, "remove", err) : 0;
}

int
tree_clear_dir(int fd, const struct ino_set *keep, const struct node *n, struct kci_err *err)
{
	return clear_dir(fd, keep, n, 0, err);
}

int
tree_remove(int dir_fd, const char *base, const struct stat *st, const struct node *n,
	    struct kci_err *err)
{
	return remove_at(dir_fd, base, st, n, 0, err);
}

/*
 * Makes room at n for a new entry: whatever is there goes (a file replaces a
 * directory and its contents, as in the layer's view), except a directory when
 * the new entry is one too. Returns 1 when a directory was kept.
 */
int
node_clear_slot(const struct node *n, bool keep_dir, struct kci_err *err)
{
	struct stat st;

	if (fstatat(n->dir_fd, n->base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : node_fail(n, errno, "stat", err);
	if (keep_dir && S_ISDIR(st.st_mode))
		return 1;
	return remove_at(n->dir_fd, n->base, &st, n, 0, err);
}
