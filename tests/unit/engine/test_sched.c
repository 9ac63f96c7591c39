/*
 * Unit tests for engine/sched.c: the scheduler with fake jobs (no VM). A fake
 * job records when it ran and what its needs looked like then, and the jobs
 * the test holds block until the test releases them, so every ordering the
 * tests assert is made certain by hand-offs, never by sleeping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "engine/internal.h"

#define MAXJ 16

struct rec {
	enum kci_event_kind kind;
	size_t job;
	char *job_name;
	enum kci_job_state state;
	char *text;
	unsigned running_then; /* jobs the scheduler had RUNNING when it sent the event */
};

struct fake {
	const struct kci_plan *p;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* anything below changed */
	enum kci_job_state result[MAXJ];
	int hold[MAXJ]; /* the job blocks until released[] */
	int released[MAXJ];
	int started[MAXJ];
	int finished[MAXJ];
	size_t order[MAXJ]; /* jobs in the order they started */
	size_t n_started;
	unsigned running, high;
	int early; /* a job started before one of its needs had passed */
	/* The scheduler's states, read only from its own thread (in the event callback). */
	const enum kci_job_state *states;
	struct rec ev[MAXJ * 2];
	size_t n_ev;
};

static size_t
job(const struct kci_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n_jobs; i++)
		if (strcmp(p->jobs[i].name, name) == 0)
			return i;
	fail_msg("no job %s", name);
	return 0;
}

static enum kci_job_state
fake_run(void *ctx, size_t i)
{
	struct fake *f = ctx;
	const struct kci_job *j = &f->p->jobs[i];
	enum kci_job_state st;

	pthread_mutex_lock(&f->lock);
	for (size_t k = 0; j->needs && j->needs[k]; k++) {
		size_t d = job(f->p, j->needs[k]);
		if (!f->finished[d] || f->result[d] != KCI_JOB_PASSED)
			f->early = 1;
	}
	f->started[i] = 1;
	f->order[f->n_started++] = i;
	if (++f->running > f->high)
		f->high = f->running;
	pthread_cond_broadcast(&f->cond);
	while (f->hold[i] && !f->released[i])
		pthread_cond_wait(&f->cond, &f->lock);
	f->running--;
	f->finished[i] = 1;
	st = f->result[i];
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return st;
}

/* The event callback: runs on the scheduler's thread, inside its locked pass. */
static void
record(void *ctx, const struct kci_event *ev)
{
	struct fake *f = ctx;
	struct rec *r;

	pthread_mutex_lock(&f->lock);
	/* Counted even when not kept: a test sees a flood in n_ev, not a crash here. */
	if (f->n_ev++ >= MAXJ * 2) {
		pthread_mutex_unlock(&f->lock);
		return;
	}
	r = &f->ev[f->n_ev - 1];
	*r = (struct rec){ .kind = ev->kind, .job = ev->job, .state = ev->state };
	r->job_name = ev->job_name ? kci_xstrdup(ev->job_name) : NULL;
	r->text = ev->text ? kci_xstrndup(ev->text, ev->len) : NULL;
	for (size_t i = 0; i < f->p->n_jobs; i++)
		r->running_then += f->states[i] == KCI_JOB_RUNNING;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static struct kci_plan *
plan(const char *yaml)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = NULL;

	if (kci_plan_parse(yaml, strlen(yaml), ".kci.yml", &p, &err) != 0)
		fail_msg("plan: %s", err.msg);
	assert_true(p->n_jobs <= MAXJ);
	return p;
}

/* Every job passes unless told otherwise. */
static void
fake_init(struct fake *f, const struct kci_plan *p)
{
	memset(f, 0, sizeof(*f));
	f->p = p;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	for (size_t i = 0; i < MAXJ; i++)
		f->result[i] = KCI_JOB_PASSED;
}

static void
fake_free(struct fake *f)
{
	for (size_t i = 0; i < f->n_ev && i < MAXJ * 2; i++) {
		free(f->ev[i].job_name);
		free(f->ev[i].text);
	}
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
}

