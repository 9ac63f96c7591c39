/* Private to jobs/: what the pipeline parser and the job graph share. */
#ifndef KCI_JOBS_INTERNAL_H
#define KCI_JOBS_INTERNAL_H

#include <stddef.h>

#include "common/err.h"
#include "jobs/jobs.h"

/* Like kci_plan_order(); on a cycle also sets *cycle_at to a job on it. */
int plan_order(const struct kci_plan *p, size_t **order, size_t *cycle_at, struct kci_err *err);

#endif
