/* Stages what jobs see at /workspace: the working tree as it is now, or a clean checkout. */
#include "engine/engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
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

#define KCI_DIR	     ".kci" /* kci's output directory at the root: never staged */
#define GITLINK_MODE 0160000

/*
 * libgit2 keeps process-wide state (allocator, per-thread error slots) that must
 * exist before the first call from any thread. It is set up once and never torn
 * down: another engine thread may still be using it.
 */
static pthread_once_t libgit2_once = PTHREAD_ONCE_INIT;

static void
libgit2_init(void)
{
	git_libgit2_init();
}

/* kci_err_set() with libgit2's last error appended: "what: why". */
static int __attribute__((format(printf, 3, 4)))
git_err(struct kci_err *err, int code, const char *fmt, ...)
{
	const git_error *e = git_error_last();
	char what[KCI_ERR_MAX / 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return kci_err_set(err, code, "%s: %s", what,
			   e && e->message ? e->message : "unknown libgit2 error");
}

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

/* ---- .git ---- */

/*
 * Copies the repository's git directory to dest/.git so git works inside the
 * VM. A linked worktree's gitdir holds only its own HEAD and index: the copy is
 * the common dir with those laid over it. "*.lock" files are another git
 * process's transient state (no ref may end in .lock): copied, they would make
 * git in the VM think that process still runs. with_index = 0 leaves the index
 * out, for a checkout that writes its own.
 */
static int
copy_gitdir(git_repository *repo, int dst, const struct stat *dest_st, int with_index,
	    struct kci_err *err)
{
	static const char *const common_skip[] = {
		"worktrees",   "index",	     "HEAD",	     "ORIG_HEAD",
		"MERGE_HEAD",  "MERGE_MSG",  "MERGE_MODE",   "CHERRY_PICK_HEAD",
		"REVERT_HEAD", "AUTO_MERGE", "rebase-merge", "rebase-apply",
		"sequencer",   "BISECT_LOG", "BISECT_START", NULL,
	};
	static const char *const worktree_skip[] = { "commondir", "gitdir", "locked", NULL };
	static const char *const worktree_skip_index[] = { "commondir", "gitdir", "locked", "index",
							   NULL };
	static const char *const plain_skip[] = { "index", NULL };
	struct tree_opts o = { .skip_locks = 1,
			       .dest_dev = dest_st->st_dev,
			       .dest_ino = dest_st->st_ino };
	int rc;

	if (!git_repository_is_worktree(repo)) {
		o.skip_top = with_index ? NULL : plain_skip;
		return ct_copy_dir_at(git_repository_path(repo), dst, ".git", &o, err);
	}
	o.skip_top = common_skip;
	if ((rc = ct_copy_dir_at(git_repository_commondir(repo), dst, ".git", &o, err)) < 0)
		return rc;
	o.skip_top = with_index ? worktree_skip : worktree_skip_index;
	o.replace = 1;
	return ct_copy_dir_at(git_repository_path(repo), dst, ".git", &o, err);
}

/*
 * A submodule's gitdir (superproject/.git/modules/x) names its working tree in
 * core.worktree, relative to where it lived; the copy's working tree is dest.
 */
static int
fix_copied_config(const char *dest, struct kci_err *err)
{
	char *path = kci_xasprintf("%s/.git/config", dest);
	git_config *cfg = NULL;
	int rc = 0;

	if (access(path, F_OK) < 0)
		goto out;
	if (git_config_open_ondisk(&cfg, path) < 0) {
		rc = git_err(err, KCI_ERROR, "open %s", path);
		goto out;
	}
	rc = git_config_delete_entry(cfg, "core.worktree");
	if (rc == GIT_ENOTFOUND)
		rc = 0;
	else if (rc < 0)
		rc = git_err(err, KCI_ERROR, "edit %s", path);
out:
	git_config_free(cfg);
	free(path);
	return rc;
}

/* Whether path (absolute, real) is dir itself or below it. */
static int
is_inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* realpath of `rel` as seen from the directory `base` (rel may be absolute). */
static char *
resolve_from(const char *base, const char *rel)
{
	char *joined = rel[0] == '/' ? kci_xstrdup(rel) : kci_xasprintf("%s/%s", base, rel);
	char *real = realpath(joined, NULL);

	free(joined);
	return real;
}

/* First line of a small file, or NULL. */
static char *
first_line(const char *path)
{
	struct kci_err ignored = KCI_ERR_INIT;
	char *text = NULL;

	if (kci_read_file(path, 4096, &text, NULL, &ignored) < 0)
		return NULL;
	text[strcspn(text, "\r\n")] = '\0';
	return text;
}

/*
 * Whether repo's git dir may be copied into the VM along with the working
 * tree at top. A .git *file* can point at any repository on the host (a
 * crafted tarball's `gitdir: /home/you/secret/.git` would hand that
 * repository's history, objects and credentialed remotes to the job), so a
 * git dir outside top is staged only when it names top back:
 *  - a linked worktree: <gitdir>/gitdir, written by `git worktree add`,
 *    is top's .git;
 *  - a submodule: <gitdir>/config's core.worktree resolves to top.
 * Both are made by git from the repository's own side; a gitfile alone
 * proves nothing.
 */
static int
gitdir_is_home(git_repository *repo, const char *top)
{
	char *gitdir = realpath(git_repository_path(repo), NULL);
	char *common = realpath(git_repository_commondir(repo), NULL);
	char *dotgit = kci_xasprintf("%s/.git", top), *back = NULL, *path = NULL;
	int ok = 0;

	if (!gitdir || !common)
		goto out;
	if (is_inside(gitdir, top) && is_inside(common, top)) {
		ok = 1;
		goto out;
	}
	if (git_repository_is_worktree(repo)) {
		path = kci_xasprintf("%s/gitdir", gitdir);
		char *line = first_line(path);
		back = line ? resolve_from(gitdir, line) : NULL;
		free(line);
		ok = back && strcmp(back, dotgit) == 0;
		goto out;
	}
	git_config *cfg = NULL;
	git_buf wt = { 0 };
	path = kci_xasprintf("%s/config", gitdir);
	if (git_config_open_ondisk(&cfg, path) == 0 &&
	    git_config_get_string_buf(&wt, cfg, "core.worktree") == 0) {
		back = resolve_from(gitdir, wt.ptr);
		ok = back && strcmp(back, top) == 0;
	}
	git_buf_dispose(&wt);
	git_config_free(cfg);
out:
	free(gitdir);
	free(common);
	free(dotgit);
	free(back);
	free(path);
	return ok;
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
		return git_err(err, KCI_ERROR, "read the index");
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
		return git_err(err, KCI_ERROR, "git status");
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
	if ((rc = copy_gitdir(repo, dst, dest_st, 1, err)) < 0)
		goto out;
	rc = fix_copied_config(dest, err);
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
		return git_err(err, KCI_ERROR, "revision '%s' in %s", rev, root);
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
		return git_err(err, KCI_ERROR, "read the checkout's index");
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
		rc = git_err(err, KCI_ERROR, "check out %s", info->commit);
		goto out;
	}
	/* What the checkout wrote: every blob of the tree, submodules left out. */
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, count_blob, &info->files) < 0) {
		rc = git_err(err, KCI_ERROR, "walk %s", info->commit);
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
	if ((rc = copy_gitdir(repo, dst, dest_st, 0, err)) < 0 ||
	    (rc = fix_copied_config(dest, err)) < 0)
		goto out;
	if (git_repository_open_ext(&copy, dest, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		rc = git_err(err, KCI_ERROR, "open the copy at %s", dest);
		goto out;
	}
	co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_RECREATE_MISSING;
	if (git_repository_set_head_detached(copy, oid) < 0 ||
	    git_repository_state_cleanup(copy) < 0 || git_checkout_head(copy, &co) < 0) {
		rc = git_err(err, KCI_ERROR, "check out %s", info->commit);
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

/* ---- the public functions ---- */

/*
 * Whether the nearest .git from dir upwards, or the directory holding it,
 * belongs to another user (*owner says whom).
 */
static int
foreign_owned(const char *dir, uid_t *owner)
{
	char *cur = kci_xstrdup(dir), *slash;
	struct stat g, d;
	int found = 0;

	for (;;) {
		char *dotgit = kci_xasprintf("%s/.git", cur[0] ? cur : "");
		int here = lstat(dotgit, &g) == 0 && stat(cur[0] ? cur : "/", &d) == 0;

		free(dotgit);
		if (here) {
			*owner = g.st_uid != geteuid() ? g.st_uid : d.st_uid;
			found = g.st_uid != geteuid() || d.st_uid != geteuid();
			break;
		}
		if (!(slash = strrchr(cur, '/')) || !cur[0])
			break;
		*slash = '\0';
	}
	free(cur);
	return found;
}

/* The repository containing dir, or *out = NULL outside git. Bare repositories are refused. */
static int
find_repo(const char *dir, git_repository **out, struct kci_err *err)
{
	git_repository *repo = NULL;
	uid_t owner = 0;
	int rc;

	*out = NULL;
	rc = git_repository_open_ext(&repo, dir, 0, NULL);
	/*
	 * Another user's repository: git refuses it (safe.directory), and so do
	 * we, rather than copy it as a plain directory with its .git and every
	 * ignored file. libgit2 1.5 reports the refusal as "not found".
	 */
	if (rc == GIT_EOWNER || (rc == GIT_ENOTFOUND && foreign_owned(dir, &owner)))
		return kci_err_set(err, KCI_INVALID,
				   "%s is in a git repository owned by another user (uid %u); git "
				   "refuses such repositories, and so does kci. If you trust it: "
				   "git config --global --add safe.directory <its path>",
				   dir, (unsigned)owner);
	if (rc == GIT_ENOTFOUND)
		return 0;
	if (rc < 0)
		return git_err(err, KCI_ERROR, "open the git repository containing %s", dir);
	if (git_repository_is_bare(repo) || !git_repository_workdir(repo)) {
		rc = kci_err_set(err, KCI_INVALID,
				 "%s is in the bare repository %s: it has no working tree", dir,
				 git_repository_path(repo));
		git_repository_free(repo);
		return rc;
	}
	*out = repo;
	return 0;
}

static int
real_dir(const char *dir, char **out, struct kci_err *err)
{
	struct stat sb;
	char *real = realpath(dir, NULL);

	if (!real)
		return kci_err_sys(err, errno, "workspace %s", dir);
	if (stat(real, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		free(real);
		return kci_err_set(err, KCI_INVALID, "workspace %s is not a directory", dir);
	}
	*out = real;
	return 0;
}

/* The working tree of repo, absolute, without the trailing slash libgit2 gives it. */
static int
repo_top(git_repository *repo, char **out, struct kci_err *err)
{
	/* It may come from core.worktree, relative or through symlinks: normalise it. */
	if (!(*out = realpath(git_repository_workdir(repo), NULL)))
		return kci_err_sys(err, errno, "working tree of %s", git_repository_path(repo));
	return 0;
}

/* Staging a subdirectory of a repository would copy a tree git does not describe. */
static int
check_top(git_repository *repo, const char *dir, struct kci_err *err)
{
	char *top = NULL;
	int rc;

	if ((rc = repo_top(repo, &top, err)) < 0)
		return rc;
	if (strcmp(top, dir) != 0)
		rc = kci_err_set(err, KCI_INVALID, "%s is inside the repository %s, not its root",
				 dir, top);
	free(top);
	return rc;
}

/*
 * The working tree must hold the .git it was found through. A repository's
 * config can point its working tree anywhere (core.worktree = ../../..), and
 * a crafted one in a downloaded tarball would have kci copy, say, the user's
 * home directory into the VM. Opening the tree's own .git must give back the
 * same git dir.
 */
static int
check_own_gitdir(git_repository *repo, const char *top, struct kci_err *err)
{
	git_repository *again = NULL;
	char *a = realpath(git_repository_path(repo), NULL), *b = NULL;
	int rc = 0;

	if (git_repository_open_ext(&again, top, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0)
		b = realpath(git_repository_path(again), NULL);
	if (!a || !b || strcmp(a, b) != 0)
		rc = kci_err_set(err, KCI_INVALID,
				 "the git repository %s puts its working tree at %s "
				 "(core.worktree), which does not hold it; kci stages only a "
				 "working tree with its own .git",
				 git_repository_path(repo), top);
	git_repository_free(again);
	free(a);
	free(b);
	return rc;
}

int
kci_engine_workspace_root(const char *dir, char **root, struct kci_err *err)
{
	git_repository *repo = NULL;
	char *real = NULL, *top;
	int rc;

	pthread_once(&libgit2_once, libgit2_init);
	if ((rc = real_dir(dir, &real, err)) < 0 || (rc = find_repo(real, &repo, err)) < 0)
		goto out;
	if (!repo) {
		*root = real;
		real = NULL;
		goto out;
	}
	if ((rc = repo_top(repo, &top, err)) < 0)
		goto out;
	if ((rc = check_own_gitdir(repo, top, err)) < 0) {
		free(top);
		goto out;
	}
	*root = top;
out:
	git_repository_free(repo);
	free(real);
	return rc;
}

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
	pthread_once(&libgit2_once, libgit2_init);
	if ((rc = real_dir(root, &top, err)) < 0 || (rc = find_repo(top, &repo, err)) < 0)
		goto out;
	if (repo && (rc = check_top(repo, top, err)) < 0)
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