/* One scheduler run: the plan, the fake, the emitter, and the run's outcome. */
struct run {
	struct fake f;
	struct emitter em;
	struct cancel cancel;
	int selected[MAXJ];
	enum kci_job_state states[MAXJ];
	struct sched_opts o;
	pthread_t thread;
};

static void
run_init(struct run *r, const struct kci_plan *p, unsigned max_jobs)
{
	fake_init(&r->f, p);
	r->f.states = r->states;
	emitter_init(&r->em, p, record, &r->f);
	r->cancel = (struct cancel){ .fd = -1 };
	for (size_t i = 0; i < MAXJ; i++)
		r->selected[i] = 1;
	r->o = (struct sched_opts){ .p = p,
				    .selected = r->selected,
				    .max_jobs = max_jobs,
				    .run = fake_run,
				    .ctx = &r->f,
				    .em = &r->em,
				    .cancel = &r->cancel };
}

static void
run_free(struct run *r)
{
	emitter_destroy(&r->em);
	fake_free(&r->f);
	if (r->cancel.fd >= 0)
		close(r->cancel.fd);
}

static void *
sched_thread(void *arg)
{
	struct run *r = arg;

	sched_run(&r->o, r->states);
	return NULL;
}

/* sched_run() on a thread of its own, for tests that hold jobs while it runs. */
static void
run_start(struct run *r)
{
	assert_int_equal(pthread_create(&r->thread, NULL, sched_thread, r), 0);
}

static void
run_wait(struct run *r)
{
	assert_int_equal(pthread_join(r->thread, NULL), 0);
}

/*
 * Waits until n jobs have started, or n events were sent. The deadline is no
 * timing assumption: it only keeps a broken scheduler from hanging the test,
 * which then releases every job before it fails.
 */
