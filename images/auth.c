/*
 * Registry credentials and the auth flow: docker's config.json,
 * WWW-Authenticate challenges, token servers, and requests that carry the
 * right Authorization. The transport underneath is http.c's.
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
#include "common/fs.h"
#include "common/xalloc.h"
#include "images/manifest.h"

#define AUTH_CONFIG_MAX (1u << 20)
#define AUTH_FIELD_MAX	4096
#define DOCKER_HUB	"registry-1.docker.io"
#define DOCKER_HUB_KEY	"https://index.docker.io/v1/"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
b64_encode(const unsigned char *in, size_t len)
{
	char *out = kci_xmalloc((len + 2) / 3 * 4 + 1), *o = out;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		*o++ = b64_alphabet[v >> 18 & 63];
		*o++ = b64_alphabet[v >> 12 & 63];
		*o++ = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* Decodes standard base64 (padding optional) into out; -1 on a bad character. */
static int
b64_decode(const char *in, size_t len, char *out, size_t size, size_t *outlen)
{
	unsigned v = 0, bits = 0;
	size_t n = 0;

	while (len > 0 && in[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++) {
		const char *p = in[i] ? strchr(b64_alphabet, in[i]) : NULL;
		if (!p)
			return -1;
		v = (v << 6 | (unsigned)(p - b64_alphabet)) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= size)
				return -1;
			out[n++] = (char)(v >> bits & 0xff);
		}
	}
	out[n] = '\0';
	*outlen = n;
	return 0;
}

char *
auth_basic_value(const struct auth_creds *c)
{
	char *pair = kci_xasprintf("%s:%s", c->username, c->password);
	char *enc = b64_encode((const unsigned char *)pair, strlen(pair));
	char *value = kci_xasprintf("Basic %s", enc);

	explicit_bzero(pair, strlen(pair));
	free(pair);
	free(enc);
	return value;
}

void
auth_creds_clear(struct auth_creds *c)
{
	if (!c)
		return;
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	free(c->username);
	free(c->password);
	c->username = c->password = NULL;
}

char *
auth_config_path(void)
{
	const char *dir = getenv("DOCKER_CONFIG"), *home = getenv("HOME");

	if (dir && *dir)
		return kci_xasprintf("%s/config.json", dir);
	if (home && *home)
		return kci_xasprintf("%s/.docker/config.json", home);
	return NULL;
}

/* Whether a config key names `registry`; docker ignores a key's scheme and path. */
static int
key_matches(const char *key, const char *registry)
{
	char host[256];
	size_t n = 0;

	if (!strncasecmp(key, "https://", 8))
		key += 8;
	else if (!strncasecmp(key, "http://", 7))
		key += 7;
	while (key[n] && key[n] != '/' && n + 1 < sizeof(host)) {
		host[n] = (char)tolower((unsigned char)key[n]);
		n++;
	}
	host[n] = '\0';
	if (!strcmp(registry, DOCKER_HUB))
		return !strcmp(host, "index.docker.io") || !strcmp(host, "docker.io") ||
		       !strcmp(host, DOCKER_HUB);
	return !strcasecmp(host, registry);
}

