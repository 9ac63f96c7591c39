/*
 * A run's event stream: one event at a time, stamped with the run's clock,
 * so renderers need no locking. And the run's cancellation, which every job
 * thread and every pull watches.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/parse.h"
#include "common/xalloc.h"
#include "engine/internal.h"

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
emitter_init(struct emitter *em, const struct kci_plan *p, kci_event_fn fn, void *ctx)
{
	pthread_mutex_init(&em->lock, NULL);
	em->t0 = mono_ms();
	em->p = p;
	em->fn = fn;
	em->ctx = ctx;
}

void
emitter_destroy(struct emitter *em)
{
	pthread_mutex_destroy(&em->lock);
}

int64_t
emitter_now_ms(const struct emitter *em)
{
	return mono_ms() - em->t0;
}

void
emitter_send(struct emitter *em, struct kci_event *ev)
{
	pthread_mutex_lock(&em->lock);
	ev->time_ms = emitter_now_ms(em);
	if (ev->kind != KCI_EV_RUN_END && ev->job < em->p->n_jobs && !ev->job_name)
		ev->job_name = em->p->jobs[ev->job].name;
	if (ev->text && !ev->len)
		ev->len = strlen(ev->text);
	if (em->fn)
		em->fn(em->ctx, ev);
	pthread_mutex_unlock(&em->lock);
}

int
cancel_check(struct cancel *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

	if (c->flag)
		return 1;
	if (c->fd >= 0 && poll(&pfd, 1, 0) > 0) {
		c->flag = 1;
		return 1;
	}
	return 0;
}

char *
kci_engine_log_line(const struct kci_event *ev)
{
	char d[32];

	switch (ev->kind) {
	case KCI_EV_LOG: {
		char *line = kci_xmalloc(ev->len + 1);
		memcpy(line, ev->text, ev->len);
		line[ev->len] = '\0';
		return line;
	}
	case KCI_EV_JOB_NOTE:
		return kci_xasprintf("kci: %.*s", (int)ev->len, ev->text);
	case KCI_EV_STEP_START:
		return kci_xasprintf("== step %zu: %s", ev->step + 1, ev->step_name);
	case KCI_EV_STEP_END:
		return kci_xasprintf("== step %zu %s (exit %d) in %s", ev->step + 1,
				     ev->state == KCI_JOB_PASSED ? "passed" : "failed",
				     ev->exit_code,
				     kci_format_duration(d, sizeof(d), ev->duration_ms));
	case KCI_EV_JOB_END:
		return kci_xasprintf("== job %s in %s%s%.*s", kci_engine_job_state_name(ev->state),
				     kci_format_duration(d, sizeof(d), ev->duration_ms),
				     ev->text ? ": " : "", ev->text ? (int)ev->len : 0,
				     ev->text ? ev->text : "");
	default:
		return NULL;
	}
}
