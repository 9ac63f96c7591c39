/*
 * Unit tests for runner/render.c: a run's events, made up here for small
 * parsed plans (no VM), rendered into a memory stream and compared to the
 * exact text or JSON kci run prints. The sanitizer every hostile byte passes
 * before it reaches a terminal is test_render_sanitize.c's.
 */
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "runner/cli.h"

#include "render_fixture.h"

static struct kci_plan *
plan(const char *yaml)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = NULL;

	if (kci_plan_parse(yaml, strlen(yaml), ".kci.yml", &p, &err) != 0)
		fail_msg("plan: %s", err.msg);
	return p;
}

static size_t
job(const struct kci_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n_jobs; i++)
		if (strcmp(p->jobs[i].name, name) == 0)
			return i;
	fail_msg("no job %s", name);
	return 0;
}

/* Renders ev the way the engine's emitter sends it: job name and text length filled in. */
static void
feed(struct kci_render *r, const struct kci_plan *p, struct kci_event ev)
{
	if (ev.kind != KCI_EV_RUN_END && !ev.job_name)
		ev.job_name = p->jobs[ev.job].name;
	if (ev.text && !ev.len)
		ev.len = strlen(ev.text);
	kci_render_event(r, &ev);
}

static const char three_jobs[] = "jobs:\n"
				 "  lint: {run: make lint}\n"
				 "  build:\n"
				 "    steps:\n"
				 "      - {name: compile, run: make}\n"
				 "      - run: make check\n"
				 "  test: {run: make test, needs: [build]}\n";

static char cwd[4096];

static int
setup(void **state)
{
	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	return 0;
}

/* The life of a run: build fails in its second step, so test is skipped; lint passes. */
static void
feed_a_run(struct kci_render *r, const struct kci_plan *p)
{
	size_t lint = job(p, "lint"), build = job(p, "build"), test = job(p, "test");
	char *log = kci_xasprintf("%s/.kci/logs/build.log", cwd);
	char *lint_log = kci_xasprintf("%s/.kci/logs/lint.log", cwd);

	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_START, .job = build, .time_ms = 1 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_NOTE,
				 .job = build,
				 .text = "pulling alpine:3",
				 .time_ms = 2 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_STEP_START,
				 .job = build,
				 .step_name = "compile",
				 .time_ms = 3 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_LOG,
				 .job = build,
				 .step_name = "compile",
				 .stream = 2,
				 .text = "warning: unused x",
				 .time_ms = 4 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_STEP_END,
				 .job = build,
				 .step_name = "compile",
				 .state = KCI_JOB_PASSED,
				 .duration_ms = 1234,
				 .time_ms = 5 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_STEP_START,
				 .job = build,
				 .step = 1,
				 .step_name = "make check",
				 .time_ms = 6 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_STEP_END,
				 .job = build,
				 .step = 1,
				 .step_name = "make check",
				 .state = KCI_JOB_FAILED,
				 .exit_code = 2,
				 .duration_ms = 61000,
				 .time_ms = 7 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = build,
				 .state = KCI_JOB_FAILED,
				 .duration_ms = 62500,
				 .text = "step 2 (make check) failed with exit 2",
				 .log_path = log,
				 .time_ms = 8 });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_START, .job = lint, .time_ms = 9 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = lint,
				 .state = KCI_JOB_PASSED,
				 .duration_ms = 800,
				 .log_path = lint_log,
				 .time_ms = 10 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = test,
				 .state = KCI_JOB_SKIPPED,
				 .text = "needs build, which did not pass",
				 .time_ms = 11 });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_RUN_END, .time_ms = 63000 });
	free(log);
	free(lint_log);
}

