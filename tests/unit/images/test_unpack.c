/*
 * Unit tests for layer unpacking (images/unpack.c, the extractor with
 * KCI_EXTRACT_LAYER). Layers are written with libarchive at test time, applied
 * in-process and through the confined child; a canary outside the root must
 * come through every hostile layer unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/xalloc.h"
#include "images/images.h"
#include "images/extract.h"

#define CANARY_TEXT "precious\n"
#define MTIME	    1600000000

struct fx {
	char dir[64];
	char root[128], blobs[128], canary_dir[128], canary[160];
	struct stat canary_st, canary_dir_st;
	int n_blobs;
};

/* Absolute paths of the canary and its directory, for builders that take no arguments. */
static char canary_abs[160], canary_dir_abs[128];

/* A tar being written to memory. */
struct tarw {
	struct archive *a;
	char *buf;
	size_t len, cap;
};

static int
setup(void **state)
{
	struct fx *fx = kci_xcalloc(1, sizeof(*fx));
	struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	int fd;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/kci-test-unpack-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->root, sizeof(fx->root), "%s/rootfs", fx->dir);
	snprintf(fx->blobs, sizeof(fx->blobs), "%s/blobs", fx->dir);
	snprintf(fx->canary_dir, sizeof(fx->canary_dir), "%s/canary-dir", fx->dir);
	snprintf(fx->canary, sizeof(fx->canary), "%s/canary", fx->canary_dir);
	if (mkdir(fx->root, 0755) < 0 || mkdir(fx->blobs, 0755) < 0 || mkdir(fx->canary_dir, 0750))
		return -1;
	if ((fd = open(fx->canary, O_WRONLY | O_CREAT | O_EXCL, 0640)) < 0 ||
	    write(fd, CANARY_TEXT, strlen(CANARY_TEXT)) < 0 || fchown(fd, 4242, 4343) < 0 ||
	    futimens(fd, old) < 0 || close(fd) < 0)
		return -1;
	if (utimensat(AT_FDCWD, fx->canary_dir, old, 0) < 0 || lstat(fx->canary, &fx->canary_st) ||
	    lstat(fx->canary_dir, &fx->canary_dir_st))
		return -1;
	snprintf(canary_abs, sizeof(canary_abs), "%s", fx->canary);
	snprintf(canary_dir_abs, sizeof(canary_dir_abs), "%s", fx->canary_dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;

	kci_rm_rf(fx->dir, &err);
	free(fx);
	return 0;
}

/* A path beneath the root; four rotating buffers, enough for one assertion. */
static const char *
rp(const struct fx *fx, const char *rel)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", fx->root, rel);
	return b;
}

static size_t
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* Nothing outside the root changed: the canary file, its directory, the temp dir's listing. */
static void
assert_canary_intact(const struct fx *fx)
{
	struct stat st;
	char buf[64] = { 0 };
	int fd;

	assert_int_equal(lstat(fx->canary, &st), 0);
	assert_int_equal(st.st_mode, fx->canary_st.st_mode);
	assert_int_equal(st.st_uid, fx->canary_st.st_uid);
	assert_int_equal(st.st_gid, fx->canary_st.st_gid);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_mtim.tv_sec, fx->canary_st.st_mtim.tv_sec);
	assert_int_equal(st.st_ino, fx->canary_st.st_ino);
	assert_true((fd = open(fx->canary, O_RDONLY)) >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
	close(fd);
	assert_string_equal(buf, CANARY_TEXT);
	assert_int_equal(lstat(fx->canary_dir, &st), 0);
	assert_int_equal(st.st_mode, fx->canary_dir_st.st_mode);
	assert_int_equal(st.st_mtim.tv_sec, fx->canary_dir_st.st_mtim.tv_sec);
	assert_int_equal(count_entries(fx->canary_dir), 1);
	assert_int_equal(count_entries(fx->dir), 3); /* rootfs, blobs, canary-dir */
}

/* ---- writing layers ---- */

