/* engine/ internals shared between its files. */
#ifndef KCI_ENGINE_INTERNAL_H
#define KCI_ENGINE_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/err.h"
#include "engine/engine.h"

/* PATH for every process kci starts in a guest, before an image's Env: one default. */
#define KCI_ENGINE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* request.c: whether `user` is root (NULL, "", "root", "0", "0:…", "root:…"). */
int user_is_root(const char *user);

/* ---- events.c: a run's event stream, its clock, and its cancellation ---- */

struct emitter {
	pthread_mutex_t lock; /* one event at a time: renderers never lock */
	int64_t t0;	      /* CLOCK_MONOTONIC ms when the run began */
	const struct kci_plan *p;
	kci_event_fn fn;
	void *ctx;
};

void emitter_init(struct emitter *em, const struct kci_plan *p, kci_event_fn fn, void *ctx);
void emitter_destroy(struct emitter *em);
/* Sends ev, filling time_ms, job_name (from the plan) and len (from text) when unset. */
void emitter_send(struct emitter *em, struct kci_event *ev);
/* Milliseconds since the run began. */
int64_t emitter_now_ms(const struct emitter *em);

/* A run's cancellation: the caller's fd, and a flag that pulls and boots watch. */
struct cancel {
	int fd; /* readable = canceled; -1 = never */
	volatile sig_atomic_t flag;
};
/* Whether the run was canceled (sticky: sets flag once fd is readable). */
int cancel_check(struct cancel *c);

/* ---- sched.c: which job runs when ---- */

enum { SCHED_MEMORY, SCHED_DISK, SCHED_RESOURCES }; /* what admission counts, in MiB */

/* Runs job `job` of the plan to its end and returns its final state. */
typedef enum kci_job_state (*job_fn)(void *ctx, size_t job);

struct sched_opts {
	const struct kci_plan *p;
	const int *selected; /* p->n_jobs flags */
	unsigned max_jobs;   /* jobs running at once, >= 1 */
	job_fn run;	     /* called on a thread of its own per job */
	void *ctx;
	/*
	 * Admission: a job starts only while, for every resource, the summed
	 * cost of the running jobs and its own stays within that budget (a job
	 * alone always starts). cost NULL = no budget.
	 */
	uint64_t (*cost)(void *ctx, size_t job, int resource);
	uint64_t budget[SCHED_RESOURCES];
	int needs_met; /* selected jobs do not wait for their needs (met elsewhere) */
	struct emitter *em;
	struct cancel *cancel;
};

/*
 * Starts every selected job whose needs passed, at most max_jobs at once and
 * within the cost budget,
 * skips (JOB_END, SKIPPED) the dependents of a job that did not pass, and
 * once canceled starts nothing more and cancels what is pending, waiting
 * for the running jobs to end. states[] gets every job's final state.
 */
void sched_run(const struct sched_opts *o, enum kci_job_state *states);

/* ---- artifacts.c: copying a job's artifacts out of a (hostile) guest ---- */

#define ART_MAX_BYTES (1ULL << 30) /* per job, sum of regular file sizes */
#define ART_MAX_FILES 10000	   /* per job, entries of any kind */

struct art_limits {
	uint64_t max_bytes;
	size_t max_files;
};

struct art_stats {
	size_t files;	/* entries created */
	uint64_t bytes; /* regular file bytes written */
};

/*
 * Extracts the tar archive read from fd (written by the guest: every byte is
 * hostile) into the existing empty directory `dest`, with images/'
 * KCI_EXTRACT_ARTIFACTS in its confined child and lim (NULL: the maximums
 * above). Only directories, regular files (0644, or 0755 if executable, less
 * the umask), symlinks whose target is relative and stays inside dest, and
 * hardlinks to files already extracted are created, all strictly below
 * dest; anything else is refused. Errors: KCI_INVALID with "artifact 'PATH':
 * why" (e.g. "artifact 'etc': symlink to '/etc' points outside the
 * archive"), or a limit ("artifacts: files add up to more than 1024 MiB");
 * KCI_ERROR for I/O. On error dest may hold a partial tree; the caller
 * removes it.
 */
int art_extract(int fd, const char *dest, const struct art_limits *lim, struct art_stats *st,
		struct kci_err *err);

/* ---- logbuf.c: guest output as masked lines ---- */

#define LOG_LINE_MAX 8192 /* longer lines are cut into pieces of about this size */

