/*
 * Private to images/: HTTP GETs over libcurl for the registry client and the
 * auth flow (http.c). Redirects are followed by hand under a URL policy,
 * failures are retried with backoff, bodies go to bounded sinks. It knows
 * nothing of registries or credentials: an Authorization value is an opaque
 * header that only its origin receives. Every response is untrusted.
 */
#ifndef KCI_IMAGES_HTTP_H
#define KCI_IMAGES_HTTP_H

#include <curl/curl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "common/err.h"
#include "images/images.h"

#define HTTP_ERROR_BODY_MAX 8192 /* of a non-2xx body: enough for a registry's error JSON */
#define HTTP_LOCATION_MAX   8192 /* presigned CDN URLs run to a few KiB */

/* A client: transfer policy and a pool of easy handles; safe to share between threads. */
struct http;

struct http_opts {
	const char *ca_file;	 /* CA bundle for TLS; NULL: the system's */
	int loopback_ok;	 /* loopback targets allowed (the server itself is on loopback) */
	long connect_timeout_ms; /* TCP + TLS connect */
	long stall_ms;		 /* abort a transfer below 1 KiB/s for this long */
	long request_timeout_ms; /* whole bounded requests (manifests, tokens; not blobs) */
	unsigned max_attempts;	 /* per request, counting the first; 0 means 1 */
	long retry_base_ms;	 /* first backoff; doubles per attempt, with jitter */
	long retry_max_ms;	 /* cap for one wait, and the largest Retry-After obeyed */
	const volatile sig_atomic_t *cancel; /* non-zero aborts transfers (KCI_CANCELED) */
	/* Plain HTTP is allowed to this origin ("http://host:port") too: an insecure registry. */
	const char *plain_origin;
	/* Error bodies that are not a registry's JSON are never quoted in messages. */
	int quiet_bodies;
};

/* A client with opts (copied; ca_file and cancel are borrowed). KCI_ERROR if libcurl fails. */
int http_new(struct http **out, const struct http_opts *opts, struct kci_err *err);
void http_free(struct http *c);

/*
 * Where a 2xx body goes: fd >= 0 is a regular file written with pwrite from
 * offset 0 (truncated when a retry starts over), else memory in buf
 * (malloc'd, room for a NUL after done bytes). The caller sets max (more is
 * too_big) and hash (fed every byte), and frees buf and hash.
 */
struct http_sink {
	int fd;
	char *buf;
	size_t cap;
	uint64_t max, done;
	struct kci_sha256 *hash;
	kci_pull_progress_fn progress; /* may be NULL; (ctx, digest, done, max) */
	void *ctx;
	const char *digest;
	int too_big, io_errno;
};

/*
 * Sees each response header as it arrives; name NULL means a new response
 * starts (a redirect hop, a 1xx), so what was seen before no longer counts.
 * untrusted: value is one header line's value, vlen bytes, not NUL-terminated.
 */
typedef void (*http_header_fn)(void *ctx, const char *name, size_t nlen, const char *value,
			       size_t vlen);

/* One GET as the caller describes it. */
struct http_req {
	const char *url;
	const char *accept;	 /* full "Accept: ..." header or NULL */
	const char *authz;	 /* Authorization value or NULL */
	const char *auth_origin; /* only this URL's origin gets authz; NULL: url's */
	const char *what;	 /* names the request in messages */
	int bounded;		 /* the whole-request timeout applies */
	struct http_sink *sink;	 /* 200/206 bodies; NULL: none expected */
	http_header_fn on_header;
	void *header_ctx;
};

/* The state of one response (reset for each redirect hop). */
struct http_xfer {
	CURL *h;
	const volatile sig_atomic_t *cancel;
	const struct http_req *req;
	long status;
	int body_state; /* 0 undecided, 1 to the sink, 2 to errbody */
	int errbody_full, bad_range, location_long, retryable;
	int same_origin; /* the last hop went to auth_origin, so it carried authz */
	char content_type[128], retry_after[64], content_range[128];
	char location[HTTP_LOCATION_MAX];
	char errbody[HTTP_ERROR_BODY_MAX];
	size_t errlen;
	char curl_err[CURL_ERROR_SIZE];
	int quiet_bodies; /* from the client's opts */
};

/* A transfer on one of c's easy handles (kept for its connections); free with http_xfer_free. */
struct http_xfer *http_xfer_new(struct http *c);
void http_xfer_free(struct http *c, struct http_xfer *x);

/*
 * Performs q once, following up to 5 redirects by hand. Every URL must be
 * https, or http to a loopback host, and loopback hosts only when
 * opts.loopback_ok; the Authorization header goes only to q->auth_origin's
 * origin. 0 with x->status set (any status), or a transfer error:
 * KCI_CANCELED, KCI_TIMEOUT, KCI_PROTO, KCI_INVALID (too large), KCI_ERROR.
 */
int http_follow(struct http *c, struct http_xfer *x, const struct http_req *q, struct kci_err *err);

/* One attempt of a request; http_follow, or a caller's wrapper around it. */
typedef int (*http_step_fn)(void *ctx, struct http_xfer *x, struct http_req *q,
			    struct kci_err *err);

/*
 * Runs step (NULL: http_follow) until it gives a final status, retrying
 * network errors, 429 and 5xx with exponential backoff or the server's
 * Retry-After; a Retry-After beyond retry_max_ms ends the retries at once.
 * Returns step's result; the caller judges the status of the last response.
 */
int http_with_retries(struct http *c, struct http_xfer *x, struct http_req *q, http_step_fn step,
		      void *ctx, struct kci_err *err);

/* " (what the server said about the failure)", cleaned for printing, or "". */
void http_error_detail(const struct http_xfer *x, char *out, size_t size);

/*
 * The error for a final non-2xx response, naming `what` and, for 5xx,
 * `server` ("the registry"), with the server's own error text if it sent
 * any: KCI_INVALID for 401/403, KCI_NOTFOUND for 404, KCI_ERROR for 429 and
 * 5xx, KCI_PROTO for the rest.
 */
int http_status_error(const struct http_xfer *x, const char *what, const char *server,
		      struct kci_err *err);

/* ---- URLs and hosts (ref.c) ---- */

/* 1 for localhost, 127.0.0.0/8, ::1 (a host without port; IPv6 may be bracketed). */
int host_is_loopback(const char *host);
/* "scheme://host:port" of an http(s) URL (port explicit, lowercase); -1 for anything else. */
int url_origin(const char *url, char *out, size_t size, int *https, int *loopback);
/* A Location resolved against the URL that sent it (malloc'd), or NULL. */
char *url_resolve(const char *base, const char *location);

#endif
