/*
 * engine/: runs a pipeline plan. Each job gets a fresh micro-VM with the
 * repository at /workspace; jobs run as their needs allow, at most N at once.
 * Everything the engine has to say leaves as events: it prints nothing and
 * never exits, so kci run, kci serve and kci agent render the very same runs.
 */
#ifndef KCI_ENGINE_ENGINE_H
#define KCI_ENGINE_ENGINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "jobs/jobs.h"
#include "vm/vm.h"

enum kci_job_state {
	KCI_JOB_PENDING = 0,
	KCI_JOB_RUNNING,
	KCI_JOB_PASSED,
	KCI_JOB_FAILED,	  /* a step failed, or an artifact could not be collected */
	KCI_JOB_TIMEOUT,  /* the job's timeout killed its VM */
	KCI_JOB_SKIPPED,  /* a job it needs did not pass */
	KCI_JOB_CANCELED, /* the run was canceled before or while it ran */
	KCI_JOB_ERROR,	  /* kci could not run it (image, VM, guest died) */
};

/* "passed", "failed", "timeout", "skipped", "canceled", "error", ... */
const char *kci_job_state_name(enum kci_job_state s);

enum kci_event_kind {
	KCI_EV_JOB_START,  /* job, job_name */
	KCI_EV_JOB_NOTE,   /* job; text: kci's own line about it ("pulling alpine:3") */
	KCI_EV_STEP_START, /* job, step, step_name */
	KCI_EV_LOG,	   /* job, step, stream (1 stdout, 2 stderr), text: one line, masked */
	KCI_EV_STEP_END,   /* job, step, state (passed/failed), exit_code, duration_ms */
	KCI_EV_JOB_END,	   /* job, state, duration_ms, text: why it did not pass, or NULL */
};

struct kci_event {
	enum kci_event_kind kind;
	size_t job; /* index into the plan's jobs */
	const char *job_name;
	size_t step;
	const char *step_name;
	int stream;
	const char *text; /* LOG lines have no newline; len bytes, also NUL-terminated */
	size_t len;
	enum kci_job_state state;
	int exit_code;	      /* STEP_END: the step's exit code, 128+N for signal N */
	int64_t duration_ms;  /* STEP_END, JOB_END */
	int64_t time_ms;      /* since the run started */
	const char *log_path; /* JOB_END: the job's log file (under out_dir), or NULL */
};

/* Called from the engine's threads, one event at a time (the engine serialises them). */
typedef void (*kci_event_fn)(void *ctx, const struct kci_event *ev);

struct kci_engine_opts {
	const char *home;	 /* KCI_HOME: store, cache, runtime dir */
	const char *workspace;	 /* staged tree (kci_workspace_stage) the jobs see at /workspace */
	const char *out_dir;	 /* artifacts/<job>/ and logs/<job>.log are written here */
	const char *scratch_dir; /* private dir for the run's temporary files; caller removes it */
	/* Steps' working dir and artifacts' base in the guest; NULL = /workspace. */
	const char *workdir;
	unsigned max_jobs; /* VMs at once; 0 = kci_engine_default_jobs() */
	/* NULL-terminated "NAME=VALUE" for every secret the plan names (see kci_secrets_*). */
	char *const *secrets;
	const char *kernel; /* --kernel override, or NULL */
	enum kci_accel accel;
	int console_fd; /* >= 0: every guest console is copied here (--debug) */
	int cancel_fd;	/* readable = stop: running VMs are torn down, nothing new starts */
	kci_event_fn event;
	void *ctx;
};

/* How many VMs at once by default: host CPUs and memory allow. */
unsigned kci_engine_default_jobs(void);

/*
 * Runs the jobs flagged in selected[] (NULL = all) in dependency order.
 * states[] (p->n_jobs entries) receives each job's final state; jobs not
 * selected stay PENDING. Returns 0 when the run happened, whatever its jobs
 * did; < 0 only when it could not start (no guest kernel, bad workspace, ...).
 */
int kci_engine_run(const struct kci_plan *p, const int *selected, const struct kci_engine_opts *o,
		   enum kci_job_state *states, struct kci_err *err);

/* ---- images as root disks (the one place images/ and vm/ meet) ---- */

struct kci_image_config;

struct kci_image_disk_opts {
	const char *home;  /* KCI_HOME: the store */
	const char *cache; /* where root disks are cached */
	/* Bytes of each blob while pulling (from the pull's threads, one at a time); or NULL. */
	void (*progress)(void *ctx, const char *digest, uint64_t done, uint64_t total);
	/* A slow phase begins: "pulling REF", "unpacking REF into its root disk"; or NULL. */
	void (*phase)(void *ctx, const char *what);
	void *ctx;
	const volatile sig_atomic_t *cancel; /* set: a pull stops (KCI_CANCELED) */
};

/*
 * The cached read-only root disk for image `ref` (pulled first if the store
 * lacks it) in *disk, and the image's config in *cfg (caller clears it).
 */
int kci_image_disk(const char *ref, const struct kci_image_disk_opts *o,
		   struct kci_image_config *cfg, char **disk, struct kci_err *err);

/* ---- the workspace: what jobs see at /workspace ---- */

struct kci_workspace_info {
	char commit[41]; /* the commit checked out, or HEAD of the working tree; "" if none */
	int is_git;	 /* the directory is (inside) a git repository */
	int dirty;	 /* working-tree mode: something differs from HEAD */
	size_t files;	 /* regular files and symlinks staged, .git excluded */
};

/*
 * The root of the repository containing `dir` (its working directory), or
 * `dir` itself when it is not in a git repository. KCI_NOTFOUND when dir
 * does not exist.
 */
int kci_workspace_root(const char *dir, char **root, struct kci_err *err);

/*
 * Fills the existing empty directory `dest` with the repository at `root`:
 *  - commit == NULL: the working tree as it is now, the files libgit2 lists
 *    as tracked or untracked-but-not-ignored (with their current content;
 *    deleted files are absent), plus a copy of .git. Outside git, the whole
 *    directory.
 *  - commit: a clean checkout of that revision (anything git rev-parse takes:
 *    HEAD~1, a tag, an id), with a .git whose HEAD is detached at it.
 * kci's own `.kci/` directory at the root is never included. Errors name the
 * repository or revision: KCI_NOTFOUND for an unknown revision or --commit
 * outside git, KCI_ERROR otherwise.
 */
int kci_workspace_stage(const char *root, const char *commit, const char *dest,
			struct kci_workspace_info *info, struct kci_err *err);

#endif
