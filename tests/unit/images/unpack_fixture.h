/*
 * Shared by the layer-unpacking tests (test_unpack.c, test_unpack_hostile.c):
 * a temp dir holding the root, the blobs and a canary beside the root; layers
 * written with libarchive; and applying them in-process or through the
 * confined child.
 */
#ifndef KCI_TEST_UNPACK_FIXTURE_H
#define KCI_TEST_UNPACK_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/xalloc.h"
#include "images/extract.h"
#include "images/images.h"

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

static inline int
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

static inline int
teardown(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;

	kci_rm_rf(fx->dir, &err);
	free(fx);
	return 0;
}

/* A path beneath the root; four rotating buffers, enough for one assertion. */
static inline const char *
rp(const struct fx *fx, const char *rel)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", fx->root, rel);
	return b;
}

static inline size_t
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
static inline void
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

static inline la_ssize_t
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

static inline void
tar_begin(struct tarw *w)
{
	memset(w, 0, sizeof(*w));
	w->a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(w->a), ARCHIVE_OK);
	assert_int_equal(archive_write_open(w->a, w, NULL, mem_write, NULL), ARCHIVE_OK);
}

static inline struct archive_entry *
entry(const char *name, mode_t mode)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_mode(e, mode);
	archive_entry_set_mtime(e, MTIME, 0);
	return e;
}

/* Writes e (and frees it); data is a regular file's contents. */
static inline void
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

static inline const char *
expand(const char *s)
{
	if (s && strcmp(s, "@C") == 0)
		return canary_abs;
	if (s && strcmp(s, "@D") == 0)
		return canary_dir_abs;
	return s;
}

static inline void
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
static inline char *
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
static inline char *
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

static inline int
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
static inline int
apply_child(const struct fx *fx, const char *blob, const char *diff_id, struct kci_err *err)
{
	const char *blobs[1] = { blob }, *ids[1] = { diff_id };

	return kci_images_unpack(fx->root, blobs, ids, 1, UINT64_MAX, err);
}

/* A single-layer tar from specs, applied through the child; returns the code. */
static inline int
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

static inline mode_t
type_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? st.st_mode & S_IFMT : 0;
}

static inline void
assert_content(const char *path, const char *want)
{
	char buf[256] = { 0 };
	int fd = open(path, O_RDONLY | O_NOFOLLOW);

	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
	close(fd);
	assert_string_equal(buf, want);
}

#endif
