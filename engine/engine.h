/*
 * engine/: everything between a command and its VMs. The guest kit (kernel,
 * initramfs, root disks) that `kci exec` and every job boot from; a project
 * (repository, pipeline, staged workspace) and the run of its jobs, each in a
 * fresh micro-VM, as their needs allow. Everything the engine has to say
 * leaves as events: it prints nothing and never exits, so kci run, kci serve
 * and kci agent render the very same runs.
 */
#ifndef KCI_ENGINE_ENGINE_H
#define KCI_ENGINE_ENGINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/proto.h"
#include "images/images.h"
#include "jobs/jobs.h"
#include "vm/vm.h"

/* ---- the guest kit: what every VM of a command or a run boots from ---- */

struct kci_kit;

struct kci_kit_opts {
	const char *home;     /* KCI_HOME; NULL = kci_home() */
	const char *kernel;   /* --kernel override, or NULL */
	enum kci_accel accel; /* AUTO, KVM or TCG */
	int cold;	      /* never start VMs from templates (--cold, or KCI_COLD=1) */
};

/*
 * Finds the guest kernel bundle and the agent, builds (or reuses) the
 * initramfs, picks the accelerator, and removes runtime dirs of dead kci
 * processes. KCI_NOTFOUND without a kernel bundle or agent; KCI_INVALID for
 * a forced accelerator the host lacks.
 */
int kci_engine_kit_new(struct kci_kit **out, const struct kci_kit_opts *o, struct kci_err *err);
void kci_engine_kit_free(struct kci_kit *k);
/* Where the VMs' runtime dirs (and their writable disks) go. */
const char *kci_engine_kit_run_dir(const struct kci_kit *k);
/* The accelerator chosen; *why (borrowed) says why in one line, for the user. */
enum kci_accel kci_engine_kit_accel(const struct kci_kit *k, const char **why);

/* A read-only root disk and, for an image, its config. Clear with kci_engine_root_clear(). */
struct kci_root {
	char *disk;
	char *label; /* what it is, for people: "alpine:3", "base system", a directory */
	struct kci_image_config image; /* zeroed for a directory or the base system */
};
void kci_engine_root_clear(struct kci_root *r);

/* What a caller hears while a root disk is made; every member may be NULL. */
struct kci_root_progress {
	/* Bytes of each blob while pulling (from the pull's threads, one at a time). */
	void (*progress)(void *ctx, const char *digest, uint64_t done, uint64_t total);
	/* A slow phase begins: "pulling REF (not in the store yet)", "unpacking REF ...". */
	void (*phase)(void *ctx, const char *what);
	void *ctx;
	const volatile sig_atomic_t *cancel; /* set: a pull stops with KCI_CANCELED */
	/*
	 * The image was named by a pipeline: only these registries, whether the
	 * image is in the store already or not. NULL = the operator named it.
	 */
	const struct kci_registry_policy *policy;
};

/*
 * Root disks, cached and shared by every VM that boots them: an image
 * (pulled first when the store lacks it, like docker run), a directory tree,
 * or the built-in busybox system. One is made at a time per kit. Safe to
 * call from several threads.
 */
int kci_engine_root_image(struct kci_kit *k, const char *ref, const struct kci_root_progress *p,
			  struct kci_root *out, struct kci_err *err);
int kci_engine_root_dir(struct kci_kit *k, const char *dir, struct kci_root *out,
			struct kci_err *err);
int kci_engine_root_base(struct kci_kit *k, struct kci_root *out, struct kci_err *err);

/*
 * A writable ext4 disk of the tree at dir with at least free_mib MiB free
 * (sparse): the template each VM copies for its /workspace. *out is a temp
 * file under the cache that the caller unlinks and frees; one left by a
 * killed kci is swept as an orphan.
 */
int kci_engine_workspace_disk(const struct kci_kit *k, const char *dir, uint64_t free_mib,
			      char **out, struct kci_err *err);