static int
wait_for(struct fake *f, const size_t *count, size_t n)
{
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 20;
	pthread_mutex_lock(&f->lock);
	while (*count < n && rc == 0)
		rc = pthread_cond_timedwait(&f->cond, &f->lock, &deadline);
	rc = *count >= n;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static void
release(struct fake *f, size_t i)
{
	pthread_mutex_lock(&f->lock);
	f->released[i] = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void
release_all(struct fake *f)
{
	for (size_t i = 0; i < MAXJ; i++)
		release(f, i);
}

static size_t
position(const struct fake *f, size_t i)
{
	for (size_t k = 0; k < f->n_started; k++)
		if (f->order[k] == i)
			return k;
	fail_msg("job %zu did not start", i);
	return 0;
}

static void
test_sched__jobs_start_after_their_needs_passed(void **state)
{
	/* Listed before what they need, so file order alone would start them too early. */
	struct kci_plan *p = plan("jobs:\n"
				  "  deploy: {run: x, needs: [test, lint]}\n"
				  "  test: {run: x, needs: [build]}\n"
				  "  build: {run: x}\n"
				  "  lint: {run: x}\n");
	struct run r;

	(void)state;
	run_init(&r, p, 4);
	sched_run(&r.o, r.states);
	for (size_t i = 0; i < p->n_jobs; i++)
		assert_int_equal(r.states[i], KCI_JOB_PASSED);
	assert_int_equal(r.f.n_started, 4);
	assert_false(r.f.early);
	assert_true(position(&r.f, job(p, "build")) < position(&r.f, job(p, "test")));
	assert_true(position(&r.f, job(p, "test")) < position(&r.f, job(p, "deploy")));
	assert_true(position(&r.f, job(p, "lint")) < position(&r.f, job(p, "deploy")));
	/* Jobs that ran speak for themselves (job.c): the scheduler said nothing. */
	assert_int_equal(r.f.n_ev, 0);
	run_free(&r);
	kci_plan_free(p);
}

/* A job that failed, timed out, could not run or was canceled: dependents are skipped. */
static void
test_sched__a_job_that_did_not_pass_skips_its_dependents(void **state)
{
	static const struct {
		enum kci_job_state st;
		const char *why;
	} cases[] = {
		{ KCI_JOB_FAILED, "needs build, which did not pass" },
		{ KCI_JOB_TIMEOUT, "needs build, which did not pass" },
		{ KCI_JOB_ERROR, "needs build, which did not pass" },
		{ KCI_JOB_CANCELED, "needs build, which was canceled" },
	};
	struct kci_plan *p = plan("jobs:\n"
				  "  build: {run: x}\n"
				  "  lint: {run: x}\n"
				  "  test: {run: x, needs: [lint, build]}\n"
				  "  deploy: {run: x, needs: [test]}\n"
				  "  docs: {run: x, needs: [lint]}\n");
	size_t build = job(p, "build"), test = job(p, "test"), deploy = job(p, "deploy");

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		struct run r;

		run_init(&r, p, 2);
		r.f.result[build] = cases[c].st;
		sched_run(&r.o, r.states);
		assert_int_equal(r.states[build], cases[c].st);
		assert_int_equal(r.states[job(p, "lint")], KCI_JOB_PASSED);
		assert_int_equal(r.states[job(p, "docs")], KCI_JOB_PASSED);
		assert_int_equal(r.states[test], KCI_JOB_SKIPPED);
		assert_int_equal(r.states[deploy], KCI_JOB_SKIPPED);
		assert_false(r.f.started[test]);
		assert_false(r.f.started[deploy]);
		/* One JOB_END each, the direct dependent first, naming the need that stopped it. */
		assert_int_equal(r.f.n_ev, 2);
		assert_int_equal(r.f.ev[0].kind, KCI_EV_JOB_END);
		assert_int_equal(r.f.ev[0].job, test);
		assert_string_equal(r.f.ev[0].job_name, "test");
		assert_int_equal(r.f.ev[0].state, KCI_JOB_SKIPPED);
		assert_string_equal(r.f.ev[0].text, cases[c].why);
		assert_int_equal(r.f.ev[1].kind, KCI_EV_JOB_END);
		assert_int_equal(r.f.ev[1].job, deploy);
		assert_int_equal(r.f.ev[1].state, KCI_JOB_SKIPPED);
		assert_string_equal(r.f.ev[1].text, "needs test, which was skipped");
		run_free(&r);
	}
	kci_plan_free(p);
}

/*
 * Five jobs, two slots. The jobs hold until released one at a time, and each
 * release waits for the next job to take the freed slot: two run at every
 * step, each freed slot is filled at once, and the fake's high-water mark
 * shows whether a third ever ran. (A third started in the same pass as the
 * second may reach the fake only after a release; the next test pins that.)
 */
static void
test_sched__at_most_max_jobs_run_at_once(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  a: {run: x}\n"
				  "  b: {run: x}\n"
				  "  c: {run: x}\n"
				  "  d: {run: x}\n"
				  "  e: {run: x}\n");
	size_t running_at[6] = { 0 }, started_at[6] = { 0 };
	struct run r;

	(void)state;
	run_init(&r, p, 2);
	for (size_t i = 0; i < p->n_jobs; i++)
		r.f.hold[i] = 1;
	run_start(&r);
	for (size_t n = 2; n <= p->n_jobs; n++) {
		if (!wait_for(&r.f, &r.f.n_started, n))
			break;
		pthread_mutex_lock(&r.f.lock);
		running_at[n] = r.f.running;
		started_at[n] = r.f.n_started;
		pthread_mutex_unlock(&r.f.lock);
		release(&r.f, r.f.order[n - 2]);
	}
	release_all(&r.f);
	run_wait(&r);
	for (size_t n = 2; n <= p->n_jobs; n++) {
		assert_int_equal(running_at[n], 2);
		assert_int_equal(started_at[n], n);
	}
	assert_int_equal(r.f.high, 2);
	assert_int_equal(r.f.n_started, 5);
	for (size_t i = 0; i < p->n_jobs; i++)
		assert_int_equal(r.states[i], KCI_JOB_PASSED);
	run_free(&r);
	kci_plan_free(p);
}

