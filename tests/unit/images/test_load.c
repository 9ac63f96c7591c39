/*
 * Unit tests for `kci load` of tarballs (images/load.c): a docker save archive,
 * plain or gzipped, loads; a hostile one is refused or contained by the
 * extractor (KCI_EXTRACT_LOAD), and a canary outside the store never changes.
 * Tarballs are written byte by byte here, so hostile headers (a pax hardlink
 * with data) are exactly what a tool could produce.
 */
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
#include "common/strv.h"
#include "common/xalloc.h"
#include "images/images.h"

#define CANARY_TEXT "precious\n"

struct fx {
	char dir[64];
	char home[128], canary_dir[128], canary[160], tar[160];
	struct stat canary_st;
	struct kci_images *im;
};

/* A tar being written to memory, header by header. */
struct tarb {
	char *buf;
	size_t len, cap;
};

static int
setup(void **state)
{
	struct fx *fx = kci_xcalloc(1, sizeof(*fx));
	struct kci_err err = KCI_ERR_INIT;
	int fd;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/kci-test-load-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->home, sizeof(fx->home), "%s/home", fx->dir);
	snprintf(fx->canary_dir, sizeof(fx->canary_dir), "%s/canary-dir", fx->dir);
	snprintf(fx->canary, sizeof(fx->canary), "%s/canary", fx->canary_dir);
	snprintf(fx->tar, sizeof(fx->tar), "%s/in.tar", fx->dir);
	if (mkdir(fx->home, 0700) < 0 || mkdir(fx->canary_dir, 0750) < 0)
		return -1;
	if ((fd = open(fx->canary, O_WRONLY | O_CREAT | O_EXCL, 0640)) < 0 ||
	    write(fd, CANARY_TEXT, strlen(CANARY_TEXT)) < 0 || close(fd) < 0 ||
	    lstat(fx->canary, &fx->canary_st) < 0)
		return -1;
	if (kci_images_open(&fx->im, fx->home, &err) < 0)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	kci_images_free(fx->im);
	kci_rm_rf(fx->dir, NULL);
	free(fx);
	return 0;
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

/* Nothing outside the store changed, and no extraction tree was left in it. */
static void
assert_contained(const struct fx *fx)
{
	char buf[64] = { 0 }, store[192];
	struct stat st;
	DIR *d;
	struct dirent *de;
	int fd;

	assert_int_equal(lstat(fx->canary, &st), 0);
	assert_int_equal(st.st_ino, fx->canary_st.st_ino);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_mode, fx->canary_st.st_mode);
	assert_true((fd = open(fx->canary, O_RDONLY)) >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
	close(fd);
	assert_string_equal(buf, CANARY_TEXT);
	assert_int_equal(count_entries(fx->canary_dir), 1);
	assert_non_null(d = opendir(fx->dir));
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && strcmp(de->d_name, "home") != 0 &&
		    strcmp(de->d_name, "canary-dir") != 0 && strcmp(de->d_name, "in.tar") != 0)
			fail_msg("%s appeared beside the store", de->d_name);
	closedir(d);
	snprintf(store, sizeof(store), "%s/store", fx->home);
	assert_non_null(d = opendir(store));
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "load-", 5) == 0)
			fail_msg("extraction tree %s left in the store", de->d_name);
	closedir(d);
}

/* ---- tarballs, byte by byte ---- */

static void
tb_add(struct tarb *t, const void *data, size_t len)
{
	if (t->len + len > t->cap) {
		t->cap = 2 * (t->len + len) + 4096;
		t->buf = kci_xrealloc(t->buf, t->cap);
	}
	memcpy(t->buf + t->len, data, len);
	t->len += len;
}

/* Data padded to the next 512-byte block. */
static void
tb_data(struct tarb *t, const void *data, size_t len)
{
	static const char zero[512];

	tb_add(t, data, len);
	if (len % 512)
		tb_add(t, zero, 512 - len % 512);
}

