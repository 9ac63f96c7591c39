/*
 * Unit tests for engine/workspace.c and engine/gitdir.c: finding and staging
 * real git repositories (built with the git CLI).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fs.h"
#include "engine/engine.h"

static char dir[] = "/tmp/kci-ws-test.XXXXXX";
static char repo[128], dest[128];

/* Runs a shell command in the test directory; returns its exit status. */
static int __attribute__((format(printf, 1, 2))) sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int n;

	n = snprintf(cmd, sizeof(cmd), "cd %s && ", dir);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	n = system(cmd);
	return WIFEXITED(n) ? WEXITSTATUS(n) : -1;
}

/* A command's stdout (at most 4 KiB), in a static buffer. */
static const char *__attribute__((format(printf, 1, 2))) output(const char *fmt, ...)
{
	static char buf[4096];
	char cmd[2048];
	size_t len;
	va_list ap;
	FILE *f;
	int n;

	n = snprintf(cmd, sizeof(cmd), "cd %s && ", dir);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	assert_non_null(f);
	len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[len] = '\0';
	assert_int_equal(pclose(f), 0);
	return buf;
}

/* The content of dest/rel, or NULL when it does not exist. */
static const char *
staged(const char *rel)
{
	static char buf[256];
	char path[512];
	FILE *f;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dest, rel);
	if (!(f = fopen(path, "r")))
		return NULL;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static int
exists(const char *rel)
{
	char path[512];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dest, rel);
	return lstat(path, &sb) == 0;
}

static int
setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/kci-ws-test.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(repo, sizeof(repo), "%s/repo", dir);
	snprintf(dest, sizeof(dest), "%s/dest", dir);
	return sh("mkdir repo dest");
}

static int
teardown(void **state)
{
	(void)state;
	return kci_rm_rf(dir, NULL);
}

static void
init_repo(void)
{
	assert_int_equal(sh("git -c init.defaultBranch=main init -q repo && cd repo && "
			    "git config user.name kci && git config user.email kci@example.com"),
			 0);
}

static void
test_workspace__working_tree_as_it_is(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;
	struct stat sb;
	char link[64] = { 0 }, path[256];

	(void)state;
	init_repo();
	assert_int_equal(sh("cd repo && echo one > a.txt && printf '#!/bin/sh\\n' > run.sh && "
			    "chmod 755 run.sh && ln -s a.txt link && echo bye > gone.txt && "
			    "mkdir sub && echo keep > sub/keep.txt && echo '*.log' > .gitignore && "
			    "git add -A && git commit -qm first"),
			 0);
	assert_int_equal(sh("cd repo && echo edited > a.txt && rm gone.txt && echo new > new.txt "
			    "&& mkdir -p deep/er .kci && echo deep > deep/er/file.txt && "
			    "echo noise > build.log && echo out > .kci/out.txt"),
			 0);

	assert_int_equal(kci_engine_workspace_stage(repo, NULL, dest, &info, &err), 0);
	assert_string_equal(staged("a.txt"), "edited\n");
	assert_string_equal(staged("new.txt"), "new\n");
	assert_string_equal(staged("deep/er/file.txt"), "deep\n");
	assert_string_equal(staged("sub/keep.txt"), "keep\n");
	assert_false(exists("gone.txt"));
	assert_false(exists("build.log"));
	assert_false(exists(".kci"));
	snprintf(path, sizeof(path), "%s/run.sh", dest);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_mode & S_IXUSR);
	snprintf(path, sizeof(path), "%s/link", dest);
	assert_int_equal(readlink(path, link, sizeof(link) - 1), 5);
	assert_string_equal(link, "a.txt");

	assert_true(info.is_git);
	assert_true(info.dirty);
	assert_int_equal(info.files, 7); /* a.txt run.sh link .gitignore sub/keep new deep */
	assert_string_equal(info.commit, output("git -C repo rev-parse HEAD | tr -d '\\n'"));
	/* git works inside the copy and sees the same changes, kci's .kci/ aside. */
	assert_string_equal(output("git -C dest status --porcelain"),
			    " M a.txt\n D gone.txt\n?? deep/\n?? new.txt\n");
	assert_string_equal(output("git -C dest log --format=%%s"), "first\n");
}