static void
test_render__text_lines_and_summary(void **state)
{
	struct kci_plan *p = plan(three_jobs);
	struct kci_render *r;
	struct sink out;

	(void)state;
	sink_open(&out);
	r = kci_render_new(out.f, p, NULL, 0, 0);
	feed_a_run(r, p);
	assert_string_equal(
		sink_text(&out),
		"build | started\n"
		"build | kci: pulling alpine:3\n"
		"build | ==> compile\n"
		"build | warning: unused x\n"
		"build | <== compile passed in 1.2s\n"
		"build | ==> make check\n"
		"build | <== make check failed (exit 2) in 1m01s\n"
		"build | job failed in 1m02s: step 2 (make check) failed with exit 2\n"
		"lint  | started\n"
		"lint  | job passed in 0.8s\n"
		"test  | job skipped: needs build, which did not pass\n"
		"\n"
		"JOB    RESULT    DURATION\n"
		"lint   passed        0.8s\n"
		"build  failed       1m02s  step 2 (make check) failed with exit 2; log: "
		".kci/logs/build.log\n"
		"test   skipped          -  needs build, which did not pass\n"
		"\n"
		"1 passed, 1 failed, 1 skipped\n");
	assert_false(kci_render_passed(r));
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
}

/* The prefix column is as wide as the longest *selected* name; others are not shown. */
static void
test_render__prefix_padded_to_the_longest_selected_name(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  a: {run: x}\n"
				  "  abc: {run: x}\n"
				  "  a-much-longer-job-name: {run: x}\n");
	int selected[3] = { 1, 1, 0 };
	struct kci_render *r;
	struct sink out;

	(void)state;
	sink_open(&out);
	r = kci_render_new(out.f, p, selected, 0, 0);
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_START, .job = 0 });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_LOG, .job = 1, .text = "hi" });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_END, .job = 0, .state = KCI_JOB_PASSED });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_END, .job = 1, .state = KCI_JOB_PASSED });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_RUN_END });
	assert_string_equal(sink_text(&out), "a   | started\n"
					     "abc | hi\n"
					     "a   | job passed in 0.0s\n"
					     "abc | job passed in 0.0s\n"
					     "\n"
					     "JOB  RESULT    DURATION\n"
					     "a    passed        0.0s\n"
					     "abc  passed        0.0s\n"
					     "\n"
					     "2 passed\n");
	assert_true(kci_render_passed(r));
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
}

/* A matrix name past 40 columns is elided in the middle, keeping both ends. */
static void
test_render__long_matrix_name_elided_in_the_middle(void **state)
{
	struct kci_plan *p =
		plan("jobs:\n"
		     "  try:\n"
		     "    matrix: {INPUT: [test/fixtures/a-poem-with-a-rather-long-name.txt]}\n"
		     "    run: x\n"
		     "  lint: {run: x}\n");
	struct kci_render *r;
	struct sink out;

	(void)state;
	sink_open(&out);
	r = kci_render_new(out.f, p, NULL, 0, 0);
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_START,
				 .job = job(p, "try (INPUT=test/fixtures/a-poem-with-a-rather-long-"
					       "name.txt)") });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_START, .job = job(p, "lint") });
	assert_string_equal(sink_text(&out),
			    "try (INPUT=test/fix...her-long-name.txt) | started\n"
			    "lint                                     | started\n");
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
}

/* Two names that would elide to the same prefix are shown in full, all columns widened. */
static void
test_render__names_that_would_elide_alike_shown_in_full(void **state)
{
	static const char one[] =
		"try (INPUT=test/fixtures/AAAAAAAAAAAAAAAA-one-BBBBBBBBBBBBBBBBBB.txt)";
	static const char two[] =
		"try (INPUT=test/fixtures/AAAAAAAAAAAAAAAA-two-BBBBBBBBBBBBBBBBBB.txt)";
	struct kci_plan *p =
		plan("jobs:\n"
		     "  try:\n"
		     "    matrix:\n"
		     "      INPUT:\n"
		     "        - test/fixtures/AAAAAAAAAAAAAAAA-one-BBBBBBBBBBBBBBBBBB.txt\n"
		     "        - test/fixtures/AAAAAAAAAAAAAAAA-two-BBBBBBBBBBBBBBBBBB.txt\n"
		     "    run: x\n"
		     "  lint: {run: x}\n");
	struct kci_render *r;
	struct sink out;
	char *want;

	(void)state;
	sink_open(&out);
	r = kci_render_new(out.f, p, NULL, 0, 0);
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_START, .job = job(p, one) });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_START, .job = job(p, two) });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_START, .job = job(p, "lint") });
	want = kci_xasprintf("%s | started\n%s | started\n%-*s | started\n", one, two,
			     (int)strlen(one), "lint");
	assert_string_equal(sink_text(&out), want);
	free(want);
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
}

