/*
 * HTTP transport for images/: libcurl GETs with hand-followed redirects under
 * a URL policy, retries with backoff and Retry-After, Range resume, and bounds
 * on every response. Servers, redirects and CDNs are all untrusted.
 */
#include "images/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/version.h"
#include "common/xalloc.h"
#include "images/manifest.h"

#define MAX_REDIRECTS	5
#define LOW_SPEED_BYTES 1024
#define IDLE_HANDLES	8

struct http {
	struct http_opts opts;
	pthread_mutex_t lock;	  /* guards idle and n_idle */
	CURL *idle[IDLE_HANDLES]; /* easy handles keep their connections between requests */
	size_t n_idle;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void
curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
http_new(struct http **out, const struct http_opts *opts, struct kci_err *err)
{
	struct http *c;

	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK)
		return kci_err_set(err, KCI_ERROR, "libcurl: %s",
				   curl_easy_strerror(curl_init_result));
	c = kci_xcalloc(1, sizeof(*c));
	c->opts = *opts;
	if (c->opts.max_attempts == 0)
		c->opts.max_attempts = 1;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void
http_free(struct http *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_idle; i++)
		curl_easy_cleanup(c->idle[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct http_xfer *
http_xfer_new(struct http *c)
{
	struct http_xfer *x = kci_xcalloc(1, sizeof(*x));

	pthread_mutex_lock(&c->lock);
	if (c->n_idle)
		x->h = c->idle[--c->n_idle];
	pthread_mutex_unlock(&c->lock);
	if (!x->h && !(x->h = curl_easy_init()))
		abort(); /* only fails for lack of memory */
	x->cancel = c->opts.cancel;
	x->quiet_bodies = c->opts.quiet_bodies;
	return x;
}

void
http_xfer_free(struct http *c, struct http_xfer *x)
{
	CURL *h;

	if (!x)
		return;
	h = x->h;
	pthread_mutex_lock(&c->lock);
	if (h && c->n_idle < IDLE_HANDLES) {
		c->idle[c->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
	free(x);
}

static void
xfer_reset_headers(struct http_xfer *x)
{
	x->content_type[0] = x->retry_after[0] = '\0';
	x->content_range[0] = x->location[0] = '\0';
	x->location_long = 0;
	if (x->req && x->req->on_header)
		x->req->on_header(x->req->header_ctx, NULL, 0, NULL, 0);
}

static void
xfer_reset(struct http_xfer *x)
{
	xfer_reset_headers(x);
	x->status = 0;
	x->body_state = x->errbody_full = x->bad_range = x->retryable = 0;
	x->errlen = 0;
	x->errbody[0] = x->curl_err[0] = '\0';
}

static void
copy_value(char *out, size_t size, const char *v, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

static size_t
on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct http_xfer *x = ud;
	size_t len = size * nmemb, nlen, vlen;
	const char *colon, *v;

	/* untrusted: one header line, len bytes (curl caps a header at 100 KiB) */
	if (len >= 5 && !memcmp(p, "HTTP/", 5)) {
		xfer_reset_headers(x); /* a new response (after 1xx) starts */
		return len;
	}
	if (!(colon = memchr(p, ':', len)))
		return len;
	nlen = (size_t)(colon - p);
	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
#define IS(name) (nlen == sizeof(name) - 1 && !strncasecmp(p, name, nlen))
	if (IS("content-type"))
		copy_value(x->content_type, sizeof(x->content_type), v, vlen);
	else if (IS("retry-after"))
		copy_value(x->retry_after, sizeof(x->retry_after), v, vlen);
	else if (IS("content-range"))
		copy_value(x->content_range, sizeof(x->content_range), v, vlen);
	else if (IS("location") && vlen >= sizeof(x->location))
		x->location_long = 1;
	else if (IS("location"))
		copy_value(x->location, sizeof(x->location), v, vlen);
#undef IS
	if (x->req && x->req->on_header)
		x->req->on_header(x->req->header_ctx, p, nlen, v, vlen);
	return len;
}

static void
sink_reset(struct http_sink *s)
{
	if (s->fd >= 0 && ftruncate(s->fd, 0) < 0)
		s->io_errno = errno;
	kci_sha256_free(s->hash);
	s->hash = kci_sha256_new();
	s->done = 0;
}

static int
sink_write(struct http_sink *s, const char *p, size_t len)
{
	if (s->io_errno)
		return -1;
	if (s->too_big || len > s->max - s->done) {
		s->too_big = 1;
		return -1;
	}
	if (s->fd >= 0) {
		for (size_t off = 0; off < len;) {
			ssize_t n = pwrite(s->fd, p + off, len - off, (off_t)(s->done + off));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				s->io_errno = n < 0 ? errno : EIO;
				return -1;
			}
			off += (size_t)n;
		}
	} else {
		if (s->done + len + 1 > s->cap) {
			s->cap = s->cap ? s->cap : 16384;
			while (s->cap < s->done + len + 1)
				s->cap *= 2;
			s->buf = kci_xrealloc(s->buf, s->cap);
		}
		memcpy(s->buf + s->done, p, len);
	}
	kci_sha256_update(s->hash, p, len);
	s->done += len;
	if (s->progress)
		s->progress(s->ctx, s->digest, s->done, s->max);
	return 0;
}

/*
 * The first body bytes of a 200/206: a 206 must continue exactly where the
 * sink stopped; a 200 after a partial attempt starts the blob over.
 */
static int
sink_begin(struct http_xfer *x)
{
	struct http_sink *s = x->req->sink;
	unsigned long long start;

	if (x->status == 206) {
		if (sscanf(x->content_range, "bytes %llu-", &start) != 1 || start != s->done) {
			x->bad_range = 1;
			return -1;
		}
	} else if (s->done > 0) {
		sink_reset(s);
	}
	return 0;
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct http_xfer *x = ud;
	struct http_sink *s = x->req->sink;
	size_t len = size * nmemb, room;

	if (x->body_state == 0) {
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
		x->body_state = s && (x->status == 200 || x->status == 206) ? 1 : 2;
		if (x->body_state == 1 && sink_begin(x) < 0)
			return 0;
	}
	if (x->body_state == 1)
		return sink_write(s, p, len) < 0 ? 0 : len;
	/* An error body only decorates a message; past the bound, stop reading it. */
	room = sizeof(x->errbody) - 1 - x->errlen;
	memcpy(x->errbody + x->errlen, p, len < room ? len : room);
	x->errlen += len < room ? len : room;
	x->errbody[x->errlen] = '\0';
	if (len > room) {
		x->errbody_full = 1;
		return 0;
	}
	return len;
}

static int
on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct http_xfer *x = ud;

	return x->cancel && *x->cancel ? 1 : 0;
}

static void
set_common_opts(struct http *c, struct http_xfer *x, const struct http_req *q, int loopback)
{
	CURL *h = x->h;

	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* Redirects are followed by hand so that credentials never leave their origin. */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_USERAGENT, "kci/" KCI_VERSION);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)LOW_SPEED_BYTES);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
			 c->opts.stall_ms / 1000 > 0 ? c->opts.stall_ms / 1000 : 1L);
	if (q->bounded)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->opts.request_timeout_ms);
	if (c->opts.ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->opts.ca_file);
	/* libcurl takes proxies from the environment; no proxy can reach our loopback. */
	if (loopback)
		curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->curl_err);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
}