/* A tracked directory replaced by a symlink is staged as that symlink, never followed. */
static void
test_workspace__never_follows_symlinks(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;
	char path[256];
	struct stat sb;

	(void)state;
	init_repo();
	assert_int_equal(sh("mkdir outside && echo mine > outside/x && cd repo && mkdir d && "
			    "echo tracked > d/x && git add -A && git commit -qm d && rm -r d && "
			    "ln -s ../outside d"),
			 0);
	assert_int_equal(kci_engine_workspace_stage(repo, NULL, dest, &info, &err), 0);
	snprintf(path, sizeof(path), "%s/d", dest);
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	assert_int_equal(info.files, 1);
	assert_string_equal(output("cat outside/x"), "mine\n");
}

static void
test_workspace__commit_is_a_clean_checkout(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;
	char first[41];

	(void)state;
	init_repo();
	assert_int_equal(sh("cd repo && echo one > a.txt && echo b > b.txt && mkdir .kci && "
			    "echo t > .kci/tracked && git add -A && git commit -qm first && "
			    "echo two > a.txt && git rm -q b.txt && echo c > c.txt && "
			    "git add -A && git commit -qm second && git tag v2"),
			 0);
	assert_int_equal(sh("cd repo && echo three > a.txt && echo u > u.txt && "
			    "echo s > s.txt && git add s.txt"),
			 0);
	snprintf(first, sizeof(first), "%s", output("git -C repo rev-parse HEAD~1 | tr -d '\\n'"));

	assert_int_equal(kci_engine_workspace_stage(repo, "HEAD~1", dest, &info, &err), 0);
	assert_string_equal(info.commit, first);
	assert_true(info.is_git);
	assert_false(info.dirty);
	assert_int_equal(info.files, 2);
	assert_string_equal(staged("a.txt"), "one\n");
	assert_string_equal(staged("b.txt"), "b\n");
	assert_false(exists("c.txt"));
	assert_false(exists("u.txt"));
	assert_false(exists("s.txt"));
	assert_false(exists(".kci"));
	/* HEAD is detached at the commit and the checkout matches it. */
	assert_string_equal(output("git -C dest rev-parse HEAD | tr -d '\\n'"), first);
	assert_int_not_equal(sh("git -C dest symbolic-ref -q HEAD"), 0);
	assert_string_equal(output("git -C dest status --porcelain -- . ':!.kci'"), "");
	/* The original working tree is untouched. */
	assert_string_equal(output("cat repo/a.txt"), "three\n");

	assert_int_equal(sh("rm -rf dest && mkdir dest"), 0);
	assert_int_equal(kci_engine_workspace_stage(repo, "v2", dest, &info, &err), 0);
	assert_string_equal(staged("a.txt"), "two\n");
	assert_string_equal(staged("c.txt"), "c\n");
	assert_false(exists("b.txt"));
}

static void
test_workspace__unknown_revision(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	init_repo();
	assert_int_equal(sh("cd repo && echo a > a && git add a && git commit -qm a"), 0);
	assert_int_equal(kci_engine_workspace_stage(repo, "nope~3", dest, &info, &err),
			 KCI_NOTFOUND);
	assert_non_null(strstr(err.msg, "'nope~3'"));
	assert_non_null(strstr(err.msg, repo));
	assert_false(exists(".git"));
}

static void
test_workspace__outside_git_copies_everything(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;
	char link[16] = { 0 }, path[256];
	struct stat sb;

	(void)state;
	assert_int_equal(sh("cd repo && echo a > a && mkdir -p d/e .kci && echo f > d/e/f && "
			    "echo x > x && chmod 755 x && ln -s a l && echo o > .kci/o && "
			    "echo log > build.log"),
			 0);
	assert_int_equal(kci_engine_workspace_stage(repo, NULL, dest, &info, &err), 0);
	assert_false(info.is_git);
	assert_string_equal(info.commit, "");
	assert_int_equal(info.files, 5);
	assert_string_equal(staged("d/e/f"), "f\n");
	assert_string_equal(staged("build.log"), "log\n");
	assert_false(exists(".kci"));
	snprintf(path, sizeof(path), "%s/x", dest);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_mode & S_IXUSR);
	snprintf(path, sizeof(path), "%s/l", dest);
	assert_int_equal(readlink(path, link, sizeof(link) - 1), 1);
	assert_string_equal(link, "a");

	assert_int_equal(sh("rm -rf dest && mkdir dest"), 0);
	assert_int_equal(kci_engine_workspace_stage(repo, "HEAD", dest, &info, &err), KCI_NOTFOUND);
	assert_non_null(strstr(err.msg, "not a git repository"));
}

