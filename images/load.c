/*
 * `kci load`: images from an OCI image-layout directory or a `docker save`
 * tarball. Both are untrusted: every blob is copied into the store through
 * digest verification, paths inside them are resolved beneath their root
 * with no symlinks, and a tarball is extracted by the confined extractor
 * with only files and dirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fdio.h"
#include "common/fs.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "images/internal.h"

#define LOAD_JSON_MAX (4u << 20)

/* Opens `rel` beneath dirfd: no escaping the root, no symlinks anywhere on the way. */
static int
open_beneath(int dirfd, const char *rel, struct kci_err *err)
{
	int fd = kci_openat2(dirfd, rel, O_RDONLY,
			     RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	struct stat st;

	if (fd < 0)
		return kci_err_sys(err, -fd, "open %.200s in the image", rel);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return kci_err_set(err, KCI_INVALID, "%.200s in the image is not a regular file",
				   rel);
	}
	return fd;
}

static struct json_object *
parse_json(const char *buf, size_t len)
{
	struct json_tokener *tok = json_tokener_new_ex(16);
	struct json_object *obj;

	if (!tok)
		return NULL;
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

static int
read_json(int dirfd, const char *rel, struct json_object **out, struct kci_err *err)
{
	int fd = open_beneath(dirfd, rel, err), rc = 0;
	char *buf = kci_xmalloc(LOAD_JSON_MAX + 1);
	size_t have = 0;
	ssize_t n;

	if (fd < 0) {
		free(buf);
		return fd;
	}
	while ((n = read(fd, buf + have, LOAD_JSON_MAX + 1 - have)) > 0 && have <= LOAD_JSON_MAX)
		have += (size_t)n;
	close(fd);
	if (have > LOAD_JSON_MAX)
		rc = kci_err_set(err, KCI_INVALID, "%s is larger than %u bytes", rel,
				 LOAD_JSON_MAX);
	else if (!(*out = parse_json(buf, have)))
		rc = kci_err_set(err, KCI_INVALID, "%s is not valid JSON", rel);
	free(buf);
	return rc;
}

static const char *
get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Copies an open file into the store as `digest` (re-hashed on commit); size < 0: any. */
static int
import_fd(struct kci_images *im, int fd, const char *digest, int64_t size, struct kci_err *err)
{
	struct store_writer w = { .fd = -1 };
	char buf[1 << 16];
	ssize_t n;
	int rc;

	if (store_has_blob(im->store, digest, size))
		return 0;
	if ((rc = store_writer_begin(im->store, &w, err)) < 0)
		return rc;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if ((rc = kci_write_all(w.fd, buf, (size_t)n)) < 0) {
			store_writer_abort(&w);
			return kci_err_sys(err, -rc, "write blob %s", digest);
		}
	}
	if (n < 0) {
		rc = kci_err_sys(err, errno, "read blob %s", digest);
		store_writer_abort(&w);
		return rc;
	}
	return store_writer_commit(im->store, &w, digest, size, 0, err);
}

/* Imports blobs/sha256/<hex> of an OCI layout. */
static int
import_blob(struct kci_images *im, int dirfd, const char *digest, int64_t size, struct kci_err *err)
{
	char rel[128];
	int fd, rc;

	if (!digest_is_valid(digest))
		return kci_err_set(err, KCI_INVALID, "malformed digest '%.80s'", digest);
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", digest + 7);
	if ((fd = open_beneath(dirfd, rel, err)) < 0)
		return fd;
	rc = import_fd(im, fd, digest, size, err);
	close(fd);
	return rc;
}