/* One ustar header: type '0' file, '1' hardlink, '2' symlink, '3' device, '5' dir, '6' fifo. */
static void
tb_entry(struct tarb *t, const char *name, char type, unsigned mode, size_t size, const char *link)
{
	unsigned char h[512];
	unsigned sum = 0;

	memset(h, 0, sizeof(h));
	memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
	snprintf((char *)h + 100, 8, "%07o", mode);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	snprintf((char *)h + 124, 12, "%011zo", size);
	memcpy(h + 136, "14000000000", 11);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strlen(link) < 100 ? strlen(link) : 100);
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	tb_add(t, h, sizeof(h));
}

/* The same with the usual modes, and 'x' for a pax header. */
static void
tb_header(struct tarb *t, const char *name, char type, size_t size, const char *link)
{
	tb_entry(t, name, type, type == '5' ? 0755 : 0644, size, link);
}

static void
tb_file(struct tarb *t, const char *name, const void *data, size_t len)
{
	tb_header(t, name, '0', len, NULL);
	tb_data(t, data, len);
}

static void
tb_text(struct tarb *t, const char *name, const char *text)
{
	tb_file(t, name, text, strlen(text));
}

/* A pax extended header for the entry that follows: kv holds key, value, ..., NULL. */
static void
tb_pax(struct tarb *t, const char *const *kv)
{
	struct tarb recs = { 0 };
	char rec[512];

	for (; kv[0]; kv += 2) {
		size_t body = strlen(kv[0]) + strlen(kv[1]) + 3, len = body + 1;
		/* The record's length counts its own digits. */
		while ((size_t)snprintf(rec, sizeof(rec), "%zu", len) + body != len)
			len = (size_t)snprintf(rec, sizeof(rec), "%zu", len) + body;
		snprintf(rec, sizeof(rec), "%zu %s=%s\n", len, kv[0], kv[1]);
		tb_add(&recs, rec, strlen(rec));
	}
	tb_header(t, "PaxHeader", 'x', recs.len, NULL);
	tb_data(t, recs.buf, recs.len);
	free(recs.buf);
}

static void
tb_end(struct tarb *t)
{
	static const char zero[1024];

	tb_add(t, zero, sizeof(zero));
}

/* Writes bytes to path, through gzip if asked. */
static void
write_file(const char *path, const void *data, size_t len, bool gzip)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	if (gzip)
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	archive_entry_set_pathname(e, "x");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (len)
		assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(e);
}

static void
sha256_of(const void *data, size_t len, char out[72])
{
	struct kci_sha256 *h = kci_sha256_new();
	char hex[65];

	kci_sha256_update(h, data, len);
	kci_sha256_hex(h, hex);
	snprintf(out, 72, "sha256:%s", hex);
}

/*
 * A docker save archive of one image, tag: one layer (a file and a symlink),
 * its config, manifest.json. A wrong diff_id when bad_diff_id. Written to
 * fx->tar, gzipped if asked. extra (may be NULL) adds entries first.
 */
static void
docker_save(struct fx *fx, const char *tag, bool bad_diff_id, bool gzip,
	    void (*extra)(struct fx *, struct tarb *))
{
	struct tarb layer = { 0 }, outer = { 0 };
	char diff_id[72], *config, *manifest;

	tb_header(&layer, "etc/", '5', 0, NULL);
	tb_text(&layer, "etc/motd", "loaded\n");
	tb_header(&layer, "etc/link", '2', 0, "motd");
	tb_end(&layer);
	sha256_of(layer.buf, layer.len, diff_id);
	if (bad_diff_id)
		diff_id[7] = diff_id[7] == '0' ? '1' : '0';
	config = kci_xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
			       "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
			       diff_id);
	manifest = kci_xasprintf("[{\"Config\":\"config.json\",\"RepoTags\":[\"%s\"],\"Layers\":["
				 "\"l1/layer.tar\"]}]",
				 tag);
	if (extra)
		extra(fx, &outer);
	tb_header(&outer, "l1/", '5', 0, NULL);
	tb_file(&outer, "l1/layer.tar", layer.buf, layer.len);
	tb_text(&outer, "config.json", config);
	tb_text(&outer, "manifest.json", manifest);
	tb_end(&outer);
	write_file(fx->tar, outer.buf, outer.len, gzip);
	free(config);
	free(manifest);
	free(layer.buf);
	free(outer.buf);
}

