/*
 * Private to images/: the registry client (registry.c), the distribution API
 * on top of auth.c's credentials and http.c's transport. Everything a
 * registry sends is untrusted.
 */
#ifndef KCI_IMAGES_REGISTRY_H
#define KCI_IMAGES_REGISTRY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "images/images.h"
#include "images/manifest.h"

/* A client for one repository of one registry; safe to share between threads. */
struct registry;

struct registry_opts {
	const char *docker_config; /* config.json path; NULL: auth_config_path() */
	const char *ca_file;	   /* CA bundle for TLS; NULL: the system's */
	int loopback_https;	   /* use https for loopback registries too (default: http) */
	int plain_http;		   /* an insecure registry: plain HTTP, wherever it is */
	int quiet_bodies;	   /* never quote a non-registry reply (pipelines' pulls) */
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
		.connect_timeout_ms = 30000, .stall_ms = 60000, .request_timeout_ms = 300000,      \
		.max_attempts = 5, .retry_base_ms = 500, .retry_max_ms = 30000                     \
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

#endif
