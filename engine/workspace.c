/* Stages what jobs see at /workspace: the working tree as it is now, or a clean checkout. */
#include "engine/engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "engine/copytree.h"
#include "engine/internal.h"

#define KCI_DIR	     ".kci" /* kci's output directory at the root: never staged */
#define GITLINK_MODE 0160000

static int
is_kci_dir(const char *rel)
{
	size_t n = strlen(KCI_DIR);

	return strncmp(rel, KCI_DIR, n) == 0 && (rel[n] == '\0' || rel[n] == '/');
}

/* 1 if rel is `prefix` or below it. */
static int
is_under(const char *rel, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(rel, prefix, n) == 0 && (rel[n] == '\0' || rel[n] == '/');
}

/*
 * Index paths come from a file anyone could have crafted: only plain relative
 * names pass, none of whose components is empty, ".", ".." or ".git".
 */
static int
path_is_safe(const char *rel)
{
	const char *p = rel;

	if (!*p || *p == '/' || rel[strlen(rel) - 1] == '/')
		return 0;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') ||
		    (n == 4 && strncasecmp(p, ".git", 4) == 0))
			return 0;
		if (p[n] == '\0')
			return 1;
		p += n + 1;
	}
}

/* ---- working-tree mode ---- */

struct pathset {
	char **v;
	size_t n, cap;
};

static void
pathset_add(struct pathset *s, const char *p)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->v = kci_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = kci_xstrdup(p);
}

