/* /metrics: the store's counts and the server's counters in Prometheus' text format. */
#include "server/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const double boot_bounds[METRICS_BOOT_BUCKETS] = { 0.5, 1, 2, 4, 8, 16 };

static const char *const delivery_names[DELIVERY_RESULTS] = {
	[DELIVERY_ACCEPTED] = "accepted",	  [DELIVERY_DUPLICATE] = "duplicate",
	[DELIVERY_UNAUTHORIZED] = "unauthorized", [DELIVERY_TOO_LARGE] = "too_large",
	[DELIVERY_MALFORMED] = "malformed",	  [DELIVERY_UNKNOWN_REPO] = "unknown_repo",
	[DELIVERY_IGNORED] = "ignored",
};

/* The statuses a job ends in, each a kci_job_results_total series. */
static const enum job_status finished[] = { J_PASSED,  J_FAILED,   J_TIMEOUT,
					    J_SKIPPED, J_CANCELED, J_ERROR };

void
metrics_observe_boot(struct metrics *m, double seconds)
{
	if (!isfinite(seconds))
		return;
	if (seconds < 0)
		seconds = 0;
	for (size_t i = 0; i < METRICS_BOOT_BUCKETS; i++) {
		if (seconds <= boot_bounds[i]) {
			m->boot_buckets[i]++;
			break;
		}
	}
	m->boot_count++;
	m->boot_sum += seconds;
}

void
metrics_delivery(struct metrics *m, enum delivery_result r)
{
	if ((unsigned)r < DELIVERY_RESULTS)
		m->deliveries[r]++;
}

const char *
metrics_delivery_name(enum delivery_result r)
{
	return (unsigned)r < DELIVERY_RESULTS ? delivery_names[r] : "unknown";
}

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
gauge(FILE *f, const char *name, const char *help, int64_t v)
{
	family(f, name, "gauge", help);
	fprintf(f, "%s %" PRId64 "\n", name, v);
}

static void
boot_histogram(FILE *f, const struct metrics *m)
{
	uint64_t cum = 0;

	family(f, "kci_vm_boot_seconds", "histogram", "Time a job's VM took to boot.");
	for (size_t i = 0; i < METRICS_BOOT_BUCKETS; i++) {
		cum += m->boot_buckets[i];
		fprintf(f, "kci_vm_boot_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", boot_bounds[i],
			cum);
	}
	fprintf(f, "kci_vm_boot_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", m->boot_count);
	fprintf(f, "kci_vm_boot_seconds_sum %.6f\n", m->boot_sum);
	fprintf(f, "kci_vm_boot_seconds_count %" PRIu64 "\n", m->boot_count);
}

char *
metrics_text(const struct store_counts *c, const struct metrics *m)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	/* Out of memory: abort, as kci_xmalloc does. */
	if (!f)
		abort();
	gauge(f, "kci_queue_depth", "Jobs queued for an agent.", c->queued);
	gauge(f, "kci_jobs_running", "Jobs leased to an agent and running.", c->running);
	gauge(f, "kci_agents_connected", "Agents seen recently.", c->agents);
	family(f, "kci_job_results_total", "counter", "Jobs that finished, by status.");
	for (size_t i = 0; i < sizeof(finished) / sizeof(finished[0]); i++)
		fprintf(f, "kci_job_results_total{status=\"%s\"} %" PRId64 "\n",
			job_status_name(finished[i]), c->jobs_by_status[finished[i]]);
	boot_histogram(f, m);
	family(f, "kci_webhook_deliveries_total", "counter", "Webhook deliveries, by outcome.");
	for (size_t i = 0; i < DELIVERY_RESULTS; i++)
		fprintf(f, "kci_webhook_deliveries_total{result=\"%s\"} %" PRIu64 "\n",
			delivery_names[i], m->deliveries[i]);
	if (fclose(f) != 0)
		abort();
	return buf;
}