/* Imports a manifest (choosing linux/amd64 from an index) and everything it names. */
static int
import_image(struct kci_images *im, int dirfd, const char *digest, const char *media_type,
	     int64_t size, char *final_digest, char *final_type, struct kci_err *err)
{
	struct descriptor chosen;
	struct manifest m = { 0 };
	char *body = NULL;
	size_t len;
	int rc;

	if ((rc = import_blob(im, dirfd, digest, size, err)) < 0 ||
	    (rc = store_read_blob(im->store, digest, MANIFEST_MAX, &body, &len, err)) < 0)
		return rc;
	if (manifest_kind_of(media_type) == MANIFEST_INDEX) {
		rc = manifest_index_select(body, len, media_type, "linux", "amd64", digest, &chosen,
					   err);
		free(body);
		if (rc < 0)
			return rc;
		return import_image(im, dirfd, chosen.digest, chosen.media_type, chosen.size,
				    final_digest, final_type, err);
	}
	rc = manifest_parse(body, len, media_type, &m, err);
	free(body);
	if (rc < 0)
		return rc;
	rc = import_blob(im, dirfd, m.config.digest, m.config.size, err);
	for (size_t i = 0; i < m.n_layers && rc == 0; i++)
		rc = import_blob(im, dirfd, m.layers[i].digest, m.layers[i].size, err);
	if (rc == 0) {
		snprintf(final_digest, DIGEST_BUF, "%s", digest);
		snprintf(final_type, 128, "%s", m.media_type);
	}
	manifest_clear(&m);
	return rc;
}

static int64_t
blob_size(struct kci_images *im, const char *digest)
{
	struct stat st;
	char *path = NULL;
	int64_t size = 0;

	if (store_blob_path(im->store, digest, &path, NULL) == 0 && stat(path, &st) == 0)
		size = st.st_size;
	free(path);
	return size;
}

/*
 * The name an OCI layout gives an image: a full reference in the ref.name
 * annotation is used as is; a bare tag ("1.0", as skopeo and umoci write)
 * becomes localhost/<hint>:<tag>.
 */
static int
layout_ref_name(const char *annotation, const char *hint, char *out, size_t size,
		struct kci_err *err)
{
	char *full;
	int rc;

	if (strchr(annotation, '/'))
		return image_canonical(annotation, out, size, NULL, err);
	full = kci_xasprintf("localhost/%s:%s", hint, annotation);
	rc = image_canonical(full, out, size, NULL, err);
	free(full);
	return rc;
}

static int
load_layout(struct kci_images *im, int dirfd, const char *hint, char ***refs, size_t *nrefs,
	    struct kci_err *err)
{
	struct json_object *index = NULL, *manifests;
	int rc;

	if ((rc = read_json(dirfd, "index.json", &index, err)) < 0)
		return rc;
	if (!json_object_object_get_ex(index, "manifests", &manifests) ||
	    !json_object_is_type(manifests, json_type_array)) {
		json_object_put(index);
		return kci_err_set(err, KCI_INVALID, "index.json has no manifests array");
	}
	size_t n = json_object_array_length(manifests);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct json_object *e = json_object_array_get_idx(manifests, i), *ann = NULL, *sz;
		const char *digest = get_str(e, "digest"), *type = get_str(e, "mediaType");
		const char *name;
		char final_digest[DIGEST_BUF], final_type[128], ref[600];
		int64_t size =
			json_object_object_get_ex(e, "size", &sz) ? json_object_get_int64(sz) : -1;

		json_object_object_get_ex(e, "annotations", &ann);
		/* docker save (25+) keeps the full name here and only the tag in ref.name. */
		name = get_str(ann, "io.containerd.image.name");
		if (!name)
			name = get_str(ann, "org.opencontainers.image.ref.name");
		if (!digest || !type)
			rc = kci_err_set(err, KCI_INVALID,
					 "index.json entry %zu lacks digest or mediaType", i);
		else if (!name)
			continue; /* nothing to call it: skip rather than invent a name */
		else if ((rc = layout_ref_name(name, hint, ref, sizeof(ref), err)) == 0 &&
			 (rc = import_image(im, dirfd, digest, type, size, final_digest, final_type,
					    err)) == 0 &&
			 (rc = store_ref_set(im->store, ref, final_type, final_digest,
					     blob_size(im, final_digest), err)) == 0)
			kci_strv_add(refs, nrefs, ref);
	}
	json_object_put(index);
	if (rc == 0 && *nrefs == 0)
		rc = kci_err_set(err, KCI_INVALID,
				 "index.json names no image (no ref.name annotation)");
	return rc;
}

