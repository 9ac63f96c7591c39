/* Private to server/: the running server's state, shared by serve.c, http.c and builds.c. */
#ifndef KCI_SERVER_CORE_H
#define KCI_SERVER_CORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "server/internal.h"
#include "server/metrics.h"
#include "server/ui.h"

#define LEASE_ATTEMPTS	  3	/* runs of one job before it is an error */
#define LEASE_POLL_MS	  25000 /* how long a lease request waits for work */
#define API_BODY_MAX	  (64u << 10)
#define LOG_CHUNK_MAX	  (1u << 20)
#define BUILDS_LISTED_MAX 200

struct statusq;

struct server {
	struct config *cfg;
	struct store *store;
	char *data, *mirrors;
	pthread_mutex_t lock;
	pthread_cond_t work;	/* jobs became queued, or the server stops */
	struct metrics metrics; /* guarded by lock */
	struct statusq *statusq;
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
	volatile int stopping;
};

/* Wall-clock ms since the epoch, the store's clock. */
int64_t server_now_ms(void);
/* One line for the operator: a delivery, a build's state change, an agent. */
void server_log(struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Jobs may have become queued: wake waiting lease requests. */
void server_kick(struct server *s);
/* /metrics: the store's counts and the server's counters (Prometheus text, malloc'd). */
char *server_metrics(struct server *s);

/* ---- builds.c ---- */

/* The HTTP answer to a request: status, content type, body (malloc'd, may be NULL). */
struct answer {
	unsigned status;
	const char *type;
	char *body;
	size_t len;
	const char *allow; /* for 405 */
};
void answer_set(struct answer *a, unsigned status, const char *type, char *body);
void answer_text(struct answer *a, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Counts a webhook delivery for /metrics. */
void count_delivery(struct server *s, enum delivery_result result);
/* POST /hooks/FORGE: verify, then create a build for a push; see docs/api.md. */
void builds_hook(struct server *s, const struct hook_req *r, struct answer *a);
/* A build's state changed (or may have): report it to the forge. */
void builds_report(struct server *s, int64_t build);
/* JSON of one build (with jobs) or of the list. */
char *builds_json(const struct build_row *b);
char *builds_list_json(const struct build_row *b, size_t n);

/* ---- forge_status.c: commit statuses, posted by a thread of their own ---- */

int statusq_start(struct statusq **out, struct server *s, struct kci_err *err);
void statusq_stop(struct statusq *q);
/* Queues "build id is in state st" for the forge of repo; never blocks on the network. */
void statusq_push(struct statusq *q, const struct build_row *b);

/* ---- http.c ---- */

struct http_server;
int http_start(struct http_server **out, struct server *s, struct kci_err *err);
void http_stop(struct http_server *h);

#endif
