/* The pipeline file (.kci.yml, docs/pipeline.md) as a plan of jobs, and the job graph. */
#ifndef KCI_JOBS_JOBS_H
#define KCI_JOBS_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define KCI_PLAN_FILE_MAX   (1024 * 1024) /* bytes of pipeline file we read at most */
#define KCI_PLAN_JOBS_MAX   256		  /* jobs after matrix expansion */
#define KCI_PLAN_STEPS_MAX  256		  /* steps per job */
#define KCI_PLAN_MATRIX_MAX 64		  /* matrix combinations per job */

enum kci_net {
	KCI_NET_NONE = 0,
	KCI_NET_NAT = 1,
};

struct kci_step {
	char *name; /* as written, else the first line of run */
	char *run;
	int allow_failure;
	int line; /* where the step starts in the file */
};

struct kci_job {
	char *name;	     /* expanded name for matrix jobs: "test (GO=1.21, OS=a)" */
	char *base;	     /* the name in the file ("test") */
	char *file_name;     /* for its log and artifacts: "test_GO-1.21_OS-a", unique */
	char *image;	     /* job's image, else the top-level one, else NULL (busybox base) */
	char **env;	     /* NULL-terminated "K=V": top-level env, job env, matrix values */
	char **secrets;	     /* NULL-terminated names: top-level + job */
	char **needs;	     /* NULL-terminated expanded job names */
	int64_t timeout_ms;  /* 0 = none */
	unsigned cpus;	     /* 0 = default */
	uint64_t memory_mib; /* 0 = default */
	uint64_t disk_mib;   /* the VM's writable scratch disk; 0 = default */
	int network;	     /* enum kci_net */
	struct kci_step *steps;
	size_t n_steps;
	char **artifacts; /* NULL-terminated relative paths, as written */
	int line, col;	  /* where the job's key is */
};

struct kci_plan {
	struct kci_job *jobs;
	size_t n_jobs;
};

/*
 * Parses a pipeline file held in memory (len bytes, at most KCI_PLAN_FILE_MAX); filename is
 * only used in messages. On success *out is a new plan the caller frees with kci_plan_free().
 * Every problem is KCI_INVALID with "FILE:LINE:COL: message".
 */
int kci_plan_parse(const char *text, size_t len, const char *filename, struct kci_plan **out,
		   struct kci_err *err);

/*
 * Reads and parses the file at path, named `shown` in messages (NULL = path).
 * KCI_NOTFOUND when it does not exist, KCI_INVALID when it is a symlink, too
 * large or wrong, KCI_ERROR on other I/O failures.
 */
int kci_plan_load(const char *path, const char *shown, struct kci_plan **out, struct kci_err *err);

void kci_plan_free(struct kci_plan *p);

/*
 * Sets *order to a new array of p->n_jobs indexes in which every job comes after its needs,
 * file order otherwise. KCI_INVALID when the needs form a cycle (the message has its path).
 */
int kci_plan_order(const struct kci_plan *p, size_t **order, struct kci_err *err);

/*
 * Sets *selected to a new array of p->n_jobs flags: the jobs named in the NULL-terminated
 * names (base, expanded or file names) and, transitively, everything they need. KCI_NOTFOUND
 * for a name that is no job, with a "did you mean" hint.
 */
int kci_plan_select(const struct kci_plan *p, char *const *names, int **selected,
		    struct kci_err *err);

#endif
