/*
 * The server module's HTTP client (libcurl): kci agent talking to kci serve,
 * and the commit-status poster talking to forges. No redirects, http and
 * https only, certificates verified, answers bounded.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/version.h"
#include "common/xalloc.h"
#include "server/internal.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode init_result;

static void
init(void)
{
	init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct sink {
	struct client_answer *a;
	size_t max;
	int over;
};

static size_t
sink_write(char *p, size_t size, size_t n, void *ctx)
{
	struct sink *s = ctx;
	size_t len = size * n;

	if (s->a->len + len > s->max) {
		s->over = 1;
		return 0; /* the transfer fails with CURLE_WRITE_ERROR */
	}
	s->a->body = kci_xrealloc(s->a->body, s->a->len + len + 1);
	memcpy(s->a->body + s->a->len, p, len);
	s->a->len += len;
	s->a->body[s->a->len] = '\0';
	return len;
}

static int
progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const volatile int *abort = ctx;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return abort && *abort;
}

int
client_request(const struct client_req *r, struct client_answer *a, struct kci_err *err)
{
	struct sink sink = { .a = a, .max = r->max_answer ? r->max_answer : (64u << 10) };
	struct curl_slist *hdrs = NULL;
	char type[160];
	CURLcode cc;
	CURL *h;
	int rc = 0;

	memset(a, 0, sizeof(*a));
	pthread_once(&once, init);
	if (init_result != CURLE_OK)
		return kci_err_set(err, KCI_ERROR, "libcurl: %s", curl_easy_strerror(init_result));
	if (!(h = curl_easy_init()))
		return kci_err_set(err, KCI_ERROR, "libcurl: cannot make a handle");
	hdrs = curl_slist_append(hdrs, "User-Agent: kci/" KCI_VERSION);
	hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
	if (r->auth)
		hdrs = curl_slist_append(hdrs, r->auth);
	if (r->type) {
		snprintf(type, sizeof(type), "Content-Type: %s", r->type);
		hdrs = curl_slist_append(hdrs, type);
	}
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms > 0 ? r->timeout_ms : 30000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	if (r->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
	if (r->ca_pem) {
		struct curl_blob blob = { .data = (void *)r->ca_pem,
					  .len = strlen(r->ca_pem),
					  .flags = CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (r->abort) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)r->abort);
	}
	if (!r->method || !strcmp(r->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
	}
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	} else if (cc == CURLE_ABORTED_BY_CALLBACK) {
		rc = kci_err_set(err, KCI_CANCELED, "%s: stopped", r->url);
	} else if (sink.over) {
		rc = kci_err_set(err, KCI_PROTO, "%s answered more than %zu bytes", r->url,
				 sink.max);
	} else {
		rc = kci_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? KCI_TIMEOUT : KCI_ERROR,
				 "%s: %s", r->url, curl_easy_strerror(cc));
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (rc < 0)
		client_answer_clear(a);
	return rc;
}

void
client_answer_clear(struct client_answer *a)
{
	free(a->body);
	memset(a, 0, sizeof(*a));
}

/* Whether url's host is this machine's loopback; -1 when url is not a URL. */
static int
loopback(const char *url, char **scheme_out)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	struct in_addr v4;
	int rc = -1;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		rc = !strcmp(host, "localhost") || !strcmp(host, "[::1]") ||
		     (inet_pton(AF_INET, host, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127);
	if (scheme_out)
		*scheme_out = scheme ? kci_xstrdup(scheme) : NULL;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

int
client_url_loopback(const char *url)
{
	return loopback(url, NULL) == 1;
}

int
client_url_check(const char *url, int insecure, struct kci_err *err)
{
	char *scheme = NULL;
	int local = loopback(url, &scheme), rc = 0;

	if (local < 0)
		rc = kci_err_set(err, KCI_INVALID, "%s is not a URL (https://HOST[:PORT])", url);
	else if (strcmp(scheme, "https") && strcmp(scheme, "http"))
		rc = kci_err_set(err, KCI_INVALID, "%s: only http and https are spoken", url);
	else if (!strcmp(scheme, "http") && !insecure && !local)
		rc = kci_err_set(err, KCI_INVALID,
				 "%s is plain http to another machine: the agent token and the "
				 "jobs' secrets would cross the network in the clear (use https, "
				 "or --insecure)",
				 url);
	free(scheme);
	return rc;
}