/* One HTTP exchange, no redirects followed. */
static CURLcode
http_once(struct http *c, struct http_xfer *x, const char *url, int send_auth, int loopback)
{
	const struct http_req *q = x->req;
	struct curl_slist *hdrs = NULL;
	char *authz = NULL, range[64];
	CURLcode cc;

	curl_easy_reset(x->h);
	set_common_opts(c, x, q, loopback);
	curl_easy_setopt(x->h, CURLOPT_URL, url);
	if (q->accept)
		hdrs = curl_slist_append(hdrs, q->accept);
	if (send_auth && q->authz) {
		authz = kci_xasprintf("Authorization: %s", q->authz);
		hdrs = curl_slist_append(hdrs, authz);
	}
	if (q->sink) {
		/* The whole size, not what is left: a server may answer a Range with a full 200. */
		curl_easy_setopt(x->h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)q->sink->max);
		if (q->sink->done > 0) {
			snprintf(range, sizeof(range), "Range: bytes=%llu-",
				 (unsigned long long)q->sink->done);
			hdrs = curl_slist_append(hdrs, range);
		}
	}
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(x->h);
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
	if (cc == CURLE_WRITE_ERROR && x->body_state == 2 && x->errbody_full)
		cc = CURLE_OK; /* we stopped reading an overlong error body on purpose */
	/* An overlong error response is still just an error response. */
	if (cc == CURLE_FILESIZE_EXCEEDED && x->status != 200 && x->status != 206)
		cc = CURLE_OK;
	else if (cc == CURLE_FILESIZE_EXCEEDED && q->sink)
		q->sink->too_big = 1;
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (authz)
		explicit_bzero(authz, strlen(authz));
	free(authz);
	return cc;
}