static la_ssize_t
mem_write(struct archive *a, void *opaque, const void *data, size_t n)
{
	struct tarw *w = opaque;

	(void)a;
	if (w->len + n > w->cap) {
		w->cap = 2 * (w->len + n);
		w->buf = kci_xrealloc(w->buf, w->cap);
	}
	memcpy(w->buf + w->len, data, n);
	w->len += n;
	return (la_ssize_t)n;
}

static void
tar_begin(struct tarw *w)
{
	memset(w, 0, sizeof(*w));
	w->a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(w->a), ARCHIVE_OK);
	assert_int_equal(archive_write_open(w->a, w, NULL, mem_write, NULL), ARCHIVE_OK);
}

static struct archive_entry *
entry(const char *name, mode_t mode)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_mode(e, mode);
	archive_entry_set_mtime(e, MTIME, 0);
	return e;
}

/* Writes e (and frees it); data is a regular file's contents. */
static void
put(struct tarw *w, struct archive_entry *e, const char *data)
{
	size_t len = data ? strlen(data) : 0;

	if (archive_entry_filetype(e) == AE_IFREG)
		archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(w->a, e), ARCHIVE_OK);
	if (len)
		assert_int_equal(archive_write_data(w->a, data, len), (la_ssize_t)len);
	archive_entry_free(e);
}

/*
 * A layer entry as data: 'f' file, 'd' directory, 'l' symlink, 'h' hardlink,
 * 'p' fifo. In name and arg, "@C" stands for the canary's absolute path and
 * "@D" for its directory's.
 */
struct spec {
	char type;
	const char *name;
	const char *arg; /* contents or link target */
	mode_t perm;	 /* 0: 0644, directories 0755 */
};

static const char *
expand(const char *s)
{
	if (s && strcmp(s, "@C") == 0)
		return canary_abs;
	if (s && strcmp(s, "@D") == 0)
		return canary_dir_abs;
	return s;
}

static void
add(struct tarw *w, const struct spec *specs)
{
	static const mode_t types[] = { ['f'] = AE_IFREG,
					['d'] = AE_IFDIR,
					['l'] = AE_IFLNK,
					['h'] = AE_IFREG,
					['p'] = AE_IFIFO };

	for (const struct spec *s = specs; s->type; s++) {
		mode_t perm = s->perm ? s->perm : s->type == 'd' ? 0755 : 0644;
		struct archive_entry *e = entry(expand(s->name), types[(int)s->type] | perm);
		if (s->type == 'l')
			archive_entry_set_symlink(e, expand(s->arg));
		if (s->type == 'h')
			archive_entry_set_hardlink(e, expand(s->arg));
		put(w, e, s->type == 'f' ? s->arg : NULL);
	}
}

/* Writes bytes to blobs/N compressed with filter; returns the path (malloc'd). */
static char *
write_blob(struct fx *fx, const void *data, size_t len, int filter)
{
	char *path = kci_xasprintf("%s/%d.blob", fx->blobs, fx->n_blobs++);
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	if (filter == ARCHIVE_FILTER_GZIP)
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	else if (filter == ARCHIVE_FILTER_ZSTD)
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	archive_entry_set_pathname(e, "layer");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (len)
		assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(e);
	return path;
}

/* Ends the tar and writes it as a blob; diff_id gets the uncompressed stream's digest. */
static char *
tar_end(struct fx *fx, struct tarw *w, int filter, char diff_id[72])
{
	struct kci_sha256 *h = kci_sha256_new();
	char hex[65], *path;

	assert_int_equal(archive_write_close(w->a), ARCHIVE_OK);
	archive_write_free(w->a);
	kci_sha256_update(h, w->buf, w->len);
	kci_sha256_hex(h, hex);
	snprintf(diff_id, 72, "sha256:%s", hex);
	path = write_blob(fx, w->buf, w->len, filter);
	free(w->buf);
	return path;
}

/* ---- applying them ---- */