static void
pathset_free(struct pathset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static int
cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The tracked paths, one per path whatever its conflict stages. A gitlink is
 * a submodule, its own repository: it goes to `links`, staged as the empty
 * directory a checkout of an uninitialised submodule gives.
 */
static int
list_tracked(git_repository *repo, struct pathset *s, struct pathset *links, struct kci_err *err)
{
	git_index *idx = NULL;
	const char *last = NULL;

	if (git_repository_index(&idx, repo) < 0)
		return gitdir_err(err, KCI_ERROR, "read the index");
	for (size_t i = 0, n = git_index_entrycount(idx); i < n; i++) {
		const git_index_entry *e = git_index_get_byindex(idx, i);

		if (last && strcmp(last, e->path) == 0)
			continue;
		pathset_add((e->mode & 0170000) == GITLINK_MODE ? links : s, e->path);
		last = e->path;
	}
	git_index_free(idx);
	return 0;
}

/* Untracked-but-not-ignored files, and whether anything differs from HEAD. */
static int
list_untracked(git_repository *repo, struct pathset *s, int *dirty, struct kci_err *err)
{
	git_status_options opts;
	git_status_list *sl = NULL;

	git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
	opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	/*
	 * Submodules are not staged, so their state is not ours to report; leaving
	 * them out also spares opening each one, and libgit2 1.5's pcre2 leak
	 * (libgit2#6382) on the config lookups submodule status makes.
	 */
	opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
		     GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	if (git_status_list_new(&sl, repo, &opts) < 0)
		return gitdir_err(err, KCI_ERROR, "git status");
	for (size_t i = 0, n = git_status_list_entrycount(sl); i < n; i++) {
		const git_status_entry *se = git_status_byindex(sl, i);
		const git_diff_delta *d =
			se->index_to_workdir ? se->index_to_workdir : se->head_to_index;
		const char *path = d ? d->new_file.path : NULL;

		if (!path || (se->status & GIT_STATUS_IGNORED) || is_kci_dir(path))
			continue;
		*dirty = 1;
		/*
		 * A nested repository shows as one "dir/" entry, never recursed into:
		 * like git add, we leave it out.
		 */
		if ((se->status & GIT_STATUS_WT_NEW) && path[strlen(path) - 1] != '/')
			pathset_add(s, path);
	}
	git_status_list_free(sl);
	return 0;
}

/*
 * Copying sorted paths one by one, the parent directory pair stays open while
 * consecutive paths share it. A source directory that is gone (or is now a
 * symlink) leaves src_dir at -1: its files are skipped.
 */
struct stager {
	int src_root, dst_root;
	char *dir; /* relative parent of the open pair; NULL when none is open */
	int src_dir, dst_dir;
};

static void
stager_close(struct stager *st)
{
	if (st->src_dir >= 0)
		close(st->src_dir);
	if (st->dst_dir >= 0)
		close(st->dst_dir);
	st->src_dir = st->dst_dir = -1;
	free(st->dir);
	st->dir = NULL;
}

static int
stager_enter(struct stager *st, const char *path, size_t len, struct kci_err *err)
{
	char *dir, *comp, *save = NULL;
	int src, dst;

	if (st->dir && strlen(st->dir) == len && strncmp(st->dir, path, len) == 0)
		return 0;
	stager_close(st);
	st->dir = dir = kci_xstrdup(path);
	dir[len] = '\0';
	src = fcntl(st->src_root, F_DUPFD_CLOEXEC, 0);
	dst = fcntl(st->dst_root, F_DUPFD_CLOEXEC, 0);
	if (src < 0 || dst < 0) {
		int rc = kci_err_sys(err, errno, "dup");

		if (src >= 0)
			close(src);
		if (dst >= 0)
			close(dst);
		return rc;
	}
	comp = kci_xstrdup(dir);
	for (char *c = strtok_r(comp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		int next = openat(src, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		close(src);
		src = next;
		if (src < 0) {
			close(dst);
			dst = -1;
			if (!ct_vanished(errno)) {
				int rc = kci_err_sys(err, errno, "open %s", dir);

				free(comp);
				return rc;
			}
			break;
		}
		next = ct_open_dest_dir(dst, c, dir, err);
		close(dst);
		dst = next;
		if (dst < 0) {
			close(src);
			free(comp);
			return dst;
		}
	}
	free(comp);
	st->src_dir = src;
	st->dst_dir = dst;
	return 0;
}

/* Copies the sorted paths s; with files == NULL, makes each an empty directory instead. */
static int
stage_paths(struct stager *st, const struct pathset *s, const char *skip, size_t *files,
	    struct kci_err *err)
{
	int rc = 0;

	for (size_t i = 0; i < s->n && rc >= 0; i++) {
		const char *p = s->v[i], *slash = strrchr(p, '/');
		size_t dlen = slash ? (size_t)(slash - p) : 0;

		if ((i > 0 && strcmp(p, s->v[i - 1]) == 0) || is_kci_dir(p) ||
		    (skip && is_under(p, skip)))
			continue;
		if (!path_is_safe(p)) {
			rc = kci_err_set(err, KCI_INVALID, "refusing the unsafe path '%s'", p);
			break;
		}
		if ((rc = stager_enter(st, p, dlen, err)) < 0)
			break;
		if (st->src_dir < 0)
			continue;
		if (!files) {
			if (mkdirat(st->dst_dir, slash ? slash + 1 : p, 0755) < 0 &&
			    errno != EEXIST)
				rc = kci_err_sys(err, errno, "mkdir %s", p);
			continue;
		}
		rc = ct_copy_entry(st->src_dir, st->dst_dir, slash ? slash + 1 : p, p, 0, err);
		if (rc == 0)
			(*files)++;
	}
	stager_close(st);
	return rc < 0 ? rc : 0;
}

static void
head_commit(git_repository *repo, char out[41])
{
	git_oid oid;

	/* An unborn branch has no commit: "" */
	out[0] = '\0';
	if (git_reference_name_to_id(&oid, repo, "HEAD") == 0)
		git_oid_tostr(out, 41, &oid);
}

static int
stage_worktree(git_repository *repo, int src, int dst, const struct stat *dest_st, const char *skip,
	       const char *dest, struct kci_workspace_info *info, struct kci_err *err)
{
	struct pathset paths = { 0 }, links = { 0 };
	struct stager st = { .src_root = src, .dst_root = dst, .src_dir = -1, .dst_dir = -1 };
	int rc;

	head_commit(repo, info->commit);
	if ((rc = list_tracked(repo, &paths, &links, err)) < 0 ||
	    (rc = list_untracked(repo, &paths, &info->dirty, err)) < 0)
		goto out;
	qsort(paths.v, paths.n, sizeof(*paths.v), cmp_path);
	if ((rc = stage_paths(&st, &paths, skip, &info->files, err)) < 0 ||
	    (rc = stage_paths(&st, &links, skip, NULL, err)) < 0)
		goto out;
	if (info->foreign_gitdir[0])
		goto out;
	if ((rc = gitdir_copy(repo, dst, dest_st, 1, err)) < 0)
		goto out;
	rc = gitdir_fix_config(dest, err);
out:
	pathset_free(&paths);
	pathset_free(&links);
	return rc;
}

/* ---- commit mode ---- */

static int
resolve_commit(git_repository *repo, const char *root, const char *rev, git_oid *oid,
	       struct kci_err *err)
{
	git_object *obj = NULL, *commit = NULL;
	int rc = git_revparse_single(&obj, repo, rev);

	if (rc == GIT_ENOTFOUND || rc == GIT_EINVALIDSPEC)
		return kci_err_set(err, KCI_NOTFOUND, "unknown revision '%s' in %s", rev, root);
	if (rc == GIT_EAMBIGUOUS)
		return kci_err_set(err, KCI_INVALID, "ambiguous revision '%s' in %s", rev, root);
	if (rc < 0)
		return gitdir_err(err, KCI_ERROR, "revision '%s' in %s", rev, root);
	rc = git_object_peel(&commit, obj, GIT_OBJECT_COMMIT);
	git_object_free(obj);
	if (rc < 0)
		return kci_err_set(err, KCI_INVALID, "revision '%s' in %s is not a commit", rev,
				   root);
	git_oid_cpy(oid, git_object_id(commit));
	git_object_free(commit);
	return 0;
}

/* git_tree_walk callback: counts blobs (files and symlinks) outside .kci/. */
static int
count_blob(const char *root, const git_tree_entry *e, void *payload)
{
	if (git_tree_entry_type(e) == GIT_OBJECT_BLOB &&
	    !(root[0] == '\0' && strcmp(git_tree_entry_name(e), KCI_DIR) == 0) &&
	    strncmp(root, KCI_DIR "/", strlen(KCI_DIR) + 1) != 0)
		(*(size_t *)payload)++;
	return 0;
}

/* Index entries of the checkout, submodules and .kci/ left out: what the tree holds. */
static int
count_checkout(git_repository *copy, size_t *files, struct kci_err *err)
{
	git_index *idx = NULL;

	if (git_repository_index(&idx, copy) < 0)
		return gitdir_err(err, KCI_ERROR, "read the checkout's index");
	for (size_t i = 0, n = git_index_entrycount(idx); i < n; i++) {
		const git_index_entry *e = git_index_get_byindex(idx, i);

		if ((e->mode & 0170000) != GITLINK_MODE && !is_kci_dir(e->path))
			(*files)++;
	}
	git_index_free(idx);
	return 0;
}

/*
 * The commit's tree checked out into dest straight from the repository, with
 * no .git (its git dir is not the working tree's own to hand over) and
 * without touching the repository's index.
 */
static int
stage_commit_tree(git_repository *repo, const git_oid *oid, const char *dest,
		  struct kci_workspace_info *info, struct kci_err *err)
{
	git_checkout_options co;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	char *kci_dir = NULL;
	int rc = 0;

	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy =
		GIT_CHECKOUT_FORCE | GIT_CHECKOUT_RECREATE_MISSING | GIT_CHECKOUT_DONT_UPDATE_INDEX;
	co.target_directory = dest;
	if (git_commit_lookup(&commit, repo, oid) < 0 || git_commit_tree(&tree, commit) < 0 ||
	    git_checkout_tree(repo, (git_object *)tree, &co) < 0) {
		rc = gitdir_err(err, KCI_ERROR, "check out %s", info->commit);
		goto out;
	}
	/* What the checkout wrote: every blob of the tree, submodules left out. */
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, count_blob, &info->files) < 0) {
		rc = gitdir_err(err, KCI_ERROR, "walk %s", info->commit);
		goto out;
	}
	kci_dir = kci_xasprintf("%s/%s", dest, KCI_DIR);
	rc = kci_rm_rf(kci_dir, err);
out:
	git_tree_free(tree);
	git_commit_free(commit);
	free(kci_dir);
	return rc;
}

/*
 * The copy of .git, its HEAD detached at the commit, checked out into dest:
 * the original's index and uncommitted changes never enter it.
 */
static int
stage_commit(git_repository *repo, const git_oid *oid, int dst, const struct stat *dest_st,
	     const char *dest, struct kci_workspace_info *info, struct kci_err *err)
{
	git_checkout_options co;
	git_repository *copy = NULL;
	char *kci_dir = NULL;
	int rc;

	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	git_oid_tostr(info->commit, sizeof(info->commit), oid);
	if (info->foreign_gitdir[0])
		return stage_commit_tree(repo, oid, dest, info, err);
	if ((rc = gitdir_copy(repo, dst, dest_st, 0, err)) < 0 ||
	    (rc = gitdir_fix_config(dest, err)) < 0)
		goto out;
	if (git_repository_open_ext(&copy, dest, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		rc = gitdir_err(err, KCI_ERROR, "open the copy at %s", dest);
		goto out;
	}
	co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_RECREATE_MISSING;
	if (git_repository_set_head_detached(copy, oid) < 0 ||
	    git_repository_state_cleanup(copy) < 0 || git_checkout_head(copy, &co) < 0) {
		rc = gitdir_err(err, KCI_ERROR, "check out %s", info->commit);
		goto out;
	}
	if ((rc = count_checkout(copy, &info->files, err)) < 0)
		goto out;
	kci_dir = kci_xasprintf("%s/%s", dest, KCI_DIR);
	rc = kci_rm_rf(kci_dir, err);
out:
	git_repository_free(copy);
	free(kci_dir);
	return rc;
}

/* ---- the public function ---- */

/* dest relative to top when it lies inside it (so staging never copies dest into itself). */
static int
dest_inside(const char *top, const char *dest, char **skip, struct kci_err *err)
{
	char *real = realpath(dest, NULL);
	size_t n = strlen(top);

	*skip = NULL;
	if (!real)
		return kci_err_sys(err, errno, "workspace destination %s", dest);
	if (strcmp(real, top) == 0) {
		free(real);
		return kci_err_set(err, KCI_INVALID, "cannot stage %s into itself", top);
	}
	if (strncmp(real, top, n) == 0 && real[n] == '/')
		*skip = kci_xstrdup(real + n + 1);
	free(real);
	return 0;
}

static int
stage_plain(int src, int dst, const struct stat *dest_st, size_t *files, struct kci_err *err)
{
	static const char *const skip[] = { KCI_DIR, NULL };
	struct tree_opts o = { .skip_top = skip,
			       .dest_dev = dest_st->st_dev,
			       .dest_ino = dest_st->st_ino,
			       .count = files };
	int fd = fcntl(src, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return kci_err_sys(err, errno, "dup");
	return ct_copy_tree(fd, dst, ".", 0, &o, err);
}

int
kci_engine_workspace_stage(const char *root, const char *commit, const char *dest,
			   struct kci_workspace_info *info, struct kci_err *err)
{
	git_repository *repo = NULL;
	char *top = NULL, *skip = NULL;
	struct stat dest_st;
	int src = -1, dst = -1, rc;
	git_oid oid;

	memset(info, 0, sizeof(*info));
	gitdir_init();
	if ((rc = gitdir_real_dir(root, &top, err)) < 0 ||
	    (rc = gitdir_find_repo(top, &repo, err)) < 0)
		goto out;
	if (repo && (rc = gitdir_check_top(repo, top, err)) < 0)
		goto out;
	info->is_git = repo != NULL;
	if (repo && !gitdir_is_home(repo, top))
		snprintf(info->foreign_gitdir, sizeof(info->foreign_gitdir), "%s",
			 git_repository_path(repo));
	if (commit && !repo) {
		rc = kci_err_set(err, KCI_NOTFOUND, "--commit %s: %s is not a git repository",
				 commit, top);
		goto out;
	}
	if (commit && (rc = resolve_commit(repo, top, commit, &oid, err)) < 0)
		goto out;
	if ((rc = dest_inside(top, dest, &skip, err)) < 0)
		goto out;
	src = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dst = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src < 0 || dst < 0 || fstat(dst, &dest_st) < 0) {
		rc = kci_err_sys(err, errno, "open %s", src < 0 ? top : dest);
		goto out;
	}
	if (!repo)
		rc = stage_plain(src, dst, &dest_st, &info->files, err);
	else if (commit)
		rc = stage_commit(repo, &oid, dst, &dest_st, dest, info, err);
	else
		rc = stage_worktree(repo, src, dst, &dest_st, skip, dest, info, err);
	if (rc < 0)
		kci_err_prefix(err, "stage %s%s%s into %s", top, commit ? " at " : "",
			       commit ? commit : "", dest);
out:
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	git_repository_free(repo);
	free(top);
	free(skip);
	return rc;
}
