/* Private to images/: the content-addressed blob store (OCI image layout under KCI_HOME/store). */
#ifndef KCI_IMAGES_STORE_H
#define KCI_IMAGES_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"

struct kci_store;

/* A blob being written: data goes to a temp file in the store, visible only after commit. */
struct store_writer {
	int fd;
	char *tmp_path;
};

/* One ref in the store's index.json. */
struct store_ref {
	char *name;	       /* canonical reference, "127.0.0.1:5000/team/builder:1" */
	char *digest;	       /* manifest digest */
	char *media_type;      /* manifest media type */
	int64_t manifest_size; /* bytes */
	time_t created;	       /* when it was pulled or loaded */
};

/*
 * Opens (creating if needed) the store at dir: oci-layout, index.json and
 * blobs/sha256/. Returns the store; errors name the path.
 */
int store_new(struct kci_store **out, const char *dir, struct kci_err *err);
void store_free(struct kci_store *s);
const char *store_dir(const struct kci_store *s);

/* Path of a blob (whether or not it exists), malloc'd. KCI_INVALID for a malformed digest. */
int store_blob_path(const struct kci_store *s, const char *digest, char **out, struct kci_err *err);
/* 1 if the blob is present with the expected size (size < 0: any), 0 if not. */
int store_has_blob(const struct kci_store *s, const char *digest, int64_t size);

int store_writer_begin(struct kci_store *s, struct store_writer *w, struct kci_err *err);
/* Discards an unfinished blob. */
void store_writer_abort(struct store_writer *w);
/*
 * Makes the blob visible as `digest` after fsync. With `verified` 0 the file
 * is re-hashed first and must match digest and size (KCI_DIGEST otherwise,
 * and the temp file is removed); with 1 the caller hashed the stream itself.
 */
int store_writer_commit(struct kci_store *s, struct store_writer *w, const char *digest,
			int64_t size, int verified, struct kci_err *err);
/* Stores bytes already in memory (manifests, configs), verifying their digest. */
int store_put_bytes(struct kci_store *s, const void *buf, size_t len, const char *digest,
		    struct kci_err *err);
/* Reads a whole blob (at most max bytes), verifying it against its digest. */
int store_read_blob(const struct kci_store *s, const char *digest, size_t max, char **out,
		    size_t *len, struct kci_err *err);

/* Points `name` at a manifest (replacing any previous target), atomically. */
int store_ref_set(struct kci_store *s, const char *name, const char *media_type, const char *digest,
		  int64_t size, struct kci_err *err);
/* Removes a ref; KCI_NOTFOUND if there is none. */
int store_ref_remove(struct kci_store *s, const char *name, struct kci_err *err);
/* Lists refs (malloc'd array, free with store_refs_free). */
int store_refs(struct kci_store *s, struct store_ref **out, size_t *n, struct kci_err *err);
void store_refs_free(struct store_ref *refs, size_t n);

/*
 * Pulls and loads hold the GC lock shared while they add blobs that no ref
 * names yet; a sweep holds it exclusively, so it never deletes them.
 */
int store_gc_lock(struct kci_store *s, int exclusive, struct kci_err *err);
void store_gc_unlock(struct kci_store *s);

/* Removes every blob not in `keep` (NULL-terminated digests) and stale temp files. */
int store_sweep(struct kci_store *s, char *const *keep, uint64_t *freed, struct kci_err *err);

/*
 * Removes the temp files (blobs, index.json) of kci processes that are gone,
 * as a pull killed mid-blob leaves them; a live writer's are never touched
 * (kci_tmp_is_orphan), so any GC lock will do. Best effort: errors are ignored.
 */
void store_sweep_orphans(struct kci_store *s);

typedef void (*store_bad_fn)(void *ctx, const char *digest);
/*
 * Re-hashes every blob; *bad counts those that do not match their name (or
 * cannot be read). Those are removed, so a later pull fetches them again,
 * and reported to on_bad (may be NULL). Hold the GC lock exclusively.
 */
int store_verify(struct kci_store *s, size_t *checked, size_t *bad, store_bad_fn on_bad, void *ctx,
		 struct kci_err *err);

#endif