static void
test_workspace__unborn_repository(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	init_repo();
	assert_int_equal(sh("cd repo && echo a > a && mkdir sub && echo b > sub/b && "
			    "echo '*.log' > .gitignore && echo c > c.log"),
			 0);
	assert_int_equal(kci_engine_workspace_stage(repo, NULL, dest, &info, &err), 0);
	assert_string_equal(info.commit, "");
	assert_true(info.dirty);
	assert_int_equal(info.files, 3);
	assert_string_equal(staged("sub/b"), "b\n");
	assert_false(exists("c.log"));
	assert_string_equal(output("git -C dest status --porcelain"),
			    "?? .gitignore\n?? a\n?? sub/\n");
}

static void
test_workspace__clean_tree_is_not_dirty(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	init_repo();
	assert_int_equal(sh("cd repo && echo a > a && git add a && git commit -qm a && "
			    "mkdir .kci && echo o > .kci/o"),
			 0);
	assert_int_equal(kci_engine_workspace_stage(repo, NULL, dest, &info, &err), 0);
	assert_false(info.dirty);
	assert_int_equal(info.files, 1);
}

static void
test_workspace__linked_worktree(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;
	char wt[160];

	(void)state;
	init_repo();
	assert_int_equal(sh("cd repo && echo a > a && git add a && git commit -qm a && "
			    "git worktree add -q -b feature ../wt && echo b > ../wt/a"),
			 0);
	snprintf(wt, sizeof(wt), "%s/wt", dir);
	assert_int_equal(kci_engine_workspace_stage(wt, NULL, dest, &info, &err), 0);
	assert_string_equal(staged("a"), "b\n");
	assert_string_equal(output("git -C dest rev-parse --abbrev-ref HEAD"), "feature\n");
	assert_string_equal(output("git -C dest status --porcelain"), " M a\n");
	assert_false(exists(".git/worktrees"));
}

/*
 * A .git file pointing at another repository: that repository's history, objects
 * and config never reach the stage, in working-tree mode or at a commit.
 */
static void
test_workspace__foreign_gitfile_is_not_staged(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;
	char plain[160];

	(void)state;
	init_repo();
	assert_int_equal(sh("cd repo && git config remote.origin.url "
			    "https://user:SECRET-TOKEN@example.invalid/r.git && echo a > a && "
			    "git add a && git commit -qm OTHER-REPO-MARKER && mkdir ../plain && "
			    "echo 'gitdir: %s/repo/.git' > ../plain/.git && echo p > ../plain/p",
			    dir),
			 0);
	snprintf(plain, sizeof(plain), "%s/plain", dir);
	assert_int_equal(kci_engine_workspace_stage(plain, NULL, dest, &info, &err), 0);
	assert_non_null(strstr(info.foreign_gitdir, "/repo/.git"));
	assert_false(exists(".git"));
	assert_string_equal(output("grep -rl -e OTHER-REPO-MARKER -e SECRET-TOKEN dest || true"),
			    "");
	/* At a commit: the tree, checked out from that repository, still without its .git. */
	assert_int_equal(sh("rm -rf dest && mkdir dest"), 0);
	assert_int_equal(kci_engine_workspace_stage(plain, "HEAD", dest, &info, &err), 0);
	assert_string_equal(staged("a"), "a\n");
	assert_int_equal(info.files, 1);
	assert_false(exists(".git"));
	assert_string_equal(output("grep -rl -e OTHER-REPO-MARKER -e SECRET-TOKEN dest || true"),
			    "");
	assert_string_equal(output("git -C repo status --porcelain"), "");
}

