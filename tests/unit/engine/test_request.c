/*
 * Unit tests for engine/request.c: an image's config merged with a command
 * the way docker run merges them, for kci exec and for job steps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/internal.h"

/* Asserts v holds exactly the NULL-terminated want. */
static void
assert_strv(char **v, const char *const *want)
{
	size_t i;

	assert_non_null(v);
	for (i = 0; want[i]; i++) {
		assert_non_null(v[i]);
		assert_string_equal(v[i], want[i]);
	}
	assert_null(v[i]);
}

static void
request_ok(const struct kci_image_config *img, const struct kci_req_opts *o,
	   struct kci_run_req *req)
{
	struct kci_err err = KCI_ERR_INIT;

	if (kci_engine_request(img, o, req, &err) != 0)
		fail_msg("kci_engine_request: %s", err.msg);
}

static char *entrypoint[] = { "/docker-entrypoint.sh", "--verbose", NULL };
static char *cmd[] = { "nginx", "-g", "daemon off;", NULL };

static void
test_request__entrypoint_then_the_callers_command(void **state)
{
	struct kci_image_config img = { .entrypoint = entrypoint, .cmd = cmd };
	char *argv[] = { "sh", "-c", "echo hi", NULL };
	struct kci_req_opts o = { .argv = argv, .entrypoint = 1 };
	struct kci_run_req req;

	(void)state;
	request_ok(&img, &o, &req);
	assert_strv(req.argv, (const char *const[]){ "/docker-entrypoint.sh", "--verbose", "sh",
						     "-c", "echo hi", NULL });
	kci_run_req_clear(&req);
}

/* No command, or an empty one: the image's Cmd follows its Entrypoint. */
static void
test_request__entrypoint_then_cmd_without_a_command(void **state)
{
	struct kci_image_config img = { .entrypoint = entrypoint, .cmd = cmd };
	char *empty[] = { NULL };
	char *const *argvs[] = { NULL, empty };
	struct kci_run_req req;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct kci_req_opts o = { .argv = argvs[i], .entrypoint = 1 };

		request_ok(&img, &o, &req);
		assert_strv(req.argv, (const char *const[]){ "/docker-entrypoint.sh", "--verbose",
							     "nginx", "-g", "daemon off;", NULL });
		kci_run_req_clear(&req);
	}
}

/* Job steps are their own command: an image's Entrypoint is not put first. */
static void
test_request__steps_leave_the_entrypoint_out(void **state)
{
	struct kci_image_config img = { .entrypoint = entrypoint, .cmd = cmd };
	char *argv[] = { "/bin/sh", "-e", "-c", "make", NULL };
	struct kci_req_opts o = { .argv = argv };
	struct kci_run_req req;

	(void)state;
	request_ok(&img, &o, &req);
	assert_strv(req.argv, (const char *const[]){ "/bin/sh", "-e", "-c", "make", NULL });
	kci_run_req_clear(&req);
	o.argv = NULL;
	request_ok(&img, &o, &req);
	assert_strv(req.argv, (const char *const[]){ "nginx", "-g", "daemon off;", NULL });
	kci_run_req_clear(&req);
}

static void
test_request__no_command_at_all_is_invalid(void **state)
{
	struct kci_image_config bare = { 0 }, only_entrypoint = { .entrypoint = entrypoint };
	struct kci_req_opts exec = { .entrypoint = 1 }, step = { 0 };
	struct kci_err err = KCI_ERR_INIT;
	struct kci_run_req req;

	(void)state;
	assert_int_equal(kci_engine_request(&bare, &exec, &req, &err), KCI_INVALID);
	assert_int_equal(err.code, KCI_INVALID);
	assert_non_null(strstr(err.msg, "no Entrypoint or Cmd"));
	assert_null(req.argv);
	kci_run_req_clear(&req); /* a failed request is safe to clear */
	/* Without the entrypoint flag an image's Entrypoint is no command either. */
	assert_int_equal(kci_engine_request(&only_entrypoint, &step, &req, &err), KCI_INVALID);
	assert_null(req.argv);
}

/*
 * PATH, then HOME for root, then the image's Env (entries without '=' are
 * junk and dropped), then the caller's: a later entry replaces an earlier one
 * of the same name where it stands.
 */
static void
test_request__environment_later_entries_win(void **state)
{
	char *img_env[] = { "LANG=C", "NOEQUALS", "PATH=/opt/bin:/bin", "HOME=/home/img", NULL };
	char *env[] = { "LANG=en_US.UTF-8", "CI=true", "PATH=/mine", NULL };
	struct kci_image_config img = { .env = img_env, .cmd = cmd };
	struct kci_req_opts o = { .env = env };
	struct kci_run_req req;

	(void)state;
	request_ok(&img, &o, &req);
	assert_strv(req.env, (const char *const[]){ "PATH=/mine", "HOME=/home/img",
						    "LANG=en_US.UTF-8", "CI=true", NULL });
	kci_run_req_clear(&req);
}

