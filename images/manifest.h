/*
 * Private to images/: parsers for the JSON documents a registry serves
 * (image manifests, indexes, image configs, error bodies). Every input is
 * untrusted; each parser bounds its input, its nesting and its counts.
 */
#ifndef KCI_IMAGES_MANIFEST_H
#define KCI_IMAGES_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "images/images.h"

#define MANIFEST_MAX	    (4u << 20) /* bytes of a manifest or index */
#define IMAGE_CONFIG_MAX    (8u << 20) /* bytes of an image config */
#define MANIFEST_LAYERS_MAX 128
#define INDEX_ENTRIES_MAX   1024
#define BLOB_SIZE_MAX	    (INT64_C(64) << 30) /* a layer larger than 64 GiB is not sane */
#define MANIFEST_JSON_DEPTH 16

#define MEDIA_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_OCI_INDEX	      "application/vnd.oci.image.index.v1+json"
#define MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define MEDIA_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"

/* "sha256:" + 64 hex + NUL */
#define DIGEST_BUF 72

enum manifest_kind {
	MANIFEST_UNKNOWN = 0,
	MANIFEST_IMAGE, /* OCI image manifest or Docker schema2 manifest */
	MANIFEST_INDEX, /* OCI image index or Docker manifest list */
};

/* How a layer blob is compressed; unpack picks its decompressor from this. */
enum layer_codec {
	LAYER_NONE = 0, /* not a layer (config, manifest) */
	LAYER_TAR,
	LAYER_GZIP,
	LAYER_ZSTD,
};

/* A content descriptor whose fields have been validated. */
struct descriptor {
	char media_type[128];
	char digest[DIGEST_BUF];
	int64_t size;
	enum layer_codec codec; /* for layers */
};

/* An image manifest: one config and its layers, bottom layer first. */
struct manifest {
	char media_type[128];
	struct descriptor config;
	struct descriptor *layers; /* malloc'd, n_layers entries */
	size_t n_layers;
};

/* Which kind of document a media type names; MANIFEST_UNKNOWN for anything else. */
enum manifest_kind manifest_kind_of(const char *media_type);

/*
 * The "mediaType" field of a manifest-like JSON document, copied into out;
 * "" when the body has none or is not JSON. Used when a registry's
 * Content-Type is missing or generic.
 */
void manifest_body_media_type(const char *body, size_t len, char *out, size_t size);

/*
 * Parses an image manifest. `media_type` is what the registry said (or ""):
 * it and the body's own mediaType must agree. KCI_INVALID names the problem
 * (schema 1, unknown layer type, too many layers, bad digest, an index where
 * a manifest was expected). Free with manifest_clear().
 */
int manifest_parse(const char *body, size_t len, const char *media_type, struct manifest *out,
		   struct kci_err *err);
void manifest_clear(struct manifest *m);

/*
 * Picks the manifest for os/arch (variant "" or "v1" only: kci's guests run
 * on a baseline x86-64 CPU) from an OCI index or Docker manifest list.
 * `index_digest` only names the index in messages. KCI_NOTFOUND lists the
 * platforms the index does offer; KCI_INVALID for a malformed index.
 */
int manifest_index_select(const char *body, size_t len, const char *media_type, const char *os,
			  const char *arch, const char *index_digest, struct descriptor *out,
			  struct kci_err *err);

/*
 * Parses an image config into out (owned strings; kci_images_config_clear()
 * frees them). Checking diff_ids against the manifest's layer count and
 * os/architecture against the platform is the caller's job.
 */
int image_config_parse(const char *body, size_t len, struct kci_image_config *out,
		       struct kci_err *err);
/* 1 if s is "sha256:" followed by exactly 64 lowercase hex digits. */
int digest_is_valid(const char *s);
/* Checks a digest, with a message saying what is wrong (KCI_INVALID). */
int digest_check(const char *s, const char *what, struct kci_err *err);

/*
 * Summarises a registry error body ({"errors":[{"code","message"}]}) as
 * "CODE: message; …" in out, cleaned for printing. Empty when the body is
 * not such a document.
 */
void registry_errors_text(const char *body, size_t len, char *out, size_t size);

/*
 * Parses untrusted bytes (at most max) as one JSON object with nesting
 * bounded by MANIFEST_JSON_DEPTH; *out is the caller's to json_object_put().
 * KCI_INVALID says what is wrong, naming the document as `what`.
 */
struct json_object;
int image_json_parse(const char *body, size_t len, size_t max, const char *what,
		     struct json_object **out, struct kci_err *err);

/* Copies untrusted text for a message: printable ASCII only, truncated with "...". */
void text_clean(char *out, size_t size, const char *s, size_t len);

#endif