/* Turns a failed transfer into an error; marks the ones worth retrying. */
static int
transfer_error(struct http_xfer *x, CURLcode cc, const struct http_req *q, struct kci_err *err)
{
	const char *why = x->curl_err[0] ? x->curl_err : curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_ABORTED_BY_CALLBACK:
		return kci_err_set(err, KCI_CANCELED, "%s: canceled", q->what);
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (x->bad_range) {
			x->retryable = 1;
			return kci_err_set(err, KCI_PROTO,
					   "%s: the server resumed at the wrong offset", q->what);
		}
		if (q->sink && q->sink->io_errno)
			return kci_err_sys(err, q->sink->io_errno, "%s: write", q->what);
		return kci_err_set(err, KCI_INVALID, "%s: larger than %llu bytes", q->what,
				   q->sink ? (unsigned long long)q->sink->max : 0ULL);
	case CURLE_OPERATION_TIMEDOUT:
		x->retryable = 1;
		return kci_err_set(err, KCI_TIMEOUT, "%s: %s", q->what, why);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		x->retryable = 1;
		return kci_err_set(err, KCI_ERROR, "%s: %s", q->what, why);
	default:
		return kci_err_set(err, KCI_ERROR, "%s: %s", q->what, why);
	}
}

static int
is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/*
 * Whether a URL may be fetched: https, or plain http to a loopback host.
 * Loopback targets at all only when the server itself is on loopback, so a
 * remote registry cannot point kci at services on this machine.
 */
static int
url_allowed(struct http *c, const char *url, char *origin, size_t size, int *loopback,
	    const struct http_req *q, struct kci_err *err)
{
	char shown[200];
	const char *why = NULL;
	int https;

	if (url_origin(url, origin, size, &https, loopback) < 0)
		why = "not an http(s) URL";
	else if (*loopback && !c->opts.loopback_ok)
		why = "a loopback address, but the registry is not on loopback";
	else if (!https && !*loopback &&
		 !(c->opts.plain_origin && strcmp(origin, c->opts.plain_origin) == 0))
		why = "plain HTTP is allowed only to loopback hosts and insecure registries";
	if (!why)
		return 0;
	text_clean(shown, sizeof(shown), url, strlen(url));
	return kci_err_set(err, KCI_PROTO, "%s: refusing %s: %s", q->what, shown, why);
}

int
http_follow(struct http *c, struct http_xfer *x, const struct http_req *q, struct kci_err *err)
{
	char *url = kci_xstrdup(q->url), *next, origin[512], auth_origin[512];
	int loopback, unused, rc = 0;
	CURLcode cc;

	x->req = q;
	if (url_origin(q->auth_origin ? q->auth_origin : q->url, auth_origin, sizeof(auth_origin),
		       &unused, &unused) < 0)
		auth_origin[0] = '\0';
	for (int hop = 0;; hop++) {
		xfer_reset(x);
		if ((rc = url_allowed(c, url, origin, sizeof(origin), &loopback, q, err)) < 0)
			break;
		x->same_origin = !strcmp(origin, auth_origin);
		if ((cc = http_once(c, x, url, x->same_origin, loopback)) != CURLE_OK) {
			rc = transfer_error(x, cc, q, err);
			break;
		}
		if (!is_redirect(x->status))
			break;
		if (hop == MAX_REDIRECTS || x->location_long || !x->location[0] ||
		    !(next = url_resolve(url, x->location))) {
			rc = kci_err_set(err, KCI_PROTO, "%s: %s", q->what,
					 hop == MAX_REDIRECTS ? "too many redirects"
							      : "redirect with a bad Location");
			break;
		}
		free(url);
		url = next;
	}
	/* The caller's header hook and sink are only borrowed for this request. */
	x->req = NULL;
	free(url);
	return rc;
}

static long
retry_after_ms(const char *v)
{
	struct tm tm;
	char *end;
	long secs;

	if (!v[0])
		return -1;
	secs = strtol(v, &end, 10);
	if (end != v && *end == '\0')
		return secs < 0 ? 0 : secs > 86400 ? 86400000L : secs * 1000;
	memset(&tm, 0, sizeof(tm));
	if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
		secs = (long)(timegm(&tm) - time(NULL));
		return secs < 0 ? 0 : secs > 86400 ? 86400000L : secs * 1000;
	}
	return -1;
}

