/*
 * Unit tests for engine/events.c: the lines a job's log file has for each
 * event, which kci run's logs and kci serve's logs share.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/internal.h"

static void
assert_line(const struct kci_event *ev, const char *want)
{
	char *line = kci_engine_log_line(ev);

	if (!want) {
		assert_null(line);
		return;
	}
	assert_non_null(line);
	assert_string_equal(line, want);
	free(line);
}

static void
log_lines_are_verbatim_and_cut_at_len(void **state)
{
	/* A line is its len bytes: what follows in the buffer is not the log's. */
	struct kci_event ev = { .kind = KCI_EV_LOG, .text = "make: ok<junk", .len = 8 };

	(void)state;
	assert_line(&ev, "make: ok");
	ev.text = "";
	ev.len = 0;
	assert_line(&ev, "");
}

static void
steps_are_numbered_from_one(void **state)
{
	struct kci_event start = { .kind = KCI_EV_STEP_START, .step = 0, .step_name = "build" };
	struct kci_event pass = { .kind = KCI_EV_STEP_END,
				  .step = 1,
				  .state = KCI_JOB_PASSED,
				  .exit_code = 0,
				  .duration_ms = 2000 };
	struct kci_event fail = { .kind = KCI_EV_STEP_END,
				  .step = 2,
				  .state = KCI_JOB_FAILED,
				  .exit_code = 137,
				  .duration_ms = 500 };

	(void)state;
	assert_line(&start, "== step 1: build");
	assert_line(&pass, "== step 2 passed (exit 0) in 2.0s");
	assert_line(&fail, "== step 3 failed (exit 137) in 0.5s");
}

static void
job_end_says_why(void **state)
{
	struct kci_event ok = { .kind = KCI_EV_JOB_END,
				.state = KCI_JOB_PASSED,
				.duration_ms = 1000 };
	struct kci_event bad = { .kind = KCI_EV_JOB_END,
				 .state = KCI_JOB_TIMEOUT,
				 .duration_ms = 1000,
				 .text = "timed out after 1.0s",
				 .len = 20 };
	struct kci_event note = { .kind = KCI_EV_JOB_NOTE, .text = "pulling alpine:3", .len = 16 };

	(void)state;
	assert_line(&ok, "== job passed in 1.0s");
	assert_line(&bad, "== job timeout in 1.0s: timed out after 1.0s");
	assert_line(&note, "kci: pulling alpine:3");
}

static void
start_and_run_end_have_no_line(void **state)
{
	struct kci_event a = { .kind = KCI_EV_JOB_START, .job_name = "build" };
	struct kci_event b = { .kind = KCI_EV_RUN_END };

	(void)state;
	assert_line(&a, NULL);
	assert_line(&b, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(log_lines_are_verbatim_and_cut_at_len),
		cmocka_unit_test(steps_are_numbered_from_one),
		cmocka_unit_test(job_end_says_why),
		cmocka_unit_test(start_and_run_end_have_no_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