/* A submodule is its own repository: an empty directory in the superproject's stage. */
static void
test_workspace__submodules(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;
	char sub[160];

	(void)state;
	init_repo();
	assert_int_equal(sh("git -c init.defaultBranch=main init -q inner && cd inner && "
			    "git config user.name kci && git config user.email kci@example.com && "
			    "echo i > i && git add i && git commit -qm i && cd ../repo && "
			    "git -c protocol.file.allow=always submodule add -q ../inner sub && "
			    "git commit -qm sub && echo changed > sub/i"),
			 0);
	assert_int_equal(kci_engine_workspace_stage(repo, NULL, dest, &info, &err), 0);
	assert_int_equal(info.files, 1); /* .gitmodules */
	assert_true(exists("sub"));
	assert_false(exists("sub/i"));
	assert_string_equal(output("git -C dest status --porcelain"), "");

	/* Staged on its own, its gitdir (.git/modules/sub) no longer points back at it. */
	assert_int_equal(sh("rm -rf dest && mkdir dest"), 0);
	snprintf(sub, sizeof(sub), "%s/sub", repo);
	assert_int_equal(kci_engine_workspace_stage(sub, NULL, dest, &info, &err), 0);
	assert_string_equal(staged("i"), "changed\n");
	assert_string_equal(output("git -C dest status --porcelain"), " M i\n");
}

static void
test_workspace__destination_inside_the_tree(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;
	char inner[160];

	(void)state;
	init_repo();
	assert_int_equal(sh("cd repo && echo a > a && mkdir stage"), 0);
	snprintf(inner, sizeof(inner), "%s/stage", repo);
	assert_int_equal(kci_engine_workspace_stage(repo, NULL, inner, &info, &err), 0);
	assert_int_equal(info.files, 1);
	assert_int_equal(sh("test -f repo/stage/a && test ! -e repo/stage/stage"), 0);
}

static void
test_workspace__root_from_a_subdirectory(void **state)
{
	struct kci_workspace_info info;
	struct kci_err err = KCI_ERR_INIT;
	char sub[160], *root = NULL;

	(void)state;
	init_repo();
	assert_int_equal(sh("mkdir -p repo/sub/dir plain && git init -q --bare bare.git"), 0);
	snprintf(sub, sizeof(sub), "%s/sub/dir", repo);
	assert_int_equal(kci_engine_workspace_root(sub, &root, &err), 0);
	assert_string_equal(root, repo);
	free(root);
	root = NULL;

	/* Staging needs the root: a subdirectory is not what git describes. */
	assert_int_equal(kci_engine_workspace_stage(sub, NULL, dest, &info, &err), KCI_INVALID);

	snprintf(sub, sizeof(sub), "%s/plain", dir);
	assert_int_equal(kci_engine_workspace_root(sub, &root, &err), 0);
	assert_string_equal(root, sub);
	free(root);
	root = NULL;

	snprintf(sub, sizeof(sub), "%s/missing", dir);
	assert_int_equal(kci_engine_workspace_root(sub, &root, &err), KCI_NOTFOUND);
	assert_null(root);

	snprintf(sub, sizeof(sub), "%s/bare.git", dir);
	assert_int_equal(kci_engine_workspace_root(sub, &root, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "bare"));

	/* A config that moves the working tree out (core.worktree) must not pick what is staged. */
	assert_int_equal(sh("mkdir -p home/dl/x/sub && echo key > home/secret && cd home/dl/x && "
			    "git init -q && git config core.worktree ../../.."),
			 0);
	snprintf(sub, sizeof(sub), "%s/home/dl/x/sub", dir);
	err = (struct kci_err)KCI_ERR_INIT;
	assert_int_equal(kci_engine_workspace_root(sub, &root, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "core.worktree"));
	assert_null(root);
	assert_null(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_workspace__working_tree_as_it_is, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_workspace__never_follows_symlinks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_workspace__commit_is_a_clean_checkout, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_workspace__unknown_revision, setup, teardown),
		cmocka_unit_test_setup_teardown(test_workspace__outside_git_copies_everything,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_workspace__unborn_repository, setup, teardown),
		cmocka_unit_test_setup_teardown(test_workspace__clean_tree_is_not_dirty, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_workspace__linked_worktree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_workspace__submodules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_workspace__foreign_gitfile_is_not_staged,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_workspace__destination_inside_the_tree, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_workspace__root_from_a_subdirectory, setup,
						teardown),
	};

	/* The repositories are built with the real git; keep the user's config out of them. */
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