/*
 * Canceled: a job that never started has no duration, one that was running
 * has its own; the counts line says the run was interrupted.
 */
static void
test_render__interrupted_run(void **state)
{
	struct kci_plan *p = plan(three_jobs);
	struct kci_render *r;
	struct sink out;

	(void)state;
	sink_open(&out);
	r = kci_render_new(out.f, p, NULL, 0, 0);
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = job(p, "lint"),
				 .state = KCI_JOB_PASSED,
				 .duration_ms = 4000 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = job(p, "build"),
				 .state = KCI_JOB_CANCELED,
				 .duration_ms = 5000,
				 .text = "canceled in step 1 (compile)" });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = job(p, "test"),
				 .state = KCI_JOB_CANCELED,
				 .text = "canceled before it started" });
	kci_render_interrupted(r);
	feed(r, p, (struct kci_event){ .kind = KCI_EV_RUN_END });
	assert_string_equal(sink_text(&out),
			    "lint  | job passed in 4.0s\n"
			    "build | job canceled: canceled in step 1 (compile)\n"
			    "test  | job canceled: canceled before it started\n"
			    "\n"
			    "JOB    RESULT    DURATION\n"
			    "lint   passed        4.0s\n"
			    "build  canceled      5.0s  canceled in step 1 (compile)\n"
			    "test   canceled         -  canceled before it started\n"
			    "\n"
			    "1 passed, 2 canceled (interrupted)\n");
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
}

/*
 * A log path below the current directory is shown relative to it; one
 * elsewhere, or in a sibling whose name merely starts the same, in full. A
 * job without a why still names its log.
 */
static void
test_render__log_path_relative_only_below_cwd(void **state)
{
	struct kci_plan *p = plan(three_jobs);
	char *sibling = kci_xasprintf("%s-sibling/.kci/logs/lint.log", cwd);
	char *below = kci_xasprintf("%s/sub/.kci/logs/test.log", cwd);
	struct kci_render *r;
	struct sink out;
	char *want;

	(void)state;
	sink_open(&out);
	r = kci_render_new(out.f, p, NULL, 0, 0);
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = job(p, "lint"),
				 .state = KCI_JOB_ERROR,
				 .text = "cannot boot",
				 .log_path = sibling });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = job(p, "build"),
				 .state = KCI_JOB_TIMEOUT,
				 .duration_ms = 90000,
				 .log_path = "/var/tmp/elsewhere/build.log" });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = job(p, "test"),
				 .state = KCI_JOB_FAILED,
				 .log_path = below });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_RUN_END });
	want = kci_xasprintf("lint   error         0.0s  cannot boot; log: %s\n"
			     "build  timeout      1m30s  log: /var/tmp/elsewhere/build.log\n"
			     "test   failed        0.0s  log: sub/.kci/logs/test.log\n"
			     "\n"
			     "1 failed, 1 timeout, 1 error\n",
			     sibling);
	assert_non_null(strstr(sink_text(&out), want));
	free(want);
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
	free(sibling);
	free(below);
}