/* sha256 of an open file as "sha256:<hex>" and its size; rewinds the fd. */
static int
hash_fd(int fd, char out[DIGEST_BUF], int64_t *size, struct kci_err *err)
{
	struct kci_sha256 *h = kci_sha256_new();
	char buf[1 << 16], hex[65];
	ssize_t n;

	*size = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		kci_sha256_update(h, buf, (size_t)n);
		*size += n;
	}
	if (n < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		kci_sha256_free(h);
		return kci_err_sys(err, errno, "read");
	}
	kci_sha256_hex(h, hex);
	snprintf(out, DIGEST_BUF, "sha256:%s", hex);
	return 0;
}

/* Imports a file of a `docker save` tree, named by its own digest. */
static int
import_named(struct kci_images *im, int dirfd, const char *rel, char digest[DIGEST_BUF],
	     int64_t *size, struct kci_err *err)
{
	int fd = open_beneath(dirfd, rel, err), rc;

	if (fd < 0)
		return fd;
	if ((rc = hash_fd(fd, digest, size, err)) == 0)
		rc = import_fd(im, fd, digest, *size, err);
	close(fd);
	return rc < 0 ? kci_err_prefix(err, "%.200s", rel) : 0;
}

/* Imports the config (bounded), parses it and checks its platform like a pull does. */
static int
import_config(struct kci_images *im, int dirfd, const char *rel, char digest[DIGEST_BUF],
	      int64_t *size, struct kci_image_config *cfg, struct kci_err *err)
{
	char *body = NULL;
	size_t len;
	struct stat st;
	int fd = open_beneath(dirfd, rel, err), rc;

	if (fd < 0)
		return fd;
	rc = fstat(fd, &st) == 0 && st.st_size > IMAGE_CONFIG_MAX
		     ? kci_err_set(err, KCI_INVALID, "%.200s is larger than %u bytes", rel,
				   IMAGE_CONFIG_MAX)
		     : 0;
	close(fd);
	if (rc < 0 || (rc = import_named(im, dirfd, rel, digest, size, err)) < 0 ||
	    (rc = store_read_blob(im->store, digest, IMAGE_CONFIG_MAX, &body, &len, err)) < 0)
		return rc;
	rc = image_config_parse(body, len, cfg, err);
	free(body);
	if (rc == 0 && ((cfg->os && strcmp(cfg->os, "linux") != 0) ||
			(cfg->architecture && strcmp(cfg->architecture, "amd64") != 0)))
		rc = kci_err_set(err, KCI_INVALID, "image is %s/%s; kci runs linux/amd64 guests",
				 cfg->os ? cfg->os : "?",
				 cfg->architecture ? cfg->architecture : "?");
	return rc;
}