static int
load(struct fx *fx, char ***refs, struct kci_err *err)
{
	return kci_images_load(fx->im, fx->tar, refs, err);
}

/* ---- tests ---- */

static void
test_load__docker_save_tarball_loads(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct kci_image_config cfg = { 0 };
	char **refs = NULL, **layers = NULL, config_digest[72];

	for (int gzip = 0; gzip < 2; gzip++) {
		docker_save(fx, gzip ? "saved/gz:1" : "saved/app:2", false, gzip, NULL);
		if (load(fx, &refs, &err) != 0)
			fail_msg("%s", err.msg);
		assert_non_null(refs);
		assert_non_null(strstr(refs[0], gzip ? "saved/gz:1" : "saved/app:2"));
		assert_null(refs[1]);
		kci_strv_free(refs);
		if (kci_images_resolve(fx->im, gzip ? "saved/gz:1" : "saved/app:2", &cfg,
				       config_digest, &layers, &err) != 0)
			fail_msg("%s", err.msg);
		assert_non_null(layers[0]);
		assert_null(layers[1]);
		kci_strv_free(layers);
		kci_images_config_clear(&cfg);
		assert_contained(fx);
	}
}

static void
test_load__layer_against_diff_id(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	char **refs = NULL;

	docker_save(fx, "saved/bad:1", true, false, NULL);
	assert_int_equal(load(fx, &refs, &err), KCI_DIGEST);
	assert_non_null(strstr(err.msg, "digest mismatch"));
	assert_null(refs);
	assert_contained(fx);
}

/*
 * What the integration test's evil tarball holds: a pax hardlink that
 * carries data (libarchive reports it as a regular file) to the canary, a
 * symlink to the canary's directory and a file written through it.
 */
static void
links_out(struct fx *fx, struct tarb *t)
{
	tb_pax(t, (const char *[]){ "size", "6", NULL });
	tb_header(t, "x", '1', 0, fx->canary);
	tb_data(t, "pwned\n", 6);
	tb_header(t, "y", '2', 0, fx->canary_dir);
	tb_text(t, "y/canary", "pwned\n");
	tb_header(t, "z", '1', 0, "../canary-dir/canary");
}

static void
test_load__links_skipped_never_followed(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	char **refs = NULL;

	/* The links are passed over, y becomes a directory of kci's: the image loads. */
	docker_save(fx, "saved/links:1", false, false, links_out);
	if (load(fx, &refs, &err) != 0)
		fail_msg("%s", err.msg);
	kci_strv_free(refs);
	assert_contained(fx);
}

static void
names_out(struct fx *fx, struct tarb *t)
{
	(void)fx;
	tb_text(t, "../escape", "pwned\n");
}

static void
absolute_out(struct fx *fx, struct tarb *t)
{
	tb_text(t, fx->canary, "pwned\n");
}

static void
test_load__escaping_names_refused(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	char **refs = NULL;

	docker_save(fx, "saved/dotdot:1", false, true, names_out);
	assert_int_equal(load(fx, &refs, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "entry '../escape': '..' in the path"));
	assert_null(refs);
	assert_contained(fx);
	docker_save(fx, "saved/abs:1", false, false, absolute_out);
	assert_int_equal(load(fx, &refs, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "absolute path"));
	assert_contained(fx);
}

static void
bomb(struct fx *fx, struct tarb *t)
{
	char *zeros = kci_xcalloc(1, 80 << 20);

	(void)fx;
	tb_file(t, "zeros", zeros, 80 << 20);
	free(zeros);
}

