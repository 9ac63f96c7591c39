/*
 * The blob store: an OCI image layout (oci-layout, index.json, blobs/sha256/)
 * under KCI_HOME/store. Blobs become visible only by rename() after their
 * digest and size are verified and the data is fsynced, so a killed pull
 * leaves at most a temp file, which a later sweep removes.
 */
#include "images/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/xalloc.h"

#define INDEX_MAX	   (16u << 20)
#define REF_ANNOTATION	   "org.opencontainers.image.ref.name"
#define CREATED_ANNOTATION "io.kci.created"

struct kci_store {
	char *dir;
	char *blobs; /* dir/blobs/sha256 */
	int gc_fd;   /* gc.lock */
	int gc_locked;
};

static int
valid_digest(const char *d)
{
	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return 0;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int
write_small(const char *path, const char *text, struct kci_err *err)
{
	char *tmp = NULL;
	int fd = kci_tmpfile_near(path, &tmp, err), rc;

	if (fd < 0)
		return fd;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		rc = kci_err_sys(err, errno, "write %s", tmp);
		close(fd);
		unlink(tmp);
	} else {
		rc = kci_commit_file(fd, tmp, path, err);
	}
	free(tmp);
	return rc;
}

/*
 * Creates a file with `text` unless it exists. link() rather than rename():
 * two kci opening a new store at once must not let the second replace an
 * index.json the first has already recorded a pull in.
 */
static int
create_once(const char *path, const char *text, struct kci_err *err)
{
	char *tmp = NULL;
	int fd, rc = 0;

	if (access(path, F_OK) == 0)
		return 0;
	if ((fd = kci_tmpfile_near(path, &tmp, err)) < 0)
		return fd;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fsync(fd) < 0)
		rc = kci_err_sys(err, errno, "write %s", tmp);
	else if (link(tmp, path) < 0 && errno != EEXIST)
		rc = kci_err_sys(err, errno, "create %s", path);
	close(fd);
	unlink(tmp);
	free(tmp);
	return rc;
}

