/*
 * Progress of pulls and root-disk builds for a person at a terminal: one
 * line per blob, redrawn at most ten times a second, and a line for each
 * slow phase. Silent when stderr is not a terminal.
 */
#include <stdio.h>
#include <time.h>

#include "runner/cli.h"

#define REDRAW_MS 100

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
kci_human_size(uint64_t n, char *buf, size_t size)
{
	const char *units[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1000 && u < 4) {
		v /= 1000;
		u++;
	}
	snprintf(buf, size, u ? "%.1f%s" : "%.0f%s", v, units[u]);
}

void
kci_progress_blob(void *ctx, const char *digest, uint64_t done, uint64_t total)
{
	struct kci_progress *p = ctx;
	int64_t now = now_ms();
	char a[32], b[32];

	if (!p->tty)
		return;
	/* A fast transfer calls this for every chunk: a terminal needs a few frames a second. */
	if (done < total && now - p->last_ms < REDRAW_MS)
		return;
	p->last_ms = now;
	kci_human_size(done, a, sizeof(a));
	kci_human_size(total, b, sizeof(b));
	fprintf(stderr, "\r\033[K%.19s  %s / %s%s", digest, a, b, done >= total ? "\n" : "");
	p->redraws++;
}

void
kci_progress_phase(void *ctx, const char *what)
{
	struct kci_progress *p = ctx;

	if (p->tty)
		fprintf(stderr, "%s...\n", what);
}
