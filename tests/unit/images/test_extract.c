/*
 * Unit tests for the extractor (images/extract*.c) under its strictest
 * policy, KCI_EXTRACT_ARTIFACTS: names beneath the root and no symlink ever
 * followed, clamped modes, caps. Layers are test_unpack.c's, kci load's
 * tarballs test_load.c's, the confined child's calls test_extract_child.c's.
 * Archives are written with libarchive at test time (and once by the
 * system's tar); a canary directory next to dest must come through every
 * hostile archive unchanged. Every test runs twice: in the confined child,
 * as kci does, and in-process, as the fuzz target does.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
static int
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

static int
teardown(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;

	kci_rm_rf(fx->dir, &err);
	free(fx);
	return 0;
}

/* A path beneath dest; four rotating buffers, enough for one assertion. */
static const char *
dp(const struct fx *fx, const char *rel)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", fx->dest, rel);
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

/* Nothing outside dest changed: the canary, its directory, the temp dir's listing. */
static void
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

static void
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
tar_begin_as(struct tarw *w, int format)
{
	memset(w, 0, sizeof(*w));
	w->a = archive_write_new();
	assert_int_equal(archive_write_set_format(w->a, format), ARCHIVE_OK);
	assert_int_equal(archive_write_set_bytes_in_last_block(w->a, 1), ARCHIVE_OK);
	assert_int_equal(archive_write_open(w->a, w, NULL, mem_write, NULL), ARCHIVE_OK);
}

static void
tar_begin(struct tarw *w)
{
	tar_begin_as(w, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
}

/* Writes len bytes into a fresh memfd, rewound: what the extractor reads. */
static int
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
static int
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
static void
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

static void
put_file(struct tarw *w, const char *name, mode_t perm, const char *text)
{
	put(w, name, AE_IFREG | perm, NULL, text, strlen(text));
}

static void
put_dir(struct tarw *w, const char *name, mode_t perm)
{
	put(w, name, AE_IFDIR | perm, NULL, NULL, 0);
}

static void
put_symlink(struct tarw *w, const char *name, const char *target)
{
	put(w, name, AE_IFLNK | 0777, target, NULL, 0);
}

static void
put_hardlink(struct tarw *w, const char *name, const char *target)
{
	put(w, name, AE_IFREG | 0644, target, NULL, 0);
}

/* ---- running the extractor ---- */

static const struct caps big = { 64 << 20, 1000 };

/* The artifact policy with caps (NULL: big), confined or not as the group says. */
static struct kci_extract_policy
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
static int
extract_with(const struct fx *fx, int fd, const struct kci_extract_policy *p,
	     struct kci_extract_stats *st, struct kci_err *err)
{
	int rc = kci_images_extract(fx->dest, fd, p, NULL, st, err);

	close(fd);
	return rc;
}

/* Extracts fd (consumed) into dest with the artifact policy and caps (NULL: big). */
static int
extract(const struct fx *fx, int fd, const struct caps *caps, struct kci_extract_stats *st,
	struct kci_err *err)
{
	struct kci_extract_policy p = artifacts(fx, caps);

	return extract_with(fx, fd, &p, st, err);
}

/* Extraction fails with KCI_INVALID and exactly msg, and nothing outside dest changed. */
static void
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
static void
assert_refused_prefix(const struct fx *fx, int fd, const char *prefix)
{
	struct kci_err err = KCI_ERR_INIT;

	assert_int_equal(extract(fx, fd, NULL, NULL, &err), KCI_INVALID);
	if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
		fail_msg("message '%s' does not start with '%s'", err.msg, prefix);
	assert_canary_intact(fx);
}

static void
assert_ok(const struct fx *fx, int fd, const struct caps *lim, struct kci_extract_stats *st)
{
	struct kci_err err = KCI_ERR_INIT;
	int rc = extract(fx, fd, lim, st, &err);

	if (rc != 0)
		fail_msg("extract: %d %s", rc, err.msg);
	assert_canary_intact(fx);
}

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
test_extract__symlink_to_etc_refused(void **state)
{
	struct fx *fx = *state;
	struct tarw w;

	tar_begin(&w);
	put_file(&w, "ok.txt", 0644, "fine");
	put_symlink(&w, "./etc-link", "/etc");
	assert_refused(fx, tar_end(&w, 0), NULL,
		       "artifact 'etc-link': symlink to '/etc' points outside the archive");
	assert_int_equal(access(dp(fx, "etc-link"), F_OK), -1);
}

static void
test_extract__symlinks_climbing_out_refused(void **state)
{
	static const struct {
		const char *name, *target, *msg;
	} cases[] = {
		{ "up", "..", "artifact 'up': symlink to '..' points outside the archive" },
		{ "a/b/up", "../../../x",
		  "artifact 'a/b/up': symlink to '../../../x' points outside the archive" },
		{ "a/zig", "b/../../..",
		  "artifact 'a/zig': symlink to 'b/../../..' has '..' after a name, which could "
		  "point outside the archive" },
		{ "a/canary", "@D", NULL },
		{ "nl", "x\ny", "artifact 'nl': symlink to 'x\\x0ay' has control characters" },
	};
	struct fx *fx = *state;
	char msg[512];
	struct tarw w;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *target = cases[i].target;
		if (strcmp(target, "@D") == 0)
			target = fx->canary_dir;
		snprintf(msg, sizeof(msg), "%s", cases[i].msg ? cases[i].msg : "");
		if (!cases[i].msg)
			snprintf(msg, sizeof(msg),
				 "artifact '%s': symlink to '%s' points outside the archive",
				 cases[i].name, fx->canary_dir);
		tar_begin(&w);
		put_symlink(&w, cases[i].name, target);
		put_file(&w, "a/canary/x", 0644, "overwritten");
		assert_refused(fx, tar_end(&w, 0), NULL, msg);
	}
}

