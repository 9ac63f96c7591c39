/* Parsing of registry JSON documents: image manifests, indexes, image configs, error bodies. */
#include "images/manifest.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strv.h"
#include "common/xalloc.h"

#define CONFIG_STRV_MAX	  4096	       /* entries in Env, Cmd, Entrypoint */
#define CONFIG_STRING_MAX (128 * 1024) /* the kernel's limit on one argv/env string */
#define ERRORS_BODY_MAX	  (64 * 1024)

void
text_clean(char *out, size_t size, const char *s, size_t len)
{
	size_t n = 0;

	if (size == 0)
		return;
	for (size_t i = 0; i < len && n + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[n] = '\0';
	if (n < len && size > 4)
		memcpy(out + size - 4, "...", 4);
}

int
digest_is_valid(const char *s)
{
	if (strncmp(s, "sha256:", 7) != 0)
		return 0;
	s += 7;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

int
digest_check(const char *s, const char *what, struct kci_err *err)
{
	char shown[96];
	const char *colon = strchr(s, ':');

	if (digest_is_valid(s))
		return 0;
	text_clean(shown, sizeof(shown), s, strlen(s));
	if (!colon)
		return kci_err_set(err, KCI_INVALID, "%s digest '%s' has no algorithm prefix", what,
				   shown);
	if (colon - s != 6 || strncmp(s, "sha256", 6) != 0)
		return kci_err_set(err, KCI_INVALID,
				   "%s digest '%s': unsupported algorithm (kci supports sha256)",
				   what, shown);
	return kci_err_set(err, KCI_INVALID, "%s digest '%s' is not 64 lowercase hex digits", what,
			   shown);
}

enum manifest_kind
manifest_kind_of(const char *media_type)
{
	if (!strcmp(media_type, MEDIA_OCI_MANIFEST) || !strcmp(media_type, MEDIA_DOCKER_MANIFEST))
		return MANIFEST_IMAGE;
	if (!strcmp(media_type, MEDIA_OCI_INDEX) || !strcmp(media_type, MEDIA_DOCKER_LIST))
		return MANIFEST_INDEX;
	return MANIFEST_UNKNOWN;
}

/*
 * Parses a whole JSON object of at most max bytes. Strict mode and UTF-8
 * validation keep us from accepting what other implementations would read
 * differently; only whitespace may follow the object.
 */
int
image_json_parse(const char *body, size_t len, size_t max, const char *what,
		 struct json_object **out, struct kci_err *err)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	/* untrusted: len <= max, checked here before the tokenizer sees a byte */
	if (len > max)
		return kci_err_set(err, KCI_INVALID, "%s is larger than %zu bytes", what, max);
	tok = json_tokener_new_ex(MANIFEST_JSON_DEPTH);
	if (!tok)
		return kci_err_set(err, KCI_ERROR, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!obj || jerr != json_tokener_success) {
		json_object_put(obj);
		return kci_err_set(err, KCI_INVALID, "%s is not valid JSON: %s", what,
				   jerr == json_tokener_continue ? "truncated"
								 : json_tokener_error_desc(jerr));
	}
	while (end < len && strchr(" \t\r\n", body[end]) && body[end] != '\0')
		end++;
	if (end != len) {
		json_object_put(obj);
		return kci_err_set(err, KCI_INVALID, "%s has trailing bytes after the JSON", what);
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return kci_err_set(err, KCI_INVALID, "%s is not a JSON object", what);
	}
	*out = obj;
	return 0;
}

/*
 * Reads a string member into a bounded buffer. Absent or null leaves out
 * empty (an error when `required`); an embedded NUL is refused because the
 * rest of kci handles C strings.
 */
static int
get_str(struct json_object *obj, const char *key, int required, char *out, size_t size,
	const char *what, struct kci_err *err)
{
	struct json_object *v;
	int n;

	out[0] = '\0';
	if (!json_object_object_get_ex(obj, key, &v) || v == NULL) {
		if (required)
			return kci_err_set(err, KCI_INVALID, "%s has no %s", what, key);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return kci_err_set(err, KCI_INVALID, "%s: %s is not a string", what, key);
	n = json_object_get_string_len(v);
	if ((size_t)n >= size)
		return kci_err_set(err, KCI_INVALID, "%s: %s is longer than %zu bytes", what, key,
				   size - 1);
	memcpy(out, json_object_get_string(v), (size_t)n);
	out[n] = '\0';
	if (strlen(out) != (size_t)n)
		return kci_err_set(err, KCI_INVALID, "%s: %s contains a NUL byte", what, key);
	return 0;
}

/* RFC 6838 restricted names, "type/subtype", as OCI requires of media types. */
static int
media_type_is_valid(const char *s)
{
	const char *slash = strchr(s, '/');
	size_t parts[2];

	if (!slash)
		return 0;
	parts[0] = (size_t)(slash - s);
	parts[1] = strlen(slash + 1);
	for (int p = 0; p < 2; p++) {
		const char *t = p ? slash + 1 : s;
		if (parts[p] == 0 || parts[p] > 127)
			return 0;
		for (size_t i = 0; i < parts[p]; i++) {
			char c = t[i];
			int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				    (c >= '0' && c <= '9');
			if (!alnum && (i == 0 || !strchr("!#$&^_.+-", c)))
				return 0;
		}
	}
	return 1;
}

static int
descriptor_parse(struct json_object *o, const char *what, int64_t max_size, struct descriptor *d,
		 struct kci_err *err)
{
	struct json_object *v;
	char shown[160], digest[160];
	int rc;

	memset(d, 0, sizeof(*d));
	if (!json_object_is_type(o, json_type_object))
		return kci_err_set(err, KCI_INVALID, "%s is not a JSON object", what);
	if ((rc = get_str(o, "mediaType", 1, d->media_type, sizeof(d->media_type), what, err)) < 0)
		return rc;
	if (!media_type_is_valid(d->media_type)) {
		text_clean(shown, sizeof(shown), d->media_type, strlen(d->media_type));
		return kci_err_set(err, KCI_INVALID, "%s: malformed media type '%s'", what, shown);
	}
	/* Read wider than a sha256 digest so that other algorithms get a clear message. */
	if ((rc = get_str(o, "digest", 1, digest, sizeof(digest), what, err)) < 0 ||
	    (rc = digest_check(digest, what, err)) < 0)
		return rc;
	memcpy(d->digest, digest, sizeof(d->digest));
	if (!json_object_object_get_ex(o, "size", &v) || !json_object_is_type(v, json_type_int))
		return kci_err_set(err, KCI_INVALID, "%s %s: size is missing or not an integer",
				   what, d->digest);
	d->size = json_object_get_int64(v);
	if (d->size < 0 || d->size > max_size)
		return kci_err_set(err, KCI_INVALID, "%s %s: size %lld is outside 0..%lld", what,
				   d->digest, (long long)d->size, (long long)max_size);
	return 0;
}

/* Layer media types kci can unpack; both the OCI and the Docker names. */
static const struct {
	const char *media_type;
	enum layer_codec codec;
} layer_types[] = {
	{ "application/vnd.oci.image.layer.v1.tar", LAYER_TAR },
	{ "application/vnd.oci.image.layer.v1.tar+gzip", LAYER_GZIP },
	{ "application/vnd.oci.image.layer.v1.tar+zstd", LAYER_ZSTD },
	{ "application/vnd.docker.image.rootfs.diff.tar", LAYER_TAR },
	{ "application/vnd.docker.image.rootfs.diff.tar.gzip", LAYER_GZIP },
	{ "application/vnd.docker.image.rootfs.diff.tar.zstd", LAYER_ZSTD },
};

static int
layer_parse(struct json_object *o, size_t i, struct descriptor *d, struct kci_err *err)
{
	char what[32];
	int rc;

	snprintf(what, sizeof(what), "layer %zu", i);
	if ((rc = descriptor_parse(o, what, BLOB_SIZE_MAX, d, err)) < 0)
		return rc;
	for (size_t t = 0; t < sizeof(layer_types) / sizeof(layer_types[0]); t++)
		if (!strcmp(d->media_type, layer_types[t].media_type)) {
			d->codec = layer_types[t].codec;
			return 0;
		}
	/* Foreign layers live outside the registry (Windows base images); kci never fetches
	 * from a descriptor's urls, so it cannot build such an image. */
	if (strstr(d->media_type, "nondistributable") || strstr(d->media_type, "foreign"))
		return kci_err_set(err, KCI_INVALID,
				   "layer %zu (%s) is non-distributable (%s), which kci does not "
				   "support",
				   i, d->digest, d->media_type);
	return kci_err_set(err, KCI_INVALID,
			   "layer %zu (%s) has media type %s, which is not a tar layer kci can "
			   "unpack (tar, tar+gzip, tar+zstd)",
			   i, d->digest, d->media_type);
}

/*
 * Settles a document's media type from what the registry declared and the
 * body's own mediaType: they must agree when both are meaningful, and the
 * result must be of `want` kind. `doc` names the document in messages.
 */
static int
settle_media_type(struct json_object *root, const char *declared, enum manifest_kind want,
		  char *out, size_t size, const char *doc, struct kci_err *err)
{
	char body_type[128], shown[160];
	int rc;

	if ((rc = get_str(root, "mediaType", 0, body_type, sizeof(body_type), doc, err)) < 0)
		return rc;
	if (declared && manifest_kind_of(declared) != MANIFEST_UNKNOWN) {
		if (body_type[0] && strcmp(body_type, declared) != 0) {
			text_clean(shown, sizeof(shown), body_type, strlen(body_type));
			return kci_err_set(err, KCI_INVALID,
					   "%s: served as %s but its mediaType says %s", doc,
					   declared, shown);
		}
		snprintf(out, size, "%s", declared);
	} else if (body_type[0]) {
		snprintf(out, size, "%s", body_type);
	} else {
		/* Early OCI documents carry no mediaType; the OCI type is the only guess. */
		snprintf(out, size, "%s",
			 want == MANIFEST_INDEX ? MEDIA_OCI_INDEX : MEDIA_OCI_MANIFEST);
	}
	if (manifest_kind_of(out) == want)
		return 0;
	text_clean(shown, sizeof(shown), out, strlen(out));
	if (manifest_kind_of(out) != MANIFEST_UNKNOWN)
		return kci_err_set(err, KCI_INVALID, "%s: expected an image %s, got %s", doc,
				   want == MANIFEST_INDEX ? "index" : "manifest", shown);
	if (strstr(out, "manifest.v1+"))
		return kci_err_set(err, KCI_INVALID,
				   "%s: Docker schema 1 manifests (%s) are not supported; re-push "
				   "the image with a current tool",
				   doc, shown);
	return kci_err_set(err, KCI_INVALID, "%s: unsupported media type %s", doc, shown);
}

static int
check_schema_version(struct json_object *root, const char *doc, struct kci_err *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(root, "schemaVersion", &v) ||
	    !json_object_is_type(v, json_type_int))
		return kci_err_set(err, KCI_INVALID, "%s has no integer schemaVersion", doc);
	if (json_object_get_int64(v) == 1)
		return kci_err_set(err, KCI_INVALID,
				   "%s: Docker schema 1 manifests are not supported; re-push the "
				   "image with a current tool",
				   doc);
	if (json_object_get_int64(v) != 2)
		return kci_err_set(err, KCI_INVALID, "%s: unsupported schemaVersion %lld", doc,
				   (long long)json_object_get_int64(v));
	return 0;
}

static int
manifest_parse_layers(struct json_object *root, struct manifest *m, struct kci_err *err)
{
	struct json_object *layers;
	size_t n;
	int rc;

	if (!json_object_object_get_ex(root, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array))
		return kci_err_set(err, KCI_INVALID, "manifest has no layers array");
	n = json_object_array_length(layers);
	if (n > MANIFEST_LAYERS_MAX)
		return kci_err_set(err, KCI_INVALID, "manifest has %zu layers; kci allows %d", n,
				   MANIFEST_LAYERS_MAX);
	m->layers = kci_xcalloc(n ? n : 1, sizeof(*m->layers));
	for (size_t i = 0; i < n; i++) {
		if ((rc = layer_parse(json_object_array_get_idx(layers, i), i, &m->layers[i],
				      err)) < 0)
			return rc;
		m->n_layers = i + 1;
	}
	return 0;
}

int
manifest_parse(const char *body, size_t len, const char *media_type, struct manifest *out,
	       struct kci_err *err)
{
	struct json_object *root = NULL, *v;
	struct manifest m = { 0 };
	int rc;

	if ((rc = image_json_parse(body, len, MANIFEST_MAX, "manifest", &root, err)) < 0)
		return rc;
	if ((rc = check_schema_version(root, "manifest", err)) < 0 ||
	    (rc = settle_media_type(root, media_type, MANIFEST_IMAGE, m.media_type,
				    sizeof(m.media_type), "manifest", err)) < 0)
		goto out;
	/* A document that reads as both a manifest and an index could be taken for either
	 * by different tools (CVE-2021-41190); refuse it. */
	if (json_object_object_get_ex(root, "manifests", &v)) {
		rc = kci_err_set(err, KCI_INVALID,
				 "manifest also has a manifests list (ambiguous)");
		goto out;
	}
	if (!json_object_object_get_ex(root, "config", &v)) {
		rc = kci_err_set(err, KCI_INVALID, "manifest has no config descriptor");
		goto out;
	}
	if ((rc = descriptor_parse(v, "config", IMAGE_CONFIG_MAX, &m.config, err)) < 0)
		goto out;
	if (strcmp(m.config.media_type, MEDIA_OCI_CONFIG) != 0 &&
	    strcmp(m.config.media_type, MEDIA_DOCKER_CONFIG) != 0) {
		rc = kci_err_set(err, KCI_INVALID,
				 "not a container image: config media type is %s (an OCI "
				 "artifact?)",
				 m.config.media_type);
		goto out;
	}
	if ((rc = manifest_parse_layers(root, &m, err)) < 0)
		goto out;
	*out = m;
	m.layers = NULL;
out:
	free(m.layers);
	json_object_put(root);
	return rc;
}

void
manifest_clear(struct manifest *m)
{
	if (!m)
		return;
	free(m->layers);
	m->layers = NULL;
	m->n_layers = 0;
}

void
manifest_body_media_type(const char *body, size_t len, char *out, size_t size)
{
	struct json_object *root = NULL;
	struct kci_err err = KCI_ERR_INIT;
	char type[128];

	out[0] = '\0';
	if (image_json_parse(body, len, MANIFEST_MAX, "manifest", &root, &err) < 0)
		return;
	if (get_str(root, "mediaType", 0, type, sizeof(type), "manifest", &err) == 0 &&
	    media_type_is_valid(type))
		snprintf(out, size, "%s", type);
	json_object_put(root);
}

struct platform {
	char os[64], arch[64], variant[64];
};

static int
platform_parse(struct json_object *entry, struct platform *p, const char *what, struct kci_err *err)
{
	struct json_object *v;
	int rc;

	memset(p, 0, sizeof(*p));
	if (!json_object_object_get_ex(entry, "platform", &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_object))
		return kci_err_set(err, KCI_INVALID, "%s: platform is not an object", what);
	if ((rc = get_str(v, "os", 0, p->os, sizeof(p->os), what, err)) < 0 ||
	    (rc = get_str(v, "architecture", 0, p->arch, sizeof(p->arch), what, err)) < 0 ||
	    (rc = get_str(v, "variant", 0, p->variant, sizeof(p->variant), what, err)) < 0)
		return rc;
	return 0;
}

/* Appends "os/arch[/variant]" to a ", "-separated list unless it is there already. */
static void
platforms_add(char *list, size_t size, const struct platform *p)
{
	char item[200], clean[200];
	size_t used = strlen(list), n;
	const char *at;

	snprintf(item, sizeof(item), "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "",
		 p->variant);
	text_clean(clean, sizeof(clean), item, strlen(item));
	n = strlen(clean);
	for (at = strstr(list, clean); at; at = strstr(at + 1, clean))
		if ((at == list || at[-1] == ' ') && (at[n] == ',' || at[n] == '\0'))
			return;
	if (used + n + 3 >= size)
		return;
	snprintf(list + used, size - used, "%s%s", used ? ", " : "", clean);
}

static int
platform_matches(const struct platform *p, const char *os, const char *arch)
{
	/* Newer amd64 variants (v2, v3...) need CPU features that TCG's default CPU lacks. */
	return !strcmp(p->os, os) && !strcmp(p->arch, arch) &&
	       (p->variant[0] == '\0' || !strcmp(p->variant, "v1"));
}

static int
index_entries_select(struct json_object *manifests, const char *os, const char *arch,
		     const char *index_digest, struct descriptor *out, struct kci_err *err)
{
	size_t n = json_object_array_length(manifests);
	char available[512] = "", what[48];
	struct descriptor d;
	struct platform p;
	int found = 0, rc;

	if (n > INDEX_ENTRIES_MAX)
		return kci_err_set(err, KCI_INVALID, "index has %zu entries; kci allows %d", n,
				   INDEX_ENTRIES_MAX);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(manifests, i);
		snprintf(what, sizeof(what), "index entry %zu", i);
		if ((rc = descriptor_parse(e, what, MANIFEST_MAX, &d, err)) < 0 ||
		    (rc = platform_parse(e, &p, what, err)) < 0)
			return rc;
		/* Nested indexes and attestation manifests ("unknown/unknown") are not images
		 * anyone can run; they are neither chosen nor offered. */
		if (manifest_kind_of(d.media_type) != MANIFEST_IMAGE || !p.os[0] ||
		    !strcmp(p.os, "unknown"))
			continue;
		if (!found && platform_matches(&p, os, arch)) {
			*out = d;
			found = 1;
		}
		platforms_add(available, sizeof(available), &p);
	}
	if (found)
		return 0;
	return kci_err_set(err, KCI_NOTFOUND, "no %s/%s image in index %s: available: %s", os, arch,
			   index_digest ? index_digest : "", available[0] ? available : "none");
}

