/* The server's YAML config (docs/server.md): checked key by key, and every file it names read. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/strv.h"
#include "common/parse.h"
#include "common/xalloc.h"
#include "jobs/jobs.h"
#include "server/internal.h"

#define TOKEN_FILE_MAX	 (64 * 1024)   /* a webhook secret or an API token */
#define PEM_FILE_MAX	 (1024 * 1024) /* a certificate chain or a key */
#define SECRETS_FILE_MAX (1024 * 1024) /* NAME=VALUE lines, as engine/secrets.c allows */
#define REPO_NAME_MAX	 255
#define URL_MAX		 2048

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const top_keys[] = { "listen",	    "url",	     "agent_token_file",
					"admin_token_file", "tls_cert_file", "tls_key_file",
					"lease_timeout",    "repos" };
static const char *const repo_keys[] = { "name",
					 "forge",
					 "secret_file",
					 "clone_url",
					 "clone_token_file",
					 "status_token_file",
					 "api_url",
					 "secrets_file",
					 "cancel_superseded" };
static const char *const forge_names[] = { "github", "gitea", "forgejo", "gitlab" };

struct ctx {
	const char *file; /* the config, as named in messages */
	char *dir;	  /* its directory: relative file names are read from there */
	struct kci_err *err;
};

/* What a named file holds, which decides how its content is checked. */
enum content { TOKEN, PEM };

/* "FILE:LINE:COL: message" at node n. */
#define cerr(c, n, ...) kci_jobs_yaml_error((c)->err, (c)->file, (n), __VA_ARGS__)

/* Frees a string that held a secret, wiping it first. */
static void
free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* The string value of key in map, or NULL when absent; KCI_INVALID when it is no string. */
static int
get_str(const struct ctx *c, const struct kci_yaml_node *map, const char *key,
	const struct kci_yaml_node **out)
{
	const struct kci_yaml_node *v = kci_jobs_yaml_get(map, key);

	*out = NULL;
	if (!v)
		return 0;
	if (v->kind != KCI_YAML_SCALAR || kci_jobs_yaml_is_null(v))
		return cerr(c, v, "%s must be a string", key);
	*out = v;
	return 0;
}

static int
require(const struct ctx *c, const struct kci_yaml_node *map, const char *key,
	const struct kci_yaml_node **out)
{
	int rc = get_str(c, map, key, out);

	if (rc == 0 && !*out)
		return cerr(c, map, "%s is required", key);
	return rc;
}

/* Checks what a named file holds and trims one trailing newline, in place. */
static int
check_content(const struct ctx *c, const struct kci_yaml_node *at, const char *key,
	      const char *path, enum content kind, char *text, size_t len)
{
	if (memchr(text, '\0', len))
		return cerr(c, at, "%s %s: contains a NUL byte", key, path);
	if (len && text[len - 1] == '\n') {
		text[--len] = '\0';
		if (len && text[len - 1] == '\r')
			text[--len] = '\0';
	}
	if (len == 0)
		return cerr(c, at, "%s %s: the file is empty", key, path);
	if (kind == PEM) {
		if (!strstr(text, "-----BEGIN "))
			return cerr(c, at, "%s %s: not a PEM file (no \"-----BEGIN\")", key, path);
		return 0;
	}
	/* Tokens travel in HTTP headers: a line break there would start a header of its own. */
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];
		if (ch < 0x20 || ch == 0x7f)
			return cerr(c, at, "%s %s: has a control character or a second line", key,
				    path);
	}
	return 0;
}

/* A file named in the config, relative to the config's directory unless absolute (malloc'd). */
static char *
resolve(const struct ctx *c, const char *name)
{
	if (name[0] == '/' || !c->dir)
		return kci_xstrdup(name);
	return kci_xasprintf("%s/%s", strcmp(c->dir, "/") ? c->dir : "", name);
}

/*
 * Reads the regular file named by the string value `at` of key (at most max bytes) into *out
 * (malloc'd, NUL-terminated). A FIFO or a device is refused rather than waited on.
 */
