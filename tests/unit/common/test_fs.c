/*
 * Unit tests for common/fs.c: directory creation and removal, atomic writes,
 * bounded reads, the orphan rule every cleanup relies on, and openat2.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fs.h"

static char dir[] = "/tmp/kci-fs-test.XXXXXX";

static int
setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[sizeof(dir) + 16];

	(void)state;
	/* Not with kci_rm_rf, which some of these tests are about. */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	strcpy(dir + strlen(dir) - 6, "XXXXXX");
	return 0;
}

/* dir/rel, in one of a few rotating static buffers. */
static const char *
at(const char *rel)
{
	static char bufs[4][256];
	static unsigned next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, rel);
	return b;
}

static void
put(const char *rel, const char *text)
{
	FILE *f = fopen(at(rel), "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int
is_dir(const char *rel)
{
	struct stat st;

	return lstat(at(rel), &st) == 0 && S_ISDIR(st.st_mode);
}

static int
exists(const char *rel)
{
	struct stat st;

	return lstat(at(rel), &st) == 0;
}

/* A pid that is certainly gone: a child that exited and was reaped. */
static pid_t
dead_pid(void)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return pid;
}

static void
test_fs__mkdir_p_makes_every_missing_level(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct stat st;

	(void)state;
	assert_int_equal(kci_mkdir_p(at("a/b/c"), 0700, &err), 0);
	assert_true(is_dir("a") && is_dir("a/b") && is_dir("a/b/c"));
	assert_int_equal(lstat(at("a/b/c"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700 & ~umask(umask(0)));
	/* Again, and with a trailing slash: what exists is fine. */
	assert_int_equal(kci_mkdir_p(at("a/b/c"), 0700, &err), 0);
	assert_int_equal(kci_mkdir_p(at("a/b/d/"), 0755, &err), 0);
	assert_true(is_dir("a/b/d"));
}

static void
test_fs__mkdir_p_through_a_file_fails(void **state)
{
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	put("file", "x");
	assert_true(kci_mkdir_p(at("file/sub"), 0700, &err) < 0);
	assert_non_null(strstr(err.msg, "file/sub"));
	assert_non_null(strstr(err.msg, strerror(ENOTDIR)));
}

/* Like mkdir -p: a file where the directory should be is an error, not success. */
static void
test_fs__mkdir_p_onto_a_file_fails(void **state)
{
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	put("file", "x");
	assert_int_equal(kci_mkdir_p(at("file"), 0700, &err), KCI_ERROR);
	assert_non_null(strstr(err.msg, "file"));
	assert_non_null(strstr(err.msg, strerror(EEXIST)));
	assert_false(is_dir("file"));
}

static void
test_fs__mkdir_p_empty_path_is_invalid(void **state)
{
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	assert_int_equal(kci_mkdir_p("", 0700, &err), KCI_INVALID);
}

/* Symlinks in the tree are removed, never followed: what they point at stays. */
static void
test_fs__rm_rf_does_not_follow_symlinks_out(void **state)
{
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	assert_int_equal(kci_mkdir_p(at("outside/deep"), 0755, &err), 0);
	put("outside/deep/keep", "precious");
	put("outside/file", "precious");
	assert_int_equal(kci_mkdir_p(at("tree/sub/subsub"), 0755, &err), 0);
	put("tree/sub/subsub/f", "x");
	put("tree/g", "x");
	assert_int_equal(symlink(at("outside"), at("tree/sub/to-dir")), 0);
	assert_int_equal(symlink("../../outside/file", at("tree/sub/to-file")), 0);
	assert_int_equal(symlink(at("outside"), at("tree/to-dir-at-top")), 0);
	assert_int_equal(kci_rm_rf(at("tree"), &err), 0);
	assert_false(exists("tree"));
	assert_true(exists("outside/deep/keep"));
	assert_true(exists("outside/file"));
	/* The path itself a symlink to a directory: the link goes, the directory stays. */
	assert_int_equal(symlink(at("outside"), at("link")), 0);
	assert_int_equal(kci_rm_rf(at("link"), &err), 0);
	assert_false(exists("link"));
	assert_true(exists("outside/deep/keep"));
}

static void
test_fs__rm_rf_missing_and_single_file(void **state)
{
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	assert_int_equal(kci_rm_rf(at("never-was"), &err), 0);
	put("lone", "x");
	assert_int_equal(kci_rm_rf(at("lone"), &err), 0);
	assert_false(exists("lone"));
}

/* The final name appears only at commit, whole, and the temp name is gone then. */
static void
test_fs__tmpfile_commit_is_atomic(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char *tmp = NULL, *text = NULL, prefix[64];
	const char *final = at("blob");
	int fd, flags;

	(void)state;
	put("blob", "old content");
	fd = kci_tmpfile_near(final, &tmp, &err);
	assert_true(fd >= 0);
	flags = fcntl(fd, F_GETFD);
	assert_true(flags >= 0 && (flags & FD_CLOEXEC));
	/* Next to the final name, with the writer's pid where cleanups look for it. */
	snprintf(prefix, sizeof(prefix), "%s.tmp-%d-", final, (int)getpid());
	assert_int_equal(strncmp(tmp, prefix, strlen(prefix)), 0);
	assert_int_equal(write(fd, "new content", 11), 11);
	assert_int_equal(kci_read_file(final, 100, &text, NULL, &err), 0);
	assert_string_equal(text, "old content");
	free(text);
	assert_int_equal(kci_commit_file(fd, tmp, final, &err), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(kci_read_file(final, 100, &text, NULL, &err), 0);
	assert_string_equal(text, "new content");
	free(text);
	free(tmp);
}

static void
test_fs__commit_failure_removes_the_temp_file(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char *tmp = NULL;
	int fd;

	(void)state;
	fd = kci_tmpfile_near(at("blob"), &tmp, &err);
	assert_true(fd >= 0);
	/* rename onto a directory that is not empty fails. */
	assert_int_equal(kci_mkdir_p(at("full/x"), 0755, &err), 0);
	assert_true(kci_commit_file(fd, tmp, at("full"), &err) < 0);
	assert_non_null(strstr(err.msg, "rename"));
	assert_int_equal(access(tmp, F_OK), -1);
	assert_true(is_dir("full/x"));
	free(tmp);
}

static void
test_fs__tmpfile_in_a_missing_dir_fails(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char *tmp = NULL;

	(void)state;
	assert_int_equal(kci_tmpfile_near(at("no/such/blob"), &tmp, &err), KCI_NOTFOUND);
	assert_null(tmp);
	assert_non_null(strstr(err.msg, "no/such/blob"));
}

static void
test_fs__read_file_bounds(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char *text = NULL, *big = malloc(10001);
	size_t len = 0;

	(void)state;
	memset(big, 'b', 10000);
	big[10000] = '\0';
	put("big", big);
	/* Exactly max bytes: read whole (and past the first 4 KiB buffer), NUL-terminated. */
	assert_int_equal(kci_read_file(at("big"), 10000, &text, &len, &err), 0);
	assert_int_equal(len, 10000);
	assert_memory_equal(text, big, 10000);
	assert_int_equal(text[10000], '\0');
	free(text);
	/* One byte more than max: refused, and *out untouched. */
	text = NULL;
	assert_int_equal(kci_read_file(at("big"), 9999, &text, &len, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "larger than 9999 bytes"));
	assert_null(text);
	/* An empty file is an empty string; len is optional. */
	put("empty", "");
	assert_int_equal(kci_read_file(at("empty"), 0, &text, NULL, &err), 0);
	assert_string_equal(text, "");
	free(text);
	free(big);
}

static void
test_fs__read_file_missing_is_notfound(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char *text = NULL;

	(void)state;
	assert_int_equal(kci_read_file(at("missing"), 100, &text, NULL, &err), KCI_NOTFOUND);
	assert_non_null(strstr(err.msg, "missing"));
	assert_null(text);
}

static void
test_fs__tmp_is_orphan_by_pid(void **state)
{
	char name[64];
	pid_t dead = dead_pid();

	(void)state;
	snprintf(name, sizeof(name), "blob.tmp-%d-Ab12Cd", (int)dead);
	assert_true(kci_tmp_is_orphan(name));
	snprintf(name, sizeof(name), "blob.tmp-%d-Ab12Cd", (int)getpid());
	assert_false(kci_tmp_is_orphan(name));
	/* Names that carry no pid are never anyone's leftovers. */
	assert_false(kci_tmp_is_orphan("blob"));
	assert_false(kci_tmp_is_orphan("blob.tmp-"));
	assert_false(kci_tmp_is_orphan("blob.tmp-0-Ab12Cd"));
	assert_false(kci_tmp_is_orphan("blob.tmp--5-Ab12Cd"));
	assert_false(kci_tmp_is_orphan("blob.tmp-pid-Ab12Cd"));
}

/* Dead writers' files and trees go; live ones and other names stay. */
static void
test_fs__sweep_orphans_removes_only_the_dead(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char dead_file[64], dead_tree[64], live_file[64], live_tree[64], p[96];
	pid_t dead = dead_pid();

	(void)state;
	snprintf(dead_file, sizeof(dead_file), "s/blob.tmp-%d-aaaaaa", (int)dead);
	snprintf(dead_tree, sizeof(dead_tree), "s/run.tmp-%d-bbbbbb", (int)dead);
	snprintf(live_file, sizeof(live_file), "s/blob.tmp-%d-cccccc", (int)getpid());
	snprintf(live_tree, sizeof(live_tree), "s/run.tmp-%d-dddddd", (int)getpid());
	assert_int_equal(kci_mkdir_p(at("outside"), 0755, &err), 0);
	put("outside/keep", "precious");
	snprintf(p, sizeof(p), "%s/tree/sub", dead_tree);
	assert_int_equal(kci_mkdir_p(at(p), 0755, &err), 0);
	snprintf(p, sizeof(p), "%s/tree/sub/f", dead_tree);
	put(p, "x");
	snprintf(p, sizeof(p), "%s/tree/out", dead_tree);
	assert_int_equal(symlink(at("outside"), at(p)), 0);
	assert_int_equal(kci_mkdir_p(at(live_tree), 0755, &err), 0);
	put(dead_file, "x");
	put(live_file, "x");
	put("s/unrelated", "x");
	put("s/blob.tmp-notapid-eeeeee", "x");
	kci_sweep_orphans(at("s"));
	assert_false(exists(dead_file));
	assert_false(exists(dead_tree));
	assert_true(exists(live_file));
	assert_true(is_dir(live_tree));
	assert_true(exists("s/unrelated"));
	assert_true(exists("s/blob.tmp-notapid-eeeeee"));
	assert_true(exists("outside/keep"));
	/* A directory that does not exist is nothing to sweep. */
	kci_sweep_orphans(at("no-such-dir"));
}

static void
test_fs__openat2_beneath_refuses_escapes(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	int dfd, fd, flags;

	(void)state;
	assert_int_equal(kci_mkdir_p(at("root/in"), 0755, &err), 0);
	put("x", "outside");
	put("root/in/ok", "inside");
	assert_int_equal(symlink("../../x", at("root/in/escape")), 0);
	assert_int_equal(symlink("ok", at("root/in/stay")), 0);
	dfd = open(at("root"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	fd = kci_openat2(dfd, "in/ok", O_RDONLY, RESOLVE_BENEATH);
	if (fd == -ENOSYS)
		skip();
	assert_true(fd >= 0);
	flags = fcntl(fd, F_GETFD);
	assert_true(flags >= 0 && (flags & FD_CLOEXEC));
	close(fd);
	assert_int_equal(kci_openat2(dfd, "../x", O_RDONLY, RESOLVE_BENEATH), -EXDEV);
	assert_int_equal(kci_openat2(dfd, "in/../../x", O_RDONLY, RESOLVE_BENEATH), -EXDEV);
	assert_int_equal(kci_openat2(dfd, at("x"), O_RDONLY, RESOLVE_BENEATH), -EXDEV);
	assert_int_equal(kci_openat2(dfd, "in/escape", O_RDONLY, RESOLVE_BENEATH), -EXDEV);
	/* A symlink that stays inside is followed, unless symlinks are refused too. */
	fd = kci_openat2(dfd, "in/stay", O_RDONLY, RESOLVE_BENEATH);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(
		kci_openat2(dfd, "in/stay", O_RDONLY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
		-ELOOP);
	/* Errors come back as -errno, not -1. */
	assert_int_equal(kci_openat2(dfd, "in/missing", O_RDONLY, RESOLVE_BENEATH), -ENOENT);
	close(dfd);
}

static void
test_fs__home_from_kci_home(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char *old = getenv("KCI_HOME") ? strdup(getenv("KCI_HOME")) : NULL, *home = NULL;
	struct stat st;

	(void)state;
	setenv("KCI_HOME", at("home/kci"), 1);
	assert_int_equal(kci_home(&home, &err), 0);
	assert_string_equal(home, at("home/kci"));
	assert_int_equal(stat(home, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(home);
	home = NULL;
	setenv("KCI_HOME", "relative/kci", 1);
	assert_int_equal(kci_home(&home, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "absolute"));
	assert_null(home);
	if (old)
		setenv("KCI_HOME", old, 1);
	else
		unsetenv("KCI_HOME");
	free(old);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_fs__mkdir_p_makes_every_missing_level),
		T(test_fs__mkdir_p_through_a_file_fails),
		T(test_fs__mkdir_p_onto_a_file_fails),
		T(test_fs__mkdir_p_empty_path_is_invalid),
		T(test_fs__rm_rf_does_not_follow_symlinks_out),
		T(test_fs__rm_rf_missing_and_single_file),
		T(test_fs__tmpfile_commit_is_atomic),
		T(test_fs__commit_failure_removes_the_temp_file),
		T(test_fs__tmpfile_in_a_missing_dir_fails),
		T(test_fs__read_file_bounds),
		T(test_fs__read_file_missing_is_notfound),
		T(test_fs__tmp_is_orphan_by_pid),
		T(test_fs__sweep_orphans_removes_only_the_dead),
		T(test_fs__openat2_beneath_refuses_escapes),
		T(test_fs__home_from_kci_home),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
