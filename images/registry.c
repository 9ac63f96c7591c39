/*
 * The registry client: distribution API GETs over libcurl with token and
 * basic auth, hand-followed redirects, retries with backoff, and bounds on
 * every response. Registries, token servers and CDNs are all untrusted.
 */
#include "images/registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/version.h"
#include "common/xalloc.h"

#define MAX_REDIRECTS	5
#define LOW_SPEED_BYTES 1024

#define ACCEPT_MANIFESTS                                                                           \
	"Accept: " MEDIA_OCI_MANIFEST ", " MEDIA_OCI_INDEX ", " MEDIA_DOCKER_MANIFEST              \
	", " MEDIA_DOCKER_LIST

static void
xfer_reset_headers(struct xfer *x)
{
	x->content_type[0] = x->retry_after[0] = '\0';
	x->content_range[0] = x->location[0] = '\0';
	x->location_long = x->challenge_bad = 0;
	memset(&x->challenge, 0, sizeof(x->challenge));
}

static void
xfer_reset(struct xfer *x)
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
	struct xfer *x = ud;
	size_t len = size * nmemb, nlen, vlen;
	const char *colon, *v;
	struct kci_err e = KCI_ERR_INIT;

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
	else if (IS("www-authenticate") && auth_challenge_parse(v, vlen, &x->challenge, &e) < 0)
		x->challenge_bad = 1;
#undef IS
	return len;
}

static void
sink_reset(struct sink *s)
{
	if (s->fd >= 0 && ftruncate(s->fd, 0) < 0)
		s->io_errno = errno;
	kci_sha256_free(s->hash);
	s->hash = kci_sha256_new();
	s->done = 0;
}

static int
sink_write(struct sink *s, const char *p, size_t len)
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
sink_begin(struct xfer *x)
{
	unsigned long long start;

	if (x->status == 206) {
		if (sscanf(x->content_range, "bytes %llu-", &start) != 1 ||
		    start != x->sink->done) {
			x->bad_range = 1;
			return -1;
		}
	} else if (x->sink->done > 0) {
		sink_reset(x->sink);
	}
	return 0;
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * nmemb, room;

	if (x->body_state == 0) {
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
		x->body_state = x->sink && (x->status == 200 || x->status == 206) ? 1 : 2;
		if (x->body_state == 1 && sink_begin(x) < 0)
			return 0;
	}
	if (x->body_state == 1)
		return sink_write(x->sink, p, len) < 0 ? 0 : len;
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
	struct xfer *x = ud;

	return x->cancel && *x->cancel ? 1 : 0;
}

static void
set_common_opts(struct registry *r, struct xfer *x, const struct req *q, int loopback)
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
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, r->opts.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)LOW_SPEED_BYTES);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
			 r->opts.stall_ms / 1000 > 0 ? r->opts.stall_ms / 1000 : 1L);
	if (q->bounded)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->opts.request_timeout_ms);
	if (r->opts.ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, r->opts.ca_file);
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
http_once(struct registry *r, struct xfer *x, const char *url, const struct req *q, int send_auth,
	  int loopback)
{
	struct curl_slist *hdrs = NULL;
	char *authz = NULL, range[64];
	CURLcode cc;

	curl_easy_reset(x->h);
	set_common_opts(r, x, q, loopback);
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
	x->sink = q->sink;
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
transfer_error(struct xfer *x, CURLcode cc, const struct req *q, struct kci_err *err)
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
					   "%s: the registry resumed at the wrong offset", q->what);
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
 * Loopback targets at all only when the registry itself is on loopback, so
 * a remote registry cannot point kci at services on this machine.
 */
static int
url_allowed(struct registry *r, const char *url, char *origin, size_t size, int *loopback,
	    const struct req *q, struct kci_err *err)
{
	char shown[200];
	const char *why = NULL;
	int https;

	if (url_origin(url, origin, size, &https, loopback) < 0)
		why = "not an http(s) URL";
	else if (*loopback && !kci_image_ref_is_loopback(&r->ref))
		why = "a loopback address, but the registry is not on loopback";
	else if (!https && !*loopback)
		why = "plain HTTP is allowed only to loopback hosts";
	if (!why)
		return 0;
	text_clean(shown, sizeof(shown), url, strlen(url));
	return kci_err_set(err, KCI_PROTO, "%s: refusing %s: %s", q->what, shown, why);
}

