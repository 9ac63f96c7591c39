/* Unit tests for the job graph: order, cycles, selection and loading (jobs/plan.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "jobs/jobs.h"

static struct kci_plan *
parse_ok(const char *text)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = NULL;

	if (kci_plan_parse(text, strlen(text), ".kci.yml", &p, &err) != 0)
		fail_msg("unexpected error: %s", err.msg);
	return p;
}

/* Jobs listed before what they need, so the order must move them; c and e are independent. */
static const char graph[] = "jobs:\n"
			    "  deploy: {run: x, needs: [test]}\n"
			    "  c: {run: x}\n"
			    "  test:\n"
			    "    run: x\n"
			    "    needs: [build]\n"
			    "    matrix: {V: [1, 2]}\n"
			    "  build: {run: x}\n"
			    "  e: {run: x, needs: [c]}\n";

static void
test_plan__order_puts_needs_first_stably(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = parse_ok(graph);
	static const char *const want[] = {
		"c", "build", "test (V=1)", "test (V=2)", "deploy", "e"
	};
	size_t *order = NULL, i;

	(void)state;
	assert_int_equal(p->n_jobs, 6);
	assert_int_equal(kci_plan_order(p, &order, &err), 0);
	for (i = 0; i < p->n_jobs; i++)
		assert_string_equal(p->jobs[order[i]].name, want[i]);
	free(order);
	kci_plan_free(p);
}

static void
test_plan__order_reports_cycle_path(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_job jobs[3];
	struct kci_plan p = { jobs, 3 };
	char *needs_a[] = { NULL }, *needs_b[] = { "c", NULL }, *needs_c[] = { "a", "b", NULL };
	size_t *order = NULL;

	(void)state;
	memset(jobs, 0, sizeof(jobs));
	jobs[0] = (struct kci_job){ .name = "a", .base = "a", .needs = needs_a };
	jobs[1] = (struct kci_job){ .name = "b", .base = "b", .needs = needs_b };
	jobs[2] = (struct kci_job){ .name = "c", .base = "c", .needs = needs_c };
	assert_int_equal(kci_plan_order(&p, &order, &err), KCI_INVALID);
	assert_string_equal(err.msg, "jobs b -> c -> b form a cycle");
	assert_null(order);
}

static void
test_plan__parse_rejects_longer_cycle(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = NULL;
	const char *text = "jobs:\n"
			   "  ok: {run: x}\n"
			   "  build: {run: x, needs: [ok, test]}\n"
			   "  test: {run: x, needs: [lint]}\n"
			   "  lint: {run: x, needs: [build]}\n";

	(void)state;
	assert_int_equal(kci_plan_parse(text, strlen(text), "ci.yml", &p, &err), KCI_INVALID);
	assert_string_equal(err.msg,
			    "ci.yml:3:3: jobs build -> test -> lint -> build form a cycle");
	assert_null(p);
}

static void
test_plan__select_adds_transitive_needs(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = parse_ok(graph);
	char *deploy[] = { "deploy", NULL }, *one[] = { "test (V=2)", "c", NULL };
	int *sel = NULL;

	(void)state;
	/* deploy needs test (both combinations), which needs build; c and e stay out. */
	assert_int_equal(kci_plan_select(p, deploy, &sel, &err), 0);
	assert_int_equal(sel[0], 1);
	assert_int_equal(sel[1], 0);
	assert_int_equal(sel[2], 1);
	assert_int_equal(sel[3], 1);
	assert_int_equal(sel[4], 1);
	assert_int_equal(sel[5], 0);
	free(sel);

	assert_int_equal(kci_plan_select(p, one, &sel, &err), 0);
	assert_int_equal(sel[0], 0);
	assert_int_equal(sel[1], 1);
	assert_int_equal(sel[2], 0);
	assert_int_equal(sel[3], 1);
	assert_int_equal(sel[4], 1);
	assert_int_equal(sel[5], 0);
	free(sel);
	kci_plan_free(p);
}

