/*
 * Unit tests for the extractor (images/extract*.c) under its strictest
 * policy, KCI_EXTRACT_ARTIFACTS: what arrives (files, directories, relative
 * symlinks, hardlinks, modes clamped), caps, empty and corrupt archives,
 * duplicates, tar formats and the system's tar. Archives trying to reach
 * outside dest are test_extract_hostile.c's; layers are test_unpack.c's, kci
 * load's tarballs test_load.c's, the confined child's calls
 * test_extract_child.c's. Archives are written with libarchive at test time
 * (and once by the system's tar), through extract_fixture.h. Every test
 * runs twice: in the confined child, as kci does, and in-process, as the
 * fuzz target does.
 */
#include "extract_fixture.h"

/* ---- tests ---- */

static const char binary[] = "\x7f"
			     "ELF\0\1\2\3\xff\xfe payload\n";

static void
test_extract__files_and_dirs_arrive_modes_clamped(void **state)
{
	struct fx *fx = *state;
	struct kci_extract_stats st;
	struct tarw w;
	struct stat sb;

	tar_begin(&w);
	put_dir(&w, "./", 0755);
	put_dir(&w, "./dist/", 0750);
	put(&w, "./dist/app", AE_IFREG | 0755, NULL, binary, sizeof(binary));
	put_file(&w, "dist/sub/deep/readme.txt", 0640, "read me\n");
	put_file(&w, "top.txt", 0644, "");
	put_dir(&w, "private", 0700);
	assert_ok(fx, tar_end(&w, 0), NULL, &st);

	assert_file(fx, "dist/app", binary, sizeof(binary), 0755);
	assert_file(fx, "dist/sub/deep/readme.txt", "read me\n", 8, 0644);
	assert_file(fx, "top.txt", "", 0, 0644);
	assert_int_equal(lstat(dp(fx, "dist/app"), &sb), 0);
	assert_int_equal(sb.st_mtim.tv_sec, MTIME);
	assert_int_equal(sb.st_uid, getuid()); /* the archive's owner is never applied */
	assert_int_equal(lstat(dp(fx, "dist"), &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0755);
	assert_int_equal(sb.st_mtim.tv_sec, MTIME);	     /* set once its entries are in */
	assert_int_equal(lstat(dp(fx, "dist/sub"), &sb), 0); /* implicit parents: 0755 */
	assert_int_equal(sb.st_mode & 07777, 0755);
	assert_int_equal(lstat(dp(fx, "private"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0755);
	/* dist, app, sub, deep, readme.txt, top.txt, private */
	assert_int_equal(st.names, 7);
	assert_int_equal(st.bytes, sizeof(binary) + 8);
}

/*
 * Issue 9 item 10: a guest-chosen 0777 file is one another local user could
 * append to. Files come out 0644 or, executable by their owner, 0755; dirs
 * 0755; never setuid, setgid, sticky or writable by group or others.
 */
static void
test_extract__modes_clamped_whatever_the_guest_says(void **state)
{
	static const struct {
		mode_t in, out;
	} files[] = {
		{ 0777, 0755 }, { 04755, 0755 }, { 06777, 0755 }, { 0666, 0644 }, { 02644, 0644 },
		{ 0600, 0644 }, { 0000, 0644 },	 { 0100, 0755 },  { 0070, 0644 },
	};
	struct fx *fx = *state;
	char name[32];
	struct tarw w;
	struct stat sb;

	tar_begin(&w);
	put_dir(&w, "shared", 01777);
	put_dir(&w, "setgid", 02775);
	put_dir(&w, "locked", 0000);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(name, sizeof(name), "shared/f%zu", i);
		put_file(&w, name, files[i].in, "x");
	}
	assert_ok(fx, tar_end(&w, 0), NULL, NULL);

	for (const char **d = (const char *[]){ "shared", "setgid", "locked", NULL }; *d; d++) {
		assert_int_equal(lstat(dp(fx, *d), &sb), 0);
		assert_int_equal(sb.st_mode & 07777, 0755);
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(name, sizeof(name), "shared/f%zu", i);
		assert_file(fx, name, "x", 1, files[i].out);
	}
}

/* "Under the user's umask": a private umask keeps the artifacts private. */
static void
test_extract__modes_clamped_under_the_umask(void **state)
{
	struct fx *fx = *state;
	struct tarw w;
	struct stat sb;

	tar_begin(&w);
	put_dir(&w, "d", 0777);
	put_file(&w, "d/run", 0777, "x");
	put_file(&w, "d/read", 0666, "x");
	put_file(&w, "implied/x", 0644, "x");
	umask(077);
	assert_ok(fx, tar_end(&w, 0), NULL, NULL);
	umask(022);
	assert_int_equal(lstat(dp(fx, "d"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	assert_int_equal(lstat(dp(fx, "implied"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	assert_file(fx, "d/run", "x", 1, 0700);
	assert_file(fx, "d/read", "x", 1, 0600);
}

static void
test_extract__relative_symlinks_inside_recreated(void **state)
{
	struct fx *fx = *state;
	char buf[64] = { 0 };
	struct kci_extract_stats st;
	struct tarw w;

	tar_begin(&w);
	put_file(&w, "lib/libfoo.so.1", 0644, "elf");
	put_symlink(&w, "lib/libfoo.so", "libfoo.so.1");
	put_symlink(&w, "bin/foo", "../lib/./libfoo.so");
	put_symlink(&w, "here", ".");
	put_symlink(&w, "dangling", "not/yet/there");
	assert_ok(fx, tar_end(&w, 0), NULL, &st);

	assert_int_equal(readlink(dp(fx, "lib/libfoo.so"), buf, sizeof(buf) - 1), 11);
	assert_string_equal(buf, "libfoo.so.1");
	memset(buf, 0, sizeof(buf));
	assert_int_equal(readlink(dp(fx, "bin/foo"), buf, sizeof(buf) - 1), 18);
	assert_string_equal(buf, "../lib/./libfoo.so");
	assert_file(fx, "bin/foo", "elf", 3, 0644); /* followed by us, once it is all there */
	assert_int_equal(st.names, 7);
}

static void
test_extract__hardlink_to_extracted_file_works(void **state)
{
	struct fx *fx = *state;
	struct kci_extract_stats st;
	struct stat a, b;
	struct tarw w;

	tar_begin(&w);
	put_file(&w, "bin/tool", 0755, "#!/bin/sh\n");
	put_hardlink(&w, "bin/alias", "./bin/tool");
	put_hardlink(&w, "other/dir/alias2", "bin/tool");
	assert_ok(fx, tar_end(&w, 0), NULL, &st);

	assert_int_equal(lstat(dp(fx, "bin/tool"), &a), 0);
	assert_int_equal(lstat(dp(fx, "other/dir/alias2"), &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 3);
	assert_file(fx, "bin/alias", "#!/bin/sh\n", 10, 0755);
	assert_int_equal(st.bytes, 10);
	assert_int_equal(st.names, 6); /* bin, tool, alias, other, dir, alias2 */
}

static void
test_extract__byte_limit(void **state)
{
	static const struct caps one_mib = { 1 << 20, 100 }, tiny = { 10, 100 };
	struct fx *fx = *state;
	char *blob = kci_xcalloc(600 << 10, 1);
	struct kci_err err = KCI_ERR_INIT;
	struct kci_extract_stats st;
	struct tarw w;

	tar_begin(&w);
	put(&w, "a", AE_IFREG | 0644, NULL, blob, 600 << 10);
	put(&w, "b", AE_IFREG | 0644, NULL, blob, 600 << 10);
	assert_int_equal(extract(fx, tar_end(&w, 0), &one_mib, &st, &err), KCI_NOSPACE);
	assert_string_equal(err.msg, "artifacts: files add up to more than 1 MiB");
	assert_int_equal(access(dp(fx, "b"), F_OK), -1); /* refused before it was created */
	assert_int_equal(st.bytes, 600 << 10);
	assert_canary_intact(fx);
	free(blob);

	tar_begin(&w);
	put_file(&w, "c", 0644, "0123456789");
	put_file(&w, "d", 0644, "!");
	assert_int_equal(extract(fx, tar_end(&w, 0), &tiny, &st, &err), KCI_NOSPACE);
	assert_string_equal(err.msg, "artifacts: files add up to more than 10 bytes");
	assert_canary_intact(fx);
	assert_file(fx, "c", "0123456789", 10, 0644);
}

static void
test_extract__file_limit(void **state)
{
	static const struct caps three = { 1 << 20, 3 };
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct tarw w;

	tar_begin(&w);
	put_file(&w, "1", 0644, "1");
	put_file(&w, "2", 0644, "2");
	put_file(&w, "3", 0644, "3");
	put_file(&w, "4", 0644, "4");
	assert_refused(fx, tar_end(&w, 0), &three, "artifacts: more than 3 files");
	assert_int_equal(count_entries(fx->dest), 3);

	/* Implicit parents count: they are inodes too. */
	assert_int_equal(kci_rm_rf(fx->dest, &err), 0);
	assert_int_equal(mkdir(fx->dest, 0700), 0);
	tar_begin(&w);
	put_file(&w, "a/b/c/d", 0644, "deep");
	assert_refused(fx, tar_end(&w, 0), &three, "artifacts: more than 3 files");
}

static void
test_extract__empty_archives_ok(void **state)
{
	struct fx *fx = *state;
	struct kci_extract_stats st = { .names = 9, .bytes = 9 };
	struct tarw w;

	assert_ok(fx, bytes_fd(NULL, 0), NULL, &st);
	assert_int_equal(st.names, 0);
	assert_int_equal(st.bytes, 0);

	tar_begin(&w); /* just the end-of-archive blocks */
	assert_ok(fx, tar_end(&w, 0), NULL, &st);
	assert_int_equal(count_entries(fx->dest), 0);
}

static void
test_extract__corrupt_archives_refused(void **state)
{
	struct fx *fx = *state;
	char *blob = kci_xcalloc(4000, 1);
	struct tarw w;

	memset(blob, 'z', 4000);
	tar_begin(&w);
	put(&w, "big", AE_IFREG | 0644, NULL, blob, 4000);
	assert_refused_prefix(fx, tar_end(&w, 2048), "artifact 'big': corrupt archive: ");
	free(blob);

	assert_refused_prefix(fx, bytes_fd("hello, world", 12), "artifacts: corrupt archive: ");
	memset(blob = kci_xcalloc(1024, 1), 0xff, 1024);
	assert_refused_prefix(fx, bytes_fd(blob, 1024), "artifacts: corrupt archive: ");
	free(blob);
}

static void
test_extract__duplicates(void **state)
{
	struct fx *fx = *state;
	struct tarw w;
	struct stat sb;

	/* tar -c -- d d/f lists d/f twice: the later one wins. */
	tar_begin(&w);
	put_dir(&w, "d", 0700);
	put_file(&w, "d/f", 0644, "first");
	put_dir(&w, "d", 0755);
	put_file(&w, "d/f", 0600, "second");
	put_symlink(&w, "l", "d/f");
	put_symlink(&w, "l", "d");
	assert_ok(fx, tar_end(&w, 0), NULL, NULL);
	assert_file(fx, "d/f", "second", 6, 0644);
	assert_int_equal(lstat(dp(fx, "d"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0755);
	assert_int_equal(lstat(dp(fx, "l"), &sb), 0);
	assert_int_equal(sb.st_size, 1); /* "d" */

	tar_begin(&w);
	put_dir(&w, "d/f", 0755);
	assert_refused(fx, tar_end(&w, 0), NULL, "artifact 'd/f': already extracted as a file");
	tar_begin(&w);
	put_file(&w, "d", 0644, "x");
	assert_refused(fx, tar_end(&w, 0), NULL, "artifact 'd': already extracted as a directory");
	tar_begin(&w);
	put_symlink(&w, "d/f", "x");
	assert_refused(fx, tar_end(&w, 0), NULL, "artifact 'd/f': already extracted as a file");
	tar_begin(&w);
	put_file(&w, "l", 0644, "x");
	assert_refused(fx, tar_end(&w, 0), NULL, "artifact 'l': already extracted as a symlink");
	assert_file(fx, "d/f", "second", 6, 0644);
}

static void
test_extract__gnu_and_ustar_formats(void **state)
{
	static const int formats[] = { ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FORMAT_TAR_USTAR,
				       ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE };
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	char dir[64], name[256], through[256];

	/* 121 bytes: beyond the 100 of a plain header, within ustar's prefix. */
	snprintf(dir, sizeof(dir), "%060d", 1);
	snprintf(name, sizeof(name), "%s/%060d", dir, 2);
	snprintf(through, sizeof(through), "short/%060d", 2);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct tarw w;
		assert_int_equal(kci_rm_rf(fx->dest, &err), 0);
		assert_int_equal(mkdir(fx->dest, 0700), 0);
		tar_begin_as(&w, formats[i]);
		put_file(&w, name, 0644, "long");
		put_symlink(&w, "short", dir);
		assert_ok(fx, tar_end(&w, 0), NULL, NULL);
		assert_file(fx, name, "long", 4, 0644);
		assert_file(fx, through, "long", 4, 0644);
	}
}

/* The real producer: the system's tar, through a pipe. Skipped where there is none. */
static void
test_extract__system_tar_through_a_pipe(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	char src[128], cmd[512];
	struct kci_extract_stats st;
	FILE *p;

	if (access("/bin/tar", X_OK) < 0 && access("/usr/bin/tar", X_OK) < 0)
		skip();
	snprintf(src, sizeof(src), "%s/src", fx->dir);
	assert_int_equal(mkdir(src, 0755), 0);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && mkdir -p dist/bin && printf 'hi\\n' > dist/bin/app && chmod 755 "
		 "dist/bin/app && ln -s bin/app dist/run && ln dist/bin/app dist/hard",
		 src);
	assert_int_equal(system(cmd), 0);
	/* Overlapping paths, as a job may list them: dist/bin/app comes twice. */
	snprintf(cmd, sizeof(cmd), "tar -c -f - -C %s -- ./dist dist/bin/app", src);
	assert_non_null(p = popen(cmd, "r"));
	assert_int_equal(extract(fx, dup(fileno(p)), NULL, &st, &err), 0);
	assert_int_equal(pclose(p), 0);
	assert_file(fx, "dist/bin/app", "hi\n", 3, 0755);
	assert_file(fx, "dist/run", "hi\n", 3, 0755);
	assert_file(fx, "dist/hard", "hi\n", 3, 0755);
	assert_int_equal(kci_rm_rf(src, &err), 0);
	assert_canary_intact(fx);
}

static void
test_extract__missing_dest(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	int fd = bytes_fd(NULL, 0);

	assert_int_equal(rmdir(fx->dest), 0);
	assert_true(extract(fx, fd, NULL, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "artifacts: open "));
	assert_int_equal(mkdir(fx->dest, 0700), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_extract__files_and_dirs_arrive_modes_clamped),
		TEST(test_extract__modes_clamped_whatever_the_guest_says),
		TEST(test_extract__modes_clamped_under_the_umask),
		TEST(test_extract__relative_symlinks_inside_recreated),
		TEST(test_extract__hardlink_to_extracted_file_works),
		TEST(test_extract__byte_limit),
		TEST(test_extract__file_limit),
		TEST(test_extract__empty_archives_ok),
		TEST(test_extract__corrupt_archives_refused),
		TEST(test_extract__duplicates),
		TEST(test_extract__gnu_and_ustar_formats),
		TEST(test_extract__system_tar_through_a_pipe),
		TEST(test_extract__missing_dest),
	};
	int failed;

	failed = cmocka_run_group_tests_name("confined", tests, group_confined, NULL);
	failed += cmocka_run_group_tests_name("in-process", tests, group_in_process, NULL);
	return failed;
}
