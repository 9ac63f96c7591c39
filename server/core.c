/*
 * What every part of kci serve shares: the operator's log lines, waking
 * the lease requests that wait for work, and /metrics.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "server/core.h"

int64_t
server_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
server_log(struct server *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (s->log)
		s->log(s->log_ctx, line);
	else
		fprintf(stderr, "kci serve: %s\n", line);
}

void
server_kick(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->lock);
}

char *
server_metrics(struct server *s)
{
	struct kci_err err = KCI_ERR_INIT;
	struct store_counts c = { 0 };
	char *text;

	/* Agents that asked for work within two lease periods count as connected. */
	(void)store_counts(s->store, server_now_ms() - 2 * s->cfg->lease_ttl_ms, &c, &err);
	pthread_mutex_lock(&s->lock);
	text = metrics_text(&c, &s->metrics);
	pthread_mutex_unlock(&s->lock);
	return text;
}