/* What the guest or the repository wrote cannot drive the terminal: not in lines, notes, names. */
static void
test_render__hostile_text_is_sanitized(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  t:\n"
				  "    matrix: {V: [\"\\e[2J\"]}\n"
				  "    run: x\n");
	struct kci_render *r;
	struct sink out;

	(void)state;
	assert_string_equal(p->jobs[0].name, "t (V=\x1b[2J)");
	sink_open(&out);
	r = kci_render_new(out.f, p, NULL, 0, 0);
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_LOG,
				 .job = 0,
				 .text = "\x1b[2Jclear\r\x1b[31mred\x1b[0m\x07" });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_NOTE, .job = 0, .text = "\x1b]0;pwned\x07" });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_STEP_START, .job = 0, .step_name = "s\x1b[H" });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = 0,
				 .state = KCI_JOB_FAILED,
				 .text = "why\x1b[K" });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_RUN_END });
	assert_string_equal(sink_text(&out), "t (V=?[2J) | ?[2Jclear?\x1b[31mred\x1b[0m?\n"
					     "t (V=?[2J) | kci: ?]0;pwned?\n"
					     "t (V=?[2J) | ==> s?[H\n"
					     "t (V=?[2J) | job failed in 0.0s: why?[K\n"
					     "\n"
					     "JOB         RESULT    DURATION\n"
					     "t (V=?[2J)  failed        0.0s  why?[K\n"
					     "\n"
					     "1 failed\n");
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
}

/* On a terminal: each job's prefix in a colour of its own, step starts bold, results coloured. */
static void
test_render__colour(void **state)
{
	struct kci_plan *p = plan(three_jobs);
	struct kci_render *r;
	struct sink out;

	(void)state;
	sink_open(&out);
	r = kci_render_new(out.f, p, NULL, 0, 1);
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_START, .job = 0 });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_STEP_START, .job = 1, .step_name = "compile" });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_END, .job = 0, .state = KCI_JOB_PASSED });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_END, .job = 1, .state = KCI_JOB_FAILED });
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_JOB_END, .job = 2, .state = KCI_JOB_SKIPPED });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_RUN_END });
	assert_string_equal(sink_text(&out), "\x1b[36mlint  |\x1b[0m started\n"
					     "\x1b[33mbuild |\x1b[0m \x1b[1m==> compile\x1b[0m\n"
					     "\x1b[36mlint  |\x1b[0m job passed in 0.0s\n"
					     "\x1b[33mbuild |\x1b[0m job failed in 0.0s\n"
					     "\x1b[35mtest  |\x1b[0m job skipped\n"
					     "\n"
					     "JOB    RESULT    DURATION\n"
					     "lint   \x1b[32mpassed  \x1b[0m      0.0s\n"
					     "build  \x1b[31mfailed  \x1b[0m      0.0s\n"
					     "test   \x1b[2mskipped \x1b[0m         -\n"
					     "\n"
					     "1 passed, 1 failed, 1 skipped\n");
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
}

/* The next line of JSON out of buf at *pos, parsed; NULL at the end. */
static json_object *
next_object(const char *buf, size_t *pos)
{
	const char *nl;
	json_object *o;
	char *line;

	if (!buf[*pos])
		return NULL;
	nl = strchr(buf + *pos, '\n');
	assert_non_null(nl); /* every object ends its line */
	line = kci_xstrndup(buf + *pos, (size_t)(nl - buf - *pos));
	*pos = (size_t)(nl - buf) + 1;
	o = json_tokener_parse(line);
	if (!o)
		fail_msg("not one JSON object: %s", line);
	free(line);
	return o;
}

