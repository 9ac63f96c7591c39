/*
 * Private to images/: the registry client (distribution API over libcurl)
 * and the credentials it uses (auth.c: docker's config.json, WWW-Authenticate
 * challenges, token responses). Everything a registry sends is untrusted.
 */
#ifndef KCI_IMAGES_REGISTRY_H
#define KCI_IMAGES_REGISTRY_H

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"
#include "images/images.h"
#include "images/manifest.h"

/* ---- the client ---- */

/* A client for one repository of one registry; safe to share between threads. */
struct registry;

struct registry_opts {
	const char *docker_config; /* config.json path; NULL: auth_config_path() */
	const char *ca_file;	   /* CA bundle for TLS; NULL: the system's */
	int loopback_https;	   /* use https for loopback registries too (default: http) */
	long connect_timeout_ms;   /* TCP + TLS connect */
	long stall_ms;		   /* abort a transfer below 1 KiB/s for this long */
	long request_timeout_ms;   /* whole manifest/token requests (not blobs) */
	unsigned max_attempts;	   /* per request, counting the first */
	long retry_base_ms;	   /* first backoff; doubles per attempt, with jitter */
	long retry_max_ms;	   /* cap for one wait, and the largest Retry-After obeyed */
	const volatile sig_atomic_t *cancel; /* non-zero aborts transfers (KCI_CANCELED) */
};
#define REGISTRY_OPTS_INIT                                                                         \
	{                                                                                          \
		NULL, NULL, 0, 30000, 60000, 300000, 5, 500, 30000, NULL                           \
	}

/*
 * Creates a client for ref's registry and repository (ref's tag/digest are
 * not used). Credentials are looked up now; a problem with them (a
 * credential helper, a malformed config) is reported only if the registry
 * asks for authentication. opts may be NULL.
 */
int registry_new(struct registry **out, const struct kci_image_ref *ref,
		 const struct registry_opts *opts, struct kci_err *err);
void registry_free(struct registry *r);

/* A fetched manifest or index. */
struct registry_manifest {
	char *body; /* malloc'd, NUL-terminated, len bytes (<= MANIFEST_MAX) */
	size_t len;
	char media_type[128];	 /* Content-Type, else the body's mediaType, else "" */
	char digest[DIGEST_BUF]; /* sha256 of body, computed here */
};

/*
 * GET /v2/<repo>/manifests/<reference> (a tag or "sha256:..."), accepting
 * OCI and Docker schema2 manifests and indexes. A digest reference is
 * verified against the body (KCI_DIGEST). KCI_NOTFOUND for 404; KCI_INVALID
 * for authentication failures; KCI_TIMEOUT, KCI_CANCELED, KCI_ERROR.
 */
int registry_get_manifest(struct registry *r, const char *reference, struct registry_manifest *out,
			  struct kci_err *err);
void registry_manifest_clear(struct registry_manifest *m);

/*
 * Streams blob `digest` of `size` bytes into out_fd (a regular file written
 * with pwrite from offset 0; it may be truncated and rewritten when a retry
 * cannot resume), verifying size and sha256: KCI_DIGEST "blob sha256:...:
 * digest mismatch" or "size mismatch", after which the caller discards the
 * file. progress may be NULL; it is called on this thread with (ctx, digest,
 * done, total).
 */
int registry_get_blob(struct registry *r, const char *digest, int64_t size, int out_fd,
		      kci_pull_progress_fn progress, void *ctx, struct kci_err *err);

/* The same into memory, for configs: *out is malloc'd and NUL-terminated; size <= max. */
int registry_get_blob_bytes(struct registry *r, const char *digest, int64_t size, size_t max,
			    char **out, size_t *len, struct kci_err *err);

/* 1 if s is a valid tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
int tag_is_valid(const char *s);

/* 1 for localhost, 127.0.0.0/8, ::1 (a host without port; IPv6 may be bracketed). */
int host_is_loopback(const char *host);

/* ---- credentials (auth.c) ---- */

struct auth_creds {
	char *username;
	char *password;
};

/* $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json (malloc'd); NULL without HOME. */
char *auth_config_path(void);

/*
 * Credentials for `registry` (host[:port], "registry-1.docker.io" for Docker
 * Hub) from a config.json text. 0 and *out filled; KCI_NOTFOUND when there is
 * no usable entry; KCI_INVALID for malformed JSON or when only a credential
 * helper (credHelpers, credsStore) could supply them, which kci does not run.
 */
int auth_config_parse(const char *json, size_t len, const char *registry, struct auth_creds *out,
		      struct kci_err *err);
/* The same from a file (bounded read); a missing file is KCI_NOTFOUND. */
int auth_lookup(const char *path, const char *registry, struct auth_creds *out,
		struct kci_err *err);
void auth_creds_clear(struct auth_creds *c);
/* "Basic base64(user:password)", malloc'd. */
char *auth_basic_value(const struct auth_creds *c);

enum auth_scheme {
	AUTH_NONE = 0,
	AUTH_BASIC,
	AUTH_BEARER,
};

