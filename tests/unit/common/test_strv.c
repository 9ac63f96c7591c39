/* Unit tests for common/strv.c: string vectors, env vectors and NAME=VALUE files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/strv.h"

static void
test_strv__env_set_replaces_by_name(void **state)
{
	char **env = NULL;
	size_t n = 0;

	(void)state;
	kci_env_set(&env, &n, "A=1");
	kci_env_set(&env, &n, "AB=2");
	kci_env_set(&env, &n, "A=3");
	assert_int_equal(n, 2);
	assert_string_equal(env[0], "A=3");
	assert_string_equal(env[1], "AB=2");
	assert_null(env[2]);
	kci_strv_free(env);
}

static void
test_strv__lines_skip_comments_blanks_and_crs(void **state)
{
	static const char text[] = "# tokens\nA=1\r\n\n  \nB=x=y\nA=2";
	char **env = NULL;
	size_t n = 0;

	(void)state;
	/* "  " is a line without '=': line 4. */
	assert_int_equal(kci_env_set_lines(&env, &n, text, sizeof(text) - 1), 4);
	kci_strv_free(env);
	env = NULL;
	n = 0;
	static const char good[] = "# tokens\nA=1\r\n\nB=x=y\nA=2";
	assert_int_equal(kci_env_set_lines(&env, &n, good, sizeof(good) - 1), 0);
	assert_int_equal(n, 2);
	assert_string_equal(env[0], "A=2"); /* a later line wins, in place */
	assert_string_equal(env[1], "B=x=y");
	kci_strv_free(env);
}

static void
test_strv__lines_refuse_nul_and_names_the_bad_line(void **state)
{
	char **env = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(kci_env_set_lines(&env, &n, "A=1\0B=2", 7), -1);
	assert_int_equal(n, 0);
	assert_int_equal(kci_env_set_lines(&env, &n, "A=1\n=nameless\n", 14), 2);
	assert_int_equal(n, 1); /* what came before the bad line is set */
	kci_strv_free(env);
	env = NULL;
	n = 0;
	assert_int_equal(kci_env_set_lines(&env, &n, "", 0), 0);
	assert_int_equal(n, 0);
	/* The last line needs no newline; its length bounds it, not a NUL. */
	assert_int_equal(kci_env_set_lines(&env, &n, "K=vXXXX", 3), 0);
	assert_string_equal(env[0], "K=v");
	kci_strv_free(env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strv__env_set_replaces_by_name),
		cmocka_unit_test(test_strv__lines_skip_comments_blanks_and_crs),
		cmocka_unit_test(test_strv__lines_refuse_nul_and_names_the_bad_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
