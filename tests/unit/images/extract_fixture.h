/*
 * Shared by the extractor's tests under the artifact policy (test_extract.c,
 * test_extract_hostile.c): a temp dir holding dest and a canary beside it,
 * archives written to memory with libarchive, the extractor run with
 * KCI_EXTRACT_ARTIFACTS and its outcome checked, and the two groups every
 * test runs in: confined, as kci does, and in-process, as the fuzz target.
 */
#ifndef KCI_TEST_EXTRACT_FIXTURE_H
#define KCI_TEST_EXTRACT_FIXTURE_H

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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "images/extract.h"

#define CANARY_TEXT "precious\n"
#define MTIME	    1600000000

struct fx {
	char dir[64];
	char dest[128], canary_dir[128], canary[160];
	struct stat canary_st, canary_dir_st;
	bool confined; /* extract in the confined child, as kci does */
};

/* Caps of a test, for the artifact policy. */
struct caps {
	uint64_t bytes;
	uint64_t names;
};

/* A tar being written to memory. */
struct tarw {
	struct archive *a;
	char *buf;
	size_t len, cap;
};

/* The group's state is whether it runs confined; each test's, its fixture. */
static inline int
setup(void **state)
{
	struct fx *fx = kci_xcalloc(1, sizeof(*fx));
	struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	int fd;

	fx->confined = *(const bool *)*state;
	umask(022);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/kci-test-extract-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->dest, sizeof(fx->dest), "%s/dest", fx->dir);
	snprintf(fx->canary_dir, sizeof(fx->canary_dir), "%s/canary-dir", fx->dir);
	snprintf(fx->canary, sizeof(fx->canary), "%s/canary", fx->canary_dir);
	if (mkdir(fx->dest, 0700) < 0 || mkdir(fx->canary_dir, 0750) < 0)
		return -1;
	if ((fd = open(fx->canary, O_WRONLY | O_CREAT | O_EXCL, 0640)) < 0 ||
	    write(fd, CANARY_TEXT, strlen(CANARY_TEXT)) < 0 || futimens(fd, old) < 0 ||
	    close(fd) < 0)
		return -1;
	if (utimensat(AT_FDCWD, fx->canary_dir, old, 0) < 0 || lstat(fx->canary, &fx->canary_st) ||
	    lstat(fx->canary_dir, &fx->canary_dir_st))
		return -1;
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

/* A path beneath dest; four rotating buffers, enough for one assertion. */
static inline const char *
dp(const struct fx *fx, const char *rel)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", fx->dest, rel);
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

/* Nothing outside dest changed: the canary, its directory, the temp dir's listing. */
static inline void
assert_canary_intact(const struct fx *fx)
{
	struct stat st;
	char buf[64] = { 0 };
	int fd;

	assert_int_equal(lstat(fx->canary, &st), 0);
	assert_int_equal(st.st_mode, fx->canary_st.st_mode);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_size, fx->canary_st.st_size);
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
	assert_int_equal(count_entries(fx->dir), 2); /* dest, canary-dir */
}

static inline void
assert_file(const struct fx *fx, const char *rel, const char *data, size_t len, mode_t perm)
{
	struct stat st;
	char *buf;
	int fd;

	assert_int_equal(stat(dp(fx, rel), &st), 0); /* through symlinks, once all is there */
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, perm);
	assert_int_equal(st.st_size, len);
	assert_true((fd = open(dp(fx, rel), O_RDONLY)) >= 0);
	buf = kci_xmalloc(len + 1);
	if (read(fd, buf, len + 1) != (ssize_t)len || memcmp(buf, data, len) != 0) {
		free(buf);
		fail_msg("%s: contents differ", rel);
	}
	close(fd);
	free(buf);
}

/* ---- writing archives ---- */

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
tar_begin_as(struct tarw *w, int format)
{
	memset(w, 0, sizeof(*w));
	w->a = archive_write_new();
	assert_int_equal(archive_write_set_format(w->a, format), ARCHIVE_OK);
	assert_int_equal(archive_write_set_bytes_in_last_block(w->a, 1), ARCHIVE_OK);
	assert_int_equal(archive_write_open(w->a, w, NULL, mem_write, NULL), ARCHIVE_OK);
}