/* Secret values to hide; each occurrence in a line becomes "***". */
struct masker {
	char **values; /* longest first, so a secret containing another is hidden whole */
	size_t n, maxlen;
};

/* From "NAME=VALUE" entries; empty values are ignored. */
void mask_init(struct masker *m, char *const *secrets);
void mask_free(struct masker *m);
/* A malloc'd copy of s (len bytes) with every secret replaced; *outlen its length. */
char *mask_str(const struct masker *m, const char *s, size_t len, size_t *outlen);

typedef void (*line_fn)(void *ctx, const char *line, size_t len);

/* Splits one output stream into lines, masking each before it leaves. */
struct logbuf {
	char *buf; /* LOG_LINE_MAX + the longest secret: room to never cut one */
	size_t len, cap;
};

/*
 * Feeds bytes; emit() gets each complete line (without "\n" or a trailing
 * "\r"), masked, NUL-terminated. A line longer than LOG_LINE_MAX leaves in
 * pieces, cut where no secret can straddle the cut, however long the secret.
 */
void logbuf_feed(struct logbuf *b, const struct masker *m, const char *data, size_t len,
		 line_fn emit, void *ctx);
/* Emits what is left as a last line (a process that did not end with "\n"). */
void logbuf_flush(struct logbuf *b, const struct masker *m, line_fn emit, void *ctx);
void logbuf_free(struct logbuf *b);

/* ---- gitdir.c: the repository a workspace is in, and its git dir ---- */

struct git_repository;

/*
 * Sets up libgit2's process-wide state, once per process: call it before any
 * other libgit2 call, from any thread.
 */
void gitdir_init(void);
/* kci_err_set() with libgit2's last error appended: "what: why". */
int __attribute__((format(printf, 3, 4)))
gitdir_err(struct kci_err *err, int code, const char *fmt, ...);
/* The real path of dir, malloc'd: KCI_NOTFOUND when missing, KCI_INVALID if not a directory. */
int gitdir_real_dir(const char *dir, char **out, struct kci_err *err);
/*
 * The repository containing dir (the caller's to git_repository_free), or
 * *out = NULL outside git. KCI_INVALID for a bare repository or one owned by
 * another user.
 */
int gitdir_find_repo(const char *dir, struct git_repository **out, struct kci_err *err);
/* KCI_INVALID unless dir (real) is the root of repo's working tree. */
int gitdir_check_top(struct git_repository *repo, const char *dir, struct kci_err *err);
/*
 * Whether repo's git dir may be copied into the VM with the working tree at
 * top: it lies inside top, or names top back (a linked worktree's gitdir
 * file, a submodule's core.worktree).
 */
int gitdir_is_home(struct git_repository *repo, const char *top);
/*
 * Copies repo's git dir to dst/.git (a linked worktree's: the common dir with
 * its own HEAD and index laid over it), without "*.lock" files and without
 * descending into the destination dest_st; with_index = 0 leaves the index out.
 */
int gitdir_copy(struct git_repository *repo, int dst, const struct stat *dest_st, int with_index,
		struct kci_err *err);
/* Drops core.worktree from dest/.git/config (a submodule's points back where it lived). */
int gitdir_fix_config(const char *dest, struct kci_err *err);

/* ---- job.c: one job in one VM ---- */

/* What every job of a run shares; read-only while jobs run. */
struct job_shared {
	struct kci_kit *kit;
	const struct kci_plan *p;
	struct emitter *em;
	struct cancel *cancel;
	const struct masker *mask;
	char *const *secrets;			      /* "NAME=VALUE" granted to the run */
	const struct kci_registry_policy *registries; /* for the jobs' images */
	/*
	 * out_dir/artifacts and out_dir/logs, opened without following a symlink:
	 * .kci/ lies in the repository, whose author may have planted links there.
	 */
	int art_fd, logs_fd;
	const char *out_dir;
	const char *workdir;	    /* steps' cwd with a workspace; NULL = /workspace */
	const char *workspace_disk; /* template of every VM's /workspace, or NULL */
	unsigned default_cpus;	    /* vCPUs of a job that does not ask for a number */
	int64_t default_timeout_ms; /* of a job that sets none */
	uint64_t output_limit;	    /* bytes of output per job, events and log alike */
	uint64_t workspace_mib;	    /* the workspace disk's size: each VM's copy may fill it */
	int console_fd;
	const char *template_scope;
};

/* Runs job idx in its own VM, emitting its events; returns its final state. */
enum kci_job_state job_run(const struct job_shared *sh, size_t idx);

#endif