static void
test_request__defaults_are_path_and_roots_home(void **state)
{
	struct kci_image_config img = { .cmd = cmd };
	struct kci_req_opts o = { 0 };
	struct kci_run_req req;

	(void)state;
	request_ok(&img, &o, &req);
	assert_strv(req.env, (const char *const[]){ "PATH=" KCI_ENGINE_PATH, "HOME=/root", NULL });
	assert_null(req.user);
	kci_run_req_clear(&req);
}

/* Another user's HOME is the guest's business (its passwd); root's is /root. */
static void
test_request__user_from_caller_else_image(void **state)
{
	static const struct {
		const char *img_user, *caller_user, *want_user;
		int home;
	} cases[] = {
		{ NULL, NULL, NULL, 1 },
		{ "", NULL, "", 1 },
		{ "build", NULL, "build", 0 },
		{ "build", "1000:1000", "1000:1000", 0 },
		{ NULL, "nobody", "nobody", 0 },
		{ "build", "", "", 1 }, /* the caller asks for root over the image's user */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct kci_image_config img = { .cmd = cmd, .user = (char *)cases[i].img_user };
		struct kci_req_opts o = { .user = cases[i].caller_user };
		struct kci_run_req req;
		int home = 0;

		request_ok(&img, &o, &req);
		if (cases[i].want_user)
			assert_string_equal(req.user, cases[i].want_user);
		else
			assert_null(req.user);
		for (size_t k = 0; req.env[k]; k++)
			home |= strncmp(req.env[k], "HOME=", 5) == 0;
		assert_int_equal(home, cases[i].home);
		kci_run_req_clear(&req);
	}
}

static void
test_request__cwd_from_caller_else_image_else_root(void **state)
{
	static const struct {
		const char *working_dir, *cwd, *want;
	} cases[] = {
		{ "/app", "/workspace/sub", "/workspace/sub" },
		{ "/app", NULL, "/app" },
		{ "", NULL, "/" },
		{ NULL, NULL, "/" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct kci_image_config img = { .cmd = cmd,
						.working_dir = (char *)cases[i].working_dir };
		struct kci_req_opts o = { .cwd = cases[i].cwd };
		struct kci_run_req req;

		request_ok(&img, &o, &req);
		assert_string_equal(req.cwd, cases[i].want);
		kci_run_req_clear(&req);
	}
}

static void
test_request__terminal_size_passes_through(void **state)
{
	struct kci_image_config img = { .cmd = cmd };
	struct kci_req_opts o = { .tty = 1, .rows = 40, .cols = 132 };
	struct kci_run_req req;

	(void)state;
	request_ok(&img, &o, &req);
	assert_int_equal(req.tty, 1);
	assert_int_equal(req.rows, 40);
	assert_int_equal(req.cols, 132);
	kci_run_req_clear(&req);
	o = (struct kci_req_opts){ 0 };
	request_ok(&img, &o, &req);
	assert_int_equal(req.tty, 0);
	kci_run_req_clear(&req);
}

/* The request owns copies: the image's config and the caller's strings can go. */
static void
test_request__owns_its_strings(void **state)
{
	char img_env0[] = "A=1", wd[] = "/app", user[] = "build", arg0[] = "true";
	char *img_env[] = { img_env0, NULL }, *argv[] = { arg0, NULL };
	struct kci_image_config img = { .env = img_env, .working_dir = wd, .user = user };
	struct kci_req_opts o = { .argv = argv };
	struct kci_run_req req;

	(void)state;
	request_ok(&img, &o, &req);
	memset(img_env0, 'x', 3);
	memset(wd, 'x', 4);
	memset(user, 'x', 5);
	memset(arg0, 'x', 4);
	assert_strv(req.argv, (const char *const[]){ "true", NULL });
	assert_string_equal(req.env[1], "A=1");
	assert_string_equal(req.cwd, "/app");
	assert_string_equal(req.user, "build");
	kci_run_req_clear(&req);
}

static void
test_request__user_is_root(void **state)
{
	static const char *const root[] = { "", "root", "0", "0:0", "0:1000", "root:wheel" };
	static const char *const other[] = { "build", "1000", "1000:0", "rooty", "roots:0", " 0" };

	(void)state;
	assert_true(user_is_root(NULL));
	for (size_t i = 0; i < sizeof(root) / sizeof(*root); i++)
		assert_true(user_is_root(root[i]));
	for (size_t i = 0; i < sizeof(other) / sizeof(*other); i++)
		if (user_is_root(other[i]))
			fail_msg("'%s' taken for root", other[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request__entrypoint_then_the_callers_command),
		cmocka_unit_test(test_request__entrypoint_then_cmd_without_a_command),
		cmocka_unit_test(test_request__steps_leave_the_entrypoint_out),
		cmocka_unit_test(test_request__no_command_at_all_is_invalid),
		cmocka_unit_test(test_request__environment_later_entries_win),
		cmocka_unit_test(test_request__defaults_are_path_and_roots_home),
		cmocka_unit_test(test_request__user_from_caller_else_image),
		cmocka_unit_test(test_request__cwd_from_caller_else_image_else_root),
		cmocka_unit_test(test_request__terminal_size_passes_through),
		cmocka_unit_test(test_request__owns_its_strings),
		cmocka_unit_test(test_request__user_is_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
