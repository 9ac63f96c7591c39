/*
 * Fuzz target: the pipeline file parser (jobs/). Parses arbitrary bytes as .kci.yml and,
 * when that succeeds, orders and selects the jobs the way kci run does. Built with
 * libFuzzer (KCI_FUZZ=ON) or linked with replay.c so ctest replays the corpus.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "jobs/jobs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *plan = NULL;
	size_t *order = NULL;
	int *selected = NULL;
	char *names[2] = { NULL, NULL };

	if (kci_plan_parse((const char *)data, size, ".kci.yml", &plan, &err) < 0)
		return 0;
	if (kci_plan_order(plan, &order, &err) < 0)
		abort(); /* kci_plan_parse() rejects cycles, so a parsed plan always orders */
	if (plan->n_jobs > 0) {
		names[0] = plan->jobs[plan->n_jobs - 1].name;
		if (kci_plan_select(plan, names, &selected, &err) < 0)
			abort();
	}
	free(order);
	free(selected);
	kci_plan_free(plan);
	return 0;
}
