/* Private to server/: the counters /metrics reports besides the store's, and their text. */
#ifndef KCI_SERVER_METRICS_H
#define KCI_SERVER_METRICS_H

#include <stdint.h>

#include "server/internal.h"

/* What became of a webhook delivery (kci_webhook_deliveries_total{result=...}). */
enum delivery_result {
	DELIVERY_ACCEPTED,     /* a build was queued (or a ping answered) */
	DELIVERY_DUPLICATE,    /* its delivery id was seen before */
	DELIVERY_UNAUTHORIZED, /* signature missing or wrong: 401 */
	DELIVERY_TOO_LARGE,    /* over HOOK_BODY_MAX: 413 */
	DELIVERY_MALFORMED,    /* 400 */
	DELIVERY_UNKNOWN_REPO, /* no such repository in the config */
	DELIVERY_IGNORED,      /* HOOK_IGNORED: a branch deletion, another event */
	DELIVERY_RESULTS,      /* how many there are */
};

/* kci_vm_boot_seconds' buckets: le 0.5, 1, 2, 4, 8, 16 seconds; +Inf is the count. */
#define METRICS_BOOT_BUCKETS 6

/*
 * Counters kept in memory since the server started. Plain data, zero to
 * begin with: the HTTP layer updates and reads it under its own lock.
 */
struct metrics {
	/* Boots in (bound[i-1], bound[i]]: not cumulative, metrics_text adds them up. */
	uint64_t boot_buckets[METRICS_BOOT_BUCKETS];
	uint64_t boot_count; /* every boot, those over 16 s too */
	double boot_sum;     /* seconds */
	uint64_t deliveries[DELIVERY_RESULTS];
};

/* Counts a VM's boot; a negative time counts as 0, a NaN or infinite one not at all. */
void metrics_observe_boot(struct metrics *m, double seconds);
/* Counts a webhook delivery; an out-of-range result is not counted. */
void metrics_delivery(struct metrics *m, enum delivery_result r);
const char *metrics_delivery_name(enum delivery_result r);

/*
 * The Prometheus text exposition (text/plain; version=0.0.4): queue depth,
 * running jobs, agents, finished jobs by status (from c), VM boot times and
 * webhook deliveries (from m). Caller frees.
 */
char *metrics_text(const struct store_counts *c, const struct metrics *m);

#endif
