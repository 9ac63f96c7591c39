/* Finds the repository a workspace is in, checks its git dir is its own, and copies it. */
#include "engine/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "engine/copytree.h"

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

void
gitdir_init(void)
{
	pthread_once(&libgit2_once, libgit2_init);
}

/* kci_err_set() with libgit2's last error appended: "what: why". */
int
gitdir_err(struct kci_err *err, int code, const char *fmt, ...)
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

/* ---- the repository ---- */

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
int
gitdir_find_repo(const char *dir, git_repository **out, struct kci_err *err)
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
		return gitdir_err(err, KCI_ERROR, "open the git repository containing %s", dir);
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

int
gitdir_real_dir(const char *dir, char **out, struct kci_err *err)
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
int
gitdir_check_top(git_repository *repo, const char *dir, struct kci_err *err)
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

	gitdir_init();
	if ((rc = gitdir_real_dir(dir, &real, err)) < 0 ||
	    (rc = gitdir_find_repo(real, &repo, err)) < 0)
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

/* ---- its git dir ---- */

/*
 * Copies the repository's git directory to dest/.git so git works inside the
 * VM. A linked worktree's gitdir holds only its own HEAD and index: the copy is
 * the common dir with those laid over it. "*.lock" files are another git
 * process's transient state (no ref may end in .lock): copied, they would make
 * git in the VM think that process still runs. with_index = 0 leaves the index
 * out, for a checkout that writes its own.
 */
int
gitdir_copy(git_repository *repo, int dst, const struct stat *dest_st, int with_index,
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
int
gitdir_fix_config(const char *dest, struct kci_err *err)
{
	char *path = kci_xasprintf("%s/.git/config", dest);
	git_config *cfg = NULL;
	int rc = 0;

	if (access(path, F_OK) < 0)
		goto out;
	if (git_config_open_ondisk(&cfg, path) < 0) {
		rc = gitdir_err(err, KCI_ERROR, "open %s", path);
		goto out;
	}
	rc = git_config_delete_entry(cfg, "core.worktree");
	if (rc == GIT_ENOTFOUND)
		rc = 0;
	else if (rc < 0)
		rc = gitdir_err(err, KCI_ERROR, "edit %s", path);
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
int
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
