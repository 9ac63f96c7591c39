/*
 * Private to images/: the auth flow (auth.c) on top of the HTTP transport:
 * WWW-Authenticate challenges, token servers, and requests that carry the
 * right Authorization, with the credentials of creds.h. Every challenge and
 * token response is untrusted.
 */
#ifndef KCI_IMAGES_AUTH_H
#define KCI_IMAGES_AUTH_H

#include <stddef.h>

#include "common/err.h"
#include "images/http.h"

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

/* ---- the auth flow ---- */

/* Credentials and the token cache for one repository of one registry; thread-safe. */
struct auth;

/*
 * An auth state (the caller's to auth_free) for `registry` (host[:port]) and
 * `repo` that sends its requests through http (borrowed; it must outlive the
 * auth). Credentials are looked up now in docker_config (NULL:
 * auth_config_path()); a problem with them is reported only if the registry
 * asks for authentication.
 */
struct auth *auth_new(struct http *http, const char *registry, const char *repo,
		      const char *docker_config);
void auth_free(struct auth *a);

/*
 * Performs q with retries (http_with_retries), sending the cached token or
 * Basic credentials up front and, after a 401 from q->auth_origin, answering
 * its challenge (a token from the realm, or Basic) and trying once more. A
 * second 401 is KCI_INVALID; otherwise the caller judges x->status.
 */
int auth_request(struct auth *a, struct http_xfer *x, struct http_req *q, struct kci_err *err);

/*
 * The KCI_INVALID error for a 401/403 response in x, saying which
 * credentials were refused or why there were none; `server` names a token
 * server, NULL the registry.
 */
int auth_unauthorized(const struct auth *a, const struct http_xfer *x, const char *server,
		      struct kci_err *err);

#endif