/*
 * A slot freed by a failed job: the pass that skips its dependent is the same
 * pass that fills the slot, and the skip is sent after every other pending job
 * was looked at, so the count of running jobs it sees is the pass's last word,
 * whichever thread runs first.
 */
static void
test_sched__a_full_pass_never_exceeds_max_jobs(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  a: {run: x}\n"
				  "  fails: {run: x}\n"
				  "  c: {run: x}\n"
				  "  d: {run: x}\n"
				  "  after: {run: x, needs: [fails]}\n");
	size_t a = job(p, "a"), c = job(p, "c"), d = job(p, "d");
	int ok, d_started;
	struct run r;

	(void)state;
	run_init(&r, p, 2);
	r.f.hold[a] = r.f.hold[c] = r.f.hold[d] = 1;
	r.f.result[job(p, "fails")] = KCI_JOB_FAILED;
	run_start(&r);
	/* a, fails, then c in fails' slot; the skip of after ends that pass. */
	ok = wait_for(&r.f, &r.f.n_started, 3) && wait_for(&r.f, &r.f.n_ev, 1);
	pthread_mutex_lock(&r.f.lock);
	d_started = r.f.started[d];
	pthread_mutex_unlock(&r.f.lock);
	release_all(&r.f);
	run_wait(&r);
	assert_true(ok);
	assert_false(d_started);
	assert_int_equal(r.f.ev[0].job, job(p, "after"));
	assert_int_equal(r.f.ev[0].running_then, 2);
	assert_int_equal(r.f.high, 2);
	assert_int_equal(r.states[d], KCI_JOB_PASSED);
	run_free(&r);
	kci_plan_free(p);
}

/*
 * Canceled while a job runs: the running job ends as it will, nothing new
 * starts, and every pending job ends as canceled without running.
 */
static void
test_sched__cancel_ends_pending_jobs_and_starts_none(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  a: {run: x}\n"
				  "  b: {run: x, needs: [a]}\n"
				  "  c: {run: x}\n");
	size_t a = job(p, "a"), b = job(p, "b"), c = job(p, "c");
	struct run r;
	uint64_t one = 1;
	ssize_t written;
	int ok;

	(void)state;
	run_init(&r, p, 1);
	r.cancel.fd = eventfd(0, EFD_CLOEXEC);
	assert_true(r.cancel.fd >= 0);
	r.f.hold[a] = 1;
	r.f.result[a] = KCI_JOB_CANCELED;
	run_start(&r);
	ok = wait_for(&r.f, &r.f.n_started, 1);
	written = write(r.cancel.fd, &one, sizeof(one));
	release_all(&r.f);
	run_wait(&r);
	assert_true(ok);
	assert_int_equal(written, sizeof(one));
	assert_int_equal(r.f.n_started, 1);
	assert_int_equal(r.states[a], KCI_JOB_CANCELED);
	assert_int_equal(r.states[b], KCI_JOB_CANCELED);
	assert_int_equal(r.states[c], KCI_JOB_CANCELED);
	assert_false(r.f.started[b]);
	assert_false(r.f.started[c]);
	assert_true(r.cancel.flag); /* what pulls and boots watch */
	assert_int_equal(r.f.n_ev, 2);
	assert_int_equal(r.f.ev[0].job, b);
	assert_int_equal(r.f.ev[1].job, c);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(r.f.ev[i].kind, KCI_EV_JOB_END);
		assert_int_equal(r.f.ev[i].state, KCI_JOB_CANCELED);
		assert_string_equal(r.f.ev[i].text, "canceled before it started");
	}
	run_free(&r);
	kci_plan_free(p);
}