int
manifest_index_select(const char *body, size_t len, const char *media_type, const char *os,
		      const char *arch, const char *index_digest, struct descriptor *out,
		      struct kci_err *err)
{
	struct json_object *root = NULL, *v;
	char type[128];
	int rc;

	if ((rc = image_json_parse(body, len, MANIFEST_MAX, "index", &root, err)) < 0)
		return rc;
	if ((rc = check_schema_version(root, "index", err)) < 0 ||
	    (rc = settle_media_type(root, media_type, MANIFEST_INDEX, type, sizeof(type), "index",
				    err)) < 0)
		goto out;
	if (json_object_object_get_ex(root, "layers", &v) ||
	    json_object_object_get_ex(root, "config", &v)) {
		rc = kci_err_set(err, KCI_INVALID, "index also has layers or a config (ambiguous)");
		goto out;
	}
	if (!json_object_object_get_ex(root, "manifests", &v) ||
	    !json_object_is_type(v, json_type_array)) {
		rc = kci_err_set(err, KCI_INVALID, "index has no manifests array");
		goto out;
	}
	rc = index_entries_select(v, os, arch, index_digest, out, err);
out:
	json_object_put(root);
	return rc;
}

void
kci_images_config_clear(struct kci_image_config *c)
{
	if (!c)
		return;
	kci_strv_free(c->env);
	kci_strv_free(c->entrypoint);
	kci_strv_free(c->cmd);
	kci_strv_free(c->diff_ids);
	free(c->working_dir);
	free(c->user);
	free(c->os);
	free(c->architecture);
	memset(c, 0, sizeof(*c));
}

