/*
 * Unit tests for engine/artifacts.c: the engine's limits and stats mapped onto
 * images/' extractor with KCI_EXTRACT_ARTIFACTS, as a job's artifacts go
 * through it. The policy itself is tested in tests/unit/images/test_extract.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "engine/internal.h"

struct fx {
	char dir[64], dest[128];
};

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

	umask(022);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/kci-test-artifacts-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->dest, sizeof(fx->dest), "%s/dest", fx->dir);
	if (mkdir(fx->dest, 0700) < 0)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	kci_rm_rf(fx->dir, NULL);
	free(fx);
	return 0;
}

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

/* One entry: a regular file with text, or a symlink to link. */
static void
put(struct tarw *w, const char *name, mode_t mode, const char *text, const char *link)
{
	struct archive_entry *e = archive_entry_new();
	size_t len = text ? strlen(text) : 0;

	archive_entry_set_pathname(e, name);
	archive_entry_set_mode(e, mode);
	if (link)
		archive_entry_set_symlink(e, link);
	else
		archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(w->a, e), ARCHIVE_OK);
	if (len)
		assert_int_equal(archive_write_data(w->a, text, len), (la_ssize_t)len);
	archive_entry_free(e);
}

/* The archive as the spool file art_extract reads, rewound. */
static int
tar_end(struct tarw *w)
{
	int fd = memfd_create("artifacts", MFD_CLOEXEC);

	assert_int_equal(archive_write_close(w->a), ARCHIVE_OK);
	archive_write_free(w->a);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, w->buf, w->len), (ssize_t)w->len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	free(w->buf);
	return fd;
}

static int
run(const struct fx *fx, struct tarw *w, const struct art_limits *lim, struct art_stats *st,
    struct kci_err *err)
{
	int fd = tar_end(w), rc = art_extract(fd, fx->dest, lim, st, err);

	close(fd);
	return rc;
}

static mode_t
perm_of(const struct fx *fx, const char *rel)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", fx->dest, rel);
	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static void
test_artifacts__guest_modes_clamped(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct art_stats st;
	struct tarw w;

	tar_begin(&w);
	put(&w, "out/world-writable", AE_IFREG | 0777, "x", NULL);
	put(&w, "out/setuid", AE_IFREG | 04755, "x", NULL);
	put(&w, "out/shared", AE_IFREG | 0666, "x", NULL);
	put(&w, "out/sticky", AE_IFDIR | 01777, NULL, NULL);
	if (run(fx, &w, NULL, &st, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(perm_of(fx, "out/world-writable"), 0755);
	assert_int_equal(perm_of(fx, "out/setuid"), 0755);
	assert_int_equal(perm_of(fx, "out/shared"), 0644);
	assert_int_equal(perm_of(fx, "out/sticky"), 0755);
	assert_int_equal(perm_of(fx, "out"), 0755);
	assert_int_equal(st.files, 5);
	assert_int_equal(st.bytes, 3);
}

static void
test_artifacts__limits_are_the_engines(void **state)
{
	static const struct art_limits ten_bytes = { 10, 100 }, two_files = { 1 << 20, 2 };
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct art_stats st;
	struct tarw w;

	tar_begin(&w);
	put(&w, "a", AE_IFREG | 0644, "0123456789", NULL);
	put(&w, "b", AE_IFREG | 0644, "!", NULL);
	assert_int_equal(run(fx, &w, &ten_bytes, &st, &err), KCI_NOSPACE);
	assert_string_equal(err.msg, "artifacts: files add up to more than 10 bytes");
	assert_int_equal(st.bytes, 10);
	assert_int_equal(st.files, 1);
	assert_int_equal(kci_rm_rf(fx->dest, NULL), 0);
	assert_int_equal(mkdir(fx->dest, 0700), 0);
	tar_begin(&w);
	put(&w, "x/y/z", AE_IFREG | 0644, "deep", NULL);
	assert_int_equal(run(fx, &w, &two_files, &st, &err), KCI_INVALID);
	assert_string_equal(err.msg, "artifacts: more than 2 files");
}

static void
test_artifacts__escape_named_for_the_job(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct tarw w;

	tar_begin(&w);
	put(&w, "etc-link", AE_IFLNK | 0777, NULL, "/etc");
	assert_int_equal(run(fx, &w, NULL, NULL, &err), KCI_INVALID);
	assert_string_equal(err.msg,
			    "artifact 'etc-link': symlink to '/etc' points outside the archive");
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_artifacts__guest_modes_clamped),
		TEST(test_artifacts__limits_are_the_engines),
		TEST(test_artifacts__escape_named_for_the_job),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