static void
test_extract__escaping_names_refused(void **state)
{
	static const struct {
		const char *name, *msg;
	} cases[] = {
		{ "../x", "artifact '../x': '..' in the path" },
		{ "a/../../x", "artifact 'a/../../x': '..' in the path" },
		{ "./a/..", "artifact 'a/..': '..' in the path" },
		{ "/abs", "artifact '/abs': absolute path" },
		{ "/tmp/x", "artifact '/tmp/x': absolute path" },
		{ "bell\a", "artifact 'bell\\x07': control character in the name" },
	};
	struct fx *fx = *state;
	struct tarw w;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tar_begin(&w);
		put_file(&w, cases[i].name, 0644, "escaped");
		assert_refused(fx, tar_end(&w, 0), NULL, cases[i].msg);
	}
	assert_int_equal(count_entries(fx->dest), 0);
}

static void
test_extract__long_names_shown_cut(void **state)
{
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	char name[300];
	struct tarw w;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	name[0] = '/';
	tar_begin(&w);
	put_file(&w, name, 0644, "x");
	assert_int_equal(extract(fx, tar_end(&w, 0), NULL, NULL, &err), KCI_INVALID);
	assert_true(strlen(err.msg) < 150);
	assert_non_null(strstr(err.msg, "...': absolute path"));
}

static void
test_extract__write_through_symlink_refused(void **state)
{
	struct fx *fx = *state;
	struct tarw w;

	/* The brief's attack: the symlink itself is refused first. */
	tar_begin(&w);
	put_symlink(&w, "d", fx->canary_dir);
	put_file(&w, "d/x", 0644, "escaped");
	put_file(&w, "d/canary", 0644, "escaped");
	assert_refused_prefix(fx, tar_end(&w, 0), "artifact 'd': symlink to '/tmp/");

	/* A symlink that stays inside is still never followed while extracting. */
	tar_begin(&w);
	put_dir(&w, "real", 0755);
	put_symlink(&w, "d", "real");
	put_file(&w, "d/x", 0644, "through");
	assert_refused(fx, tar_end(&w, 0), NULL, "artifact 'd/x': parent 'd' is a symlink");
	assert_int_equal(access(dp(fx, "real/x"), F_OK), -1);
}

