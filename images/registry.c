/*
 * The registry client: the distribution API's manifest and blob GETs, with
 * digests and sizes checked. Credentials come from auth.c, the transport
 * (redirects, retries, bounds) from http.c. Registries are untrusted.
 */
#include "images/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "common/xalloc.h"
#include "images/auth.h"
#include "images/http.h"

#define ACCEPT_MANIFESTS                                                                           \
	"Accept: " MEDIA_OCI_MANIFEST ", " MEDIA_OCI_INDEX ", " MEDIA_DOCKER_MANIFEST              \
	", " MEDIA_DOCKER_LIST

struct registry {
	struct kci_image_ref ref;
	char base[300];		/* scheme://host[:port] */
	char plain_origin[300]; /* base as http.c compares origins, for an insecure registry */
	struct http *http;
	struct auth *auth;
};

int
registry_new(struct registry **out, const struct kci_image_ref *ref,
	     const struct registry_opts *opts, struct kci_err *err)
{
	const struct registry_opts defaults = REGISTRY_OPTS_INIT;
	struct http_opts hopts;
	struct registry *r;
	struct http *http;
	int https, rc;

	if (!ref->registry[0] || !ref->repo[0])
		return kci_err_set(err, KCI_INVALID, "registry client needs a parsed reference");
	if (!opts)
		opts = &defaults;
	hopts = (struct http_opts){
		.ca_file = opts->ca_file,
		/* A remote registry must not point kci at services on this machine. */
		.loopback_ok = kci_images_ref_is_loopback(ref),
		.connect_timeout_ms = opts->connect_timeout_ms,
		.stall_ms = opts->stall_ms,
		.request_timeout_ms = opts->request_timeout_ms,
		.max_attempts = opts->max_attempts,
		.retry_base_ms = opts->retry_base_ms,
		.retry_max_ms = opts->retry_max_ms,
		.cancel = opts->cancel,
		.quiet_bodies = opts->quiet_bodies,
	};
	r = kci_xcalloc(1, sizeof(*r));
	https = !opts->plain_http && (!kci_images_ref_is_loopback(ref) || opts->loopback_https);
	snprintf(r->base, sizeof(r->base), "%s://%s", https ? "https" : "http", ref->registry);
	int unused_https, unused_loopback;
	if (opts->plain_http && url_origin(r->base, r->plain_origin, sizeof(r->plain_origin),
					   &unused_https, &unused_loopback) == 0)
		hopts.plain_origin = r->plain_origin;
	if ((rc = http_new(&http, &hopts, err)) < 0) {
		free(r);
		return rc;
	}
	r->ref = *ref;
	r->http = http;
	r->auth = auth_new(http, ref->registry, ref->repo, opts->docker_config);
	*out = r;
	return 0;
}

void
registry_free(struct registry *r)
{
	if (!r)
		return;
	auth_free(r->auth);
	http_free(r->http);
	free(r);
}

/* The error for a final non-2xx response, with the registry's own error text. */
static int
status_error(struct registry *r, const struct http_xfer *x, const char *what, struct kci_err *err)
{
	char paren[320];

	switch (x->status) {
	case 401:
		return auth_unauthorized(r->auth, x, NULL, err);
	case 404:
		http_error_detail(x, paren, sizeof(paren));
		return kci_err_set(err, KCI_NOTFOUND, "%s: not found in %s/%s%s", what,
				   r->ref.registry, r->ref.repo, paren);
	default:
		return http_status_error(x, what, "the registry", err);
	}
}

/*
 * Runs a registry request with credentials and retries; 0 only for a 200
 * (or a 206 continuing a sink). *xp is the caller's to http_xfer_free.
 */
static int
fetch(struct registry *r, struct http_req *q, struct http_xfer **xp, struct kci_err *err)
{
	struct http_xfer *x = http_xfer_new(r->http);
	int rc;

	q->auth_origin = r->base;
	rc = auth_request(r->auth, x, q, err);
	if (rc == 0 && x->status != 200 && !(x->status == 206 && q->sink))
		rc = status_error(r, x, q->what, err);
	*xp = x;
	return rc;
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
manifest_media_type(const struct http_xfer *x, const char *body, size_t len, char *out, size_t size)
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
	struct http_xfer *x = NULL;
	struct http_sink s = { .fd = -1, .max = MANIFEST_MAX };
	struct registry_manifest m = { 0 };
	char what[200], *url = NULL, hex[65];
	struct http_req q = { .accept = ACCEPT_MANIFESTS, .bounded = 1, .sink = &s };
	int rc;

	if ((rc = check_reference(reference, err)) < 0)
		return rc;
	snprintf(what, sizeof(what), "manifest %s", reference);
	url = kci_xasprintf("%s/v2/%s/manifests/%s", r->base, r->ref.repo, reference);
	s.hash = kci_sha256_new();
	q.url = url;
	q.what = what;
	if ((rc = fetch(r, &q, &x, err)) < 0)
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
	http_xfer_free(r->http, x);
	return rc;
}

/* Fetches a blob into s and checks its size and digest. */
static int
get_blob(struct registry *r, const char *digest, int64_t size, struct http_sink *s,
	 struct kci_err *err)
{
	struct http_xfer *x = NULL;
	char what[100], *url, hex[65];
	struct http_req q = { .sink = s };
	int rc;

	if ((rc = digest_check(digest, "blob", err)) < 0)
		return rc;
	if (size < 0 || size > BLOB_SIZE_MAX)
		return kci_err_set(err, KCI_INVALID, "blob %s: size %lld is outside 0..%lld",
				   digest, (long long)size, (long long)BLOB_SIZE_MAX);
	snprintf(what, sizeof(what), "blob %s", digest);
	url = kci_xasprintf("%s/v2/%s/blobs/%s", r->base, r->ref.repo, digest);
	s->max = (uint64_t)size;
	s->hash = kci_sha256_new();
	s->digest = digest;
	q.url = url;
	q.what = what;
	rc = fetch(r, &q, &x, err);
	http_xfer_free(r->http, x);
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
	return rc;
}

int
registry_get_blob(struct registry *r, const char *digest, int64_t size, int out_fd,
		  kci_pull_progress_fn progress, void *ctx, struct kci_err *err)
{
	struct http_sink s = { .fd = out_fd, .progress = progress, .ctx = ctx };

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
	struct http_sink s = { .fd = -1 };
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
