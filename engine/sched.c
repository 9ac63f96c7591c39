/*
 * The scheduler: starts every job whose needs passed, at most max_jobs at
 * once, skips the dependents of a job that did not pass, and on cancel
 * starts nothing more while the running jobs end. One thread per running
 * job; the job itself is a function the caller gives, so the scheduler is
 * tested with fake jobs and runs real ones in VMs.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"
#include "engine/internal.h"

struct sched {
	const struct sched_opts *o;
	enum kci_job_state *states;	 /* guarded by lock */
	unsigned running;		 /* guarded by lock */
	uint64_t spent[SCHED_RESOURCES]; /* summed cost of the running jobs, guarded by lock */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a job finished */
};

struct slot {
	struct sched *s;
	size_t idx;
	pthread_t thread;
	int started;
};

/* The first of job i's needs that did not pass, or -1 (all passed), or -2 (some pending). */
static long
blocking_need(const struct sched *s, size_t i)
{
	const struct kci_plan *p = s->o->p;
	const struct kci_job *j = &p->jobs[i];
	int pending = 0;

	if (s->o->needs_met)
		return -1;
	for (size_t k = 0; j->needs && j->needs[k]; k++) {
		for (size_t d = 0; d < p->n_jobs; d++) {
			if (strcmp(p->jobs[d].name, j->needs[k]) != 0)
				continue;
			/* A need that will never run (the caller did not select it) never passes.
			 */
			if (!s->o->selected[d])
				return (long)d;
			if (s->states[d] == KCI_JOB_PENDING || s->states[d] == KCI_JOB_RUNNING)
				pending = 1;
			else if (s->states[d] != KCI_JOB_PASSED)
				return (long)d;
		}
	}
	return pending ? -2 : -1;
}

static void *
job_thread(void *arg)
{
	struct slot *sl = arg;
	struct sched *s = sl->s;
	enum kci_job_state st = s->o->run(s->o->ctx, sl->idx);

	pthread_mutex_lock(&s->lock);
	s->states[sl->idx] = st;
	s->running--;
	for (int r = 0; s->o->cost && r < SCHED_RESOURCES; r++)
		s->spent[r] -= s->o->cost(s->o->ctx, sl->idx, r);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void
end_without_running(struct sched *s, size_t i, enum kci_job_state st, const char *why)
{
	struct kci_event ev = { .kind = KCI_EV_JOB_END, .job = i, .state = st, .text = why };

	s->states[i] = st;
	emitter_send(s->o->em, &ev);
}

/* Whether job i fits beside the running jobs in every budget. Called locked. */
static int
fits(const struct sched *s, size_t i)
{
	for (int r = 0; s->o->cost && r < SCHED_RESOURCES; r++)
		if (s->spent[r] + s->o->cost(s->o->ctx, i, r) > s->o->budget[r])
			return 0;
	return 1;
}

/* Adds (sign 1) or takes back (-1) job i's costs. Called locked. */
static void
charge(struct sched *s, size_t i, int sign)
{
	for (int r = 0; s->o->cost && r < SCHED_RESOURCES; r++) {
		uint64_t c = s->o->cost(s->o->ctx, i, r);
		s->spent[r] = sign > 0 ? s->spent[r] + c : s->spent[r] - c;
	}
}

/* One pass over the pending jobs: skip, cancel or start what can be. Called locked. */
static void
schedule(struct sched *s, struct slot *slots)
{
	const struct kci_plan *p = s->o->p;

	for (size_t i = 0; i < p->n_jobs; i++) {
		long need;

		if (!s->o->selected[i] || s->states[i] != KCI_JOB_PENDING)
			continue;
		if (cancel_check(s->o->cancel)) {
			end_without_running(s, i, KCI_JOB_CANCELED, "canceled before it started");
			continue;
		}
		need = blocking_need(s, i);
		if (need >= 0) {
			char *why = kci_xasprintf(
				"needs %s, which %s", p->jobs[need].name,
				!s->o->selected[need]		      ? "was not selected"
				: s->states[need] == KCI_JOB_SKIPPED  ? "was skipped"
				: s->states[need] == KCI_JOB_CANCELED ? "was canceled"
								      : "did not pass");
			end_without_running(s, i, KCI_JOB_SKIPPED, why);
			free(why);
			/* A skip can unblock nothing but can skip more: start over. */
			i = (size_t)-1;
			continue;
		}
		if (need == -2 || s->running >= s->o->max_jobs)
			continue;
		/* Never over-commit: wait for running jobs to make room (a job alone may start). */
		if (s->running > 0 && !fits(s, i))
			continue;
		slots[i] = (struct slot){ .s = s, .idx = i, .started = 1 };
		s->states[i] = KCI_JOB_RUNNING;
		s->running++;
		charge(s, i, 1);
		if (pthread_create(&slots[i].thread, NULL, job_thread, &slots[i]) != 0) {
			slots[i].started = 0;
			s->running--;
			charge(s, i, -1);
			end_without_running(s, i, KCI_JOB_ERROR, "cannot create a thread");
		}
	}
}

static int
any_pending(const struct sched *s)
{
	for (size_t i = 0; i < s->o->p->n_jobs; i++)
		if (s->o->selected[i] && s->states[i] == KCI_JOB_PENDING)
			return 1;
	return 0;
}

void
sched_run(const struct sched_opts *o, enum kci_job_state *states)
{
	struct sched s = { .o = o, .states = states };
	size_t n = o->p->n_jobs;
	struct slot *slots = kci_xcalloc(n ? n : 1, sizeof(*slots));
	struct timespec ts;

	for (size_t i = 0; i < n; i++)
		states[i] = KCI_JOB_PENDING;
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	pthread_mutex_lock(&s.lock);
	for (;;) {
		cancel_check(o->cancel); /* sets the flag pulls and boots watch */
		schedule(&s, slots);
		if (!any_pending(&s) && s.running == 0)
			break;
		/* Wake up for a finished job, or now and then to notice a cancel. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s.cond, &s.lock, &ts);
	}
	pthread_mutex_unlock(&s.lock);
	for (size_t i = 0; i < n; i++)
		if (slots[i].started)
			pthread_join(slots[i].thread, NULL);
	free(slots);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
}