static int
read_named(const struct ctx *c, const struct kci_yaml_node *at, const char *key, size_t max,
	   char **out, size_t *len)
{
	char *path = resolve(c, at->str);
	struct stat st;
	int fd = -1, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		rc = kci_err_sys(c->err, errno, "open %s", path);
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		rc = kci_err_sys(c->err, errno, "stat %s", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = kci_err_set(c->err, KCI_INVALID, "%s is not a regular file", path);
		goto fail;
	}
	if ((rc = kci_read_fd(fd, max, path, out, len, c->err)) == 0)
		goto out;
fail:
	kci_err_prefix(c->err, "%s:%d:%d: %s", c->file, at->line, at->col, key);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* Reads the file named by key's value, if key is there, into *out; *out stays NULL if not. */
static int
read_file_key(const struct ctx *c, const struct kci_yaml_node *map, const char *key, int required,
	      enum content kind, char **out)
{
	const struct kci_yaml_node *at;
	char *text = NULL, *path = NULL;
	size_t len;
	int rc;

	if ((rc = required ? require(c, map, key, &at) : get_str(c, map, key, &at)) < 0 || !at)
		return rc;
	if ((rc = read_named(c, at, key, kind == PEM ? PEM_FILE_MAX : TOKEN_FILE_MAX, &text,
			     &len)) < 0)
		goto out;
	path = resolve(c, at->str);
	if ((rc = check_content(c, at, key, path, kind, text, len)) < 0)
		goto out;
	*out = text;
	text = NULL;
out:
	free_secret(text);
	free(path);
	return rc;
}

/* NAME=VALUE lines ("#" comments, blank lines), as kci_engine_secrets_add_file reads them. */
static int
read_secrets(const struct ctx *c, const struct kci_yaml_node *map, char ***out)
{
	const struct kci_yaml_node *at;
	char **values = NULL, *text = NULL, *path = NULL;
	size_t n = 0, len;
	int rc, bad;

	if ((rc = get_str(c, map, "secrets_file", &at)) < 0)
		return rc;
	if (!at) {
		*out = kci_xcalloc(1, sizeof(char *));
		return 0;
	}
	if ((rc = read_named(c, at, "secrets_file", SECRETS_FILE_MAX, &text, &len)) < 0)
		goto out;
	path = resolve(c, at->str);
	if ((bad = kci_env_set_lines(&values, &n, text, len)) != 0) {
		rc = bad < 0 ? cerr(c, at, "secrets_file %s: contains a NUL byte", path)
			     : cerr(c, at, "secrets_file %s: line %d is not NAME=VALUE", path, bad);
		goto out;
	}
	*out = values ? values : kci_xcalloc(1, sizeof(char *));
	values = NULL;
out:
	for (size_t i = 0; values && values[i]; i++)
		explicit_bzero(values[i], strlen(values[i]));
	kci_strv_free(values);
	if (text)
		explicit_bzero(text, len);
	free(text);
	free(path);
	return rc;
}

/* HOST:PORT, with [v6]:PORT for IPv6; a host name, IPv4 or IPv6 address, never empty. */
static int
valid_listen(const char *s)
{
	const char *colon, *host = s, *host_end;
	size_t i;

	if (s[0] == '[') {
		host_end = strchr(s, ']');
		if (!host_end || host_end[1] != ':' || host_end == s + 1)
			return 0;
		for (host = s + 1; host < host_end; host++) {
			if (!strchr("0123456789abcdefABCDEF:.", *host))
				return 0;
		}
		colon = host_end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || colon == s)
			return 0;
		for (; host < colon; host++) {
			char ch = *host;
			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
				return 0;
		}
	}
	for (i = 1; colon[i]; i++) {
		if (colon[i] < '0' || colon[i] > '9' || i > 5)
			return 0;
	}
	return i > 1 && colon[1] != '0' && atoi(colon + 1) <= 65535;
}

/* Printable ASCII without spaces: what a URL or name may hold here. */
static int
printable(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	}
	return i > 0 && i <= max;
}

