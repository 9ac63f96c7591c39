/* The pipeline file (.kci.yml, docs/pipeline.md) as a plan of jobs, the job graph, and the
 * bounded YAML tree it is read with. */
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

/* ---- the bounded YAML tree (tree.c): .kci.yml's, and other YAML files kci reads ---- */

#define KCI_YAML_TEXT_MAX   (1024 * 1024) /* bytes of YAML parsed at most */
#define KCI_YAML_DEPTH_MAX  32		  /* nesting of collections */
#define KCI_YAML_ITEMS_MAX  4096	  /* entries of one mapping or sequence */
#define KCI_YAML_SCALAR_MAX (64 * 1024)	  /* bytes of one scalar */

enum kci_yaml_kind {
	KCI_YAML_SCALAR,
	KCI_YAML_SEQ,
	KCI_YAML_MAP,
};

/* Mappings keep keys and values interleaved in items: key 2i, value 2i+1; keys are scalars. */
struct kci_yaml_node {
	enum kci_yaml_kind kind;
	int line, col; /* 1-based */
	char *str;     /* scalar text, NUL-free; NULL for collections */
	int plain;     /* scalar was written without quotes */
	struct kci_yaml_node **items;
	size_t n, cap; /* cap: tree.c's allocation */
};

/*
 * Builds the tree of the single YAML document in text (len bytes, at most KCI_YAML_TEXT_MAX);
 * filename is only used in messages. *out is NULL for an empty document, else a tree the
 * caller frees with kci_jobs_yaml_free(). Anchors, aliases, duplicate keys, more than one
 * document, trees past the limits above and syntax errors are KCI_INVALID "FILE:LINE:COL: ...".
 */
int kci_jobs_yaml_parse(const char *text, size_t len, const char *filename,
			struct kci_yaml_node **out, struct kci_err *err);
void kci_jobs_yaml_free(struct kci_yaml_node *n);

/* The value of key in map (borrowed), or NULL when map is no mapping or lacks the key. */
const struct kci_yaml_node *kci_jobs_yaml_get(const struct kci_yaml_node *map, const char *key);
/* Whether n is a YAML null: an empty plain scalar, ~ or null. */
int kci_jobs_yaml_is_null(const struct kci_yaml_node *n);
/* A plain true/false (True, TRUE...) into *out (1/0); KCI_INVALID for anything else. */
int kci_jobs_yaml_bool(const struct kci_yaml_node *n, int *out);

/*
 * KCI_INVALID "FILE:LINE:COL: unknown key \"x\" WHERE (did you mean \"y\"?)" at the first
 * key of map that is not one of known; 0 when every key is known.
 */
int kci_jobs_yaml_check_keys(const struct kci_yaml_node *map, const char *const *known,
			     size_t n_known, const char *filename, const char *where,
			     struct kci_err *err);

/*
 * KCI_INVALID "FILE:LINE:COL: message" at node n (1:1 when n is NULL), for
 * every parser of a YAML file; returns KCI_INVALID.
 */
int kci_jobs_yaml_error(struct kci_err *err, const char *filename, const struct kci_yaml_node *n,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The candidate closest to word when it is close enough to be a likely typo, else NULL. */
const char *kci_jobs_closest_name(const char *word, const char *const *candidates, size_t n);

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