/* Log and artifact names: one safe path component per job, unique, and selectable. */
static void
test_plan__file_names_are_safe_unique_and_selectable(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = parse_ok("jobs:\n"
				      "  build:\n"
				      "    run: x\n"
				      "    matrix: {CC: [gcc, \"a/b\", \"../..\"]}\n"
				      "  build_CC-gcc: {run: x}\n"
				      "  a.b-c_d: {run: x}\n");
	static const char *const want[] = { "build_CC-gcc", "build_CC-a_b", "build_CC-.._..",
					    "build_CC-gcc-2", "a.b-c_d" };
	char *by_file[] = { "build_CC-a_b", NULL };
	int *sel = NULL;

	(void)state;
	assert_int_equal(p->n_jobs, 5);
	for (size_t i = 0; i < p->n_jobs; i++) {
		assert_string_equal(p->jobs[i].file_name, want[i]);
		assert_null(strchr(p->jobs[i].file_name, '/'));
	}
	assert_int_equal(kci_plan_select(p, by_file, &sel, &err), 0);
	for (size_t i = 0; i < p->n_jobs; i++)
		assert_int_equal(sel[i], i == 1);
	free(sel);
	kci_plan_free(p);
}

static void
test_plan__select_unknown_suggests(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = parse_ok(graph);
	char *typo[] = { "biuld", NULL }, *far[] = { "zzzzzzzz", NULL };
	int *sel = NULL;

	(void)state;
	assert_int_equal(kci_plan_select(p, typo, &sel, &err), KCI_NOTFOUND);
	assert_string_equal(err.msg, "no job named \"biuld\" (did you mean \"build\"?)");
	assert_int_equal(kci_plan_select(p, far, &sel, &err), KCI_NOTFOUND);
	assert_string_equal(err.msg, "no job named \"zzzzzzzz\"");
	assert_null(sel);
	kci_plan_free(p);
}

static void
test_plan__load_reads_file_and_bounds_size(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = NULL;
	char path[] = "/tmp/kci-test-plan-XXXXXX";
	char *big;
	FILE *f;
	int fd;

	(void)state;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fputs("jobs:\n  a:\n    run: echo hi\n", f);
	fclose(f);
	assert_int_equal(kci_plan_load(path, NULL, &p, &err), 0);
	assert_int_equal(p->n_jobs, 1);
	kci_plan_free(p);
	p = NULL;

	/* A comment makes the file valid YAML of just over the limit. */
	big = kci_xmalloc(KCI_PLAN_FILE_MAX + 2);
	memset(big, ' ', KCI_PLAN_FILE_MAX + 1);
	memcpy(big, "jobs: {a: {run: x}} #", 21);
	big[KCI_PLAN_FILE_MAX + 1] = '\0';
	assert_non_null(f = fopen(path, "w"));
	fputs(big, f);
	fclose(f);
	free(big);
	assert_int_equal(kci_plan_load(path, NULL, &p, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "larger than 1024 KiB"));
	assert_null(p);

	unlink(path);
	assert_int_equal(kci_plan_load(path, NULL, &p, &err), KCI_NOTFOUND);
	assert_null(p);
}

/* A .kci.yml that links elsewhere is never followed: it could name any host file. */
static void
test_plan__load_refuses_a_symlink(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = NULL;
	char dir[] = "/tmp/kci-test-plan-XXXXXX";
	char *target, *link;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	target = kci_xasprintf("%s/target.yml", dir);
	link = kci_xasprintf("%s/.kci.yml", dir);
	assert_non_null(f = fopen(target, "w"));
	fputs("jobs:\n  a:\n    run: echo hi\n", f);
	fclose(f);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(kci_plan_load(link, ".kci.yml", &p, &err), KCI_INVALID);
	assert_string_equal(err.msg, ".kci.yml is a symlink; kci reads a pipeline file only when "
				     "it is a regular file");
	assert_null(p);
	unlink(link);
	unlink(target);
	rmdir(dir);
	free(link);
	free(target);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan__order_puts_needs_first_stably),
		cmocka_unit_test(test_plan__order_reports_cycle_path),
		cmocka_unit_test(test_plan__parse_rejects_longer_cycle),
		cmocka_unit_test(test_plan__select_adds_transitive_needs),
		cmocka_unit_test(test_plan__file_names_are_safe_unique_and_selectable),
		cmocka_unit_test(test_plan__select_unknown_suggests),
		cmocka_unit_test(test_plan__load_reads_file_and_bounds_size),
		cmocka_unit_test(test_plan__load_refuses_a_symlink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