/* Fills the kit's part of a VM's options: kernel, initrd, root disk, dirs, accelerator. */
void kci_engine_vm_opts(const struct kci_kit *k, const struct kci_root *root,
			struct kci_vm_opts *vo);

/* ---- what a process in a VM is asked to run ---- */

struct kci_req_opts {
	char *const *argv; /* the command; NULL or empty = the image's Cmd */
	int entrypoint;	   /* put the image's Entrypoint first (kci exec); 0 for job steps */
	char *const *env;  /* "K=V", applied after kci's defaults and the image's Env */
	const char *cwd;   /* NULL = the image's WorkingDir, else "/" */
	const char *user;  /* NULL = the image's User (root when it has none) */
	int tty;	   /* a pseudo-terminal of rows x cols */
	unsigned rows, cols;
};

/*
 * The RUN request for a process, merged as docker run merges an image's
 * config with its command line: argv is Entrypoint + (argv or Cmd); the
 * environment is PATH (one default for every process kci starts), HOME=/root
 * for root, the image's Env, then o->env, later entries winning. *req owns
 * copies of everything (kci_run_req_clear). KCI_INVALID when there is no
 * command at all.
 */
int kci_engine_request(const struct kci_image_config *img, const struct kci_req_opts *o,
		       struct kci_run_req *req, struct kci_err *err);

/* ---- images as root disks, without a kit (kci pull builds the disk right away) ---- */

struct kci_image_disk_opts {
	const char *home;  /* KCI_HOME: the store */
	const char *cache; /* where root disks are cached */
	void (*progress)(void *ctx, const char *digest, uint64_t done, uint64_t total);
	void (*phase)(void *ctx, const char *what);
	void *ctx;
	const volatile sig_atomic_t *cancel;
	const struct kci_registry_policy *policy; /* as in kci_root_progress */
};

/*
 * The cached read-only root disk for image `ref` (pulled first if the store
 * lacks it) in *disk, and the image's config in *cfg (caller clears it).
 */
int kci_engine_image_disk(const char *ref, const struct kci_image_disk_opts *o,
			  struct kci_image_config *cfg, char **disk, struct kci_err *err);

/* ---- runs: job states and the event stream ---- */

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
const char *kci_engine_job_state_name(enum kci_job_state s);

