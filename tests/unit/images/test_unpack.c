/*
 * Unit tests for layer unpacking (images/unpack.c, the extractor with
 * KCI_EXTRACT_LAYER): a normal tree, compressions, diff_ids and the layer
 * semantics (whiteouts, opaque directories, replacements), applied in-process
 * and through the confined child. Hostile layers and the sandbox are
 * test_unpack_hostile.c's; the shared fixture is unpack_fixture.h.
 */
#include "unpack_fixture.h"

#include <sys/sysmacros.h>
#include <sys/xattr.h>

/* ---- a normal tree ---- */

/* VFS_CAP_REVISION_2 | effective, permitted = CAP_NET_RAW (13). */
static const unsigned char file_caps[20] = { 0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0 };

static void
build_tree(struct tarw *w)
{
	static const struct spec plain[] = {
		{ 'd', "tmp", NULL, 01777 },
		{ 'l', "etc/link", "/etc/hello", 0 },
		{ 'h', "etc/hard", "etc/hello", 0 },
		{ 'p', "run/fifo", NULL, 0620 },
		{ 'f', "deep/er/file", "implied parents\n", 0600 },
		{ 0 },
	};
	struct archive_entry *e;

	add(w, (const struct spec[]){ { 'd', "etc/", NULL, 0 }, { 0 } });
	e = entry("etc/hello", AE_IFREG | 04755);
	archive_entry_set_uid(e, 1234);
	archive_entry_set_gid(e, 5678);
	archive_entry_set_mtime(e, 1400000000, 500);
	archive_entry_xattr_add_entry(e, "user.kci", "yes", 3);
	archive_entry_xattr_add_entry(e, "trusted.overlay.opaque", "y", 1);
	archive_entry_xattr_add_entry(e, "security.capability", file_caps, sizeof(file_caps));
	put(w, e, "hello\n");
	add(w, plain);
	e = entry("dev/null", AE_IFCHR | 0666);
	archive_entry_set_rdevmajor(e, 1);
	archive_entry_set_rdevminor(e, 3);
	put(w, e, NULL);
	e = entry("dev/loop0", AE_IFBLK | 0660);
	archive_entry_set_rdevmajor(e, 7);
	archive_entry_set_gid(e, 6);
	put(w, e, NULL);
	e = entry("etc/", AE_IFDIR | 0750);
	archive_entry_set_mtime(e, 1500000000, 0);
	put(w, e, NULL);
}

static void
check_tree(const struct fx *fx)
{
	struct stat st, hard;
	char buf[64];
	ssize_t n;

	assert_int_equal(lstat(rp(fx, "etc/hello"), &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 04755);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_mtim.tv_sec, 1400000000);
	assert_int_equal(st.st_nlink, 2);
	assert_content(rp(fx, "etc/hello"), "hello\n");
	assert_int_equal(lstat(rp(fx, "etc/hard"), &hard), 0);
	assert_int_equal(hard.st_ino, st.st_ino);
	n = lgetxattr(rp(fx, "etc/hello"), "user.kci", buf, sizeof(buf));
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "yes", 3);
	assert_int_equal(lgetxattr(rp(fx, "etc/hello"), "trusted.overlay.opaque", buf, sizeof(buf)),
			 -1);
	assert_int_equal(lgetxattr(rp(fx, "etc/hello"), "security.capability", buf, sizeof(buf)),
			 (ssize_t)sizeof(file_caps));
	assert_memory_equal(buf, file_caps, sizeof(file_caps));
	/* The directory's mtime survives the entries added to it after its header. */
	assert_int_equal(lstat(rp(fx, "etc"), &st), 0);
	assert_int_equal(st.st_mode, S_IFDIR | 0750);
	assert_int_equal(st.st_mtim.tv_sec, 1500000000);
	assert_int_equal(lstat(rp(fx, "tmp"), &st), 0);
	assert_int_equal(st.st_mode, S_IFDIR | 01777);
	n = readlink(rp(fx, "etc/link"), buf, sizeof(buf));
	assert_int_equal(n, strlen("/etc/hello"));
	assert_memory_equal(buf, "/etc/hello", (size_t)n);
	assert_int_equal(lstat(rp(fx, "etc/link"), &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, MTIME);
	assert_int_equal(lstat(rp(fx, "dev/null"), &st), 0);
	assert_int_equal(st.st_mode, S_IFCHR | 0666);
	assert_int_equal(st.st_rdev, makedev(1, 3));
	assert_int_equal(lstat(rp(fx, "dev/loop0"), &st), 0);
	assert_int_equal(st.st_mode, S_IFBLK | 0660);
	assert_int_equal(st.st_gid, 6);
	assert_int_equal(lstat(rp(fx, "run/fifo"), &st), 0);
	assert_int_equal(st.st_mode, S_IFIFO | 0620);
	assert_content(rp(fx, "deep/er/file"), "implied parents\n");
	assert_int_equal(type_of(rp(fx, "deep/er")), S_IFDIR);
}

