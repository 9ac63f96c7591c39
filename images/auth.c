/*
 * The registry auth flow: WWW-Authenticate challenges, token servers, and
 * requests that carry the right Authorization (a cached token, or Basic with
 * creds.c's credentials). The transport underneath is http.c's.
 */
#include "images/auth.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stddef.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/digest.h"
#include "common/xalloc.h"
#include "images/creds.h"
#include "images/manifest.h"

/* RFC 7230 tchar */
static int
is_tchar(char c)
{
	return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void
skip_ows(const char *s, size_t len, size_t *i)
{
	while (*i < len && (s[*i] == ' ' || s[*i] == '\t'))
		(*i)++;
}

static size_t
read_token(const char *s, size_t len, size_t *i)
{
	size_t start = *i;

	while (*i < len && is_tchar(s[*i]))
		(*i)++;
	return *i - start;
}

/* Whether a "name =" (an auth-param) starts at i, rather than a new challenge. */
static int
param_follows(const char *s, size_t len, size_t i)
{
	if (read_token(s, len, &i) == 0)
		return 0;
	skip_ows(s, len, &i);
	return i < len && s[i] == '=';
}

/*
 * Reads a token or quoted-string value into out (NUL-terminated; out may be
 * NULL to discard). -1 on bad syntax, -2 when it does not fit.
 */
static int
read_value(const char *s, size_t len, size_t *i, char *out, size_t size)
{
	size_t n = 0;

	if (*i < len && s[*i] != '"') {
		size_t start = *i, tlen = read_token(s, len, i);
		if (tlen == 0)
			return -1;
		if (out && tlen >= size)
			return -2;
		if (out)
			memcpy(out, s + start, tlen), n = tlen;
	} else if (*i < len) {
		for ((*i)++;; (*i)++) {
			if (*i >= len)
				return -1; /* unterminated */
			if (s[*i] == '"')
				break;
			if (s[*i] == '\\' && ++(*i) >= len)
				return -1;
			if ((unsigned char)s[*i] < 0x20 && s[*i] != '\t')
				return -1;
			if (out && n + 1 >= size)
				return -2;
			if (out)
				out[n++] = s[*i];
		}
		(*i)++;
	} else {
		return -1;
	}
	if (out)
		out[n] = '\0';
	return 0;
}

/* Where an auth-param's value goes, or NULL to discard it. */
static char *
param_slot(struct auth_challenge *c, const char *name, size_t n, size_t *size)
{
	static const struct {
		const char *name;
		size_t off, size;
	} slots[] = {
		{ "realm", offsetof(struct auth_challenge, realm),
		  sizeof(((struct auth_challenge *)0)->realm) },
		{ "service", offsetof(struct auth_challenge, service),
		  sizeof(((struct auth_challenge *)0)->service) },
		{ "scope", offsetof(struct auth_challenge, scope),
		  sizeof(((struct auth_challenge *)0)->scope) },
		{ "error", offsetof(struct auth_challenge, error),
		  sizeof(((struct auth_challenge *)0)->error) },
	};

	for (size_t k = 0; k < sizeof(slots) / sizeof(slots[0]); k++)
		if (strlen(slots[k].name) == n && !strncasecmp(name, slots[k].name, n)) {
			char *slot = (char *)c + slots[k].off;
			/* The first occurrence of a parameter wins. */
			if (slot[0])
				return NULL;
			*size = slots[k].size;
			return slot;
		}
	return NULL;
}

/*
 * Parses the parameters of one challenge starting at *i, up to the comma
 * that begins the next challenge (or the end). Handles token68 forms too.
 */
static int
parse_params(const char *s, size_t len, size_t *i, struct auth_challenge *c)
{
	for (int first = 1;; first = 0) {
		size_t name_at, name_len, slot_size = 0;
		char *slot;
		int rc;

		skip_ows(s, len, i);
		if (*i == len)
			return 0;
		if (!first) {
			if (s[*i] != ',')
				return -1;
			while (*i < len && (s[*i] == ',' || s[*i] == ' ' || s[*i] == '\t'))
				(*i)++;
			if (*i == len || !param_follows(s, len, *i))
				return 0; /* the next challenge starts here */
		} else if (s[*i] == ',') {
			return 0;
		}
		name_at = *i;
		name_len = read_token(s, len, i);
		skip_ows(s, len, i);
		if (name_len == 0 || *i == len || s[*i] != '=') {
			/* token68 ("Negotiate abc/+=="): only as a challenge's sole content */
			*i = name_at;
			while (*i < len &&
			       (isalnum((unsigned char)s[*i]) || strchr("-._~+/", s[*i])))
				(*i)++;
			while (*i < len && s[*i] == '=')
				(*i)++;
			if (!first || *i == name_at)
				return -1;
			continue;
		}
		(*i)++;
		skip_ows(s, len, i);
		slot = param_slot(c, s + name_at, name_len, &slot_size);
		if ((rc = read_value(s, len, i, slot, slot_size)) < 0)
			return rc;
	}
}

int
auth_challenge_parse(const char *value, size_t len, struct auth_challenge *c, struct kci_err *err)
{
	size_t i = 0;

	/* untrusted: one header line, bounded by curl; every value is copied with a bound */
	for (;;) {
		struct auth_challenge cur;
		size_t at;
		int rc;

		while (i < len && (value[i] == ',' || value[i] == ' ' || value[i] == '\t'))
			i++;
		if (i == len)
			return 0;
		memset(&cur, 0, sizeof(cur));
		at = i;
		if (read_token(value, len, &i) == 0 ||
		    (i < len && value[i] != ' ' && value[i] != '\t' && value[i] != ','))
			return kci_err_set(err, KCI_PROTO, "malformed WWW-Authenticate header");
		if (i - at == 6 && !strncasecmp(value + at, "Bearer", 6))
			cur.scheme = AUTH_BEARER;
		else if (i - at == 5 && !strncasecmp(value + at, "Basic", 5))
			cur.scheme = AUTH_BASIC;
		rc = parse_params(value, len, &i, &cur);
		if (rc == -2)
			return kci_err_set(err, KCI_PROTO,
					   "WWW-Authenticate header has an overlong parameter");
		if (rc < 0)
			return kci_err_set(err, KCI_PROTO, "malformed WWW-Authenticate header");
		if ((cur.scheme == AUTH_BEARER && c->scheme != AUTH_BEARER) ||
		    (cur.scheme == AUTH_BASIC && c->scheme == AUTH_NONE))
			*c = cur;
	}
}

int
auth_token_parse(const char *body, size_t len, char **token, long *expires_in, struct kci_err *err)
{
	struct json_object *root = NULL, *v;
	const char *t = NULL;
	size_t n = 0;
	int rc;

	if ((rc = image_json_parse(body, len, AUTH_TOKEN_BODY_MAX, "token response", &root, err)) <
	    0) {
		if (err)
			err->code = KCI_PROTO;
		return KCI_PROTO;
	}
	/* Docker's spec names it "token"; OAuth2 servers say "access_token". */
	if ((json_object_object_get_ex(root, "token", &v) &&
	     json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0) ||
	    (json_object_object_get_ex(root, "access_token", &v) &&
	     json_object_is_type(v, json_type_string))) {
		t = json_object_get_string(v);
		n = (size_t)json_object_get_string_len(v);
	}
	if (!t || n == 0) {
		rc = kci_err_set(err, KCI_PROTO, "token response has no token");
		goto out;
	}
	if (n > AUTH_TOKEN_MAX) {
		rc = kci_err_set(err, KCI_PROTO, "token is longer than %d bytes", AUTH_TOKEN_MAX);
		goto out;
	}
	/* It goes into an HTTP header: anything but visible ASCII could split the request. */
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)t[k] <= 0x20 || (unsigned char)t[k] >= 0x7f) {
			rc = kci_err_set(err, KCI_PROTO,
					 "token contains a byte that cannot go "
					 "into a header");
			goto out;
		}
	*expires_in = 60;
	if (json_object_object_get_ex(root, "expires_in", &v) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0)
		*expires_in =
			json_object_get_int64(v) > 86400 ? 86400 : (long)json_object_get_int64(v);
	*token = kci_xstrdup(t); /* no NUL inside: checked above */
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