static void
test_sched__canceled_before_the_run_starts_nothing(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  a: {run: x}\n"
				  "  b: {run: x, needs: [a]}\n");
	struct run r;
	uint64_t one = 1;

	(void)state;
	run_init(&r, p, 2);
	r.cancel.fd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(write(r.cancel.fd, &one, sizeof(one)), sizeof(one));
	sched_run(&r.o, r.states);
	assert_int_equal(r.f.n_started, 0);
	assert_int_equal(r.f.n_ev, 2);
	for (size_t i = 0; i < p->n_jobs; i++) {
		assert_int_equal(r.states[i], KCI_JOB_CANCELED);
		assert_int_equal(r.f.ev[i].job, i);
		assert_string_equal(r.f.ev[i].text, "canceled before it started");
	}
	run_free(&r);
	kci_plan_free(p);
}

/* Jobs not selected neither run nor end, even when what they need fails. */
static void
test_sched__unselected_jobs_stay_pending_and_silent(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  build: {run: x}\n"
				  "  test: {run: x, needs: [build]}\n"
				  "  lint: {run: x}\n");
	size_t build = job(p, "build"), test = job(p, "test"), lint = job(p, "lint");
	struct run r;

	(void)state;
	run_init(&r, p, 2);
	r.selected[test] = r.selected[lint] = 0;
	r.f.result[build] = KCI_JOB_FAILED;
	sched_run(&r.o, r.states);
	assert_int_equal(r.states[build], KCI_JOB_FAILED);
	assert_int_equal(r.states[test], KCI_JOB_PENDING);
	assert_int_equal(r.states[lint], KCI_JOB_PENDING);
	assert_int_equal(r.f.n_started, 1);
	assert_int_equal(r.f.n_ev, 0);
	run_free(&r);
	kci_plan_free(p);
}

/* A selected job whose need was not selected is skipped, not waited for forever. */
static void
test_sched__a_need_not_selected_skips_the_job(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  build: {run: x}\n"
				  "  test: {run: x, needs: [build]}\n");
	size_t build = job(p, "build"), test = job(p, "test");
	struct run r;

	(void)state;
	run_init(&r, p, 2);
	r.selected[build] = 0;
	sched_run(&r.o, r.states);
	assert_int_equal(r.states[build], KCI_JOB_PENDING);
	assert_int_equal(r.states[test], KCI_JOB_SKIPPED);
	assert_int_equal(r.f.n_started, 0);
	assert_int_equal(r.f.n_ev, 1);
	assert_string_equal(r.f.ev[0].text, "needs build, which was not selected");
	run_free(&r);
	kci_plan_free(p);
}

/* Each job costs 6 of a budget of 10, except one that costs 12 (more than all). */
static uint64_t
fake_cost(void *ctx, size_t i, int resource)
{
	struct fake *f = ctx;

	if (resource != SCHED_MEMORY)
		return 0;
	return strcmp(f->p->jobs[i].name, "huge") == 0 ? 12 : 6;
}

/* Admission: jobs whose summed cost exceeds the budget never run together. */
static void
test_sched__the_cost_budget_is_never_exceeded(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  a: {run: x}\n"
				  "  b: {run: x}\n"
				  "  c: {run: x}\n"
				  "  huge: {run: x}\n");
	struct run r;

	(void)state;
	run_init(&r, p, 4);
	r.o.cost = fake_cost;
	r.o.budget[SCHED_MEMORY] = 10;
	sched_run(&r.o, r.states);
	/* Room for one 6 at a time; the 12 alone, as a job alone always may. */
	assert_int_equal(r.f.high, 1);
	assert_int_equal(r.f.n_started, 4);
	for (size_t i = 0; i < p->n_jobs; i++)
		assert_int_equal(r.states[i], KCI_JOB_PASSED);
	/* With room for two, two run at once, and never a third. */
	run_free(&r);
	run_init(&r, p, 4);
	r.o.cost = fake_cost;
	r.o.budget[SCHED_MEMORY] = 12;
	for (size_t i = 0; i < 3; i++)
		r.f.hold[i] = 1;
	run_start(&r);
	assert_true(wait_for(&r.f, &r.f.n_started, 2));
	assert_int_equal(r.f.running, 2);
	release_all(&r.f);
	run_wait(&r);
	assert_int_equal(r.f.high, 2);
	run_free(&r);
	kci_plan_free(p);
}

