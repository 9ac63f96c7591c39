/*
 * Unit tests for engine/secrets.c: --secret-file parsing, values from the
 * environment, and the values (or the missing names) a plan's selected jobs
 * ask for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fs.h"
#include "common/strv.h"
#include "engine/engine.h"

static char dir[] = "/tmp/kci-secrets-test.XXXXXX";
static char path[sizeof(dir) + 32];

static int
setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secrets", dir);
	unsetenv("KCI_UT_A");
	unsetenv("KCI_UT_B");
	unsetenv("KCI_UT_C");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(kci_rm_rf(dir, NULL), 0);
	strcpy(dir + strlen(dir) - 6, "XXXXXX");
	return 0;
}

/* Writes len bytes of text to the secret file. */
static void
write_file(const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static struct kci_plan *
plan(const char *yaml)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = NULL;

	if (kci_plan_parse(yaml, strlen(yaml), ".kci.yml", &p, &err) != 0)
		fail_msg("plan: %s", err.msg);
	return p;
}

/* A plan whose one job asks for every secret the tests grant. */
static const char all_three[] = "jobs:\n"
				"  job: {run: x, secrets: [KCI_UT_A, KCI_UT_B, KCI_UT_C]}\n";

/* The values s grants the jobs of yaml (all selected); fails the test on an error. */
static char **
values_for(const struct kci_secrets *s, const char *yaml)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = plan(yaml);
	char **out = NULL;

	if (kci_engine_secrets_for(s, p, NULL, &out, &err) != 0)
		fail_msg("secrets_for: %s", err.msg);
	kci_plan_free(p);
	return out;
}

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
test_secrets__file_skips_comments_and_blank_lines(void **state)
{
	static const char text[] = "# deploy keys\n"
				   "\n"
				   "KCI_UT_A=first\r\n"
				   "\r\n"
				   "#KCI_UT_C=commented out\n"
				   "KCI_UT_B=with=equals and spaces \n"
				   "KCI_UT_C=";
	struct kci_err err = KCI_ERR_INIT;
	struct kci_secrets *s = kci_engine_secrets_new();
	char **v;

	(void)state;
	write_file(text, strlen(text));
	if (kci_engine_secrets_add_file(s, path, &err) != 0)
		fail_msg("add_file: %s", err.msg);
	/* CR of a CRLF line dropped; the rest of a value, '=' and spaces included, kept. */
	v = values_for(s, all_three);
	assert_strv(v, (const char *const[]){ "KCI_UT_A=first", "KCI_UT_B=with=equals and spaces ",
					      "KCI_UT_C=", NULL });
	kci_strv_free(v);
	kci_engine_secrets_free(s);
}

/* The line number is the one an editor shows: comments, blank and CRLF lines counted. */
static void
test_secrets__line_without_equals_named_by_its_number(void **state)
{
	static const char *const texts[] = {
		"# c\n\nKCI_UT_A=1\nhunter2\nKCI_UT_B=2\n",
		"# c\r\n\r\nKCI_UT_A=1\r\nhunter2\r\n",
		"# c\n\nKCI_UT_A=1\n=hunter2\n",
	};
	char want[256];

	(void)state;
	snprintf(want, sizeof(want), "--secret-file %s: line 4 is not NAME=VALUE", path);
	for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
		struct kci_err err = KCI_ERR_INIT;
		struct kci_secrets *s = kci_engine_secrets_new();

		write_file(texts[i], strlen(texts[i]));
		assert_int_equal(kci_engine_secrets_add_file(s, path, &err), KCI_INVALID);
		assert_string_equal(err.msg, want);
		/* The bad line may be a pasted secret: it is named, never shown. */
		assert_null(strstr(err.msg, "hunter2"));
		kci_engine_secrets_free(s);
	}
}

static void
test_secrets__file_with_a_nul_byte_is_refused(void **state)
{
	static const char text[] = "KCI_UT_A=before\0after\n";
	struct kci_err err = KCI_ERR_INIT;
	struct kci_secrets *s = kci_engine_secrets_new();

	(void)state;
	write_file(text, sizeof(text) - 1);
	assert_int_equal(kci_engine_secrets_add_file(s, path, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "contains a NUL byte"));
	assert_non_null(strstr(err.msg, path));
	kci_engine_secrets_free(s);
}

static void
test_secrets__missing_file_is_notfound(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_secrets *s = kci_engine_secrets_new();

	(void)state;
	assert_int_equal(kci_engine_secrets_add_file(s, path, &err), KCI_NOTFOUND);
	assert_non_null(strstr(err.msg, "--secret-file"));
	assert_non_null(strstr(err.msg, path));
	kci_engine_secrets_free(s);
}