static int
apply_direct(const struct fx *fx, const char *blob, const char *diff_id,
	     const struct kci_extract_policy *lim, struct kci_extract_stats *stats,
	     struct kci_err *err)
{
	static const struct kci_extract_policy layer = KCI_EXTRACT_LAYER;
	int root_fd = open(fx->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int blob_fd = open(blob, O_RDONLY | O_CLOEXEC);
	int rc;

	assert_true(root_fd >= 0 && blob_fd >= 0);
	rc = extract_stream(root_fd, blob_fd, lim ? lim : &layer, diff_id, stats, err);
	close(root_fd);
	close(blob_fd);
	return rc;
}

/* One layer through the confined child; diff_id may be NULL. */
static int
apply_child(const struct fx *fx, const char *blob, const char *diff_id, struct kci_err *err)
{
	const char *blobs[1] = { blob }, *ids[1] = { diff_id };

	return kci_images_unpack(fx->root, blobs, ids, 1, UINT64_MAX, err);
}

/* A single-layer tar from specs, applied through the child; returns the code. */
static int
child_layer(struct fx *fx, const struct spec *specs, struct kci_err *err)
{
	struct tarw w;
	char id[72], *blob;
	int rc;

	tar_begin(&w);
	add(&w, specs);
	blob = tar_end(fx, &w, ARCHIVE_FILTER_GZIP, id);
	rc = apply_child(fx, blob, id, err);
	free(blob);
	return rc;
}

static mode_t
type_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? st.st_mode & S_IFMT : 0;
}

static void
assert_content(const char *path, const char *want)
{
	char buf[256] = { 0 };
	int fd = open(path, O_RDONLY | O_NOFOLLOW);

	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
	close(fd);
	assert_string_equal(buf, want);
}

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

/* ---- hostile layers, through the confined child ---- */

static void
test_unpack__hostile_dotdot_and_absolute_names_contained(void **state)
{
	static const struct spec names[] = {
		{ 'f', "../escape", "out\n", 0 },
		{ 'f', "../../../../canary-dir/canary", "pwned\n", 0777 },
		{ 'f', "a/../../b", "b\n", 0 },
		{ 'f', "@C", "pwned\n", 0777 },
		{ 0 },
	};
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;

	if (child_layer(fx, names, &err) != 0)
		fail_msg("%s", err.msg);
	/* ".." and "/" stop at the root: the entries land inside it. */
	assert_content(rp(fx, "escape"), "out\n");
	assert_content(rp(fx, "canary-dir/canary"), "pwned\n");
	assert_content(rp(fx, "b"), "b\n");
	assert_content(rp(fx, canary_abs + 1), "pwned\n");
	assert_canary_intact(fx);
}

static void
test_unpack__hostile_symlink_write_through(void **state)
{
	static const struct spec absolute[] = {
		{ 'l', "evil", "@D", 0 },
		{ 'f', "evil/file", "pwned\n", 0 },
		{ 'f', "evil/canary", "pwned\n", 0777 },
		{ 0 },
	};
	static const struct spec relative[] = {
		{ 'l', "rel", "../../../..", 0 },
		{ 'f', "rel/canary-dir/canary", "pwned\n", 0777 },
		{ 0 },
	};
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;

	/* The symlink resolves to a path inside the root that does not exist. */
	assert_int_equal(child_layer(fx, absolute, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "dangling symlink"));
	assert_canary_intact(fx);
	if (child_layer(fx, relative, &err) != 0)
		fail_msg("%s", err.msg);
	assert_content(rp(fx, "canary-dir/canary"), "pwned\n");
	assert_canary_intact(fx);
}

static void
test_unpack__hostile_metadata_through_symlink(void **state)
{
	static const struct spec specs[] = {
		{ 'l', "evil", "@C", 0 },
		{ 'f', "evil", "replaced\n", 06777 },
		{ 'l', "evildir", "@D", 0 },
		{ 'd', "evildir", NULL, 0777 },
		{ 'l', "evilnode", "@C", 0 },
		{ 'p', "evilnode", NULL, 0777 },
		{ 0 },
	};
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;

	if (child_layer(fx, specs, &err) != 0)
		fail_msg("%s", err.msg);
	assert_content(rp(fx, "evil"), "replaced\n");
	assert_int_equal(type_of(rp(fx, "evildir")), S_IFDIR);
	assert_int_equal(type_of(rp(fx, "evilnode")), S_IFIFO);
	assert_canary_intact(fx);
}

