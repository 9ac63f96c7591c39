/* Private to jobs/: the bounded YAML tree the pipeline parser walks, and shared helpers. */
#ifndef KCI_JOBS_INTERNAL_H
#define KCI_JOBS_INTERNAL_H

#include <stddef.h>

#include "common/err.h"
#include "jobs/jobs.h"

#define TREE_DEPTH_MAX	32	    /* nesting of collections */
#define TREE_ITEMS_MAX	4096	    /* entries of one mapping or sequence */
#define TREE_SCALAR_MAX (64 * 1024) /* bytes of one scalar */

enum node_kind {
	NODE_SCALAR,
	NODE_SEQ,
	NODE_MAP,
};

/* Mappings keep keys and values interleaved in items: key 2i, value 2i+1; keys are scalars. */
struct node {
	enum node_kind kind;
	int line, col; /* 1-based */
	char *str;     /* scalar text, NUL-free */
	int plain;     /* scalar was written without quotes */
	struct node **items;
	size_t n, cap;
};

/* Builds the tree of the single document in text; *out is NULL for an empty file.
 * Anchors, aliases and duplicate keys are KCI_INVALID, as are syntax errors. */
int tree_parse(const char *text, size_t len, const char *filename, struct node **out,
	       struct kci_err *err);
void tree_free(struct node *n);

/* The candidate closest to word when it is close enough to be a likely typo, else NULL. */
const char *closest_name(const char *word, const char *const *candidates, size_t n);

/* Like kci_plan_order(); on a cycle also sets *cycle_at to a job on it. */
int plan_order(const struct kci_plan *p, size_t **order, size_t *cycle_at, struct kci_err *err);

#endif
