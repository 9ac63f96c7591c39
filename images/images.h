/*
 * images/: OCI images from registries to verified, unpacked root filesystems.
 * Registry client (libcurl), content-addressed store (OCI image layout under
 * KCI_HOME/store), and secure layer unpacking (libarchive, confined child).
 * Everything from a registry or an archive is untrusted.
 */
#ifndef KCI_IMAGES_IMAGES_H
#define KCI_IMAGES_IMAGES_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"

/* ---- references ---- */

/* "alpine" -> registry-1.docker.io / library/alpine : latest. */
struct kci_image_ref {
	char registry[256]; /* host[:port]; Docker Hub is "registry-1.docker.io" */
	char repo[256];	    /* "library/alpine", "team/builder" */
	char tag[128];	    /* "" when only a digest was given */
	char digest[80];    /* "sha256:<64 hex>" or "" */
};

/* Parses and normalises a reference; KCI_INVALID with a message naming the problem. */
int kci_image_ref_parse(const char *s, struct kci_image_ref *out, struct kci_err *err);
/* Canonical text: "registry/repo:tag" or "registry/repo@digest" (buf >= 512 bytes). */
void kci_image_ref_format(const struct kci_image_ref *r, char *buf, size_t size);
/* Whether plain HTTP is allowed for this registry (loopback only). */
int kci_image_ref_is_loopback(const struct kci_image_ref *r);

/* ---- image configuration (what `kci exec --image` honours) ---- */

struct kci_image_config {
	char **env;	   /* NULL-terminated "K=V" */
	char **entrypoint; /* NULL-terminated, or NULL */
	char **cmd;	   /* NULL-terminated, or NULL */
	char *working_dir; /* or NULL */
	char *user;	   /* or NULL */
	char *os, *architecture;
	char **diff_ids; /* NULL-terminated "sha256:..." in layer order */
};
void kci_image_config_clear(struct kci_image_config *c);

/* ---- the local image store ---- */

struct kci_images;

/* Opens the store under home/store (creating it). */
int kci_images_open(struct kci_images **out, const char *home, struct kci_err *err);
void kci_images_free(struct kci_images *im);

/* Progress of one blob download; the CLI renders it, the library prints nothing. */
typedef void (*kci_pull_progress_fn)(void *ctx, const char *digest, uint64_t done, uint64_t total);

struct kci_pull_opts {
	kci_pull_progress_fn progress;
	void *ctx;
	unsigned parallel;		     /* layer downloads at once; 0 = default (4) */
	const volatile sig_atomic_t *cancel; /* non-zero stops the pull (KCI_CANCELED) */
};
#define KCI_PULL_OPTS_INIT                                                                         \
	{                                                                                          \
		NULL, NULL, 0, NULL                                                                \
	}

/*
 * Pulls `ref` (tag or digest; an index resolves to linux/amd64) into the
 * store: every blob verified before it becomes visible, then the ref is
 * recorded. Safe to run concurrently with itself. *digest gets the image
 * manifest's digest.
 */
int kci_image_pull(struct kci_images *im, const char *ref, const struct kci_pull_opts *o,
		   char digest[72], struct kci_err *err);

/*
 * Loads an OCI image-layout directory or a `docker save` tarball; every blob
 * is verified. *refs (NULL-terminated, malloc'd) lists what was loaded.
 */
int kci_image_load(struct kci_images *im, const char *path, char ***refs, struct kci_err *err);

struct kci_image_info {
	char *ref;
	char digest[72];	/* manifest */
	char config_digest[72]; /* the image's identity: rootfs disks are keyed by it */
	uint64_t size;		/* manifest + config + layers, compressed */
	time_t created;		/* when it entered the store */
};

int kci_image_list(struct kci_images *im, struct kci_image_info **out, size_t *n,
		   struct kci_err *err);
void kci_image_info_free(struct kci_image_info *infos, size_t n);
/* Forgets a ref (KCI_NOTFOUND if absent); blobs go at the next prune. */
int kci_image_remove(struct kci_images *im, const char *ref, struct kci_err *err);
/* Deletes blobs no ref needs; *keep_configs (NULL-terminated) lists the images still present. */
int kci_image_prune(struct kci_images *im, uint64_t *freed, char ***keep_configs,
		    struct kci_err *err);
/*
 * Re-hashes every blob in the store; corrupt ones are removed (a later pull
 * fetches them again) and reported to on_bad (may be NULL).
 */
int kci_image_verify(struct kci_images *im, size_t *checked, size_t *bad,
		     void (*on_bad)(void *ctx, const char *digest), void *ctx, struct kci_err *err);

/*
 * Looks `ref` up in the store (no network): its config, config digest, and
 * the layer blob paths in order (NULL-terminated, malloc'd). KCI_NOTFOUND
 * when the store has no such image.
 */
int kci_image_resolve(struct kci_images *im, const char *ref, struct kci_image_config *cfg,
		      char config_digest[72], char ***layers, struct kci_err *err);

/*
 * Unpacks layers (in order) into rootfs_dir in a child process confined with
 * seccomp (no network, no exec); diff_ids are checked. Caller removes the
 * dir on failure.
 */
int kci_image_unpack(const char *rootfs_dir, const char *const *blob_paths,
		     const char *const *diff_ids, size_t n, struct kci_err *err);

#endif