static void
sparse(struct fx *fx, struct tarb *t)
{
	(void)fx;
	/* PAX 0.1 sparse: one 512-byte piece of a 1 GiB file. */
	tb_pax(t, (const char *[]){ "GNU.sparse.size", "1073741824", "GNU.sparse.numblocks", "1",
				    "GNU.sparse.offset", "0", "GNU.sparse.numbytes", "512", NULL });
	tb_header(t, "holes", '0', 512, NULL);
	tb_data(t, "x", 1);
}

static void
test_load__bombs_refused(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	char **refs = NULL;

	/* 80 MiB of zeros gzip to about 80 KiB: past 16 times the tarball plus 64 MiB. */
	docker_save(fx, "saved/bomb:1", false, true, bomb);
	assert_int_equal(load(fx, &refs, &err), KCI_INVALID);
	if (!strstr(err.msg, "larger than"))
		fail_msg("%s", err.msg);
	assert_contained(fx);
	docker_save(fx, "saved/sparse:1", false, false, sparse);
	assert_int_equal(load(fx, &refs, &err), KCI_INVALID);
	if (!strstr(err.msg, "entry 'holes': sparse files are not extracted"))
		fail_msg("%s", err.msg);
	assert_contained(fx);
}

/*
 * The load policy itself, confined and in-process: files and directories,
 * private to kci whatever their modes; links, devices and fifos passed over.
 */
static void
test_load__policy_files_and_dirs_only(void **state)
{
	struct fx *fx = *state;
	struct kci_extract_policy p = KCI_EXTRACT_LOAD;
	struct kci_err err = KCI_ERR_INIT;
	struct kci_extract_stats st;
	struct tarb t = { 0 };
	char dest[192], path[256];
	struct stat sb;
	int fd;

	tb_entry(&t, "d/", '5', 0777, 0, NULL);
	tb_entry(&t, "d/x", '0', 04777, 4, NULL);
	tb_data(&t, "data", 4);
	tb_header(&t, "l", '2', 0, "d/x");
	tb_header(&t, "d/out", '2', 0, fx->canary);
	tb_header(&t, "h", '1', 0, "d/x");
	tb_header(&t, "dev", '3', 0, NULL);
	tb_header(&t, "fifo", '6', 0, NULL);
	tb_end(&t);
	write_file(fx->tar, t.buf, t.len, false);
	free(t.buf);
	for (int confined = 0; confined < 2; confined++) {
		p.confined = confined;
		snprintf(dest, sizeof(dest), "%s/dest%d", fx->home, confined);
		assert_int_equal(mkdir(dest, 0700), 0);
		assert_true((fd = open(fx->tar, O_RDONLY | O_CLOEXEC)) >= 0);
		if (kci_images_extract(dest, fd, &p, NULL, &st, &err) != 0)
			fail_msg("%s", err.msg);
		close(fd);
		assert_int_equal(st.names, 2);
		assert_int_equal(st.skipped, 5);
		assert_int_equal(count_entries(dest), 1);
		snprintf(path, sizeof(path), "%s/d", dest);
		assert_int_equal(lstat(path, &sb), 0);
		assert_int_equal(sb.st_mode, S_IFDIR | 0700);
		assert_int_equal(count_entries(path), 1);
		snprintf(path, sizeof(path), "%s/d/x", dest);
		assert_int_equal(lstat(path, &sb), 0);
		assert_int_equal(sb.st_mode, S_IFREG | 0600);
		assert_int_equal(sb.st_size, 4);
	}
	assert_contained(fx);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_load__docker_save_tarball_loads),
		TEST(test_load__layer_against_diff_id),
		TEST(test_load__links_skipped_never_followed),
		TEST(test_load__escaping_names_refused),
		TEST(test_load__bombs_refused),
		TEST(test_load__policy_files_and_dirs_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