/* The forge's OWNER/REPO (GitLab: GROUP/SUBGROUP/PROJECT): [A-Za-z0-9._-] segments. */
static int
valid_repo_name(const char *s)
{
	size_t seg = 0, i, slashes = 0;

	for (i = 0; s[i]; i++) {
		char ch = s[i];
		if (ch == '/') {
			if (seg == 0 || (seg == 1 && s[i - 1] == '.') ||
			    (seg == 2 && s[i - 1] == '.' && s[i - 2] == '.'))
				return 0;
			seg = 0;
			slashes++;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
			return 0;
		seg++;
	}
	if (seg == 0 || (seg == 1 && s[i - 1] == '.') ||
	    (seg == 2 && s[i - 1] == '.' && s[i - 2] == '.'))
		return 0;
	return slashes > 0 && i <= REPO_NAME_MAX;
}

/* Whether the host of an http(s) URL (after "scheme://") is this machine. */
static int
loopback_host(const char *rest)
{
	static const char *const hosts[] = { "localhost", "127.0.0.1", "[::1]" };

	for (size_t i = 0; i < COUNT(hosts); i++) {
		size_t n = strlen(hosts[i]);
		if (strncmp(rest, hosts[i], n) == 0 && strchr(":/", rest[n]))
			return 1;
	}
	return 0;
}

/* Which URLs a key takes besides https://. */
enum url_kind {
	URL_API,   /* http:// to this machine too (a forge on the same host) */
	URL_CLONE, /* file:/// too: a path on this machine, only ever written here */
	URL_LINK,  /* http:// anywhere: the server's own address, for links */
};

/*
 * A URL, without credentials (they belong in a token file, not in logs and links), its
 * trailing slashes trimmed, into *out (malloc'd).
 */
static int
take_url(const struct ctx *c, const struct kci_yaml_node *at, const char *key, enum url_kind kind,
	 char **out)
{
	static const char *const also[] = { [URL_API] = " (http:// only to localhost)",
					    [URL_CLONE] = " or file:///",
					    [URL_LINK] = " or http://" };
	const char *s = at->str, *rest;
	size_t len, authority;

	if (!printable(s, URL_MAX))
		return cerr(c, at, "%s must be a URL without spaces, at most %d bytes", key,
			    URL_MAX);
	if (kind == URL_CLONE && strncmp(s, "file:///", 8) == 0) {
		*out = kci_xstrdup(s);
		return 0;
	}
	if (strncmp(s, "https://", 8) == 0)
		rest = s + 8;
	else if (strncmp(s, "http://", 7) == 0 &&
		 (kind == URL_LINK || (kind == URL_API && loopback_host(s + 7))))
		rest = s + 7;
	else
		return cerr(c, at, "%s must start with https://%s", key, also[kind]);
	authority = strcspn(rest, "/?#");
	if (authority == 0)
		return cerr(c, at, "%s has no host", key);
	if (memchr(rest, '@', authority))
		return cerr(c, at, "%s must not hold credentials: put them in a token file", key);
	len = strlen(s);
	while (len > (size_t)(rest - s) + authority && s[len - 1] == '/')
		len--;
	*out = kci_xstrndup(s, len);
	return 0;
}

static int
parse_forge(const struct ctx *c, const struct kci_yaml_node *at, enum forge *out)
{
	const char *hint;

	if (!strcmp(at->str, "github"))
		*out = FORGE_GITHUB;
	else if (!strcmp(at->str, "gitea") || !strcmp(at->str, "forgejo"))
		*out = FORGE_GITEA;
	else if (!strcmp(at->str, "gitlab"))
		*out = FORGE_GITLAB;
	else if ((hint = kci_jobs_closest_name(at->str, forge_names, COUNT(forge_names))))
		return cerr(c, at, "unknown forge \"%s\" (did you mean \"%s\"?)", at->str, hint);
	else
		return cerr(c, at, "unknown forge \"%s\": github, gitea, forgejo or gitlab",
			    at->str);
	return 0;
}

static void
repo_clear(struct repo_conf *r)
{
	free(r->name);
	free_secret(r->secret);
	free(r->clone_url);
	free_secret(r->clone_token);
	free_secret(r->status_token);
	free(r->api_url);
	for (size_t i = 0; r->secrets && r->secrets[i]; i++)
		explicit_bzero(r->secrets[i], strlen(r->secrets[i]));
	kci_strv_free(r->secrets);
	memset(r, 0, sizeof(*r));
}

/* clone_url and api_url, written or the forge's defaults. */
static int
repo_urls(const struct ctx *c, const struct kci_yaml_node *map, struct repo_conf *r)
{
	static const char *const default_api[] = { [FORGE_GITHUB] = "https://api.github.com",
						   [FORGE_GITEA] = NULL,
						   [FORGE_GITLAB] = "https://gitlab.com" };
	const struct kci_yaml_node *clone, *api;
	int rc;

	if ((rc = get_str(c, map, "clone_url", &clone)) < 0 ||
	    (rc = get_str(c, map, "api_url", &api)) < 0)
		return rc;
	if (clone && (rc = take_url(c, clone, "clone_url", URL_CLONE, &r->clone_url)) < 0)
		return rc;
	if (api && (rc = take_url(c, api, "api_url", URL_API, &r->api_url)) < 0)
		return rc;
	if (!clone) {
		/*
		 * A self-hosted forge's repository must not silently become the same name on
		 * the public host, whose owner may be someone else.
		 */
		if (r->forge == FORGE_GITEA)
			return cerr(c, map,
				    "clone_url is needed for gitea (it has no default host)");
		if (r->api_url && strcmp(r->api_url, default_api[r->forge]) != 0)
			return cerr(c, api, "clone_url is needed when api_url names another host");
		r->clone_url = kci_xasprintf("https://%s/%s.git",
					     r->forge == FORGE_GITHUB ? "github.com" : "gitlab.com",
					     r->name);
	}
	if (!r->api_url && default_api[r->forge])
		r->api_url = kci_xstrdup(default_api[r->forge]);
	if (!r->api_url && r->status_token)
		return cerr(c, map, "api_url is needed for gitea when status_token_file is set");
	return 0;
}

static int
repo_build(const struct ctx *c, const struct kci_yaml_node *map, struct repo_conf *r)
{
	const struct kci_yaml_node *name, *forge, *cancel;
	char where[REPO_NAME_MAX + 32];
	int rc;

	if (map->kind != KCI_YAML_MAP)
		return cerr(c, map,
			    "each of repos must be a mapping (name, forge, secret_file...)");
	if ((rc = get_str(c, map, "name", &name)) < 0)
		return rc;
	snprintf(where, sizeof(where), "in repository \"%s\"", name ? name->str : "?");
	if ((rc = kci_jobs_yaml_check_keys(map, repo_keys, COUNT(repo_keys), c->file,
					   name ? where : "in a repository", c->err)) < 0)
		return rc;
	if ((rc = require(c, map, "name", &name)) < 0 ||
	    (rc = require(c, map, "forge", &forge)) < 0)
		return rc;
	if (!valid_repo_name(name->str))
		return cerr(c, name, "name must be the forge's OWNER/REPO (\"acme/widget\")");
	r->name = kci_xstrdup(name->str);
	if ((rc = parse_forge(c, forge, &r->forge)) < 0)
		return rc;
	if ((rc = read_file_key(c, map, "secret_file", 1, TOKEN, &r->secret)) < 0 ||
	    (rc = read_file_key(c, map, "clone_token_file", 0, TOKEN, &r->clone_token)) < 0 ||
	    (rc = read_file_key(c, map, "status_token_file", 0, TOKEN, &r->status_token)) < 0 ||
	    (rc = repo_urls(c, map, r)) < 0 || (rc = read_secrets(c, map, &r->secrets)) < 0)
		return rc;
	r->cancel_superseded = 1;
	if ((cancel = kci_jobs_yaml_get(map, "cancel_superseded")) &&
	    kci_jobs_yaml_bool(cancel, &r->cancel_superseded) < 0)
		return cerr(c, cancel, "cancel_superseded must be true or false");
	return 0;
}

static int
repos_build(const struct ctx *c, const struct kci_yaml_node *root, struct config *cfg)
{
	const struct kci_yaml_node *seq = kci_jobs_yaml_get(root, "repos");
	int rc;

	if (!seq)
		return cerr(c, root, "repos is required");
	if (seq->kind != KCI_YAML_SEQ || seq->n == 0)
		return cerr(c, seq, "repos must list the repositories to build, at least one");
	cfg->repos = kci_xcalloc(seq->n, sizeof(*cfg->repos));
	for (size_t i = 0; i < seq->n; i++) {
		struct repo_conf r = { 0 };

		if ((rc = repo_build(c, seq->items[i], &r)) < 0) {
			repo_clear(&r);
			return rc;
		}
		for (size_t k = 0; k < cfg->n_repos; k++) {
			if (cfg->repos[k].forge == r.forge && !strcmp(cfg->repos[k].name, r.name)) {
				repo_clear(&r);
				return cerr(c, kci_jobs_yaml_get(seq->items[i], "name"),
					    "repository \"%s\" is listed twice (first at line %d)",
					    cfg->repos[k].name, seq->items[k]->line);
			}
		}
		cfg->repos[cfg->n_repos++] = r;
	}
	return 0;
}

static int
server_build(const struct ctx *c, const struct kci_yaml_node *root, struct config *cfg)
{
	const struct kci_yaml_node *listen, *url, *ttl;
	int rc;

	if (!root)
		return cerr(c, NULL,
			    "the config is empty: it needs listen, agent_token_file and "
			    "repos");
	if (root->kind != KCI_YAML_MAP)
		return cerr(c, root, "the config must be a mapping (listen, repos...)");
	if ((rc = kci_jobs_yaml_check_keys(root, top_keys, COUNT(top_keys), c->file,
					   "at the top level", c->err)) < 0)
		return rc;
	if ((rc = require(c, root, "listen", &listen)) < 0)
		return rc;
	if (!valid_listen(listen->str))
		return cerr(c, listen,
			    "listen must be HOST:PORT (\"127.0.0.1:8080\", \"[::1]:8080\")");
	cfg->listen = kci_xstrdup(listen->str);
	if ((rc = read_file_key(c, root, "agent_token_file", 1, TOKEN, &cfg->agent_token)) < 0 ||
	    (rc = read_file_key(c, root, "admin_token_file", 0, TOKEN, &cfg->admin_token)) < 0 ||
	    (rc = read_file_key(c, root, "tls_cert_file", 0, PEM, &cfg->tls_cert)) < 0 ||
	    (rc = read_file_key(c, root, "tls_key_file", 0, PEM, &cfg->tls_key)) < 0)
		return rc;
	if (!cfg->tls_cert != !cfg->tls_key)
		return cerr(
			c,
			kci_jobs_yaml_get(root, cfg->tls_cert ? "tls_cert_file" : "tls_key_file"),
			"tls_cert_file and tls_key_file go together");
	if ((rc = get_str(c, root, "url", &url)) < 0)
		return rc;
	if (url && (rc = take_url(c, url, "url", URL_LINK, &cfg->url)) < 0)
		return rc;
	if (!url)
		cfg->url = kci_xasprintf("%s://%s", cfg->tls_cert ? "https" : "http", cfg->listen);
	cfg->lease_ttl_ms = CONFIG_LEASE_TTL_MS;
	if ((rc = get_str(c, root, "lease_timeout", &ttl)) < 0)
		return rc;
	if (ttl && (kci_parse_duration(ttl->str, &cfg->lease_ttl_ms) < 0 ||
		    cfg->lease_ttl_ms < 2000 || cfg->lease_ttl_ms > 3600 * 1000))
		return cerr(c, ttl, "lease_timeout must be a duration from 2s to 1h (\"30s\")");
	return repos_build(c, root, cfg);
}

int
config_load(const char *path, struct config **out, struct kci_err *err)
{
	struct ctx c = { .file = path, .err = err };
	struct kci_yaml_node *root = NULL;
	struct config *cfg = kci_xcalloc(1, sizeof(*cfg));
	const char *slash = strrchr(path, '/');
	char *text = NULL;
	size_t len;
	int rc;

	c.dir = slash ? kci_xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : NULL;
	/* untrusted: len <= KCI_YAML_TEXT_MAX, checked by kci_read_file and again by the parser */
	if ((rc = kci_read_file(path, KCI_YAML_TEXT_MAX, &text, &len, err)) < 0)
		goto out;
	if ((rc = kci_jobs_yaml_parse(text, len, path, &root, err)) < 0 ||
	    (rc = server_build(&c, root, cfg)) < 0)
		goto out;
	*out = cfg;
	cfg = NULL;
out:
	config_free(cfg);
	kci_jobs_yaml_free(root);
	free(text);
	free(c.dir);
	return rc;
}

void
config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_repos; i++)
		repo_clear(&c->repos[i]);
	free(c->repos);
	free(c->listen);
	free(c->url);
	free_secret(c->agent_token);
	free_secret(c->admin_token);
	free(c->tls_cert);
	free_secret(c->tls_key);
	free(c);
}

const struct repo_conf *
config_repo(const struct config *c, const char *name, enum forge f)
{
	for (size_t i = 0; c && name && i < c->n_repos; i++) {
		if (c->repos[i].forge == f && strcmp(c->repos[i].name, name) == 0)
			return &c->repos[i];
	}
	return NULL;
}