struct auth {
	struct http *http;
	char registry[256]; /* host[:port]: whose credentials, and named in messages */
	char scope[300];    /* repository:<repo>:pull */
	char *config_path;  /* for messages */
	struct auth_creds creds;
	char creds_problem[KCI_ERR_MAX]; /* why there are no credentials, if not plain absence */
	pthread_mutex_t lock;		 /* guards everything below */
	int basic;			 /* the registry asked for Basic: send it up front */
	char *token_authz;		 /* "Bearer <token>" for our scope, or NULL */
	time_t token_expires;		 /* CLOCK_MONOTONIC seconds */
};

/* Frees a string that held a credential, wiping it first. */
static void
free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

/* The config path for messages, with $HOME shown as "~". */
static char *
path_for_humans(const char *path)
{
	const char *home = getenv("HOME");
	size_t n = home ? strlen(home) : 0;

	if (!path)
		return kci_xstrdup("~/.docker/config.json");
	if (n > 1 && !strncmp(path, home, n) && path[n] == '/')
		return kci_xasprintf("~%s", path + n);
	return kci_xstrdup(path);
}

static void
load_creds(struct auth *a, const char *config)
{
	struct kci_err e = KCI_ERR_INIT;
	char *path = config ? kci_xstrdup(config) : auth_config_path();
	int rc;

	a->config_path = path_for_humans(path);
	if (path && (rc = auth_lookup(path, a->registry, &a->creds, &e)) < 0 && rc != KCI_NOTFOUND)
		snprintf(a->creds_problem, sizeof(a->creds_problem), "%s", e.msg);
	free(path);
}