static const char *
str_member(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	if (json_object_get_string_len(v) > AUTH_FIELD_MAX ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return NULL;
	return json_object_get_string(v);
}

/* 1 and *out filled if the auths entry holds credentials, 0 if it holds none. */
static int
entry_creds(struct json_object *entry, const char *key, struct auth_creds *out, struct kci_err *err)
{
	const char *auth = str_member(entry, "auth"), *user, *pass;
	char decoded[AUTH_FIELD_MAX], *colon;
	size_t n;

	if (!json_object_is_type(entry, json_type_object))
		return 0;
	if (auth && *auth) {
		if (b64_decode(auth, strlen(auth), decoded, sizeof(decoded), &n) < 0 ||
		    strlen(decoded) != n || !(colon = strchr(decoded, ':')))
			return kci_err_set(err, KCI_INVALID,
					   "auths[\"%s\"].auth is not base64 of user:password",
					   key);
		*colon = '\0';
		out->username = kci_xstrdup(decoded);
		out->password = kci_xstrdup(colon + 1);
		explicit_bzero(decoded, sizeof(decoded));
		return 1;
	}
	user = str_member(entry, "username");
	pass = str_member(entry, "password");
	if (user && *user && pass) {
		out->username = kci_xstrdup(user);
		out->password = kci_xstrdup(pass);
		return 1;
	}
	if (str_member(entry, "identitytoken"))
		return kci_err_set(err, KCI_INVALID,
				   "auths[\"%s\"] holds an identity token, which kci does not "
				   "support; put user:password (or an access token as the "
				   "password) in \"auth\"",
				   key);
	return 0;
}

/* The exact key first (as docker writes it), then any key naming the same host. */
static int
find_inline(struct json_object *auths, const char *registry, struct auth_creds *out,
	    struct kci_err *err)
{
	const char *exact = strcmp(registry, DOCKER_HUB) ? registry : DOCKER_HUB_KEY;
	struct json_object *entry;
	int rc;

	if (json_object_object_get_ex(auths, exact, &entry) &&
	    (rc = entry_creds(entry, exact, out, err)) != 0)
		return rc;
	json_object_object_foreach(auths, key, val)
	{
		if (strcmp(key, exact) != 0 && key_matches(key, registry) &&
		    (rc = entry_creds(val, key, out, err)) != 0)
			return rc;
	}
	return 0;
}

/* The helper that would hold credentials for registry, or NULL. */
static const char *
find_helper(struct json_object *root, const char *registry)
{
	struct json_object *helpers;
	const char *store;

	if (json_object_object_get_ex(root, "credHelpers", &helpers) &&
	    json_object_is_type(helpers, json_type_object)) {
		json_object_object_foreach(helpers, key, val)
		{
			if (key_matches(key, registry) &&
			    json_object_is_type(val, json_type_string) &&
			    json_object_get_string_len(val) > 0)
				return json_object_get_string(val);
		}
	}
	store = str_member(root, "credsStore");
	return store && *store ? store : NULL;
}

int
auth_config_parse(const char *json, size_t len, const char *registry, struct auth_creds *out,
		  struct kci_err *err)
{
	struct json_object *root = NULL, *auths = NULL;
	struct auth_creds c = { 0 };
	const char *helper;
	char shown[64];
	int rc;

	if ((rc = image_json_parse(json, len, AUTH_CONFIG_MAX, "docker config", &root, err)) < 0)
		return rc;
	if (json_object_object_get_ex(root, "auths", &auths) && auths &&
	    !json_object_is_type(auths, json_type_object)) {
		rc = kci_err_set(err, KCI_INVALID, "docker config: \"auths\" is not an object");
		goto out;
	}
	if (auths && (rc = find_inline(auths, registry, &c, err)) != 0) {
		if (rc == 1) {
			*out = c;
			c.username = c.password = NULL;
			rc = 0;
		}
		goto out;
	}
	if ((helper = find_helper(root, registry))) {
		text_clean(shown, sizeof(shown), helper, strlen(helper));
		rc = kci_err_set(
			err, KCI_INVALID,
			"%s uses the credential helper docker-credential-%s, which kci "
			"does not run; put the credentials in \"auths\" as {\"%s\": "
			"{\"auth\": \"<base64 of user:password>\"}}, or point DOCKER_CONFIG "
			"at a directory whose config.json has them",
			registry, shown, strcmp(registry, DOCKER_HUB) ? registry : DOCKER_HUB_KEY);
		goto out;
	}
	rc = kci_err_set(err, KCI_NOTFOUND, "no credentials for %s", registry);
out:
	auth_creds_clear(&c);
	json_object_put(root);
	return rc;
}

int
auth_lookup(const char *path, const char *registry, struct auth_creds *out, struct kci_err *err)
{
	char *text = NULL;
	size_t len;
	int rc;

	if ((rc = kci_read_file(path, AUTH_CONFIG_MAX, &text, &len, err)) < 0)
		return rc;
	rc = auth_config_parse(text, len, registry, out, err);
	explicit_bzero(text, len);
	free(text);
	if (rc < 0 && rc != KCI_NOTFOUND)
		return kci_err_prefix(err, "%s", path);
	return rc;
}

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