/* A name given twice, in one file, in two files or from the environment: the last wins. */
static void
test_secrets__later_value_wins(void **state)
{
	static const char text[] = "KCI_UT_A=old\nKCI_UT_B=b\nKCI_UT_A=new\n";
	struct kci_err err = KCI_ERR_INIT;
	struct kci_secrets *s = kci_engine_secrets_new();
	char **v;

	(void)state;
	write_file(text, strlen(text));
	assert_int_equal(kci_engine_secrets_add_file(s, path, &err), 0);
	setenv("KCI_UT_C", "from-env", 1);
	assert_int_equal(kci_engine_secrets_add_env(s, "KCI_UT_C", &err), 0);
	write_file("KCI_UT_B=second-file\n", 21);
	assert_int_equal(kci_engine_secrets_add_file(s, path, &err), 0);
	setenv("KCI_UT_A", "env-last", 1);
	assert_int_equal(kci_engine_secrets_add_env(s, "KCI_UT_A", &err), 0);
	v = values_for(s, all_three);
	assert_strv(v, (const char *const[]){ "KCI_UT_A=env-last", "KCI_UT_B=second-file",
					      "KCI_UT_C=from-env", NULL });
	kci_strv_free(v);
	kci_engine_secrets_free(s);
}

/* add_env takes the value when called: a later change to the environment is not seen. */
static void
test_secrets__add_env_takes_the_value_now(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_secrets *s = kci_engine_secrets_new();
	char **v;

	(void)state;
	assert_int_equal(kci_engine_secrets_add_env(s, "KCI_UT_A", &err), KCI_NOTFOUND);
	assert_string_equal(err.msg, "--secret KCI_UT_A: KCI_UT_A is not set in your environment");
	setenv("KCI_UT_A", "granted", 1);
	assert_int_equal(kci_engine_secrets_add_env(s, "KCI_UT_A", &err), 0);
	setenv("KCI_UT_A", "changed", 1);
	v = values_for(s, "jobs:\n  job: {run: x, secrets: [KCI_UT_A]}\n");
	assert_strv(v, (const char *const[]){ "KCI_UT_A=granted", NULL });
	kci_strv_free(v);
	kci_engine_secrets_free(s);
}

/*
 * Only the secrets the selected jobs ask for, each once, whether named at the
 * top level or by several jobs; a job not selected needs none of its own.
 */
static void
test_secrets__only_what_the_selected_jobs_ask_for(void **state)
{
	struct kci_plan *p = plan("secrets: [KCI_UT_A]\n"
				  "jobs:\n"
				  "  build: {run: x, secrets: [KCI_UT_B]}\n"
				  "  test: {run: x, secrets: [KCI_UT_B]}\n"
				  "  deploy: {run: x, secrets: [KCI_UT_C]}\n");
	struct kci_err err = KCI_ERR_INIT;
	struct kci_secrets *s = kci_engine_secrets_new();
	int selected[3] = { 1, 1, 0 };
	char **v = NULL;

	(void)state;
	write_file("KCI_UT_A=a\nKCI_UT_B=b\n", 22);
	assert_int_equal(kci_engine_secrets_add_file(s, path, &err), 0);
	/* deploy's KCI_UT_C is granted by no one, but deploy is not selected. */
	if (kci_engine_secrets_for(s, p, selected, &v, &err) != 0)
		fail_msg("secrets_for: %s", err.msg);
	assert_strv(v, (const char *const[]){ "KCI_UT_A=a", "KCI_UT_B=b", NULL });
	kci_strv_free(v);
	/* Selecting it (NULL = every job) makes KCI_UT_C missing. */
	assert_int_equal(kci_engine_secrets_for(s, p, NULL, &v, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "KCI_UT_C"));
	kci_strv_free(v);
	kci_engine_secrets_free(s);
	kci_plan_free(p);
}