static void
test_unpack__normal_tree(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct kci_extract_stats stats;
	struct tarw w;
	char id[72], *blob;

	tar_begin(&w);
	build_tree(&w);
	blob = tar_end(fx, &w, ARCHIVE_FILTER_GZIP, id);
	assert_int_equal(apply_direct(fx, blob, id, NULL, &stats, &err), 0);
	check_tree(fx);
	assert_int_equal(stats.entries, 10);
	/* trusted.*, once or twice: libarchive writes both LIBARCHIVE.xattr and SCHILY.xattr. */
	assert_true(stats.skipped_xattrs >= 1);
	free(blob);
}

static void
test_unpack__normal_tree_in_child(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct tarw w;
	char id[72], *blob;

	tar_begin(&w);
	build_tree(&w);
	blob = tar_end(fx, &w, ARCHIVE_FILTER_ZSTD, id);
	if (apply_child(fx, blob, id, &err) != 0)
		fail_msg("%s", err.msg);
	check_tree(fx);
	assert_canary_intact(fx);
	free(blob);
}

static void
test_unpack__compressions(void **state)
{
	static const int filters[] = { ARCHIVE_FILTER_NONE, ARCHIVE_FILTER_GZIP,
				       ARCHIVE_FILTER_ZSTD };
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct tarw w;
	char id[72], name[32], *blob;

	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		tar_begin(&w);
		add(&w, (const struct spec[]){ { 'f', name, "data\n", 0 }, { 0 } });
		blob = tar_end(fx, &w, filters[i], id);
		assert_int_equal(apply_direct(fx, blob, id, NULL, NULL, &err), 0);
		assert_content(rp(fx, name), "data\n");
		free(blob);
	}
}

static void
test_unpack__diff_id_mismatch(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	const char *wrong =
		"sha256:0000000000000000000000000000000000000000000000000000000000000000";
	struct tarw w;
	char id[72], *blob;

	tar_begin(&w);
	add(&w, (const struct spec[]){ { 'f', "f", "data\n", 0 }, { 0 } });
	blob = tar_end(fx, &w, ARCHIVE_FILTER_GZIP, id);
	assert_int_equal(apply_direct(fx, blob, wrong, NULL, NULL, &err), KCI_DIGEST);
	assert_non_null(strstr(err.msg, wrong));
	assert_non_null(strstr(err.msg, id));
	assert_int_equal(apply_child(fx, blob, wrong, &err), KCI_DIGEST);
	assert_non_null(strstr(err.msg, id));
	assert_int_equal(apply_direct(fx, blob, "sha256:abc", NULL, NULL, &err), KCI_INVALID);
	free(blob);
}

/* ---- layer semantics ---- */

static const struct spec lower[] = {
	{ 'f', "a/x", "x\n", 0 },
	{ 'f', "a/y", "y\n", 0 },
	{ 'f', "b/c", "c\n", 0 },
	{ 'f', "d/old", "old\n", 0 },
	{ 'f', "d/sub/old2", "old2\n", 0 },
	{ 'f', "d/kept/lower", "lower\n", 0 },
	{ 'd', "p", NULL, 0 },
	{ 'f', "p/child", "child\n", 0 },
	{ 'f', "q", "q\n", 0 },
	{ 'l', "r", "p", 0 },
	{ 'f', "s", "s\n", 0 },
	{ 'f', "m/one", "one\n", 0 },
	{ 'f', "same", "lower\n", 0 },
	{ 0 },
};