enum kci_event_kind {
	KCI_EV_JOB_START,  /* job, job_name */
	KCI_EV_JOB_NOTE,   /* job; text: kci's own line about it ("pulling alpine:3") */
	KCI_EV_STEP_START, /* job, step, step_name */
	KCI_EV_LOG,	   /* job, step, stream (1 stdout, 2 stderr), text: one line, masked */
	KCI_EV_STEP_END,   /* job, step, state (passed/failed), exit_code, duration_ms */
	KCI_EV_JOB_END,	   /* job, state, duration_ms, text: why it did not pass, log_path */
	KCI_EV_RUN_END,	   /* no job: every selected job has ended; the last event of a run */
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

/*
 * The line a job's log file has for ev (malloc'd, no newline): a LOG line as
 * printed, "kci: NOTE", "== step N: NAME", "== step N passed (exit 0) in 2s",
 * "== job failed in 3s: why". NULL for events the log has no line for.
 * kci serve's logs are written with it too, so every log reads the same.
 */
char *kci_engine_log_line(const struct kci_event *ev);

/* Called from the engine's threads, one event at a time (the engine serialises them). */
typedef void (*kci_event_fn)(void *ctx, const struct kci_event *ev);

struct kci_engine_opts {
	struct kci_kit *kit;   /* the guest kit every job boots from */
	const char *workspace; /* staged tree the jobs see at /workspace, or NULL */
	const char *out_dir;   /* artifacts/<job>/ and logs/<job>.log are written here */
	/* Steps' working dir and artifacts' base in the guest; NULL = /workspace. */
	const char *workdir;
	unsigned max_jobs; /* VMs at once; 0 = kci_engine_default_jobs() */
	/* Time limit of a job whose pipeline sets none; 0 = KCI_ENGINE_JOB_TIMEOUT_MS. */
	int64_t default_timeout_ms;
	/* Bytes of output a job may print (events and log alike); 0 = KCI_ENGINE_OUTPUT_LIMIT. */
	uint64_t output_limit;
	/* NULL-terminated "NAME=VALUE" for every secret the plan names (kci_engine_secrets_for). */
	char *const *secrets;
	/* The registries the pipeline's images may come from (NULL members: none). */
	struct kci_registry_policy registries;
	int console_fd; /* >= 0: every guest console is copied here (--debug) */
	/*
	 * Keeps these jobs' VM templates apart from others' (docs/templates.md):
	 * `kci agent` gives builds of pull requests from forks their own. NULL = none.
	 */
	const char *template_scope;
	int cancel_fd; /* readable = stop: running VMs are torn down, nothing new starts */
	/*
	 * The selected jobs' needs are met elsewhere (an agent runs one job of a
	 * build the server schedules): run them without waiting for their needs.
	 */
	int needs_met;
	kci_event_fn event;
	void *ctx;
};

/* A job without a `timeout:` ends after this unless the operator says otherwise. */
#define KCI_ENGINE_JOB_TIMEOUT_MS (60LL * 60 * 1000)
/* A job's VM without `memory:` or `disk:` (its writable scratch disk), in MiB. */
#define KCI_ENGINE_JOB_MEMORY_MIB 512
#define KCI_ENGINE_JOB_DISK_MIB	  8192
/* Output a job may print before it is failed: its events and its log alike. */
#define KCI_ENGINE_OUTPUT_LIMIT (64ULL << 20)

/* How many VMs at once by default: host CPUs and memory allow. */
unsigned kci_engine_default_jobs(void);

/*
 * Runs the jobs flagged in selected[] (NULL = all) in dependency order.
 * states[] (p->n_jobs entries) receives each job's final state; jobs not
 * selected stay PENDING. Returns 0 when the run happened, whatever its jobs
 * did; < 0 only when it could not start (bad workspace, output dir, ...).
 */
int kci_engine_run(const struct kci_plan *p, const int *selected, const struct kci_engine_opts *o,
		   enum kci_job_state *states, struct kci_err *err);

/* ---- secrets: values the operator grants the jobs ---- */

struct kci_secrets;

struct kci_secrets *kci_engine_secrets_new(void);
void kci_engine_secrets_free(struct kci_secrets *s);
/*
 * Adds the NAME=VALUE lines of a file ("#" comments and blank lines
 * skipped). KCI_INVALID names the line that is not NAME=VALUE.
 */
int kci_engine_secrets_add_file(struct kci_secrets *s, const char *path, struct kci_err *err);
/* Adds one "NAME=VALUE" (a server's grant); KCI_INVALID when it is not of that form. */
int kci_engine_secrets_add(struct kci_secrets *s, const char *name_value, struct kci_err *err);
/* Adds NAME with the value it has in this process's environment; KCI_NOTFOUND when unset. */
int kci_engine_secrets_add_env(struct kci_secrets *s, const char *name, struct kci_err *err);
/*
 * The values of every secret the selected jobs name, as a new NULL-terminated
 * "NAME=VALUE" vector (kci_strv_free), from what s grants and nowhere else:
 * the repository decides nothing about the host. KCI_INVALID names every
 * secret asked for and not granted, at once.
 */
int kci_engine_secrets_for(const struct kci_secrets *s, const struct kci_plan *p,
			   const int *selected, char ***out, struct kci_err *err);

/* ---- a project: a repository, its pipeline, its staged workspace ---- */

#define KCI_PIPELINE_FILE ".kci.yml"

struct kci_project;

struct kci_project_opts {
	const char *dir;    /* anywhere in the repository; NULL = "." */
	const char *commit; /* NULL = the working tree as it is; else a clean checkout of it */
	const char *home;   /* KCI_HOME, where the staged copy goes; NULL = kci_home() */
};

struct kci_workspace_info {
	char commit[41]; /* the commit checked out, or HEAD of the working tree; "" if none */
	int is_git;	 /* the directory is (inside) a git repository */
	int dirty;	 /* working-tree mode: something differs from HEAD */
	size_t files;	 /* regular files and symlinks staged, .git excluded */
	/*
	 * The repository's git dir is outside its working tree and does not name
	 * it back (a .git file pointing elsewhere): staged without .git, and this
	 * is where it pointed. "" otherwise.
	 */
	char foreign_gitdir[512];
};

/*
 * Finds the repository holding o->dir and the project in it (the nearest
 * directory from dir up to the repository root with a .kci.yml; the root
 * when none has), and loads the pipeline: from the working tree before
 * anything is copied, so a typo costs nothing; with a commit, from that
 * commit, which means staging it first. Errors name the file: KCI_NOTFOUND
 * (no pipeline, unknown revision), KCI_INVALID ("FILE:LINE:COL: ...").
 */
int kci_engine_project_open(struct kci_project **out, const struct kci_project_opts *o,
			    struct kci_err *err);
/* Removes the project's staged copy, if any. NULL is a no-op. */
void kci_engine_project_free(struct kci_project *p);
const struct kci_plan *kci_engine_project_plan(const struct kci_project *p);
/* The project's directory on the host (where .kci/ goes). */
const char *kci_engine_project_dir(const struct kci_project *p);
/* The pipeline file as the user knows it: ".kci.yml", "sub/.kci.yml", "HEAD~1:.kci.yml". */
const char *kci_engine_project_pipeline(const struct kci_project *p);
/*
 * Copies the workspace into the project's private dir under KCI_HOME/run
 * (done already, and a no-op, with a commit). Fills *info when not NULL.
 */
int kci_engine_project_stage(struct kci_project *p, struct kci_workspace_info *info,
			     struct kci_err *err);
/*
 * Runs the selected jobs of a staged project: kci_engine_run() with the
 * project's workspace and working dir (o->workspace and workdir are
 * ignored), and its .kci/ as output dir unless o->out_dir names another.
 */
int kci_engine_project_run(struct kci_project *p, const int *selected,
			   const struct kci_engine_opts *o, enum kci_job_state *states,
			   struct kci_err *err);

/* ---- mirrors: local clones of remote repositories (kci serve, kci agent) ---- */

/*
 * Makes the clone at dir (created on first use, without a checkout) hold
 * commit: fetches branches and tags, then `ref` by name when the commit is on
 * no branch (a pull request's head). token, when not NULL, is the https
 * password (username "oauth2", which GitHub, GitLab and Gitea accept). One
 * fetch per clone at a time (a lock beside it). KCI_NOTFOUND when the commit
 * is not there after fetching.
 */
int kci_engine_mirror_sync(const char *url, const char *token, const char *dir, const char *ref,
			   const char *commit, struct kci_err *err);
/*
 * The bytes (at most max, NUL-terminated) of the regular file `path` at commit
 * in the clone at dir. KCI_NOTFOUND when there is no such file.
 */
int kci_engine_mirror_read(const char *dir, const char *commit, const char *path, size_t max,
			   char **out, size_t *len, struct kci_err *err);
/* The clone of url under parent: parent/<16 hex of the URL's SHA-256> (malloc'd). */
char *kci_engine_mirror_dir(const char *parent, const char *url);

/*
 * The root of the repository containing `dir` (its working directory), or
 * `dir` itself when it is not in a git repository. KCI_NOTFOUND when dir
 * does not exist.
 */
int kci_engine_workspace_root(const char *dir, char **root, struct kci_err *err);

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
int kci_engine_workspace_stage(const char *root, const char *commit, const char *dest,
			       struct kci_workspace_info *info, struct kci_err *err);

#endif