/* Every missing secret named once, in one message, before anything runs. */
static void
test_secrets__every_missing_secret_named_once(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  build: {run: x, secrets: [KCI_UT_A, KCI_UT_B]}\n"
				  "  test: {run: x, secrets: [KCI_UT_C, KCI_UT_A]}\n");
	struct kci_plan *one = plan("jobs:\n"
				    "  build: {run: x, secrets: [KCI_UT_A]}\n"
				    "  test: {run: x, secrets: [KCI_UT_A]}\n");
	struct kci_err err = KCI_ERR_INIT;
	char **v = NULL;

	(void)state;
	assert_int_equal(kci_engine_secrets_for(NULL, p, NULL, &v, &err), KCI_INVALID);
	assert_string_equal(
		err.msg, "the pipeline asks for secrets KCI_UT_A, KCI_UT_B, KCI_UT_C, which were "
			 "not granted: pass --secret NAME for each (its value is taken from your "
			 "environment) or NAME=VALUE lines in a --secret-file");
	/* Even on error the vector is valid (and empty): nothing half-granted leaks out. */
	assert_non_null(v);
	assert_null(v[0]);
	kci_strv_free(v);
	assert_int_equal(kci_engine_secrets_for(NULL, one, NULL, &v, &err), KCI_INVALID);
	assert_string_equal(err.msg,
			    "the pipeline asks for secret KCI_UT_A, which was not granted: pass "
			    "--secret NAME for each (its value is taken from your environment) or "
			    "NAME=VALUE lines in a --secret-file");
	kci_strv_free(v);
	kci_plan_free(p);
	kci_plan_free(one);
}

/* One of several granted, the others missing: only the missing ones are named. */
static void
test_secrets__granted_ones_are_not_named_missing(void **state)
{
	struct kci_plan *p = plan(all_three);
	struct kci_err err = KCI_ERR_INIT;
	struct kci_secrets *s = kci_engine_secrets_new();
	char **v = NULL;

	(void)state;
	write_file("KCI_UT_B=b\n", 11);
	assert_int_equal(kci_engine_secrets_add_file(s, path, &err), 0);
	assert_int_equal(kci_engine_secrets_for(s, p, NULL, &v, &err), KCI_INVALID);
	assert_string_equal(err.msg,
			    "the pipeline asks for secrets KCI_UT_A, KCI_UT_C, which were not "
			    "granted: pass --secret NAME for each (its value is taken from your "
			    "environment) or NAME=VALUE lines in a --secret-file");
	assert_null(v[0]);
	kci_strv_free(v);
	kci_engine_secrets_free(s);
	kci_plan_free(p);
}

/*
 * The environment is never a fallback: a pipeline naming a variable of kci's
 * environment gets nothing unless it was granted (--secret NAME takes it).
 */
static void
test_secrets__environment_is_never_a_fallback(void **state)
{
	struct kci_plan *p = plan(all_three);
	struct kci_err err = KCI_ERR_INIT;
	struct kci_secrets *s = kci_engine_secrets_new();
	char **v = NULL;

	(void)state;
	setenv("KCI_UT_A", "env-a", 1);
	setenv("KCI_UT_B", "env-b", 1);
	setenv("KCI_UT_C", "", 1); /* set, if empty, is set */
	write_file("KCI_UT_B=file-b\n", 16);
	assert_int_equal(kci_engine_secrets_add_file(s, path, &err), 0);
	assert_int_equal(kci_engine_secrets_for(s, p, NULL, &v, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "asks for secrets KCI_UT_A, KCI_UT_C, which were not"));
	assert_null(strstr(err.msg, "env-a"));
	assert_null(v[0]);
	kci_strv_free(v);
	/* Granted by name, from the environment: then they are the job's. */
	assert_int_equal(kci_engine_secrets_add_env(s, "KCI_UT_A", &err), 0);
	assert_int_equal(kci_engine_secrets_add_env(s, "KCI_UT_C", &err), 0);
	v = values_for(s, all_three);
	assert_strv(
		v, (const char *const[]){ "KCI_UT_A=env-a", "KCI_UT_B=file-b", "KCI_UT_C=", NULL });
	kci_strv_free(v);
	kci_engine_secrets_free(s);
	kci_plan_free(p);
}

/* A plan asking for nothing gets an empty vector, never NULL. */
static void
test_secrets__no_secrets_asked_is_an_empty_vector(void **state)
{
	char **v;

	(void)state;
	v = values_for(NULL, "jobs:\n  job: {run: x}\n");
	assert_null(v[0]);
	kci_strv_free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_secrets__file_skips_comments_and_blank_lines,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_secrets__line_without_equals_named_by_its_number, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets__file_with_a_nul_byte_is_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets__missing_file_is_notfound, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_secrets__later_value_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets__add_env_takes_the_value_now, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_secrets__only_what_the_selected_jobs_ask_for,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets__every_missing_secret_named_once,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets__granted_ones_are_not_named_missing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets__environment_is_never_a_fallback,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets__no_secrets_asked_is_an_empty_vector,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
