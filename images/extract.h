/*
 * Private to images/: the one extractor of untrusted tar archives, whose
 * policies images.h declares. extract.c reads the stream and dispatches each
 * entry, extract_entry.c creates it as the policy says, extract_tree.c holds
 * the primitives that keep every operation beneath the root, and
 * extract_child.c the confined child.
 */
#ifndef KCI_IMAGES_EXTRACT_H
#define KCI_IMAGES_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"
#include "images/images.h"

/* chmod that can refuse to follow symlinks (Linux 6.6); 452 on x86-64 and arm64 alike. */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/*
 * Applies one archive read from in_fd onto the tree open at root_fd, in this
 * process, whatever p->confined says; digest (may be NULL) as for
 * kci_images_extract. stats (may be NULL) is reset first. Memory grows with
 * the archive's entries (an inode set, and directories whose times are set
 * at the end).
 */
int extract_stream(int root_fd, int in_fd, const struct kci_extract_policy *p, const char *digest,
		   struct kci_extract_stats *stats, struct kci_err *err);

/*
 * Applies n archives in order onto root_fd in one child confined by
 * extract_confine, and reports back. digests may be NULL; stats (may be NULL)
 * gets the sums. An error names the archive ("layer 2 of 3: ...") when n > 1.
 */
int extract_confined(int root_fd, const int *in_fds, const char *const *digests, size_t n,
		     const struct kci_extract_policy *p, struct kci_extract_stats *stats,
		     struct kci_err *err);

/*
 * Confines the calling process for extracting into *root_fd as p says,
 * irreversibly: closes every fd but 0-2, *root_fd and keep[]; where
 * privileges allow, a private mount namespace with the root bind-mounted
 * nodev,nosuid,noexec and a chroot into it; keeps only the capabilities p
 * needs (none unless it sets owners, exact modes or devices); sets
 * PR_SET_NO_NEW_PRIVS and loads a seccomp allowlist without the calls p
 * does not need (anything else kills the process with SIGSYS). *root_fd may
 * be replaced by an fd for the same directory. Call it only in a child made
 * for this purpose.
 */
int extract_confine(int *root_fd, const int *keep, size_t n_keep,
		    const struct kci_extract_policy *p, struct kci_err *err);

/* ---- beneath the root (extract_tree.c) ---- */

#define EXTRACT_SHOWN_MAX 96

/* Inodes this archive created or merged: hardlink targets, and what whiteouts spare. */
struct ino_set {
	struct ino_key {
		uint64_t dev, ino;
	} * slot;
	size_t cap, len; /* cap is a power of two; ino 0 marks a free slot */
};
bool ino_set_has(const struct ino_set *s, const struct stat *st);
void ino_set_add(struct ino_set *s, const struct stat *st);

/* The tree an archive is extracted into. */
struct tree {
	int root_fd;
	const struct kci_extract_policy *p;
	struct kci_extract_stats *stats; /* names are counted as they are created */
	struct ino_set seen;
};

/* One name from the archive, canonical and split. */
struct node {
	char *path;	    /* no "." or empty components, no leading "/"; "" is the root */
	const char *parent; /* path up to the last "/", "" at the top */
	const char *base;   /* the last component, never "." or ".." */
	int dir_fd;	    /* the parent (O_PATH) once opened, else -1 */
	char shown[EXTRACT_SHOWN_MAX];
	char *buf; /* parent and base live here */
};

/* Copies an untrusted name for a message: bounded, "./" prefixes dropped, non-printables escaped.
 */
void extract_show(const char *s, char *out, size_t size);

/*
 * Fills n from an archive name. Returns 1 when the name is the root itself
 * ("./", "/"), 0 otherwise, or KCI_INVALID for a name the policy refuses:
 * empty, too long, a final "." or "..", and unless p->in_root, absolute,
 * with ".." or control characters. For a hardlink target, `of` is the
 * entry, named in the message. node_clear releases n, set or not.
 */
int node_split(const struct tree *t, const char *name, const struct node *of, struct node *n,
	       struct kci_err *err);
void node_clear(struct node *n);

/*
 * Opens n's parent beneath the root into n->dir_fd as the policy resolves
 * names, creating missing directories (counted as names) if create. Returns
 * 1, or 0 when it is missing or no directory and !create.
 */
int node_open_parent(struct tree *t, struct node *n, bool create, struct kci_err *err);

/*
 * Makes room at n for a new entry of file type `type` (S_IFREG...). Returns 1
 * when a directory is there and type is one (kept, to merge into), 0 when the
 * name is free, or an error: with p->replace whatever was there is removed,
 * else only a file or symlink of its own kind, and other clashes are refused.
 */
int node_clear_slot(struct tree *t, const struct node *n, mode_t type, struct kci_err *err);

/* Counts one more name created, or refuses it beyond p->max_names. */
int tree_count_name(struct tree *t, struct kci_err *err);

/* KCI_INVALID "<entry> 'NAME': why". */
int node_refuse(const struct tree *t, const struct node *n, const char *why, struct kci_err *err);

/* A failed system call on behalf of n: KCI_INVALID when the archive asked for the impossible. */
int node_fail(const struct tree *t, const struct node *n, int errnum, const char *what,
	      struct kci_err *err);

/* openat2 beneath the root as the policy resolves names ("" is the root). Returns fd or -errno. */
int tree_resolve(const struct tree *t, const char *path, int flags);

/* Empties the directory open at fd (consumed), sparing inodes in keep (may be NULL). */
int tree_clear_dir(const struct tree *t, int fd, const struct ino_set *keep, const struct node *n,
		   struct kci_err *err);

/* Removes base in dir_fd (a tree if st says directory), never following symlinks. */
int tree_remove(const struct tree *t, int dir_fd, const char *base, const struct stat *st,
		const struct node *n, struct kci_err *err);

/* ---- one archive being extracted (extract.c, extract_entry.c) ---- */

struct archive;
struct archive_entry;
struct kci_sha256;

/* A directory whose times are set once the archive is done, when nothing adds to it any more. */
struct dir_time {
	char *name;
	uint64_t dev, ino;
	struct timespec ts[2];
};

struct xt {
	struct tree tree; /* root fd, policy, inodes this archive wrote */
	const struct kci_extract_policy *p;
	struct kci_extract_stats *stats;
	int in_fd;
	struct archive *raw; /* in_fd -> uncompressed stream, when p->compressed */
	bool raw_eof;	     /* an empty input, which p->empty allows */
	struct archive *tar; /* the stream (via stream_read) -> entries */
	struct kci_sha256 *hash;
	struct kci_err *err;
	int stream_rc; /* an error stream_read already put in err */
	char *chunk;
	struct dir_time *dirs;
	size_t n_dirs, cap_dirs;
};

/*
 * A failed read of the archive, for entry n (may be NULL): the stream's own
 * error if it set one, else KCI_INVALID "corrupt archive: <libarchive's why>".
 */
int entry_read_fail(struct xt *x, const struct node *n, struct kci_err *err);

/* Applies an entry that is neither the root nor a whiteout, as the policy says. */
int entry_apply(struct xt *x, struct node *n, struct archive_entry *e, struct kci_err *err);

/* Applies an entry naming the root itself ("./"), which must be a directory. */
int entry_apply_root(struct xt *x, struct node *n, struct archive_entry *e, struct kci_err *err);

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