int
store_new(struct kci_store **out, const char *dir, struct kci_err *err)
{
	struct kci_store *s = kci_xcalloc(1, sizeof(*s));
	char *layout = NULL, *lock = NULL, *index = NULL;
	int rc;

	s->dir = kci_xstrdup(dir);
	s->blobs = kci_xasprintf("%s/blobs/sha256", dir);
	s->gc_fd = -1;
	if ((rc = kci_mkdir_p(s->blobs, 0700, err)) < 0)
		goto out;
	layout = kci_xasprintf("%s/oci-layout", dir);
	index = kci_xasprintf("%s/index.json", dir);
	if ((rc = create_once(layout, "{\"imageLayoutVersion\":\"1.0.0\"}", err)) < 0 ||
	    (rc = create_once(index, "{\"schemaVersion\":2,\"manifests\":[]}", err)) < 0)
		goto out;
	lock = kci_xasprintf("%s/gc.lock", dir);
	if ((s->gc_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		rc = kci_err_sys(err, errno, "open %s", lock);
		goto out;
	}
	*out = s;
	s = NULL;
out:
	free(layout);
	free(lock);
	free(index);
	store_free(s);
	return rc < 0 ? kci_err_prefix(err, "image store %s", dir) : 0;
}

void
store_free(struct kci_store *s)
{
	if (!s)
		return;
	if (s->gc_fd >= 0)
		close(s->gc_fd);
	free(s->dir);
	free(s->blobs);
	free(s);
}

const char *
store_dir(const struct kci_store *s)
{
	return s->dir;
}

int
store_gc_lock(struct kci_store *s, int exclusive, struct kci_err *err)
{
	while (flock(s->gc_fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
		if (errno != EINTR)
			return kci_err_sys(err, errno, "lock the image store");
	s->gc_locked = 1;
	return 0;
}

void
store_gc_unlock(struct kci_store *s)
{
	if (s->gc_locked)
		flock(s->gc_fd, LOCK_UN);
	s->gc_locked = 0;
}

int
store_blob_path(const struct kci_store *s, const char *digest, char **out, struct kci_err *err)
{
	if (!valid_digest(digest))
		return kci_err_set(err, KCI_INVALID, "malformed digest '%.80s'", digest);
	*out = kci_xasprintf("%s/%s", s->blobs, digest + 7);
	return 0;
}

int
store_has_blob(const struct kci_store *s, const char *digest, int64_t size)
{
	struct stat st;
	char *path = NULL;
	int ok;

	if (store_blob_path(s, digest, &path, NULL) < 0)
		return 0;
	ok = stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size < 0 || st.st_size == size);
	free(path);
	return ok;
}

int
store_writer_begin(struct kci_store *s, struct store_writer *w, struct kci_err *err)
{
	char *base = kci_xasprintf("%s/.blob", s->blobs);
	int fd = kci_tmpfile_near(base, &w->tmp_path, err);

	free(base);
	if (fd < 0)
		return fd;
	w->fd = fd;
	return 0;
}

void
store_writer_abort(struct store_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp_path)
		unlink(w->tmp_path);
	free(w->tmp_path);
	w->fd = -1;
	w->tmp_path = NULL;
}

/* sha256 of a file as "sha256:<hex>", and its size. */
static int
hash_file(const char *path, char out[72], int64_t *size, struct kci_err *err)
{
	struct kci_sha256 *h = kci_sha256_new();
	char hex[65];
	struct stat st;
	int rc;

	if ((rc = kci_sha256_update_file(h, path, err)) < 0) {
		kci_sha256_free(h);
		return rc;
	}
	kci_sha256_hex(h, hex);
	snprintf(out, 72, "sha256:%s", hex);
	*size = stat(path, &st) == 0 ? st.st_size : -1;
	return 0;
}

int
store_writer_commit(struct kci_store *s, struct store_writer *w, const char *digest, int64_t size,
		    int verified, struct kci_err *err)
{
	char actual[72];
	char *path = NULL;
	int64_t actual_size;
	int rc;

	if ((rc = store_blob_path(s, digest, &path, err)) < 0)
		goto out;
	if (!verified) {
		if ((rc = hash_file(w->tmp_path, actual, &actual_size, err)) < 0)
			goto out;
		if (strcmp(actual, digest) != 0) {
			rc = kci_err_set(err, KCI_DIGEST,
					 "blob %s: digest mismatch (content is %s)", digest,
					 actual);
			goto out;
		}
		if (size >= 0 && actual_size != size) {
			rc = kci_err_set(err, KCI_DIGEST, "blob %s: size %lld, expected %lld",
					 digest, (long long)actual_size, (long long)size);
			goto out;
		}
	}
	(void)fchmod(w->fd, 0444);
	rc = kci_commit_file(w->fd, w->tmp_path, path, err);
	w->fd = -1;
	free(w->tmp_path);
	w->tmp_path = NULL;
out:
	if (w->tmp_path)
		store_writer_abort(w);
	free(path);
	return rc;
}

int
store_put_bytes(struct kci_store *s, const void *buf, size_t len, const char *digest,
		struct kci_err *err)
{
	struct store_writer w = { .fd = -1 };
	int rc;

	if (store_has_blob(s, digest, (int64_t)len))
		return 0;
	if ((rc = store_writer_begin(s, &w, err)) < 0)
		return rc;
	if (write(w.fd, buf, len) != (ssize_t)len) {
		rc = kci_err_sys(err, errno, "write blob %s", digest);
		store_writer_abort(&w);
		return rc;
	}
	return store_writer_commit(s, &w, digest, (int64_t)len, 0, err);
}

int
store_read_blob(const struct kci_store *s, const char *digest, size_t max, char **out, size_t *len,
		struct kci_err *err)
{
	struct kci_sha256 *h;
	char hex[65], *path = NULL, *buf = NULL;
	size_t n = 0;
	int rc;

	if ((rc = store_blob_path(s, digest, &path, err)) < 0)
		return rc;
	rc = kci_read_file(path, max, &buf, &n, err);
	free(path);
	if (rc < 0)
		return rc;
	/* The store is ours, but a disk can rot and a user can edit: trust, but verify. */
	h = kci_sha256_new();
	kci_sha256_update(h, buf, n);
	kci_sha256_hex(h, hex);
	if (strcmp(hex, digest + 7) != 0) {
		free(buf);
		return kci_err_set(err, KCI_DIGEST,
				   "blob %s in the store is corrupt: digest mismatch", digest);
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Runs fn on index.json under an exclusive lock; fn may modify the array, then it is saved. */
typedef int (*index_fn)(struct json_object *manifests, void *ctx, int *changed,
			struct kci_err *err);

static int
with_index(struct kci_store *s, index_fn fn, void *ctx, struct kci_err *err)
{
	char *lock = kci_xasprintf("%s/index.lock", s->dir);
	char *path = kci_xasprintf("%s/index.json", s->dir);
	struct json_object *root = NULL, *manifests;
	char *text = NULL;
	int fd, rc, changed = 0;

	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		rc = kci_err_sys(err, errno, "lock %s", lock);
		goto out;
	}
	if ((rc = kci_read_file(path, INDEX_MAX, &text, NULL, err)) < 0)
		goto out;
	root = json_tokener_parse(text);
	if (!root || !json_object_object_get_ex(root, "manifests", &manifests) ||
	    !json_object_is_type(manifests, json_type_array)) {
		rc = kci_err_set(err, KCI_INVALID, "%s is damaged: no manifests array", path);
		goto out;
	}
	if ((rc = fn(manifests, ctx, &changed, err)) < 0 || !changed)
		goto out;
	rc = write_small(path, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY), err);
out:
	json_object_put(root);
	free(text);
	if (fd >= 0)
		close(fd);
	free(lock);
	free(path);
	return rc;
}

static const char *
entry_str(struct json_object *entry, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(entry, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static const char *
entry_annotation(struct json_object *entry, const char *key)
{
	struct json_object *ann;

	if (!json_object_object_get_ex(entry, "annotations", &ann))
		return NULL;
	return entry_str(ann, key);
}

/* Index of the entry for ref `name`, or -1. */
static int
find_ref(struct json_object *manifests, const char *name)
{
	size_t n = json_object_array_length(manifests);

	for (size_t i = 0; i < n; i++) {
		const char *r =
			entry_annotation(json_object_array_get_idx(manifests, i), REF_ANNOTATION);
		if (r && strcmp(r, name) == 0)
			return (int)i;
	}
	return -1;
}

struct ref_set_ctx {
	const char *name, *media_type, *digest;
	int64_t size;
};

static int
ref_set_fn(struct json_object *manifests, void *arg, int *changed, struct kci_err *err)
{
	struct ref_set_ctx *c = arg;
	struct json_object *entry = json_object_new_object(), *ann = json_object_new_object();
	char created[32];
	int at = find_ref(manifests, c->name);

	(void)err;
	snprintf(created, sizeof(created), "%lld", (long long)time(NULL));
	json_object_object_add(entry, "mediaType", json_object_new_string(c->media_type));
	json_object_object_add(entry, "digest", json_object_new_string(c->digest));
	json_object_object_add(entry, "size", json_object_new_int64(c->size));
	json_object_object_add(ann, REF_ANNOTATION, json_object_new_string(c->name));
	json_object_object_add(ann, CREATED_ANNOTATION, json_object_new_string(created));
	json_object_object_add(entry, "annotations", ann);
	if (at >= 0)
		json_object_array_put_idx(manifests, (size_t)at, entry);
	else
		json_object_array_add(manifests, entry);
	*changed = 1;
	return 0;
}

int
store_ref_set(struct kci_store *s, const char *name, const char *media_type, const char *digest,
	      int64_t size, struct kci_err *err)
{
	struct ref_set_ctx c = { name, media_type, digest, size };

	if (!valid_digest(digest))
		return kci_err_set(err, KCI_INVALID, "malformed digest '%.80s'", digest);
	return with_index(s, ref_set_fn, &c, err);
}

static int
ref_remove_fn(struct json_object *manifests, void *arg, int *changed, struct kci_err *err)
{
	const char *name = arg;
	int at = find_ref(manifests, name);

	if (at < 0)
		return kci_err_set(err, KCI_NOTFOUND, "no image %s in the store", name);
	json_object_array_del_idx(manifests, (size_t)at, 1);
	*changed = 1;
	return 0;
}

int
store_ref_remove(struct kci_store *s, const char *name, struct kci_err *err)
{
	return with_index(s, ref_remove_fn, (void *)name, err);
}

struct refs_ctx {
	struct store_ref *refs;
	size_t n;
};

static int
refs_fn(struct json_object *manifests, void *arg, int *changed, struct kci_err *err)
{
	struct refs_ctx *c = arg;
	size_t n = json_object_array_length(manifests);

	(void)changed;
	(void)err;
	c->refs = kci_xcalloc(n ? n : 1, sizeof(*c->refs));
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(manifests, i), *v;
		const char *name = entry_annotation(e, REF_ANNOTATION);
		const char *digest = entry_str(e, "digest");
		const char *mt = entry_str(e, "mediaType");
		const char *created = entry_annotation(e, CREATED_ANNOTATION);
		if (!name || !digest || !valid_digest(digest))
			continue;
		struct store_ref *r = &c->refs[c->n++];
		r->name = kci_xstrdup(name);
		r->digest = kci_xstrdup(digest);
		r->media_type = kci_xstrdup(mt ? mt : "");
		r->manifest_size =
			json_object_object_get_ex(e, "size", &v) ? json_object_get_int64(v) : 0;
		r->created = created ? (time_t)strtoll(created, NULL, 10) : 0;
	}
	return 0;
}

int
store_refs(struct kci_store *s, struct store_ref **out, size_t *n, struct kci_err *err)
{
	struct refs_ctx c = { 0 };
	int rc = with_index(s, refs_fn, &c, err);

	if (rc < 0) {
		store_refs_free(c.refs, c.n);
		return rc;
	}
	*out = c.refs;
	*n = c.n;
	return 0;
}

void
store_refs_free(struct store_ref *refs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(refs[i].name);
		free(refs[i].digest);
		free(refs[i].media_type);
	}
	free(refs);
}

int
store_sweep(struct kci_store *s, char *const *keep, uint64_t *freed, struct kci_err *err)
{
	DIR *d = opendir(s->blobs);
	struct dirent *de;
	struct stat st;

	*freed = 0;
	if (!d)
		return kci_err_sys(err, errno, "open %s", s->blobs);
	while ((de = readdir(d))) {
		int kept = 0;
		if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp-") == NULL)
			continue;
		for (size_t i = 0; keep && keep[i] && !kept; i++)
			kept = strcmp(keep[i] + 7, de->d_name) == 0;
		if (kept || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			*freed += (uint64_t)st.st_size;
	}
	closedir(d);
	return 0;
}

void
store_sweep_orphans(struct kci_store *s)
{
	/* Temp blobs, and the temp trees of a `kci load` killed mid-way. */
	kci_sweep_orphans(s->blobs);
	kci_sweep_orphans(s->dir);
}

int
store_verify(struct kci_store *s, size_t *checked, size_t *bad, store_bad_fn on_bad, void *ctx,
	     struct kci_err *err)
{
	DIR *d = opendir(s->blobs);
	struct dirent *de;
	char actual[72], digest[72];
	int64_t size;

	*checked = *bad = 0;
	if (!d)
		return kci_err_sys(err, errno, "open %s", s->blobs);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *path = kci_xasprintf("%s/%s", s->blobs, de->d_name);
		struct kci_err ignored = KCI_ERR_INIT;
		/* Unreadable counts as corrupt: one bad file must not hide the others. */
		int ok = hash_file(path, actual, &size, &ignored) == 0 &&
			 strcmp(actual + 7, de->d_name) == 0;
		(*checked)++;
		if (!ok) {
			(*bad)++;
			snprintf(digest, sizeof(digest), "sha256:%.64s", de->d_name);
			/* A corrupt blob is worse than none: removed, the next pull fetches it
			 * again. */
			unlink(path);
			if (on_bad)
				on_bad(ctx, digest);
		}
		free(path);
	}
	closedir(d);
	return 0;
}