/* Sleeps ms milliseconds in slices, so a cancel is noticed; -1 if canceled. */
static int
sleep_ms(struct http *c, long ms)
{
	while (ms > 0) {
		long slice = ms < 100 ? ms : 100;
		struct timespec ts = { slice / 1000, (slice % 1000) * 1000000L };
		if (c->opts.cancel && *c->opts.cancel)
			return -1;
		nanosleep(&ts, NULL);
		ms -= slice;
	}
	return c->opts.cancel && *c->opts.cancel ? -1 : 0;
}

static long
backoff_ms(struct http *c, unsigned attempt, struct http_xfer *x)
{
	struct timespec ts;
	unsigned seed;
	long wait = c->opts.retry_base_ms;

	for (unsigned i = 1; i < attempt && wait < c->opts.retry_max_ms; i++)
		wait *= 2;
	if (wait > c->opts.retry_max_ms)
		wait = c->opts.retry_max_ms;
	/* Jitter in [wait/2, wait] keeps parallel downloads from retrying in lockstep. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	seed = (unsigned)ts.tv_nsec ^ (unsigned)(uintptr_t)x;
	return wait / 2 + (wait > 1 ? rand_r(&seed) % (wait / 2 + 1) : 0);
}

static int
follow_step(void *ctx, struct http_xfer *x, struct http_req *q, struct kci_err *err)
{
	return http_follow(ctx, x, q, err);
}

int
http_with_retries(struct http *c, struct http_xfer *x, struct http_req *q, http_step_fn step,
		  void *ctx, struct kci_err *err)
{
	if (!step) {
		step = follow_step;
		ctx = c;
	}
	for (unsigned attempt = 1;; attempt++) {
		int rc = step(ctx, x, q, err), again;
		long wait, asked;

		again = rc < 0 ? x->retryable
			       : x->status == 429 || x->status == 502 || x->status == 503 ||
					 x->status == 504 || x->status == 500;
		if (!again || attempt >= c->opts.max_attempts)
			return rc;
		wait = backoff_ms(c, attempt, x);
		asked = rc == 0 ? retry_after_ms(x->retry_after) : -1;
		if (asked > c->opts.retry_max_ms)
			return rc; /* the server wants us gone for longer than we wait */
		if (asked >= 0)
			wait = asked;
		if (sleep_ms(c, wait) < 0)
			return kci_err_set(err, KCI_CANCELED, "%s: canceled", q->what);
		if (x->bad_range && q->sink)
			sink_reset(q->sink);
	}
}

void
http_error_detail(const struct http_xfer *x, char *out, size_t size)
{
	char detail[300];

	registry_errors_text(x->errbody, x->errlen, detail, sizeof(detail));
	/* Not a registry's error JSON: a line of whatever answered may still say what is wrong
	 * ("Client sent an HTTP request to an HTTPS server"). */
	if (!detail[0] && !x->quiet_bodies && x->errlen && x->errbody[0] != '{' &&
	    x->errbody[0] != '<')
		text_clean(detail, 120, x->errbody, strcspn(x->errbody, "\r\n"));
	if (detail[0])
		snprintf(out, size, " (%s)", detail);
	else if (size)
		out[0] = '\0';
}

int
http_status_error(const struct http_xfer *x, const char *what, const char *server,
		  struct kci_err *err)
{
	char paren[320];

	http_error_detail(x, paren, sizeof(paren));
	switch (x->status) {
	case 401:
		return kci_err_set(err, KCI_INVALID, "%s: 401 Unauthorized%s", what, paren);
	case 403:
		return kci_err_set(err, KCI_INVALID, "%s: 403 Forbidden%s", what, paren);
	case 404:
		return kci_err_set(err, KCI_NOTFOUND, "%s: 404 Not Found%s", what, paren);
	case 429:
		return kci_err_set(err, KCI_ERROR, "%s: 429 Too Many Requests%s%s%s", what, paren,
				   x->retry_after[0] ? "; retry after " : "",
				   x->retry_after[0] ? x->retry_after : "");
	default:
		if (x->status >= 500 && x->status <= 599)
			return kci_err_set(err, KCI_ERROR, "%s: %s failed with HTTP %ld%s", what,
					   server, x->status, paren);
		return kci_err_set(err, KCI_PROTO, "%s: unexpected HTTP status %ld%s", what,
				   x->status, paren);
	}
}