static void
test_unpack__hostile_hardlinks(void **state)
{
	static const struct spec rejected[][3] = {
		{ { 'l', "out", "@D", 0 }, { 'h', "h", "out/canary", 0 }, { 0 } },
		{ { 'h', "h", "@C", 0 }, { 0 } },
		{ { 'h', "h", "../canary-dir/canary", 0 }, { 0 } },
		{ { 'd', "dir", NULL, 0 }, { 'h', "h", "dir", 0 }, { 0 } },
	};
	/* A link to a symlink links the symlink itself; replacing it leaves the target alone. */
	static const struct spec to_symlink[] = {
		{ 'l', "outf", "@C", 0 },
		{ 'h', "h2", "outf", 0 },
		{ 'f', "h2", "replaced\n", 0777 },
		{ 0 },
	};
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;

	for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++) {
		assert_int_equal(child_layer(fx, rejected[i], &err), KCI_INVALID);
		assert_non_null(strstr(err.msg, i < 3 ? "not found" : "to directory"));
		assert_canary_intact(fx);
	}
	if (child_layer(fx, to_symlink, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(type_of(rp(fx, "outf")), S_IFLNK);
	assert_content(rp(fx, "h2"), "replaced\n");
	assert_canary_intact(fx);
}

static void
test_unpack__hostile_dot_names_rejected(void **state)
{
	static const struct spec rejected[][2] = {
		{ { 'f', ".wh..", NULL, 0 }, { 0 } },	   /* whiteout of "." */
		{ { 'f', "sub/.wh...", NULL, 0 }, { 0 } }, /* whiteout of ".." */
		{ { 'l', ".", "@D", 0 }, { 0 } },	   { { 'f', "a/..", "x\n", 0 }, { 0 } },
		{ { 'd', "a/.", NULL, 0777 }, { 0 } },
	};
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;

	for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++) {
		assert_int_equal(child_layer(fx, rejected[i], &err), KCI_INVALID);
		assert_canary_intact(fx);
		assert_int_equal(type_of(fx->root), S_IFDIR);
	}
}

/* A hand-made ustar header: libarchive's writer refuses an empty name. */
static void
ustar_header(unsigned char h[512], const char *name, char type)
{
	unsigned sum = 0;

	memset(h, 0, 512);
	memcpy(h, name, strlen(name));
	memcpy(h + 100, "0000644", 7);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	memcpy(h + 124, "00000000000", 11);
	memcpy(h + 136, "00000000000", 11);
	h[156] = (unsigned char)type;
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

static void
test_unpack__hostile_empty_name_rejected(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	unsigned char tar[512 * 4] = { 0 };
	char *blob;

	ustar_header(tar, "", '0');
	blob = write_blob(fx, tar, sizeof(tar), ARCHIVE_FILTER_NONE);
	assert_int_equal(apply_child(fx, blob, NULL, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "empty name"));
	assert_canary_intact(fx);
	free(blob);
}

static void
test_unpack__caps(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct kci_extract_policy lim = KCI_EXTRACT_LAYER;
	struct archive_entry *e;
	struct tarw w;
	char id[72], name[32], *blob, *big = kci_xcalloc(1, 1 << 20);
	char long_name[200];

	tar_begin(&w);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		add(&w, (const struct spec[]){ { 'f', name, "x", 0 }, { 0 } });
	}
	memset(big, 'z', (1 << 20) - 1);
	add(&w, (const struct spec[]){ { 'f', "big", big, 0 }, { 0 } });
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	add(&w, (const struct spec[]){ { 'f', long_name, "x", 0 }, { 0 } });
	e = entry("xattr", AE_IFREG | 0644);
	archive_entry_xattr_add_entry(e, "user.big", big, 2048);
	put(&w, e, NULL);
	/* gzip squeezes the megabyte of 'z' into a few KiB: a small bomb. */
	blob = tar_end(fx, &w, ARCHIVE_FILTER_GZIP, id);
	lim.max_entries = 5;
	assert_int_equal(apply_direct(fx, blob, id, &lim, NULL, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "layer: more than 5 entries"));
	lim = (struct kci_extract_policy)KCI_EXTRACT_LAYER;
	lim.max_stream = 256 * 1024;
	assert_int_equal(apply_direct(fx, blob, id, &lim, NULL, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "layer: tar stream larger than 262144 bytes"));
	lim = (struct kci_extract_policy)KCI_EXTRACT_LAYER;
	lim.max_path = 128;
	assert_int_equal(apply_direct(fx, blob, id, &lim, NULL, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "name longer than 128 bytes"));
	lim = (struct kci_extract_policy)KCI_EXTRACT_LAYER;
	lim.max_xattr = 1024;
	assert_int_equal(apply_direct(fx, blob, id, &lim, NULL, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "xattr 'user.big' larger than 1024 bytes"));
	lim = (struct kci_extract_policy)KCI_EXTRACT_LAYER;
	if (apply_direct(fx, blob, id, &lim, NULL, &err) != 0)
		fail_msg("%s", err.msg);
	free(big);
	free(blob);
}