static inline void
tar_begin(struct tarw *w)
{
	tar_begin_as(w, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
}

/* Writes len bytes into a fresh memfd, rewound: what the extractor reads. */
static inline int
bytes_fd(const char *data, size_t len)
{
	int fd = memfd_create("artifacts", MFD_CLOEXEC);

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Finishes the archive; its first keep bytes (all if keep is 0) as an fd. */
static inline int
tar_end(struct tarw *w, size_t keep)
{
	int fd;

	assert_int_equal(archive_write_close(w->a), ARCHIVE_OK);
	archive_write_free(w->a);
	fd = bytes_fd(w->buf, keep && keep < w->len ? keep : w->len);
	free(w->buf);
	return fd;
}

/* One entry, with data of len bytes for a regular file (and its size set). */
static inline void
put(struct tarw *w, const char *name, mode_t mode, const char *link, const char *data, size_t len)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_mode(e, mode);
	archive_entry_set_mtime(e, MTIME, 0);
	archive_entry_set_uid(e, 4242);
	if (S_ISLNK(mode))
		archive_entry_set_symlink(e, link);
	else if (link)
		archive_entry_set_hardlink(e, link);
	if (S_ISREG(mode) && !link)
		archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(w->a, e), ARCHIVE_OK);
	if (len)
		assert_int_equal(archive_write_data(w->a, data, len), (la_ssize_t)len);
	archive_entry_free(e);
}

static inline void
put_file(struct tarw *w, const char *name, mode_t perm, const char *text)
{
	put(w, name, AE_IFREG | perm, NULL, text, strlen(text));
}

static inline void
put_dir(struct tarw *w, const char *name, mode_t perm)
{
	put(w, name, AE_IFDIR | perm, NULL, NULL, 0);
}

static inline void
put_symlink(struct tarw *w, const char *name, const char *target)
{
	put(w, name, AE_IFLNK | 0777, target, NULL, 0);
}

static inline void
put_hardlink(struct tarw *w, const char *name, const char *target)
{
	put(w, name, AE_IFREG | 0644, target, NULL, 0);
}

/* ---- running the extractor ---- */

static const struct caps big = { 64 << 20, 1000 };

/* The artifact policy with caps (NULL: big), confined or not as the group says. */
static inline struct kci_extract_policy
artifacts(const struct fx *fx, const struct caps *caps)
{
	struct kci_extract_policy p = KCI_EXTRACT_ARTIFACTS;

	if (!caps)
		caps = &big;
	p.max_bytes = p.max_file = caps->bytes;
	p.max_names = caps->names;
	p.confined = fx->confined;
	return p;
}

/* Extracts fd (consumed) into dest with p; returns the code, err and stats for inspection. */
static inline int
extract_with(const struct fx *fx, int fd, const struct kci_extract_policy *p,
	     struct kci_extract_stats *st, struct kci_err *err)
{
	int rc = kci_images_extract(fx->dest, fd, p, NULL, st, err);

	close(fd);
	return rc;
}

/* Extracts fd (consumed) into dest with the artifact policy and caps (NULL: big). */
static inline int
extract(const struct fx *fx, int fd, const struct caps *caps, struct kci_extract_stats *st,
	struct kci_err *err)
{
	struct kci_extract_policy p = artifacts(fx, caps);

	return extract_with(fx, fd, &p, st, err);
}

/* Extraction fails with KCI_INVALID and exactly msg, and nothing outside dest changed. */
static inline void
assert_refused(const struct fx *fx, int fd, const struct caps *lim, const char *msg)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_extract_stats st;

	assert_int_equal(extract(fx, fd, lim, &st, &err), KCI_INVALID);
	assert_int_equal(err.code, KCI_INVALID);
	assert_string_equal(err.msg, msg);
	assert_canary_intact(fx);
}

/* Like assert_refused, for messages that end in libarchive's words. */
static inline void
assert_refused_prefix(const struct fx *fx, int fd, const char *prefix)
{
	struct kci_err err = KCI_ERR_INIT;

	assert_int_equal(extract(fx, fd, NULL, NULL, &err), KCI_INVALID);
	if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
		fail_msg("message '%s' does not start with '%s'", err.msg, prefix);
	assert_canary_intact(fx);
}

static inline void
assert_ok(const struct fx *fx, int fd, const struct caps *lim, struct kci_extract_stats *st)
{
	struct kci_err err = KCI_ERR_INIT;
	int rc = extract(fx, fd, lim, st, &err);

	if (rc != 0)
		fail_msg("extract: %d %s", rc, err.msg);
	assert_canary_intact(fx);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

static inline int
group_confined(void **state)
{
	static const bool confined = true;

	*state = (void *)&confined;
	return 0;
}

static inline int
group_in_process(void **state)
{
	static const bool confined = false;

	*state = (void *)&confined;
	return 0;
}

#endif
