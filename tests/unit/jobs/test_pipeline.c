/* Unit tests for the pipeline file parser (jobs/pipeline.c, jobs/tree.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "jobs/jobs.h"

/* The complete example of docs/pipeline.md, comments included. */
static const char example[] = "# Defaults for every job (all optional)\n"
			      "image: 127.0.0.1:5000/team/builder:1   # OCI image\n"
			      "env:                                   # map of strings\n"
			      "  CC: gcc\n"
			      "secrets: [API_TOKEN]                   # names\n"
			      "\n"
			      "jobs:\n"
			      "  lint:\n"
			      "    run: make lint                     # short form\n"
			      "\n"
			      "  build:\n"
			      "    image: debian:12\n"
			      "    env: {MODE: release}\n"
			      "    needs: [lint]\n"
			      "    timeout: 10m\n"
			      "    cpus: 2\n"
			      "    memory: 1G\n"
			      "    network: nat\n"
			      "    steps:\n"
			      "      - name: compile\n"
			      "        run: make -j2\n"
			      "      - run: make check\n"
			      "        allow_failure: true\n"
			      "    artifacts: [out/bin, reports/]\n"
			      "\n"
			      "  test:\n"
			      "    needs: [build]\n"
			      "    matrix:\n"
			      "      GO: [\"1.21\", \"1.22\"]\n"
			      "      OS: [a, b]\n"
			      "    steps:\n"
			      "      - run: go$GO test ./...\n";

static struct kci_plan *
parse_ok(const char *text)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = NULL;
	int rc = kci_plan_parse(text, strlen(text), ".kci.yml", &p, &err);

	if (rc != 0)
		fail_msg("unexpected error: %s", err.msg);
	return p;
}

static void
assert_strv(char **got, const char *const *want)
{
	size_t i;

	for (i = 0; want[i]; i++) {
		assert_non_null(got[i]);
		assert_string_equal(got[i], want[i]);
	}
	assert_null(got[i]);
}

static void
test_pipeline__example(void **state)
{
	struct kci_plan *p = parse_ok(example);
	const struct kci_job *lint, *build, *t;
	static const char *const none[] = { NULL };
	static const char *const test_names[] = { "test (GO=1.21, OS=a)", "test (GO=1.21, OS=b)",
						  "test (GO=1.22, OS=a)", "test (GO=1.22, OS=b)" };
	size_t i;

	(void)state;
	assert_int_equal(p->n_jobs, 6);
	lint = &p->jobs[0];
	assert_string_equal(lint->name, "lint");
	assert_string_equal(lint->base, "lint");
	assert_string_equal(lint->image, "127.0.0.1:5000/team/builder:1");
	assert_strv(lint->env, (const char *const[]){ "CC=gcc", NULL });
	assert_strv(lint->secrets, (const char *const[]){ "API_TOKEN", NULL });
	assert_strv(lint->needs, none);
	assert_strv(lint->artifacts, none);
	assert_int_equal(lint->n_steps, 1);
	assert_string_equal(lint->steps[0].name, "make lint");
	assert_string_equal(lint->steps[0].run, "make lint");
	assert_int_equal(lint->timeout_ms, 0);
	assert_int_equal(lint->cpus, 0);
	assert_int_equal(lint->memory_mib, 0);
	assert_int_equal(lint->network, KCI_NET_NONE);
	assert_int_equal(lint->line, 8);
	assert_int_equal(lint->col, 3);

	build = &p->jobs[1];
	assert_string_equal(build->name, "build");
	assert_string_equal(build->image, "debian:12");
	assert_strv(build->env, (const char *const[]){ "CC=gcc", "MODE=release", NULL });
	assert_strv(build->needs, (const char *const[]){ "lint", NULL });
	assert_int_equal(build->timeout_ms, 600000);
	assert_int_equal(build->cpus, 2);
	assert_int_equal(build->memory_mib, 1024);
	assert_int_equal(build->network, KCI_NET_NAT);
	assert_int_equal(build->n_steps, 2);
	assert_string_equal(build->steps[0].name, "compile");
	assert_string_equal(build->steps[0].run, "make -j2");
	assert_int_equal(build->steps[0].allow_failure, 0);
	assert_int_equal(build->steps[0].line, 20);
	assert_string_equal(build->steps[1].name, "make check");
	assert_int_equal(build->steps[1].allow_failure, 1);
	assert_strv(build->artifacts, (const char *const[]){ "out/bin", "reports/", NULL });

	for (i = 0; i < 4; i++) {
		t = &p->jobs[2 + i];
		assert_string_equal(t->name, test_names[i]);
		assert_string_equal(t->base, "test");
		assert_string_equal(t->image, "127.0.0.1:5000/team/builder:1");
		assert_strv(t->needs, (const char *const[]){ "build", NULL });
		assert_int_equal(t->n_steps, 1);
		assert_string_equal(t->steps[0].run, "go$GO test ./...");
		assert_int_equal(t->line, 26);
	}
	assert_strv(p->jobs[3].env, (const char *const[]){ "CC=gcc", "GO=1.21", "OS=b", NULL });
	kci_plan_free(p);
}

