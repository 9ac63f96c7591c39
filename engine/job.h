/* engine/ internals: the state of one run, shared by the scheduler and its job threads. */
#ifndef KCI_ENGINE_JOB_H
#define KCI_ENGINE_JOB_H

#include <pthread.h>
#include <signal.h>

#include "engine/engine.h"
#include "engine/internal.h"

struct engine {
	const struct kci_plan *p;
	const struct kci_engine_opts *o;
	int *selected;
	enum kci_job_state *states; /* guarded by lock */
	unsigned running, max_jobs; /* guarded by lock */
	unsigned default_cpus;	    /* vCPUs of a job that does not ask for a number */
	pthread_mutex_t lock;
	pthread_cond_t cond;	    /* a job finished */
	pthread_mutex_t ev_lock;    /* one event at a time */
	pthread_mutex_t image_lock; /* one image pull or disk build at a time */
	volatile sig_atomic_t canceled;
	int64_t t0;
	struct masker mask;
	/*
	 * out_dir/artifacts and out_dir/logs, opened without following a symlink:
	 * .kci/ lies in the repository, whose author may have planted links there.
	 */
	int art_fd, logs_fd;
	struct kci_guest *guest;
	char *agent, *initrd, *base_rootfs, *workspace_disk, *cache, *rundir;
};

struct job_run {
	struct engine *e;
	size_t idx;
	pthread_t thread;
	int started;
};

/* Runs one job in its own VM; returns its final state. Emits its events itself. */
enum kci_job_state job_run(struct job_run *jr);

void engine_emit(struct engine *e, struct kci_event *ev);
int64_t engine_now_ms(const struct engine *e);
/* The run was canceled (cancel_fd readable); sticky. */
int engine_canceled(struct engine *e);

#endif