static const struct spec upper[] = {
	{ 'f', "a/.wh.x", NULL, 0 },
	{ 'f', ".wh.b", NULL, 0 },
	/* Written before its own whiteout in the same layer: it stays. */
	{ 'f', "same", "upper\n", 0 },
	{ 'f', ".wh.same", NULL, 0 },
	{ 'f', ".wh.nothing-there", NULL, 0 },
	{ 'd', "d", NULL, 0 },
	{ 'f', "d/new", "new\n", 0 },
	{ 'd', "d/kept", NULL, 0 },
	{ 'f', "d/.wh..wh..opq", NULL, 0 },
	{ 'f', "d/after", "after\n", 0 },
	{ 'f', "p", "now a file\n", 0 },
	{ 'd', "q", NULL, 0700 },
	{ 'f', "q/inner", "inner\n", 0 },
	{ 'd', "r", NULL, 0 },
	{ 'l', "s", "q", 0 },
	{ 'd', "m", NULL, 0 },
	{ 'f', "m/two", "two\n", 0 },
	{ 'f', ".wh..wh.plnk", NULL, 0 },
	{ 0 },
};

static void
test_unpack__whiteouts_opaque_and_replacement(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct tarw w;
	char ids[2][72], *blobs[2];

	tar_begin(&w);
	add(&w, lower);
	blobs[0] = tar_end(fx, &w, ARCHIVE_FILTER_GZIP, ids[0]);
	tar_begin(&w);
	add(&w, upper);
	blobs[1] = tar_end(fx, &w, ARCHIVE_FILTER_ZSTD, ids[1]);
	const char *paths[2] = { blobs[0], blobs[1] }, *diff_ids[2] = { ids[0], ids[1] };
	if (kci_images_unpack(fx->root, paths, diff_ids, 2, UINT64_MAX, &err) != 0)
		fail_msg("%s", err.msg);
	/* whiteouts */
	assert_int_equal(type_of(rp(fx, "a/x")), 0);
	assert_content(rp(fx, "a/y"), "y\n");
	assert_int_equal(type_of(rp(fx, "b")), 0);
	assert_content(rp(fx, "same"), "upper\n");
	assert_int_equal(type_of(rp(fx, ".wh.nothing-there")), 0);
	assert_int_equal(type_of(rp(fx, ".wh..wh.plnk")), 0);
	/* opaque: lower contents gone however deep, this layer's kept either side of the marker */
	assert_int_equal(type_of(rp(fx, "d/old")), 0);
	assert_int_equal(type_of(rp(fx, "d/sub")), 0);
	assert_int_equal(type_of(rp(fx, "d/kept/lower")), 0);
	assert_int_equal(type_of(rp(fx, "d/kept")), S_IFDIR);
	assert_content(rp(fx, "d/new"), "new\n");
	assert_content(rp(fx, "d/after"), "after\n");
	assert_int_equal(type_of(rp(fx, "d/.wh..wh..opq")), 0);
	/* type replacement both ways, and directories merging */
	assert_content(rp(fx, "p"), "now a file\n");
	assert_int_equal(type_of(rp(fx, "q")), S_IFDIR);
	assert_content(rp(fx, "q/inner"), "inner\n");
	assert_int_equal(type_of(rp(fx, "r")), S_IFDIR);
	assert_int_equal(type_of(rp(fx, "p/child")), 0);
	assert_int_equal(type_of(rp(fx, "s")), S_IFLNK);
	assert_content(rp(fx, "m/one"), "one\n");
	assert_content(rp(fx, "m/two"), "two\n");
	assert_canary_intact(fx);
	free(blobs[0]);
	free(blobs[1]);
}

static void
test_unpack__root_entry_sets_root_metadata(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct stat st;
	struct tarw w;
	char id[72], *blob;

	tar_begin(&w);
	add(&w, (const struct spec[]){ { 'd', "./", NULL, 0700 },
				       { 'f', "./etc/os-release", "ID=test\n", 0 },
				       { 0 } });
	blob = tar_end(fx, &w, ARCHIVE_FILTER_NONE, id);
	assert_int_equal(apply_direct(fx, blob, id, NULL, NULL, &err), 0);
	assert_int_equal(lstat(fx->root, &st), 0);
	assert_int_equal(st.st_mode, S_IFDIR | 0700);
	assert_int_equal(st.st_mtim.tv_sec, MTIME);
	assert_content(rp(fx, "etc/os-release"), "ID=test\n");
	free(blob);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_unpack__normal_tree),
		TEST(test_unpack__normal_tree_in_child),
		TEST(test_unpack__compressions),
		TEST(test_unpack__diff_id_mismatch),
		TEST(test_unpack__whiteouts_opaque_and_replacement),
		TEST(test_unpack__root_entry_sets_root_metadata),
	};

	if (geteuid() != 0) {
		/* Owners, device nodes and the sandbox's mount namespace need root. */
		printf("test_unpack: skipped, needs root\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