static void
test_pipeline__needs_matrix_job_means_all_combinations(void **state)
{
	struct kci_plan *p = parse_ok("jobs:\n"
				      "  t:\n"
				      "    matrix: {V: [x, y]}\n"
				      "    run: echo $V\n"
				      "  after:\n"
				      "    needs: [t, t]\n"
				      "    run: done\n");

	(void)state;
	assert_int_equal(p->n_jobs, 3);
	assert_string_equal(p->jobs[0].name, "t (V=x)");
	assert_string_equal(p->jobs[1].name, "t (V=y)");
	assert_strv(p->jobs[2].needs, (const char *const[]){ "t (V=x)", "t (V=y)", NULL });
	kci_plan_free(p);
}

static void
test_pipeline__later_env_wins(void **state)
{
	struct kci_plan *p = parse_ok("env: {A: top, B: top, N: 3, T: true}\n"
				      "jobs:\n"
				      "  j:\n"
				      "    env: {B: job, C: job}\n"
				      "    matrix: {C: [m]}\n"
				      "    secrets: [S, S]\n"
				      "    run: |\n"
				      "      first line\n"
				      "      second\n");

	(void)state;
	assert_strv(p->jobs[0].env,
		    (const char *const[]){ "A=top", "B=job", "N=3", "T=true", "C=m", NULL });
	assert_strv(p->jobs[0].secrets, (const char *const[]){ "S", NULL });
	assert_null(p->jobs[0].image);
	assert_string_equal(p->jobs[0].steps[0].name, "first line");
	assert_string_equal(p->jobs[0].steps[0].run, "first line\nsecond\n");
	kci_plan_free(p);
}

struct bad_case {
	const char *text;
	const char *msg;
};

static const struct bad_case bad_cases[] = {
	{ "jobs:\n  build:\n    run: make\n    neds: [lint]\n",
	  ".kci.yml:4:5: unknown key \"neds\" in job \"build\" (did you mean \"needs\"?)" },
	{ "jobs:\n  a:\n    run: x\n    timeout: 10x\n",
	  ".kci.yml:4:14: bad duration \"10x\" for timeout (examples: 90, 30s, 5m, 1h30m)" },
	{ "jobs:\n  a:\n    run: x\n    cpus: 65\n",
	  ".kci.yml:4:11: bad cpus \"65\" (a whole number from 1 to 64)" },
	{ "jobs:\n  a:\n    run: x\n    memory: 32M\n",
	  ".kci.yml:4:13: bad size \"32M\" for memory (examples: 512M, 2G, 2048; 64M to 1024G)" },
	{ "jobs:\n  a:\n    run: x\n    network: host\n",
	  ".kci.yml:4:14: bad network \"host\" (none or nat)" },
	{ "jobs:\n  a:\n    run: [x\n", ".kci.yml:4:1: did not find expected ',' or ']' while "
					"parsing a flow sequence" },
	{ "jobs:\n  a:\n    run: x\n    needs: [b]\n  b:\n    run: y\n    needs: [a]\n",
	  ".kci.yml:2:3: jobs a -> b -> a form a cycle" },
	{ "jobs:\n  build:\n    run: x\n  test:\n    run: y\n    needs: [biuld]\n",
	  ".kci.yml:6:13: job \"test\" needs unknown job \"biuld\" (did you mean \"build\"?)" },
	{ "jobs:\n  a:\n    run: x\n    needs: [a]\n", ".kci.yml:4:13: job \"a\" needs itself" },
	{ "jobs:\n  a:\n    run: x\n  a:\n    run: y\n",
	  ".kci.yml:4:3: duplicate key \"a\" (first at line 2)" },
	{ "x: &a [1]\njobs:\n  a:\n    run: x\n",
	  ".kci.yml:1:4: anchors and aliases are not supported (they make small files expand "
	  "hugely)" },
	{ "imgae: x\njobs:\n  a: {run: x}\n",
	  ".kci.yml:1:1: unknown key \"imgae\" at the top level (did you mean \"image\"?)" },
	{ "jobs:\n  a:\n    steps:\n      - rn: x\n",
	  ".kci.yml:4:9: unknown key \"rn\" in a step of job \"a\" (did you mean \"run\"?)" },
	{ "jobs:\n  a:\n    run: x\n    steps: [{run: y}]\n",
	  ".kci.yml:4:12: job \"a\" has both \"run\" and \"steps\"; keep one" },
	{ "jobs:\n  a:\n    image: x\n", ".kci.yml:2:3: job \"a\" needs \"run\" or \"steps\"" },
	{ "jobs:\n  a:\n    steps: []\n", ".kci.yml:3:12: job \"a\" has no steps" },
	{ "jobs:\n  a:\n", ".kci.yml:2:3: job \"a\" is empty; give it \"run\" or \"steps\"" },
	{ "jobs:\n  -bad:\n    run: x\n",
	  ".kci.yml:2:3: bad job name \"-bad\" (letters, digits, _ . -; at most 64 characters)" },
	{ "env: {1X: y}\njobs:\n  a: {run: x}\n",
	  ".kci.yml:1:7: bad variable name \"1X\" (letters, digits and _)" },
	{ "jobs:\n  a:\n    run: x\n    matrix: {V: []}\n",
	  ".kci.yml:4:17: matrix variable V must be a non-empty list" },
	{ "jobs:\n  a:\n    run: x\n    matrix: {V: [1, 1]}\n",
	  ".kci.yml:4:21: matrix value \"1\" is repeated" },
	{ "jobs:\n  a:\n    run: x\n    artifacts: [/etc]\n",
	  ".kci.yml:4:17: artifact \"/etc\" must be a relative path" },
	{ "jobs:\n  a:\n    run: x\n    artifacts: [a/../../x]\n",
	  ".kci.yml:4:17: artifact \"a/../../x\" must not contain \"..\"" },
	{ "jobs:\n  a:\n    steps:\n      - run: x\n        allow_failure: maybe\n",
	  ".kci.yml:5:24: allow_failure must be true or false" },
	{ "image: x\n", ".kci.yml:1:1: no \"jobs\": a pipeline needs at least one job" },
	{ "", ".kci.yml:1:1: a pipeline file is a mapping with a \"jobs\" key" },
	{ "jobs: {}\n", ".kci.yml:1:7: \"jobs\" must map job names to jobs, at least one" },
	{ "jobs: {a: {run: x}}\n---\njobs: {}\n",
	  ".kci.yml:2:1: more than one YAML document (remove the \"---\")" },
	{ "jobs:\n  a:\n    run: \"x\\0y\"\n", ".kci.yml:3:10: string contains a NUL character" },
};

