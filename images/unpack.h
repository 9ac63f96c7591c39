/*
 * Private to images/: applying OCI layers onto a directory tree. unpack.c reads
 * and applies one layer, unpack_tree.c holds the primitives that keep every
 * operation beneath the root, unpack_child.c the confined child process.
 */
#ifndef KCI_IMAGES_UNPACK_H
#define KCI_IMAGES_UNPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"

/* chmod that can refuse to follow symlinks (Linux 6.6); 452 on x86-64 and arm64 alike. */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/*
 * Caps on what one layer may contain. A layer beyond any of them is rejected
 * with KCI_INVALID ("layer exceeds ..."), so a hostile image cannot fill the
 * disk, the inode table or memory without bound.
 */
struct unpack_limits {
	uint64_t max_bytes;   /* uncompressed tar stream; also caps a file's apparent size */
	uint64_t max_entries; /* tar headers */
	size_t max_path;      /* entry names, link and symlink targets */
	size_t max_xattr;     /* one xattr value */
};
#define UNPACK_LIMITS_INIT                                                                         \
	{                                                                                          \
		32ULL << 30, 2000000, 4096, 64 * 1024                                              \
	}

/* What a layer held, for logs and tests. */
struct unpack_stats {
	uint64_t bytes;		 /* uncompressed tar stream */
	uint64_t entries;	 /* tar headers, whiteouts included */
	uint64_t whiteouts;	 /* .wh.NAME and opaque markers applied */
	uint64_t skipped;	 /* entries kci does not materialise (sockets, aufs metadata) */
	uint64_t skipped_xattrs; /* filtered by policy or unsupported by the file system */
};

/*
 * Applies one layer blob (tar, tar+gzip or tar+zstd, detected) onto the tree
 * open at root_fd, with OCI whiteout semantics. Every path is resolved beneath
 * root_fd (openat2 RESOLVE_IN_ROOT) and never follows a symlink in its final
 * component, so nothing outside the tree changes. If diff_id is not NULL the
 * uncompressed stream must hash to it (KCI_DIGEST); the tree is modified while
 * streaming, so on any error the caller must discard it. KCI_INVALID for a
 * malformed or hostile layer. Memory grows with the layer's entries (an inode
 * set and the directories whose mtimes are set at the end).
 */
int unpack_layer(int root_fd, int blob_fd, const char *diff_id, const struct unpack_limits *lim,
		 struct unpack_stats *stats, struct kci_err *err);

/*
 * Confines the calling process for unpacking into root_fd, irreversibly:
 * closes every fd but 0-2, *root_fd and keep[]; where privileges allow, a
 * private mount namespace with the root bind-mounted nodev,nosuid,noexec and a
 * chroot into it; drops all capabilities but those unpacking needs; sets
 * PR_SET_NO_NEW_PRIVS and loads the seccomp allowlist (anything else kills the
 * process with SIGSYS). *root_fd may be replaced by an fd for the same
 * directory. Call it only in a child made for this purpose.
 */
int unpack_confine(const char *rootfs_dir, int *root_fd, const int *keep, size_t n_keep,
		   struct kci_err *err);

/* ---- beneath the root (unpack_tree.c) ---- */

#define UNPACK_SHOWN_MAX 128

/* Inodes the current layer created or merged: its whiteouts and opaque markers spare them. */
struct ino_set {
	struct ino_key {
		uint64_t dev, ino;
	} * slot;
	size_t cap, len; /* cap is a power of two; ino 0 marks a free slot */
};
bool ino_set_has(const struct ino_set *s, const struct stat *st);
void ino_set_add(struct ino_set *s, const struct stat *st);

/* The tree a layer is applied to. */
struct tree {
	int root_fd;
	size_t max_path;
	struct ino_set seen;
};

/* One name from the archive, split: parent is resolved beneath the root, base operated on. */
struct node {
	const char *name;
	const char *parent;
	const char *base; /* never "", "." or ".." */
	int dir_fd;	  /* the parent (O_PATH) once opened, else -1 */
	char shown[UNPACK_SHOWN_MAX];
};

/* Copies an untrusted name for a message: bounded, with non-printable bytes escaped. */
void unpack_show(const char *s, char *out, size_t size);

/*
 * Fills n from name; `what` names it in messages ("entry", "hardlink target").
 * Returns 1 when the name is the root itself ("./", "/"), 0 otherwise, or
 * KCI_INVALID (empty, too long, final component "." or ".."). *buf (the
 * split copy) is the caller's to free, set or not.
 */
int node_split(const struct tree *t, const char *name, const char *what, struct node *n, char **buf,
	       struct kci_err *err);

/*
 * Opens n's parent beneath the root into n->dir_fd, creating missing
 * directories if create. Returns 1, or 0 when it is missing and !create.
 */
int node_open_parent(struct tree *t, struct node *n, bool create, struct kci_err *err);

/*
 * Removes what is at n->base unless keep_dir and it is a directory (then
 * returns 1), so a new entry can take the name.
 */
int node_clear_slot(const struct node *n, bool keep_dir, struct kci_err *err);

/* A failed system call on behalf of n: KCI_INVALID when the layer asked for the impossible. */
int node_fail(const struct node *n, int errnum, const char *what, struct kci_err *err);

/* openat2 beneath root_fd with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS. Returns fd or -errno. */
int tree_resolve(int root_fd, const char *path, int flags);

/* Empties the directory open at fd (consumed), sparing inodes in keep (may be NULL). */
int tree_clear_dir(int fd, const struct ino_set *keep, const struct node *n, struct kci_err *err);

/* Removes base in dir_fd (a tree if st says directory), never following symlinks. */
int tree_remove(int dir_fd, const char *base, const struct stat *st, const struct node *n,
		struct kci_err *err);

static inline bool
name_is_dot(const char *s)
{
	return strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

static inline bool
same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

#endif