int
registry_http_follow(struct registry *r, struct xfer *x, const struct req *q, struct kci_err *err)
{
	char *url = kci_xstrdup(q->url), *next, origin[512], auth_origin[512];
	int loopback, unused, rc = 0;
	CURLcode cc;

	if (url_origin(q->auth_origin ? q->auth_origin : q->url, auth_origin, sizeof(auth_origin),
		       &unused, &unused) < 0)
		auth_origin[0] = '\0';
	for (int hop = 0;; hop++) {
		xfer_reset(x);
		if ((rc = url_allowed(r, url, origin, sizeof(origin), &loopback, q, err)) < 0)
			break;
		x->same_origin = !strcmp(origin, auth_origin);
		if ((cc = http_once(r, x, url, q, x->same_origin, loopback)) != CURLE_OK) {
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
sleep_ms(struct registry *r, long ms)
{
	while (ms > 0) {
		long slice = ms < 100 ? ms : 100;
		struct timespec ts = { slice / 1000, (slice % 1000) * 1000000L };
		if (r->opts.cancel && *r->opts.cancel)
			return -1;
		nanosleep(&ts, NULL);
		ms -= slice;
	}
	return r->opts.cancel && *r->opts.cancel ? -1 : 0;
}

static long
backoff_ms(struct registry *r, unsigned attempt, struct xfer *x)
{
	struct timespec ts;
	unsigned seed;
	long wait = r->opts.retry_base_ms;

	for (unsigned i = 1; i < attempt && wait < r->opts.retry_max_ms; i++)
		wait *= 2;
	if (wait > r->opts.retry_max_ms)
		wait = r->opts.retry_max_ms;
	/* Jitter in [wait/2, wait] keeps parallel downloads from retrying in lockstep. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	seed = (unsigned)ts.tv_nsec ^ (unsigned)(uintptr_t)x;
	return wait / 2 + (wait > 1 ? rand_r(&seed) % (wait / 2 + 1) : 0);
}

/*
 * Runs step until it succeeds with a final status, retrying network errors,
 * 429 and 5xx with exponential backoff (or the server's Retry-After, if it
 * is within retry_max_ms). Returns step's result; the caller judges the
 * status of the last response.
 */
int
registry_with_retries(struct registry *r, struct xfer *x, struct req *q, registry_step_fn step,
		      struct kci_err *err)
{
	for (unsigned attempt = 1;; attempt++) {
		int rc = step(r, x, q, err), again;
		long wait, asked;

		again = rc < 0 ? x->retryable
			       : x->status == 429 || x->status == 502 || x->status == 503 ||
					 x->status == 504 || x->status == 500;
		if (!again || attempt >= r->opts.max_attempts)
			return rc;
		wait = backoff_ms(r, attempt, x);
		asked = rc == 0 ? retry_after_ms(x->retry_after) : -1;
		if (asked > r->opts.retry_max_ms)
			return rc; /* the server wants us gone for longer than we wait */
		if (asked >= 0)
			wait = asked;
		if (sleep_ms(r, wait) < 0)
			return kci_err_set(err, KCI_CANCELED, "%s: canceled", q->what);
		if (x->bad_range && q->sink)
			sink_reset(q->sink);
	}
}

int
registry_status_error(struct registry *r, struct xfer *x, const char *what, struct kci_err *err)
{
	char detail[300], paren[320] = "";

	registry_errors_text(x->errbody, x->errlen, detail, sizeof(detail));
	/* Not the registry's error JSON: a line of whatever answered may still say what is wrong
	 * ("Client sent an HTTP request to an HTTPS server"). */
	if (!detail[0] && x->errlen && x->errbody[0] != '{' && x->errbody[0] != '<')
		text_clean(detail, 120, x->errbody, strcspn(x->errbody, "\r\n"));
	if (detail[0])
		snprintf(paren, sizeof(paren), " (%s)", detail);
	switch (x->status) {
	case 401:
		return auth_unauthorized(r, x, NULL, err);
	case 403:
		return kci_err_set(err, KCI_INVALID, "%s: 403 Forbidden%s", what, paren);
	case 404:
		return kci_err_set(err, KCI_NOTFOUND, "%s: not found in %s/%s%s", what,
				   r->ref.registry, r->ref.repo, paren);
	case 429:
		return kci_err_set(err, KCI_ERROR, "%s: 429 Too Many Requests%s%s%s", what, paren,
				   x->retry_after[0] ? "; retry after " : "",
				   x->retry_after[0] ? x->retry_after : "");
	default:
		if (x->status >= 500 && x->status <= 599)
			return kci_err_set(err, KCI_ERROR,
					   "%s: the registry failed with HTTP %ld%s", what,
					   x->status, paren);
		return kci_err_set(err, KCI_PROTO, "%s: unexpected HTTP status %ld%s", what,
				   x->status, paren);
	}
}

static CURL *
handle_get(struct registry *r)
{
	CURL *h = NULL;

	pthread_mutex_lock(&r->lock);
	if (r->n_idle)
		h = r->idle[--r->n_idle];
	pthread_mutex_unlock(&r->lock);
	if (!h && !(h = curl_easy_init()))
		abort(); /* only fails for lack of memory */
	return h;
}

static void
handle_put(struct registry *r, CURL *h)
{
	pthread_mutex_lock(&r->lock);
	if (r->n_idle < IDLE_HANDLES) {
		r->idle[r->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* Runs a registry request with retries; 0 only for a 200 (or a 206 continuing a sink). */
static int
fetch(struct registry *r, struct req *q, struct xfer *x, struct kci_err *err)
{
	int rc;

	x->h = handle_get(r);
	x->cancel = r->opts.cancel;
	q->auth_origin = r->base;
	rc = registry_with_retries(r, x, q, auth_request_step, err);
	handle_put(r, x->h);
	x->h = NULL;
	if (rc == 0 && x->status != 200 && !(x->status == 206 && q->sink))
		rc = registry_status_error(r, x, q->what, err);
	return rc;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void
curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
registry_new(struct registry **out, const struct kci_image_ref *ref,
	     const struct registry_opts *opts, struct kci_err *err)
{
	const struct registry_opts defaults = REGISTRY_OPTS_INIT;
	struct registry *r;
	int https;

	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK)
		return kci_err_set(err, KCI_ERROR, "libcurl: %s",
				   curl_easy_strerror(curl_init_result));
	if (!ref->registry[0] || !ref->repo[0])
		return kci_err_set(err, KCI_INVALID, "registry client needs a parsed reference");
	r = kci_xcalloc(1, sizeof(*r));
	r->ref = *ref;
	r->opts = opts ? *opts : defaults;
	if (r->opts.max_attempts == 0)
		r->opts.max_attempts = 1;
	https = !kci_image_ref_is_loopback(ref) || r->opts.loopback_https;
	snprintf(r->base, sizeof(r->base), "%s://%s", https ? "https" : "http", ref->registry);
	snprintf(r->scope, sizeof(r->scope), "repository:%s:pull", ref->repo);
	pthread_mutex_init(&r->lock, NULL);
	auth_load_creds(r, r->opts.docker_config);
	*out = r;
	return 0;
}

void
registry_free(struct registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_idle; i++)
		curl_easy_cleanup(r->idle[i]);
	if (r->token_authz)
		explicit_bzero(r->token_authz, strlen(r->token_authz));
	free(r->token_authz);
	auth_creds_clear(&r->creds);
	free(r->config_path);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void
registry_manifest_clear(struct registry_manifest *m)
{
	if (!m)
		return;
	free(m->body);
	memset(m, 0, sizeof(*m));
}

static int
check_reference(const char *reference, struct kci_err *err)
{
	char shown[160];

	if (!strncmp(reference, "sha256:", 7) || strchr(reference, ':'))
		return digest_check(reference, "manifest", err);
	if (tag_is_valid(reference))
		return 0;
	text_clean(shown, sizeof(shown), reference, strlen(reference));
	return kci_err_set(err, KCI_INVALID, "'%s' is neither a tag nor a digest", shown);
}

/* Content-Type without parameters, if it names a manifest type; else the body's mediaType. */
static void
manifest_media_type(const struct xfer *x, const char *body, size_t len, char *out, size_t size)
{
	size_t n = strcspn(x->content_type, "; \t");
	char type[128];

	snprintf(type, sizeof(type), "%.*s", (int)n, x->content_type);
	for (char *c = type; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
	if (manifest_kind_of(type) != MANIFEST_UNKNOWN)
		snprintf(out, size, "%s", type);
	else
		manifest_body_media_type(body, len, out, size);
}

int
registry_get_manifest(struct registry *r, const char *reference, struct registry_manifest *out,
		      struct kci_err *err)
{
	struct xfer *x = NULL;
	struct sink s = { .fd = -1, .max = MANIFEST_MAX };
	struct registry_manifest m = { 0 };
	char what[200], *url = NULL, hex[65];
	struct req q = { .accept = ACCEPT_MANIFESTS, .bounded = 1, .sink = &s };
	int rc;

	if ((rc = check_reference(reference, err)) < 0)
		return rc;
	snprintf(what, sizeof(what), "manifest %s", reference);
	url = kci_xasprintf("%s/v2/%s/manifests/%s", r->base, r->ref.repo, reference);
	x = kci_xcalloc(1, sizeof(*x));
	s.hash = kci_sha256_new();
	q.url = url;
	q.what = what;
	if ((rc = fetch(r, &q, x, err)) < 0)
		goto out;
	m.len = s.done;
	m.body = s.buf ? s.buf : kci_xstrdup("");
	m.body[m.len] = '\0';
	s.buf = NULL;
	kci_sha256_hex(s.hash, hex);
	s.hash = NULL;
	snprintf(m.digest, sizeof(m.digest), "sha256:%s", hex);
	manifest_media_type(x, m.body, m.len, m.media_type, sizeof(m.media_type));
	if (digest_is_valid(reference) && strcmp(reference, m.digest) != 0) {
		rc = kci_err_set(err, KCI_DIGEST, "manifest %s: digest mismatch (got %s)",
				 reference, m.digest);
		goto out;
	}
	*out = m;
	m.body = NULL;
out:
	registry_manifest_clear(&m);
	kci_sha256_free(s.hash);
	free(s.buf);
	free(url);
	free(x);
	return rc;
}

/* Fetches a blob into s and checks its size and digest. */
static int
get_blob(struct registry *r, const char *digest, int64_t size, struct sink *s, struct kci_err *err)
{
	struct xfer *x;
	char what[100], *url, hex[65];
	struct req q = { .sink = s };
	int rc;

	if ((rc = digest_check(digest, "blob", err)) < 0)
		return rc;
	if (size < 0 || size > BLOB_SIZE_MAX)
		return kci_err_set(err, KCI_INVALID, "blob %s: size %lld is outside 0..%lld",
				   digest, (long long)size, (long long)BLOB_SIZE_MAX);
	snprintf(what, sizeof(what), "blob %s", digest);
	url = kci_xasprintf("%s/v2/%s/blobs/%s", r->base, r->ref.repo, digest);
	x = kci_xcalloc(1, sizeof(*x));
	s->max = (uint64_t)size;
	s->hash = kci_sha256_new();
	s->digest = digest;
	q.url = url;
	q.what = what;
	rc = fetch(r, &q, x, err);
	if (s->too_big)
		rc = kci_err_set(err, KCI_DIGEST,
				 "%s: size mismatch: the registry sent more than %lld "
				 "bytes",
				 what, (long long)size);
	else if (rc == 0 && s->done != (uint64_t)size)
		rc = kci_err_set(err, KCI_DIGEST,
				 "%s: size mismatch: expected %lld bytes, got %llu", what,
				 (long long)size, (unsigned long long)s->done);
	if (rc == 0) {
		kci_sha256_hex(s->hash, hex);
		s->hash = NULL;
		if (strcmp(hex, digest + 7) != 0)
			rc = kci_err_set(err, KCI_DIGEST, "%s: digest mismatch (got sha256:%s)",
					 what, hex);
	}
	kci_sha256_free(s->hash);
	s->hash = NULL;
	free(url);
	free(x);
	return rc;
}

int
registry_get_blob(struct registry *r, const char *digest, int64_t size, int out_fd,
		  kci_pull_progress_fn progress, void *ctx, struct kci_err *err)
{
	struct sink s = { .fd = out_fd, .progress = progress, .ctx = ctx };

	if (out_fd < 0)
		return kci_err_set(err, KCI_INVALID, "blob %s: no file to write to", digest);
	if (progress)
		progress(ctx, digest, 0, size > 0 ? (uint64_t)size : 0);
	return get_blob(r, digest, size, &s, err);
}

int
registry_get_blob_bytes(struct registry *r, const char *digest, int64_t size, size_t max,
			char **out, size_t *len, struct kci_err *err)
{
	struct sink s = { .fd = -1 };
	int rc;

	if (size < 0 || (uint64_t)size > max)
		return kci_err_set(err, KCI_INVALID, "blob %s: size %lld is outside 0..%zu", digest,
				   (long long)size, max);
	if ((rc = get_blob(r, digest, size, &s, err)) < 0) {
		free(s.buf);
		return rc;
	}
	*out = s.buf ? s.buf : kci_xstrdup("");
	(*out)[s.done] = '\0';
	*len = s.done;
	return 0;
}