static void
test_unpack__not_a_layer(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	char garbage[4096], *blob;
	const char *missing[1] = { "/nonexistent/kci-layer" };

	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)(i * 7 + 3);
	blob = write_blob(fx, garbage, sizeof(garbage), ARCHIVE_FILTER_NONE);
	assert_int_equal(apply_child(fx, blob, NULL, &err), KCI_INVALID);
	free(blob);
	blob = write_blob(fx, "", 0, ARCHIVE_FILTER_NONE);
	assert_int_equal(apply_direct(fx, blob, NULL, NULL, NULL, &err), KCI_INVALID);
	free(blob);
	blob = write_blob(fx, garbage, sizeof(garbage), ARCHIVE_FILTER_GZIP);
	assert_int_equal(apply_direct(fx, blob, NULL, NULL, NULL, &err), KCI_INVALID);
	free(blob);
	assert_int_equal(kci_images_unpack(fx->root, missing, NULL, 1, UINT64_MAX, &err),
			 KCI_NOTFOUND);
	assert_canary_intact(fx);
}

/* ---- the sandbox itself ---- */

/*
 * Forks, confines the child to the root and runs `what` there (0: allowed
 * work; 1-4: socket, execve, mount, ptrace); returns its wait status.
 */
static int
confined(struct fx *fx, int what)
{
	static const struct kci_extract_policy layer = KCI_EXTRACT_LAYER;
	struct kci_err err = KCI_ERR_INIT;
	int status, root_fd;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		root_fd = open(fx->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (root_fd < 0 || extract_confine(&root_fd, NULL, 0, &layer, &err) < 0)
			_exit(100);
		switch (what) {
		case 0: /* allowed work, and the chroot hides the host's files */
			_exit(mkdirat(root_fd, "made", 0755) == 0 &&
					      open("/etc/passwd", O_RDONLY) < 0
				      ? 0
				      : 101);
		case 1:
			socket(AF_INET, SOCK_STREAM, 0);
			break;
		case 2:
			execl("/bin/true", "true", (char *)NULL);
			break;
		case 3:
			mount("none", "/", "tmpfs", 0, NULL);
			break;
		case 4:
			ptrace(PTRACE_TRACEME, 0, NULL, NULL);
			break;
		}
		_exit(102);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void
test_unpack__sandbox_allows_work_and_kills_the_rest(void **state)
{
	struct fx *fx = *state;
	int status;

	status = confined(fx, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(type_of(rp(fx, "made")), S_IFDIR);
	for (int what = 1; what <= 4; what++) {
		status = confined(fx, what);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGSYS);
	}
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
		TEST(test_unpack__hostile_dotdot_and_absolute_names_contained),
		TEST(test_unpack__hostile_symlink_write_through),
		TEST(test_unpack__hostile_metadata_through_symlink),
		TEST(test_unpack__hostile_hardlinks),
		TEST(test_unpack__hostile_dot_names_rejected),
		TEST(test_unpack__hostile_empty_name_rejected),
		TEST(test_unpack__caps),
		TEST(test_unpack__not_a_layer),
		TEST(test_unpack__sandbox_allows_work_and_kills_the_rest),
	};

	if (geteuid() != 0) {
		/* Owners, device nodes and the sandbox's mount namespace need root. */
		printf("test_unpack: skipped, needs root\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