static const char matrix_plan[] = "jobs:\n"
				  "  build:\n"
				  "    run: x\n"
				  "    matrix: {OS: [a, b, c]}\n"
				  "  package: {run: x, needs: [build]}\n";

/* Needing a matrix job is needing every combination of it. */
static void
test_sched__matrix_need_waits_for_every_combination(void **state)
{
	struct kci_plan *p = plan(matrix_plan);
	size_t package = job(p, "package");
	struct run r;

	(void)state;
	assert_int_equal(p->n_jobs, 4);
	run_init(&r, p, 4);
	sched_run(&r.o, r.states);
	assert_false(r.f.early);
	assert_int_equal(r.states[package], KCI_JOB_PASSED);
	assert_int_equal(position(&r.f, package), 3);
	assert_int_equal(r.f.n_ev, 0);
	run_free(&r);
	kci_plan_free(p);
}

static void
test_sched__matrix_combination_failing_skips_the_dependent(void **state)
{
	struct kci_plan *p = plan(matrix_plan);
	size_t package = job(p, "package");
	struct run r;

	(void)state;
	run_init(&r, p, 4);
	r.f.result[job(p, "build (OS=b)")] = KCI_JOB_FAILED;
	sched_run(&r.o, r.states);
	assert_int_equal(r.states[job(p, "build (OS=a)")], KCI_JOB_PASSED);
	assert_int_equal(r.states[job(p, "build (OS=c)")], KCI_JOB_PASSED);
	assert_int_equal(r.states[package], KCI_JOB_SKIPPED);
	assert_false(r.f.started[package]);
	assert_int_equal(r.f.n_ev, 1);
	assert_int_equal(r.f.ev[0].job, package);
	assert_string_equal(r.f.ev[0].text, "needs build (OS=b), which did not pass");
	run_free(&r);
	kci_plan_free(p);
}

/* A matrix job that needs a failed job: every combination is skipped, each once. */
static void
test_sched__matrix_dependent_skipped_in_every_combination(void **state)
{
	struct kci_plan *p = plan("jobs:\n"
				  "  build: {run: x}\n"
				  "  test:\n"
				  "    run: x\n"
				  "    needs: [build]\n"
				  "    matrix: {V: [1, 2]}\n");
	struct run r;

	(void)state;
	run_init(&r, p, 2);
	r.f.result[job(p, "build")] = KCI_JOB_FAILED;
	sched_run(&r.o, r.states);
	assert_int_equal(r.f.n_started, 1);
	assert_int_equal(r.f.n_ev, 2);
	assert_string_equal(r.f.ev[0].job_name, "test (V=1)");
	assert_string_equal(r.f.ev[1].job_name, "test (V=2)");
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(r.states[r.f.ev[i].job], KCI_JOB_SKIPPED);
		assert_string_equal(r.f.ev[i].text, "needs build, which did not pass");
	}
	run_free(&r);
	kci_plan_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sched__jobs_start_after_their_needs_passed),
		cmocka_unit_test(test_sched__a_need_not_selected_skips_the_job),
		cmocka_unit_test(test_sched__the_cost_budget_is_never_exceeded),
		cmocka_unit_test(test_sched__a_job_that_did_not_pass_skips_its_dependents),
		cmocka_unit_test(test_sched__at_most_max_jobs_run_at_once),
		cmocka_unit_test(test_sched__a_full_pass_never_exceeds_max_jobs),
		cmocka_unit_test(test_sched__cancel_ends_pending_jobs_and_starts_none),
		cmocka_unit_test(test_sched__canceled_before_the_run_starts_nothing),
		cmocka_unit_test(test_sched__unselected_jobs_stay_pending_and_silent),
		cmocka_unit_test(test_sched__matrix_need_waits_for_every_combination),
		cmocka_unit_test(test_sched__matrix_combination_failing_skips_the_dependent),
		cmocka_unit_test(test_sched__matrix_dependent_skipped_in_every_combination),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