static const char *
str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static int64_t
num(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no %s", key);
	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

static void
test_render__json_one_object_per_event(void **state)
{
	static const char *const kinds[] = { "job_start", "note",	"step_start", "log",
					     "step_end",  "step_start", "step_end",   "job_end",
					     "job_start", "job_end",	"job_end",    "summary" };
	struct kci_plan *p = plan(three_jobs);
	struct kci_render *r;
	struct sink out;
	json_object *o, *jobs, *v;
	const char *text;
	size_t pos = 0, n = 0;
	char *log;

	(void)state;
	sink_open(&out);
	r = kci_render_new(out.f, p, NULL, 1, 1); /* colour is never part of JSON */
	feed_a_run(r, p);
	text = sink_text(&out);
	assert_null(strchr(text, '\x1b'));
	/* One line each, the exact shape of a log line's object pinned. */
	assert_non_null(strstr(text,
			       "{\"event\":\"log\",\"time_ms\":4,\"job\":\"build\",\"step\":0,"
			       "\"step_name\":\"compile\",\"stream\":\"stderr\",\"line\":"
			       "\"warning: unused x\"}\n"));
	while ((o = next_object(text, &pos))) {
		assert_true(n < sizeof(kinds) / sizeof(*kinds));
		assert_string_equal(str(o, "event"), kinds[n]);
		assert_int_equal(num(o, "time_ms"), n == 11 ? 63000 : (int64_t)n + 1);
		if (n == 6) {
			assert_int_equal(num(o, "exit_code"), 2);
			assert_string_equal(str(o, "result"), "failed");
			assert_int_equal(num(o, "duration_ms"), 61000);
		}
		if (n == 7) {
			log = kci_xasprintf("%s/.kci/logs/build.log", cwd);
			assert_string_equal(str(o, "job"), "build");
			assert_string_equal(str(o, "result"), "failed");
			assert_string_equal(str(o, "message"),
					    "step 2 (make check) failed with exit 2");
			assert_string_equal(str(o, "log"), log); /* as the engine gave it */
			free(log);
		}
		if (n == 11) {
			assert_true(json_object_object_get_ex(o, "passed", &v));
			assert_true(json_object_is_type(v, json_type_boolean));
			assert_false(json_object_get_boolean(v));
			assert_true(json_object_object_get_ex(o, "jobs", &jobs));
			assert_int_equal(json_object_array_length(jobs), 3);
			v = json_object_array_get_idx(jobs, 1);
			assert_string_equal(str(v, "job"), "build");
			assert_string_equal(str(v, "result"), "failed");
			assert_int_equal(num(v, "duration_ms"), 62500);
			assert_string_equal(str(v, "log"), ".kci/logs/build.log");
			v = json_object_array_get_idx(jobs, 2);
			assert_string_equal(str(v, "result"), "skipped");
			assert_string_equal(str(v, "message"), "needs build, which did not pass");
			assert_null(str(v, "log"));
		}
		json_object_put(o);
		n++;
	}
	assert_int_equal(n, 12);
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
}

/* JSON carries the guest's bytes as they were (escaped), for tools to judge. */
static void
test_render__json_keeps_text_exact_and_escaped(void **state)
{
	struct kci_plan *p = plan("jobs:\n  a: {run: x}\n");
	struct kci_render *r;
	struct sink out;
	json_object *o, *v;
	size_t pos = 0;

	(void)state;
	sink_open(&out);
	r = kci_render_new(out.f, p, NULL, 1, 0);
	feed(r, p,
	     (struct kci_event){ .kind = KCI_EV_LOG,
				 .job = 0,
				 .step_name = "s",
				 .text = "\x1b[2J\"quoted\"\t/" });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_END, .job = 0, .state = KCI_JOB_PASSED });
	feed(r, p, (struct kci_event){ .kind = KCI_EV_RUN_END, .time_ms = 7 });
	assert_null(strchr(sink_text(&out), '\x1b'));
	o = next_object(sink_text(&out), &pos);
	assert_string_equal(str(o, "line"), "\x1b[2J\"quoted\"\t/");
	assert_string_equal(str(o, "stream"), "stdout");
	json_object_put(o);
	json_object_put(next_object(sink_text(&out), &pos));
	o = next_object(sink_text(&out), &pos);
	assert_string_equal(str(o, "event"), "summary");
	assert_int_equal(num(o, "time_ms"), 7);
	assert_true(json_object_object_get_ex(o, "passed", &v));
	assert_true(json_object_get_boolean(v));
	json_object_put(o);
	assert_null(next_object(sink_text(&out), &pos));
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
}