static void
test_extract__symlink_already_in_dest_never_followed(void **state)
{
	struct fx *fx = *state;
	struct tarw w;

	/* Not an empty dest as documented, but the walk must hold even so. */
	assert_int_equal(symlink(fx->canary_dir, dp(fx, "d")), 0);
	tar_begin(&w);
	put_file(&w, "d/canary", 0644, "escaped");
	assert_refused(fx, tar_end(&w, 0), NULL, "artifact 'd/canary': parent 'd' is a symlink");

	tar_begin(&w);
	put_file(&w, "d", 0644, "replaces the link?");
	assert_refused(fx, tar_end(&w, 0), NULL, "artifact 'd': already extracted as a symlink");

	tar_begin(&w);
	put_hardlink(&w, "h", "d/canary");
	assert_refused(fx, tar_end(&w, 0), NULL, "artifact 'h': hardlink to 'd/canary': not found");
}

static void
test_extract__hardlinks_only_to_extracted_files(void **state)
{
	static const struct {
		const char *target, *msg;
	} cases[] = {
		{ "/etc/passwd", "artifact 'h': hardlink to '/etc/passwd': absolute path" },
		{ "../canary-dir/canary", "artifact 'h': hardlink to '../canary-dir/canary': '..' "
					  "in the path" },
		{ "unknown", "artifact 'h': hardlink to 'unknown': not found" },
		{ "dir", "artifact 'h': hardlink to 'dir', not a file extracted before it" },
		{ "link", "artifact 'h': hardlink to 'link', not a file extracted before it" },
		{ "./", "artifact 'h': hardlink to the root" },
	};
	struct fx *fx = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct tarw w;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(kci_rm_rf(fx->dest, &err), 0);
		assert_int_equal(mkdir(fx->dest, 0700), 0);
		tar_begin(&w);
		put_dir(&w, "dir", 0755);
		put_file(&w, "file", 0644, "data");
		put_symlink(&w, "link", "file");
		put_hardlink(&w, "h", cases[i].target);
		assert_refused(fx, tar_end(&w, 0), NULL, cases[i].msg);
	}
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
test_extract__special_files_refused(void **state)
{
	static const struct {
		mode_t type;
		const char *msg;
	} cases[] = {
		{ AE_IFCHR, "artifact 'dev/x': device files are not extracted" },
		{ AE_IFBLK, "artifact 'dev/x': device files are not extracted" },
		{ AE_IFIFO, "artifact 'dev/x': fifos are not extracted" },
	};
	struct fx *fx = *state;
	struct tarw w;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct archive_entry *e = archive_entry_new();
		tar_begin(&w);
		archive_entry_set_pathname(e, "dev/x");
		archive_entry_set_mode(e, cases[i].type | 0666);
		archive_entry_set_rdevmajor(e, 8);
		assert_int_equal(archive_write_header(w.a, e), ARCHIVE_OK);
		archive_entry_free(e);
		assert_refused(fx, tar_end(&w, 0), NULL, cases[i].msg);
		assert_int_equal(access(dp(fx, "dev/x"), F_OK), -1);
	}
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

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

static int
group_confined(void **state)
{
	static const bool confined = true;

	*state = (void *)&confined;
	return 0;
}

static int
group_in_process(void **state)
{
	static const bool confined = false;

	*state = (void *)&confined;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_extract__files_and_dirs_arrive_modes_clamped),
		TEST(test_extract__modes_clamped_whatever_the_guest_says),
		TEST(test_extract__modes_clamped_under_the_umask),
		TEST(test_extract__relative_symlinks_inside_recreated),
		TEST(test_extract__symlink_to_etc_refused),
		TEST(test_extract__symlinks_climbing_out_refused),
		TEST(test_extract__escaping_names_refused),
		TEST(test_extract__long_names_shown_cut),
		TEST(test_extract__write_through_symlink_refused),
		TEST(test_extract__symlink_already_in_dest_never_followed),
		TEST(test_extract__hardlinks_only_to_extracted_files),
		TEST(test_extract__hardlink_to_extracted_file_works),
		TEST(test_extract__special_files_refused),
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