static void
test_pipeline__errors_have_position_and_hint(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct kci_err err = KCI_ERR_INIT;
		struct kci_plan *p = NULL;
		int rc = kci_plan_parse(bad_cases[i].text, strlen(bad_cases[i].text), ".kci.yml",
					&p, &err);
		if (rc != KCI_INVALID || strcmp(err.msg, bad_cases[i].msg) != 0)
			fail_msg("case %zu: rc %d\n got: %s\nwant: %s", i, rc, err.msg,
				 bad_cases[i].msg);
		assert_null(p);
	}
}

/* Appends printf-formatted text to a growing YAML text. */
static char *add_text(char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *
add_text(char *text, const char *fmt, ...)
{
	size_t old = strlen(text);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	text = kci_xrealloc(text, old + (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(text + old, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return text;
}

static int
parse_rc(const char *text, struct kci_err *err)
{
	struct kci_plan *p = NULL;
	int rc = kci_plan_parse(text, strlen(text), ".kci.yml", &p, err);

	kci_plan_free(p);
	return rc;
}

static void
test_pipeline__bounds(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char *text = kci_xstrdup("jobs:\n"), deep[41];
	unsigned i;

	(void)state;
	for (i = 0; i < KCI_PLAN_JOBS_MAX; i++)
		text = add_text(text, "  j%u: {run: x}\n", i);
	assert_int_equal(parse_rc(text, &err), 0);
	text = add_text(text, "  j%u: {run: x}\n", i);
	assert_int_equal(parse_rc(text, &err), KCI_INVALID);
	assert_string_equal(err.msg, ".kci.yml:2:3: more than 256 jobs");
	free(text);

	text = kci_xstrdup("jobs:\n  a:\n    steps:\n");
	for (i = 0; i < KCI_PLAN_STEPS_MAX + 1; i++)
		text = add_text(text, "      - run: s%u\n", i);
	assert_int_equal(parse_rc(text, &err), KCI_INVALID);
	assert_string_equal(err.msg, ".kci.yml:4:7: job \"a\" has more than 256 steps");
	free(text);

	text = kci_xstrdup(
		"jobs:\n  m:\n    run: x\n    matrix:\n      A: [1, 2, 3, 4, 5, 6, 7, 8]\n"
		"      B: [1, 2, 3, 4, 5, 6, 7, 8]\n");
	assert_int_equal(parse_rc(text, &err), 0);
	text = add_text(text, "      C: [1, %u]\n", 2);
	assert_int_equal(parse_rc(text, &err), KCI_INVALID);
	assert_string_equal(err.msg,
			    ".kci.yml:5:7: matrix of job \"m\" has more than 64 combinations");
	free(text);

	/* Deep nesting stops at the tree's depth limit, long before libyaml's own. */
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	text = kci_xasprintf("jobs:\n  a: {run: x}\n  b: %s\n", deep);
	assert_int_equal(parse_rc(text, &err), KCI_INVALID);
	assert_string_equal(err.msg, ".kci.yml:3:36: nested too deeply");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipeline__example),
		cmocka_unit_test(test_pipeline__needs_matrix_job_means_all_combinations),
		cmocka_unit_test(test_pipeline__later_env_wins),
		cmocka_unit_test(test_pipeline__errors_have_position_and_hint),
		cmocka_unit_test(test_pipeline__bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