/* An interrupted run did not pass, in JSON too, even when every job that ended passed. */
static void
test_render__json_interrupted_is_not_passed(void **state)
{
	struct kci_plan *p = plan("jobs:\n  a: {run: x}\n");
	struct kci_render *r;
	struct sink out;
	json_object *o, *v;
	size_t pos = 0;

	(void)state;
	sink_open(&out);
	r = kci_render_new(out.f, p, NULL, 1, 0);
	feed(r, p, (struct kci_event){ .kind = KCI_EV_JOB_END, .job = 0, .state = KCI_JOB_PASSED });
	kci_render_interrupted(r);
	feed(r, p, (struct kci_event){ .kind = KCI_EV_RUN_END });
	json_object_put(next_object(sink_text(&out), &pos));
	o = next_object(sink_text(&out), &pos);
	assert_true(json_object_object_get_ex(o, "passed", &v));
	assert_false(json_object_get_boolean(v));
	json_object_put(o);
	kci_render_free(r);
	sink_close(&out);
	kci_plan_free(p);
}

static const char list_plan[] = "jobs:\n"
				"  lint: {run: x}\n"
				"  build:\n"
				"    image: debian:12\n"
				"    needs: [lint]\n"
				"    steps: [{run: a}, {run: b}]\n"
				"  test:\n"
				"    image: 127.0.0.1:5000/team/builder:1\n"
				"    needs: [build, lint]\n"
				"    matrix: {V: [1]}\n"
				"    run: x\n"
				"  docs: {run: x}\n";

static void
test_render__list_text(void **state)
{
	struct kci_plan *p = plan(list_plan);
	int selected[4] = { 1, 1, 1, 0 };
	struct sink out;

	(void)state;
	sink_open(&out);
	kci_render_list(out.f, p, selected, 0);
	assert_string_equal(sink_text(&out),
			    "JOB         IMAGE                          STEPS  NEEDS\n"
			    "lint        (busybox base)                     1  -\n"
			    "build       debian:12                          2  lint\n"
			    "test (V=1)  127.0.0.1:5000/team/builder:1      1  build, lint\n");
	sink_close(&out);
	kci_plan_free(p);
}

static void
test_render__list_json(void **state)
{
	struct kci_plan *p = plan(list_plan);
	int selected[4] = { 1, 1, 0, 1 };
	struct sink out;

	(void)state;
	sink_open(&out);
	kci_render_list(out.f, p, selected, 1);
	assert_string_equal(
		sink_text(&out),
		"{\"job\":\"lint\",\"image\":null,\"steps\":1,\"needs\":[]}\n"
		"{\"job\":\"build\",\"image\":\"debian:12\",\"steps\":2,\"needs\":[\"lint\"]}\n"
		"{\"job\":\"docs\",\"image\":null,\"steps\":1,\"needs\":[]}\n");
	sink_close(&out);
	kci_plan_free(p);
}

#define T(name) cmocka_unit_test_setup(name, setup)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_render__text_lines_and_summary),
		T(test_render__prefix_padded_to_the_longest_selected_name),
		T(test_render__long_matrix_name_elided_in_the_middle),
		T(test_render__names_that_would_elide_alike_shown_in_full),
		T(test_render__interrupted_run),
		T(test_render__log_path_relative_only_below_cwd),
		T(test_render__hostile_text_is_sanitized),
		T(test_render__colour),
		T(test_render__json_one_object_per_event),
		T(test_render__json_keeps_text_exact_and_escaped),
		T(test_render__json_interrupted_is_not_passed),
		T(test_render__list_text),
		T(test_render__list_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