/* What a 401's WWW-Authenticate asked for. */
struct auth_challenge {
	enum auth_scheme scheme;
	char realm[1024];
	char service[256];
	char scope[1024];
	char error[64];
};

/*
 * Parses one WWW-Authenticate value (which may hold several challenges) and
 * merges it into *c: a Bearer challenge is preferred to Basic, the first of
 * a kind wins. Unknown schemes are skipped. KCI_PROTO for malformed syntax
 * or overlong parameters; *c is left as it was then.
 */
int auth_challenge_parse(const char *value, size_t len, struct auth_challenge *c,
			 struct kci_err *err);

#define AUTH_TOKEN_MAX	    16384
#define AUTH_TOKEN_BODY_MAX (1u << 20)

/*
 * Parses a token server's JSON response: "token" or "access_token" (visible
 * ASCII only, <= AUTH_TOKEN_MAX), "expires_in" seconds (60 when absent). *token
 * is malloc'd. KCI_PROTO for anything else.
 */
int auth_token_parse(const char *body, size_t len, char **token, long *expires_in,
		     struct kci_err *err);

/* ---- internals shared by registry.c (transport) and auth.c (the auth flow) ---- */

#define ERROR_BODY_MAX 8192 /* of a non-2xx body: enough for the registry's error JSON */
#define LOCATION_MAX   8192 /* presigned CDN URLs run to a few KiB */
#define IDLE_HANDLES   8

struct registry {
	struct kci_image_ref ref;
	struct registry_opts opts;
	char base[300];	   /* scheme://host[:port] */
	char scope[300];   /* repository:<repo>:pull */
	char *config_path; /* for messages */
	struct auth_creds creds;
	char creds_problem[KCI_ERR_MAX]; /* why there are no credentials, if not plain absence */
	pthread_mutex_t lock;		 /* guards everything below */
	int basic;			 /* the registry asked for Basic: send it up front */
	char *token_authz;		 /* "Bearer <token>" for our scope, or NULL */
	time_t token_expires;		 /* CLOCK_MONOTONIC seconds */
	CURL *idle[IDLE_HANDLES];	 /* easy handles keep their connections between requests */
	size_t n_idle;
};

/* Where a 2xx body goes: an fd or memory, hashed, bounded. */
struct sink {
	int fd;
	char *buf;
	size_t cap;
	uint64_t max, done;
	struct kci_sha256 *hash;
	kci_pull_progress_fn progress;
	void *ctx;
	const char *digest;
	int too_big, io_errno;
};

/* One request as the layers below the API see it. */
struct req {
	const char *url;
	const char *accept;	 /* full "Accept: ..." header or NULL */
	const char *authz;	 /* Authorization value or NULL */
	const char *auth_origin; /* only this URL's origin gets authz */
	const char *what;	 /* names the request in messages */
	int bounded;		 /* bounded: the whole-request timeout applies */
	struct sink *sink;
};

/* The state of one response (reset for each redirect hop). */
struct xfer {
	CURL *h;
	struct sink *sink;
	const volatile sig_atomic_t *cancel;
	long status;
	int body_state; /* 0 undecided, 1 to the sink, 2 to errbody */
	int errbody_full, bad_range, location_long, retryable, same_origin;
	char content_type[128], retry_after[64], content_range[128];
	char location[LOCATION_MAX];
	struct auth_challenge challenge;
	int challenge_bad;
	char errbody[ERROR_BODY_MAX];
	size_t errlen;
	char curl_err[CURL_ERROR_SIZE];
};

typedef int (*registry_step_fn)(struct registry *, struct xfer *, struct req *, struct kci_err *);

/*
 * Performs q, following up to 5 redirects by hand. Every URL must be https,
 * or http to a loopback host, and loopback hosts only for a loopback
 * registry; the Authorization header goes only to q->auth_origin's origin.
 * 0 with x->status set, or a transfer error.
 */
int registry_http_follow(struct registry *r, struct xfer *x, const struct req *q,
			 struct kci_err *err);
/* Runs step, retrying network errors, 429 and 5xx with backoff and Retry-After. */
int registry_with_retries(struct registry *r, struct xfer *x, struct req *q, registry_step_fn step,
			  struct kci_err *err);
/* The error for a final non-2xx response, with the registry's own error text. */
int registry_status_error(struct registry *r, struct xfer *x, const char *what,
			  struct kci_err *err);

/* A registry request with the cached credentials, and once more after a 401's challenge. */
int auth_request_step(struct registry *r, struct xfer *x, struct req *q, struct kci_err *err);
/* Looks up r's credentials in the docker config (NULL: auth_config_path()). */
void auth_load_creds(struct registry *r, const char *config);
/* The KCI_INVALID error for a 401/403; `server` names a token server, NULL the registry. */
int auth_unauthorized(struct registry *r, struct xfer *x, const char *server, struct kci_err *err);

/* "scheme://host:port" of an http(s) URL (port explicit, lowercase); -1 for anything else. */
int url_origin(const char *url, char *out, size_t size, int *https, int *loopback);
/* A Location resolved against the URL that sent it (malloc'd), or NULL. */
char *url_resolve(const char *base, const char *location);

#endif