/* One manifest.json entry of `docker save`: config, layer tars, RepoTags. */
static int
load_docker_entry(struct kci_images *im, int dirfd, struct json_object *e, char ***refs,
		  size_t *nrefs, struct kci_err *err)
{
	struct json_object *layers, *tags, *m = json_object_new_object(), *arr;
	const char *config = get_str(e, "Config");
	struct kci_image_config cfg = { 0 };
	char digest[DIGEST_BUF];
	int64_t size;
	size_t ndiff = 0;
	int rc;

	if (!config || !json_object_object_get_ex(e, "Layers", &layers) ||
	    !json_object_is_type(layers, json_type_array) ||
	    json_object_array_length(layers) > MANIFEST_LAYERS_MAX) {
		json_object_put(m);
		return kci_err_set(err, KCI_INVALID, "manifest.json: entry lacks Config or Layers");
	}
	json_object_object_add(m, "schemaVersion", json_object_new_int(2));
	json_object_object_add(m, "mediaType", json_object_new_string(MEDIA_OCI_MANIFEST));
	if ((rc = import_config(im, dirfd, config, digest, &size, &cfg, err)) < 0)
		goto out;
	while (cfg.diff_ids && cfg.diff_ids[ndiff])
		ndiff++;
	if (ndiff != json_object_array_length(layers)) {
		rc = kci_err_set(err, KCI_INVALID, "config %s lists %zu layers, manifest.json %zu",
				 digest, ndiff, json_object_array_length(layers));
		goto out;
	}
	struct json_object *c = json_object_new_object();
	json_object_object_add(c, "mediaType", json_object_new_string(MEDIA_OCI_CONFIG));
	json_object_object_add(c, "digest", json_object_new_string(digest));
	json_object_object_add(c, "size", json_object_new_int64(size));
	json_object_object_add(m, "config", c);
	arr = json_object_new_array();
	json_object_object_add(m, "layers", arr);
	for (size_t i = 0; i < json_object_array_length(layers); i++) {
		struct json_object *l = json_object_array_get_idx(layers, i), *d;
		if (!json_object_is_type(l, json_type_string)) {
			rc = kci_err_set(err, KCI_INVALID,
					 "manifest.json: Layers[%zu] is not a path", i);
			goto out;
		}
		/* docker save layers are uncompressed tars: their digest is their diff_id. */
		if ((rc = import_named(im, dirfd, json_object_get_string(l), digest, &size, err)) <
		    0)
			goto out;
		/* The only check a docker save archive allows: layer content against the config. */
		if (strcmp(digest, cfg.diff_ids[i]) != 0) {
			rc = kci_err_set(err, KCI_DIGEST,
					 "layer %zu (%.200s) is %s but the config's diff_id is %s: "
					 "digest mismatch",
					 i, json_object_get_string(l), digest, cfg.diff_ids[i]);
			goto out;
		}
		d = json_object_new_object();
		json_object_object_add(
			d, "mediaType",
			json_object_new_string("application/vnd.oci.image.layer.v1.tar"));
		json_object_object_add(d, "digest", json_object_new_string(digest));
		json_object_object_add(d, "size", json_object_new_int64(size));
		json_object_array_add(arr, d);
	}
	size_t len;
	const char *text = json_object_to_json_string_length(m, JSON_C_TO_STRING_PLAIN, &len);
	struct kci_sha256 *h = kci_sha256_new();
	char hex[65], mdigest[DIGEST_BUF];
	kci_sha256_update(h, text, len);
	kci_sha256_hex(h, hex);
	snprintf(mdigest, sizeof(mdigest), "sha256:%s", hex);
	if ((rc = store_put_bytes(im->store, text, len, mdigest, err)) < 0)
		goto out;
	if (!json_object_object_get_ex(e, "RepoTags", &tags) ||
	    !json_object_is_type(tags, json_type_array) || json_object_array_length(tags) == 0) {
		rc = kci_err_set(err, KCI_INVALID, "manifest.json: image %.19s has no RepoTags",
				 mdigest);
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(tags) && rc == 0; i++) {
		struct json_object *t = json_object_array_get_idx(tags, i);
		char ref[600];
		if (!json_object_is_type(t, json_type_string))
			continue;
		if ((rc = image_canonical(json_object_get_string(t), ref, sizeof(ref), NULL,
					  err)) == 0 &&
		    (rc = store_ref_set(im->store, ref, MEDIA_OCI_MANIFEST, mdigest, (int64_t)len,
					err)) == 0)
			kci_strv_add(refs, nrefs, ref);
	}
out:
	json_object_put(m);
	kci_images_config_clear(&cfg);
	return rc;
}

static int
load_docker(struct kci_images *im, int dirfd, char ***refs, size_t *nrefs, struct kci_err *err)
{
	struct json_object *list = NULL;
	int rc;

	if ((rc = read_json(dirfd, "manifest.json", &list, err)) < 0)
		return rc;
	if (!json_object_is_type(list, json_type_array))
		rc = kci_err_set(err, KCI_INVALID, "manifest.json is not a list");
	for (size_t i = 0; rc == 0 && i < json_object_array_length(list); i++)
		rc = load_docker_entry(im, dirfd, json_object_array_get_idx(list, i), refs, nrefs,
				       err);
	if (rc == 0 && *nrefs == 0)
		rc = kci_err_set(err, KCI_INVALID, "manifest.json names no image");
	json_object_put(list);
	return rc;
}

