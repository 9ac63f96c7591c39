/*
 * Unit tests for the extractor (images/extract*.c) under the artifact
 * policy, against archives that try to reach outside dest: absolute and
 * ".." names, symlinks pointing out or written through, hardlinks to what
 * was not extracted, device files and fifos. A canary directory next to
 * dest must come through every one unchanged. Every test runs twice: in the
 * confined child and in-process. The fixture is extract_fixture.h.
 */
#include "extract_fixture.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_extract__symlink_to_etc_refused),
		TEST(test_extract__symlinks_climbing_out_refused),
		TEST(test_extract__escaping_names_refused),
		TEST(test_extract__long_names_shown_cut),
		TEST(test_extract__write_through_symlink_refused),
		TEST(test_extract__symlink_already_in_dest_never_followed),
		TEST(test_extract__hardlinks_only_to_extracted_files),
		TEST(test_extract__special_files_refused),
	};
	int failed;

	failed = cmocka_run_group_tests_name("confined", tests, group_confined, NULL);
	failed += cmocka_run_group_tests_name("in-process", tests, group_in_process, NULL);
	return failed;
}