/* One string of an Env/Cmd/Entrypoint array, checked and copied. */
static int
strv_item(struct json_object *item, int is_env, const char *what, size_t i, char **out,
	  struct kci_err *err)
{
	const char *s;
	int n;

	if (!json_object_is_type(item, json_type_string))
		return kci_err_set(err, KCI_INVALID, "image config: %s[%zu] is not a string", what,
				   i);
	s = json_object_get_string(item);
	n = json_object_get_string_len(item);
	if (n > CONFIG_STRING_MAX)
		return kci_err_set(err, KCI_INVALID,
				   "image config: %s[%zu] is longer than %d bytes", what, i,
				   CONFIG_STRING_MAX);
	if (strlen(s) != (size_t)n)
		return kci_err_set(err, KCI_INVALID, "image config: %s[%zu] contains a NUL byte",
				   what, i);
	if (is_env && (s[0] == '=' || !strchr(s, '=')))
		return kci_err_set(err, KCI_INVALID, "image config: %s[%zu] is not KEY=VALUE", what,
				   i);
	*out = kci_xstrdup(s);
	return 0;
}

/* A string array member; absent or null leaves *out NULL. */
static int
get_strv(struct json_object *obj, const char *key, int is_env, char ***out, struct kci_err *err)
{
	struct json_object *v;
	char **vec;
	size_t n;
	int rc;

	*out = NULL;
	if (!obj || !json_object_object_get_ex(obj, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return kci_err_set(err, KCI_INVALID, "image config: %s is not an array", key);
	n = json_object_array_length(v);
	if (n > CONFIG_STRV_MAX)
		return kci_err_set(err, KCI_INVALID,
				   "image config: %s has %zu entries; kci allows %d", key, n,
				   CONFIG_STRV_MAX);
	vec = kci_xcalloc(n + 1, sizeof(*vec));
	for (size_t i = 0; i < n; i++)
		if ((rc = strv_item(json_object_array_get_idx(v, i), is_env, key, i, &vec[i],
				    err)) < 0) {
			kci_strv_free(vec);
			return rc;
		}
	*out = vec;
	return 0;
}

/* A string member copied to the heap; absent, null or "" leave *out NULL. */
static int
get_dup(struct json_object *obj, const char *key, int required, char **out, struct kci_err *err)
{
	char buf[4096];
	int rc;

	*out = NULL;
	if (!obj)
		return 0;
	if ((rc = get_str(obj, key, required, buf, sizeof(buf), "image config", err)) < 0)
		return rc;
	if (buf[0])
		*out = kci_xstrdup(buf);
	return 0;
}

static int
config_parse_rootfs(struct json_object *root, struct kci_image_config *c, struct kci_err *err)
{
	struct json_object *rootfs, *ids;
	char type[32];
	size_t n;
	int rc;

	if (!json_object_object_get_ex(root, "rootfs", &rootfs) ||
	    !json_object_is_type(rootfs, json_type_object))
		return kci_err_set(err, KCI_INVALID, "image config has no rootfs object");
	if ((rc = get_str(rootfs, "type", 1, type, sizeof(type), "image config rootfs", err)) < 0)
		return rc;
	if (strcmp(type, "layers") != 0)
		return kci_err_set(err, KCI_INVALID, "image config: rootfs type is not \"layers\"");
	if (!json_object_object_get_ex(rootfs, "diff_ids", &ids) ||
	    !json_object_is_type(ids, json_type_array))
		return kci_err_set(err, KCI_INVALID, "image config has no rootfs.diff_ids array");
	n = json_object_array_length(ids);
	if (n > MANIFEST_LAYERS_MAX)
		return kci_err_set(err, KCI_INVALID, "image config has %zu diff_ids; kci allows %d",
				   n, MANIFEST_LAYERS_MAX);
	c->diff_ids = kci_xcalloc(n + 1, sizeof(*c->diff_ids));
	for (size_t i = 0; i < n; i++) {
		struct json_object *id = json_object_array_get_idx(ids, i);
		const char *s =
			json_object_is_type(id, json_type_string) ? json_object_get_string(id) : "";
		if ((rc = digest_check(s, "image config diff_id", err)) < 0)
			return rc;
		if (json_object_get_string_len(id) != 71)
			return kci_err_set(err, KCI_INVALID,
					   "image config diff_id %zu contains a NUL byte", i);
		c->diff_ids[i] = kci_xstrdup(s);
	}
	return 0;
}

int
image_config_parse(const char *body, size_t len, struct kci_image_config *out, struct kci_err *err)
{
	struct json_object *root = NULL, *cfg = NULL;
	struct kci_image_config c = { 0 };
	int rc;

	if ((rc = image_json_parse(body, len, IMAGE_CONFIG_MAX, "image config", &root, err)) < 0)
		return rc;
	if ((rc = get_dup(root, "os", 1, &c.os, err)) < 0 ||
	    (rc = get_dup(root, "architecture", 1, &c.architecture, err)) < 0)
		goto out;
	if (!c.os || !c.architecture) {
		rc = kci_err_set(err, KCI_INVALID, "image config: os or architecture is empty");
		goto out;
	}
	/* "config" is optional: an image built FROM scratch may carry none. */
	if (json_object_object_get_ex(root, "config", &cfg) && cfg &&
	    !json_object_is_type(cfg, json_type_object)) {
		rc = kci_err_set(err, KCI_INVALID, "image config: config is not an object");
		goto out;
	}
	if ((rc = get_strv(cfg, "Env", 1, &c.env, err)) < 0 ||
	    (rc = get_strv(cfg, "Entrypoint", 0, &c.entrypoint, err)) < 0 ||
	    (rc = get_strv(cfg, "Cmd", 0, &c.cmd, err)) < 0 ||
	    (rc = get_dup(cfg, "WorkingDir", 0, &c.working_dir, err)) < 0 ||
	    (rc = get_dup(cfg, "User", 0, &c.user, err)) < 0 ||
	    (rc = config_parse_rootfs(root, &c, err)) < 0)
		goto out;
	if (!c.env)
		c.env = kci_xcalloc(1, sizeof(*c.env));
	*out = c;
	memset(&c, 0, sizeof(c));
out:
	kci_images_config_clear(&c);
	json_object_put(root);
	return rc;
}

/* A string member cleaned for printing, cut to size; "" if absent. */
static void
member_text(struct json_object *obj, const char *key, char *out, size_t size)
{
	struct json_object *v;

	out[0] = '\0';
	if (json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string))
		text_clean(out, size, json_object_get_string(v),
			   (size_t)json_object_get_string_len(v));
}

void
registry_errors_text(const char *body, size_t len, char *out, size_t size)
{
	struct json_object *root = NULL, *errors;
	struct kci_err err = KCI_ERR_INIT;
	size_t used = 0, n;

	out[0] = '\0';
	if (len > ERRORS_BODY_MAX ||
	    image_json_parse(body, len, ERRORS_BODY_MAX, "error", &root, &err) < 0)
		return;
	if (!json_object_object_get_ex(root, "errors", &errors) ||
	    !json_object_is_type(errors, json_type_array))
		goto out;
	n = json_object_array_length(errors);
	for (size_t i = 0; i < n && i < 3 && used + 1 < size; i++) {
		struct json_object *e = json_object_array_get_idx(errors, i);
		char code[64], msg[256], clean[400];
		if (!json_object_is_type(e, json_type_object))
			continue;
		/* Only decorates a message: overlong fields are cut, not fatal. */
		member_text(e, "code", code, sizeof(code));
		member_text(e, "message", msg, sizeof(msg));
		if (!code[0] && !msg[0])
			continue;
		snprintf(clean, sizeof(clean), "%s%s%s", code, code[0] && msg[0] ? ": " : "", msg);
		used += (size_t)snprintf(out + used, size - used, "%s%s", used ? "; " : "", clean);
		if (used >= size)
			used = size - 1;
	}
out:
	json_object_put(root);
}
