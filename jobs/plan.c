/* The plan's job graph: freeing, loading, dependency order and selection of jobs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "jobs/internal.h"

void
kci_plan_free(struct kci_plan *p)
{
	size_t i, s;

	if (!p)
		return;
	for (i = 0; i < p->n_jobs; i++) {
		struct kci_job *j = &p->jobs[i];
		free(j->name);
		free(j->base);
		free(j->file_name);
		free(j->image);
		kci_strv_free(j->env);
		kci_strv_free(j->secrets);
		kci_strv_free(j->needs);
		kci_strv_free(j->artifacts);
		for (s = 0; s < j->n_steps; s++) {
			free(j->steps[s].name);
			free(j->steps[s].run);
		}
		free(j->steps);
	}
	free(p->jobs);
	free(p);
}

static size_t
job_index(const struct kci_plan *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->n_jobs && strcmp(p->jobs[i].name, name); i++)
		;
	return i;
}

/* Index lists of every job's needs; a name that is no job (a hand-built plan) is skipped. */
static size_t **
need_indexes(const struct kci_plan *p)
{
	size_t **needs = kci_xcalloc(p->n_jobs + 1, sizeof(*needs));
	size_t i, k, n;

	for (i = 0; i < p->n_jobs; i++) {
		for (n = 0; p->jobs[i].needs && p->jobs[i].needs[n]; n++)
			;
		needs[i] = kci_xcalloc(n + 1, sizeof(**needs));
		for (k = 0, n = 0; p->jobs[i].needs && p->jobs[i].needs[k]; k++) {
			size_t t = job_index(p, p->jobs[i].needs[k]);
			if (t < p->n_jobs)
				needs[i][n++] = t + 1; /* 0 ends the list */
		}
	}
	return needs;
}

static void
need_indexes_free(size_t **needs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(needs[i]);
	free(needs);
}

/* From a job left over by the ordering, follows unfinished needs until one repeats. */
static int
cycle_error(const struct kci_plan *p, size_t **needs, const int *done, size_t start,
	    size_t *cycle_at, struct kci_err *err)
{
	size_t *pos = kci_xcalloc(p->n_jobs, sizeof(*pos)), *path, steps = 0, j = start, k;
	char msg[KCI_ERR_MAX] = "jobs ";
	size_t used = strlen(msg);

	path = kci_xcalloc(p->n_jobs + 1, sizeof(*path));
	while (!pos[j]) {
		path[steps++] = j;
		pos[j] = steps;
		for (k = 0; needs[j][k] && done[needs[j][k] - 1]; k++)
			;
		j = needs[j][k] - 1; /* a left-over job always has an unfinished need */
	}
	*cycle_at = j;
	for (k = pos[j] - 1; k <= steps; k++) {
		const char *name = p->jobs[k < steps ? path[k] : j].name;
		int w = snprintf(msg + used, sizeof(msg) - used, "%s%s", name,
				 k < steps ? " -> " : " form a cycle");
		if (w < 0 || (size_t)w >= sizeof(msg) - used)
			break;
		used += (size_t)w;
	}
	free(pos);
	free(path);
	return kci_err_set(err, KCI_INVALID, "%s", msg);
}

int
plan_order(const struct kci_plan *p, size_t **order, size_t *cycle_at, struct kci_err *err)
{
	size_t **needs = need_indexes(p), *out = kci_xcalloc(p->n_jobs + 1, sizeof(*out));
	int *done = kci_xcalloc(p->n_jobs + 1, sizeof(*done));
	size_t n = 0, i, k;
	int rc = 0;

	/* Always the first ready job in file order, so the order is stable and predictable. */
	while (n < p->n_jobs) {
		for (i = 0; i < p->n_jobs; i++) {
			if (done[i])
				continue;
			for (k = 0; needs[i][k] && done[needs[i][k] - 1]; k++)
				;
			if (!needs[i][k])
				break;
		}
		if (i == p->n_jobs)
			break;
		done[i] = 1;
		out[n++] = i;
	}
	if (n < p->n_jobs) {
		for (i = 0; done[i]; i++)
			;
		rc = cycle_error(p, needs, done, i, cycle_at, err);
		free(out);
	} else {
		*order = out;
	}
	need_indexes_free(needs, p->n_jobs);
	free(done);
	return rc;
}

int
kci_plan_order(const struct kci_plan *p, size_t **order, struct kci_err *err)
{
	size_t at;

	return plan_order(p, order, &at, err);
}

/* Marks jobs matching name (its expanded name, or its base for all combinations). */
static int
select_name(const struct kci_plan *p, const char *name, int *sel, struct kci_err *err)
{
	const char **names = kci_xcalloc(p->n_jobs + 1, sizeof(*names));
	const char *hint;
	size_t i;
	int found = 0;

	for (i = 0; i < p->n_jobs; i++) {
		if (!strcmp(p->jobs[i].name, name) || !strcmp(p->jobs[i].base, name) ||
		    !strcmp(p->jobs[i].file_name, name))
			sel[i] = found = 1;
		names[i] = p->jobs[i].base;
	}
	if (!found) {
		hint = kci_jobs_closest_name(name, names, p->n_jobs);
		free(names);
		if (hint)
			return kci_err_set(err, KCI_NOTFOUND,
					   "no job named \"%s\" (did you mean \"%s\"?)", name,
					   hint);
		return kci_err_set(err, KCI_NOTFOUND, "no job named \"%s\"", name);
	}
	free(names);
	return 0;
}

int
kci_plan_select(const struct kci_plan *p, char *const *names, int **selected, struct kci_err *err)
{
	int *sel = kci_xcalloc(p->n_jobs + 1, sizeof(*sel));
	size_t **needs, *stack, top = 0, i, k;
	int rc;

	for (i = 0; names && names[i]; i++) {
		if ((rc = select_name(p, names[i], sel, err)) < 0) {
			free(sel);
			return rc;
		}
	}
	/* Each job is pushed at most once (when first marked), so the stack holds n_jobs. */
	needs = need_indexes(p);
	stack = kci_xcalloc(p->n_jobs + 1, sizeof(*stack));
	for (i = 0; i < p->n_jobs; i++) {
		if (sel[i])
			stack[top++] = i;
	}
	while (top > 0) {
		i = stack[--top];
		for (k = 0; needs[i][k]; k++) {
			if (!sel[needs[i][k] - 1]) {
				sel[needs[i][k] - 1] = 1;
				stack[top++] = needs[i][k] - 1;
			}
		}
	}
	need_indexes_free(needs, p->n_jobs);
	free(stack);
	*selected = sel;
	return 0;
}