struct auth *
auth_new(struct http *http, const char *registry, const char *repo, const char *docker_config)
{
	struct auth *a = kci_xcalloc(1, sizeof(*a));

	a->http = http;
	snprintf(a->registry, sizeof(a->registry), "%s", registry);
	snprintf(a->scope, sizeof(a->scope), "repository:%s:pull", repo);
	pthread_mutex_init(&a->lock, NULL);
	load_creds(a, docker_config);
	return a;
}

void
auth_free(struct auth *a)
{
	if (!a)
		return;
	free_secret(a->token_authz);
	auth_creds_clear(&a->creds);
	free(a->config_path);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static time_t
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The Authorization value to send up front (malloc'd), or NULL. */
static char *
authz_current(struct auth *a)
{
	char *authz = NULL;

	pthread_mutex_lock(&a->lock);
	if (a->token_authz && now_s() < a->token_expires)
		authz = kci_xstrdup(a->token_authz);
	else if (a->basic && a->creds.username)
		authz = auth_basic_value(&a->creds);
	pthread_mutex_unlock(&a->lock);
	return authz;
}

static void
token_store(struct auth *a, const char *authz, long expires_in)
{
	pthread_mutex_lock(&a->lock);
	free_secret(a->token_authz);
	a->token_authz = kci_xstrdup(authz);
	/* Renew a little early rather than race the expiry. */
	a->token_expires = now_s() + expires_in - (expires_in > 20 ? 10 : expires_in / 2);
	pthread_mutex_unlock(&a->lock);
}

int
auth_unauthorized(const struct auth *a, const struct http_xfer *x, const char *server,
		  struct kci_err *err)
{
	const char *status = x->status == 403 ? "403 Forbidden" : "401 Unauthorized";
	char detail[300], user[128];

	if (!a->creds.username) {
		if (a->creds_problem[0])
			return kci_err_set(err, KCI_INVALID, "%s: authentication required; %s",
					   status, a->creds_problem);
		return kci_err_set(err, KCI_INVALID,
				   "%s: authentication required (no credentials for %s in %s)",
				   status, a->registry, a->config_path);
	}
	registry_errors_text(x->errbody, x->errlen, detail, sizeof(detail));
	text_clean(user, sizeof(user), a->creds.username, strlen(a->creds.username));
	return kci_err_set(
		err, KCI_INVALID, "%s: %s refused the credentials of user '%s' from %s%s%s", status,
		server ? server : a->registry, user, a->config_path, detail[0] ? ": " : "", detail);
}

/* realm?service=...&scope=... with each of the challenge's scopes (or ours). */
static char *
token_url(struct auth *a, const struct auth_challenge *c)
{
	const char *scopes = c->scope[0] ? c->scope : a->scope;
	char *url = kci_xasprintf("%s%c", c->realm, strchr(c->realm, '?') ? '&' : '?'), *next;
	char *esc, *list = kci_xstrdup(scopes), *save = NULL;

	if (c->service[0]) {
		esc = curl_easy_escape(NULL, c->service, 0);
		next = kci_xasprintf("%sservice=%s&", url, esc ? esc : "");
		curl_free(esc);
		free(url);
		url = next;
	}
	for (char *s = strtok_r(list, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
		esc = curl_easy_escape(NULL, s, 0);
		next = kci_xasprintf("%sscope=%s&", url, esc ? esc : "");
		curl_free(esc);
		free(url);
		url = next;
	}
	url[strlen(url) - 1] = '\0'; /* the trailing '&' or '?' */
	free(list);
	return url;
}

/* Gets a bearer token from the challenge's realm, with our credentials if we have any. */
static int
fetch_token(struct auth *a, const struct auth_challenge *c, char **authz, struct kci_err *err)
{
	struct http_xfer *x = http_xfer_new(a->http);
	struct http_sink s = { .fd = -1, .max = AUTH_TOKEN_BODY_MAX, .hash = kci_sha256_new() };
	char *basic = a->creds.username ? auth_basic_value(&a->creds) : NULL;
	char *url = token_url(a, c), *token = NULL, what[160], realm[128];
	struct http_req q = { .url = url, .authz = basic, .bounded = 1, .sink = &s };
	long expires_in = 60;
	int rc;

	text_clean(realm, sizeof(realm), c->realm, strlen(c->realm));
	snprintf(what, sizeof(what), "token from %s", realm);
	q.what = what;
	/* Our credentials go to the realm's origin only, never where it redirects. */
	rc = http_with_retries(a->http, x, &q, NULL, NULL, err);
	if (rc == 0 && (x->status == 401 || x->status == 403))
		rc = auth_unauthorized(a, x, realm, err);
	else if (rc == 0 && x->status != 200)
		rc = http_status_error(x, what, "the token server", err);
	else if (rc == 0 &&
		 (rc = auth_token_parse(s.buf ? s.buf : "", s.done, &token, &expires_in, err)) < 0)
		kci_err_prefix(err, "%s", what);
	if (rc == 0) {
		*authz = kci_xasprintf("Bearer %s", token);
		token_store(a, *authz, expires_in);
	}
	free_secret(basic);
	free_secret(token);
	free(url);
	free(s.buf);
	kci_sha256_free(s.hash);
	http_xfer_free(a->http, x);
	return rc;
}

static int
authenticate(struct auth *a, const struct auth_challenge *c, int challenge_bad,
	     const struct http_xfer *x, char **authz, struct kci_err *err)
{
	/* One malformed header does not spoil a usable challenge in another. */
	if (challenge_bad && c->scheme == AUTH_NONE)
		return kci_err_set(err, KCI_PROTO,
				   "401 Unauthorized with a malformed WWW-Authenticate header");
	switch (c->scheme) {
	case AUTH_BEARER:
		if (!c->realm[0])
			return kci_err_set(err, KCI_PROTO,
					   "401 Unauthorized: Bearer challenge without a realm");
		return fetch_token(a, c, authz, err);
	case AUTH_BASIC:
		if (!a->creds.username)
			return auth_unauthorized(a, x, NULL, err);
		pthread_mutex_lock(&a->lock);
		a->basic = 1;
		pthread_mutex_unlock(&a->lock);
		*authz = auth_basic_value(&a->creds);
		return 0;
	default:
		return kci_err_set(err, KCI_PROTO,
				   "401 Unauthorized without a Bearer or Basic challenge");
	}
}

/* The challenges of the response being received; forgotten when a new one starts. */
struct challenge_seen {
	struct auth_challenge c;
	int bad;
};

static void
on_challenge(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
	struct challenge_seen *seen = ctx;
	struct kci_err e = KCI_ERR_INIT;

	if (!name)
		memset(seen, 0, sizeof(*seen));
	else if (nlen == 16 && !strncasecmp(name, "www-authenticate", 16) &&
		 auth_challenge_parse(value, vlen, &seen->c, &e) < 0)
		seen->bad = 1;
}

/* One attempt: with the cached credentials, and once more after a 401's challenge. */
static int
request_step(void *ctx, struct http_xfer *x, struct http_req *q, struct kci_err *err)
{
	struct auth *a = ctx;
	struct challenge_seen seen = { 0 };
	char *authz = authz_current(a);
	int rc;

	q->authz = authz;
	q->on_header = on_challenge;
	q->header_ctx = &seen;
	rc = http_follow(a->http, x, q, err);
	q->on_header = NULL;
	q->header_ctx = NULL;
	if (rc == 0 && x->status == 401 && x->same_origin) {
		free_secret(authz);
		authz = NULL;
		rc = authenticate(a, &seen.c, seen.bad, x, &authz, err);
		q->authz = authz;
		if (rc == 0)
			rc = http_follow(a->http, x, q, err);
		if (rc == 0 && x->status == 401)
			rc = auth_unauthorized(a, x, NULL, err);
	}
	q->authz = NULL;
	free_secret(authz);
	return rc;
}

int
auth_request(struct auth *a, struct http_xfer *x, struct http_req *q, struct kci_err *err)
{
	return http_with_retries(a->http, x, q, request_step, a, err);
}
