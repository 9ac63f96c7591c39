/*
 * Unit tests for layer unpacking (images/unpack.c) against hostile layers:
 * through the confined child, a canary outside the root must come through
 * every one unchanged; caps, garbage, and the child's sandbox itself. The
 * fixture is unpack_fixture.h.
 */
#include "unpack_fixture.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>

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
		printf("test_unpack_hostile: skipped, needs root\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
