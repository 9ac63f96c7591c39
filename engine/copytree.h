/*
 * engine/ internals: copying files and trees between directory fds without
 * ever following a symlink (the workspace is staged from a tree its owner, or
 * a concurrent process, may rearrange under us).
 */
#ifndef KCI_ENGINE_COPYTREE_H
#define KCI_ENGINE_COPYTREE_H

#include <sys/types.h>

#include "common/err.h"

#define WALK_MAX 256 /* directory nesting the tree walkers follow before giving up */

struct tree_opts {
	const char *const *skip_top; /* NULL-terminated names skipped at the top level */
	int skip_locks;		     /* skip "*.lock" (see gitdir_copy) */
	int replace;		     /* overwrite existing files (overlaying a worktree's gitdir) */
	dev_t dest_dev;		     /* never descend into the destination itself */
	ino_t dest_ino;
	size_t *count; /* files and symlinks copied, or NULL */
};

/* The file went away while we looked (a live working tree): skip it, not fail. */
int ct_vanished(int e);
/* Copies one regular file or symlink `name` from sfd to dfd (replacing when asked). */
int ct_copy_entry(int sfd, int dfd, const char *name, const char *shown, int replace,
		  struct kci_err *err);
/* Opens dfd/name as a directory, creating it (0755) when missing; never a symlink. */
int ct_open_dest_dir(int dfd, const char *name, const char *shown, struct kci_err *err);
/* Copies the directory sfd (consumed) into dfd, recursively. */
int ct_copy_tree(int sfd, int dfd, const char *shown, int depth, const struct tree_opts *o,
		 struct kci_err *err);
/* Copies the directory src into dfd/name. */
int ct_copy_dir_at(const char *src, int dfd, const char *name, const struct tree_opts *o,
		   struct kci_err *err);

#endif