/*
 * Extracts a tarball into dest with KCI_EXTRACT_LOAD, in the confined child:
 * only regular files and directories, private to kci, so nothing inside can
 * point outside dest; a docker save or OCI layout needs nothing else here.
 */
static int
extract_tar(const char *tar, const char *dest, struct kci_err *err)
{
	struct kci_extract_policy p = KCI_EXTRACT_LOAD;
	int fd = open(tar, O_RDONLY | O_CLOEXEC), rc;
	struct stat st;

	if (fd < 0)
		return kci_err_sys(err, errno, "open %s", tar);
	if (fstat(fd, &st) < 0) {
		rc = kci_err_sys(err, errno, "stat %s", tar);
		goto out;
	}
	/* A plain tar holds at most its own size; compressed, allow a generous ratio. */
	p.max_stream = p.max_bytes = p.max_file = (uint64_t)st.st_size * 16 + (64u << 20);
	rc = kci_images_extract(dest, fd, &p, NULL, NULL, err);
out:
	close(fd);
	return rc;
}

static int
load_dir(struct kci_images *im, const char *dir, const char *hint, char ***refs, size_t *nrefs,
	 struct kci_err *err)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;
	struct stat st;

	if (dirfd < 0)
		return kci_err_sys(err, errno, "open %s", dir);
	if (fstatat(dirfd, "index.json", &st, 0) == 0)
		rc = load_layout(im, dirfd, hint, refs, nrefs, err);
	else if (fstatat(dirfd, "manifest.json", &st, 0) == 0)
		rc = load_docker(im, dirfd, refs, nrefs, err);
	else
		rc = kci_err_set(err, KCI_INVALID,
				 "%s is neither an OCI image layout (index.json) nor a docker save "
				 "archive (manifest.json)",
				 dir);
	close(dirfd);
	return rc;
}

int
kci_images_load(struct kci_images *im, const char *path, char ***refs, struct kci_err *err)
{
	char *copy = kci_xstrdup(path), *hint, *tmp = NULL;
	size_t nrefs = 0;
	struct stat st;
	int rc;

	*refs = NULL;
	hint = basename(copy);
	/* A name for layouts whose ref.name is a bare tag: the directory's, made ref-safe. */
	for (char *p = hint; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_'))
			*p = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : '-';
	if (stat(path, &st) < 0) {
		rc = kci_err_sys(err, errno, "load %s", path);
		goto out;
	}
	if ((rc = store_gc_lock(im->store, 0, err)) < 0)
		goto out;
	if (S_ISDIR(st.st_mode)) {
		rc = load_dir(im, path, hint, refs, &nrefs, err);
	} else {
		/* A temp name (".tmp-<pid>-"): the next pull sweeps it if this kci is killed. */
		tmp = kci_xasprintf("%s/load.tmp-%d-XXXXXX", store_dir(im->store), (int)getpid());
		if (!mkdtemp(tmp)) {
			rc = kci_err_sys(err, errno, "mkdtemp %s", tmp);
			free(tmp);
			tmp = NULL;
		} else if ((rc = extract_tar(path, tmp, err)) == 0) {
			rc = load_dir(im, tmp, hint, refs, &nrefs, err);
		}
	}
	store_gc_unlock(im->store);
	if (rc < 0) {
		kci_err_prefix(err, "load %s", path);
		for (size_t i = 0; i < nrefs; i++)
			free((*refs)[i]);
		free(*refs);
		*refs = NULL;
	}
out:
	if (tmp)
		kci_rm_rf(tmp, NULL);
	free(tmp);
	free(copy);
	return rc;
}
