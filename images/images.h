/*
 * images/: OCI images from registries to verified, unpacked root filesystems.
 * Registry client (libcurl), content-addressed store (OCI image layout under
 * KCI_HOME/store), and the one extractor of untrusted tar archives (libarchive,
 * confined child) that image layers, `kci load` tarballs and job artifacts go
 * through. Everything from a registry or an archive is untrusted.
 */
#ifndef KCI_IMAGES_IMAGES_H
#define KCI_IMAGES_IMAGES_H

#include <stdbool.h>
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
int kci_images_ref_parse(const char *s, struct kci_image_ref *out, struct kci_err *err);
/* Canonical text: "registry/repo:tag" or "registry/repo@digest" (buf >= 512 bytes). */
void kci_images_ref_format(const struct kci_image_ref *r, char *buf, size_t size);
/* Whether plain HTTP is allowed for this registry (loopback only). */
int kci_images_ref_is_loopback(const struct kci_image_ref *r);

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
void kci_images_config_clear(struct kci_image_config *c);

/* ---- the local image store ---- */

struct kci_images;

/* Opens the store under home/store (creating it). */
int kci_images_open(struct kci_images **out, const char *home, struct kci_err *err);
void kci_images_free(struct kci_images *im);

/* Progress of one blob download; the CLI renders it, the library prints nothing. */
typedef void (*kci_pull_progress_fn)(void *ctx, const char *digest, uint64_t done, uint64_t total);

/*
 * The registries an image named by someone other than the operator (a
 * pipeline file) may come from, as the operator granted them: "HOST[:PORT]"
 * ("docker.io" for Docker Hub). Listed registries get the operator's
 * credentials; an unlisted one is never contacted.
 */
struct kci_registry_policy {
	char *const *registries; /* over HTTPS; NULL-terminated or NULL */
	char *const *insecure; /* over plain HTTP (--insecure-registry); NULL-terminated or NULL */
};

/*
 * Whether policy lets `ref` be used; *plain_http says to use HTTP. KCI_INVALID
 * names the registry and how to allow it; a NULL policy allows everything
 * (the operator's own command line).
 */
int kci_images_policy_check(const struct kci_registry_policy *policy, const char *ref,
			    int *plain_http, struct kci_err *err);

/*
 * The cap on one image, unpacked or as its layers: $KCI_IMAGE_MAX (a size such
 * as 32G) or 16 GiB.
 */
uint64_t kci_images_max_bytes(void);

struct kci_pull_opts {
	kci_pull_progress_fn progress;
	void *ctx;
	unsigned parallel;		     /* layer downloads at once; 0 = default (4) */
	const volatile sig_atomic_t *cancel; /* non-zero stops the pull (KCI_CANCELED) */
	/* The ref came from a pipeline: only these registries; NULL = the operator's own pull. */
	const struct kci_registry_policy *policy;
};
#define KCI_PULL_OPTS_INIT                                                                         \
	{                                                                                          \
		NULL, NULL, 0, NULL, NULL                                                          \
	}

/*
 * Pulls `ref` (tag or digest; an index resolves to linux/amd64) into the
 * store: every blob verified before it becomes visible, then the ref is
 * recorded. Safe to run concurrently with itself. *digest gets the image
 * manifest's digest.
 */
int kci_images_pull(struct kci_images *im, const char *ref, const struct kci_pull_opts *o,
		    char digest[72], struct kci_err *err);

/*
 * Loads an OCI image-layout directory or a `docker save` tarball; every blob
 * is verified. *refs (NULL-terminated, malloc'd) lists what was loaded.
 */
int kci_images_load(struct kci_images *im, const char *path, char ***refs, struct kci_err *err);

struct kci_image_info {
	char *ref;
	char digest[72];	/* manifest */
	char config_digest[72]; /* the image's identity: rootfs disks are keyed by it */
	uint64_t size;		/* manifest + config + layers, compressed */
	time_t created;		/* when it entered the store */
};

int kci_images_list(struct kci_images *im, struct kci_image_info **out, size_t *n,
		    struct kci_err *err);
void kci_images_info_free(struct kci_image_info *infos, size_t n);
/* Forgets a ref (KCI_NOTFOUND if absent); blobs go at the next prune. */
int kci_images_remove(struct kci_images *im, const char *ref, struct kci_err *err);
/* Deletes blobs no ref needs; *keep_configs (NULL-terminated) lists the images still present. */
int kci_images_prune(struct kci_images *im, uint64_t *freed, char ***keep_configs,
		     struct kci_err *err);
/*
 * Re-hashes every blob in the store; corrupt ones are removed (a later pull
 * fetches them again) and reported to on_bad (may be NULL).
 */
int kci_images_verify(struct kci_images *im, size_t *checked, size_t *bad,
		      void (*on_bad)(void *ctx, const char *digest), void *ctx,
		      struct kci_err *err);

/*
 * Looks `ref` up in the store (no network): its config, config digest, and
 * the layer blob paths in order (NULL-terminated, malloc'd). KCI_NOTFOUND
 * when the store has no such image.
 */
int kci_images_resolve(struct kci_images *im, const char *ref, struct kci_image_config *cfg,
		       char config_digest[72], char ***layers, struct kci_err *err);

/*
 * Unpacks layers (in order) into rootfs_dir with KCI_EXTRACT_LAYER, all in one
 * confined child; diff_ids (may be NULL) are checked. Their files may add up
 * to max_bytes at most (KCI_NOSPACE beyond, before the file is written: a
 * decompression bomb stops there). Caller removes the dir on failure.
 */
int kci_images_unpack(const char *rootfs_dir, const char *const *blob_paths,
		      const char *const *diff_ids, size_t n, uint64_t max_bytes,
		      struct kci_err *err);

/* ---- untrusted tar archives: one extractor, a policy per kind (extract*.c) ---- */

/* What an entry of a kind does. */
enum kci_extract_action {
	KCI_EXTRACT_REFUSE, /* the archive is refused (KCI_INVALID) */
	KCI_EXTRACT_SKIP,   /* the entry is passed over, its data unread */
	KCI_EXTRACT_CREATE, /* the entry is created */
};

/* Which modes what is created gets. */
enum kci_extract_modes {
	KCI_EXTRACT_MODES_EXACT,   /* the archive's, setuid, setgid and sticky included */
	KCI_EXTRACT_MODES_CLAMP,   /* files 0644 (0755 if the owner may run them), dirs 0755 */
	KCI_EXTRACT_MODES_PRIVATE, /* files 0600, directories 0700 */
};

/*
 * How to extract one kind of untrusted archive. Whatever the policy, nothing
 * is created, changed or followed outside the destination: every parent is
 * opened with openat2 beneath it and every final component acted on by an
 * *at() call that does not follow symlinks. Regular files and directories
 * are always created; the rest is as the fields say.
 */
struct kci_extract_policy {
	const char *archive; /* the archive in messages: "layer", "artifacts" */
	const char *entry;   /* one of its entries: "layer entry", "artifact" */
	/*
	 * Names. in_root: "/x" and "../x" land inside the root, and parents may
	 * be symlinks the archive made, followed within it (RESOLVE_IN_ROOT), as
	 * layers need. Otherwise such names and control characters are refused,
	 * and no symlink is ever followed (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS).
	 * replace: an entry replaces whatever holds its name, a directory tree
	 * included, as in a layer's view; otherwise only a file or a symlink of
	 * its own kind (a tar listing a name twice), and any other clash refuses
	 * the archive. whiteouts: OCI .wh.NAME and .wh..wh..opq hide what lower
	 * layers put there; otherwise they are names like any other.
	 */
	bool in_root, replace, whiteouts;
	/* Entry kinds; others are sockets and unknown types. */
	enum kci_extract_action symlinks, hardlinks, devices, fifos, others;
	bool symlinks_inside;	  /* targets relative and never above the root; else verbatim */
	bool hardlinks_extracted; /* targets only regular files this archive created; else any
				     non-directory beneath the root */
	bool sparse;		  /* sparse files; else refused */
	/*
	 * Metadata. Clamped and private modes are applied at creation, less the
	 * umask; exact ones afterwards. owners: the archive's uid/gid, user.*
	 * and security.capability xattrs; otherwise the files are the caller's.
	 * times: mtimes, directories' once the archive is done.
	 */
	enum kci_extract_modes modes;
	bool owners, times;
	/* Input: gzip or zstd (detected) besides plain tar; an empty stream as an empty archive. */
	bool compressed, empty;
	/*
	 * In a forked child with a seccomp allowlist, chroot and only the
	 * capabilities the policy needs; otherwise in the calling process.
	 */
	bool confined;
	/* Caps, each refused with KCI_INVALID beyond it. */
	uint64_t max_stream;  /* the (uncompressed) tar stream */
	uint64_t max_bytes;   /* regular files' sizes added up, before their data is written,
				 over every archive of one call; KCI_NOSPACE beyond it */
	uint64_t max_file;    /* one regular file's size */
	uint64_t max_entries; /* tar headers */
	uint64_t max_names;   /* names created: entries, missing parents, replacements */
	size_t max_path;      /* entry names and link targets */
	size_t max_xattr;     /* one xattr value */
};

/* Image layers: all an image holds (devices, owners, setuid, xattrs), with whiteouts. */
#define KCI_EXTRACT_LAYER                                                                          \
	{                                                                                          \
		.archive = "layer", .entry = "layer entry", .in_root = true, .replace = true,      \
		.whiteouts = true, .symlinks = KCI_EXTRACT_CREATE,                                 \
		.hardlinks = KCI_EXTRACT_CREATE, .devices = KCI_EXTRACT_CREATE,                    \
		.fifos = KCI_EXTRACT_CREATE, .others = KCI_EXTRACT_SKIP, .symlinks_inside = false, \
		.hardlinks_extracted = false, .sparse = true, .modes = KCI_EXTRACT_MODES_EXACT,    \
		.owners = true, .times = true, .compressed = true, .empty = false,                 \
		.confined = true, .max_stream = 32ULL << 30, .max_bytes = UINT64_MAX,              \
		.max_file = 32ULL << 30, .max_entries = 2000000, .max_names = 4000000,             \
		.max_path = 4096, .max_xattr = 64 * 1024                                           \
	}

/*
 * A `kci load` tarball (docker save, OCI layout): files and directories only,
 * private to kci, links and nodes passed over. Size caps are the caller's to
 * scale to the tarball.
 */
#define KCI_EXTRACT_LOAD                                                                           \
	{                                                                                          \
		.archive = "tarball", .entry = "entry", .in_root = false, .replace = false,        \
		.whiteouts = false, .symlinks = KCI_EXTRACT_SKIP, .hardlinks = KCI_EXTRACT_SKIP,   \
		.devices = KCI_EXTRACT_SKIP, .fifos = KCI_EXTRACT_SKIP,                            \
		.others = KCI_EXTRACT_SKIP, .symlinks_inside = true, .hardlinks_extracted = true,  \
		.sparse = false, .modes = KCI_EXTRACT_MODES_PRIVATE, .owners = false,              \
		.times = false, .compressed = true, .empty = false, .confined = true,              \
		.max_stream = 64ULL << 30, .max_bytes = 64ULL << 30, .max_file = 64ULL << 30,      \
		.max_entries = 100000, .max_names = 100000, .max_path = 4096,                      \
		.max_xattr = 64 * 1024                                                             \
	}

/*
 * A job's artifacts, tar from a hostile guest: files, directories, symlinks
 * that stay inside and hardlinks to files already extracted; modes clamped,
 * owners never applied. The stream cap allows 64 KiB of headers per name.
 */
#define KCI_EXTRACT_ARTIFACTS                                                                      \
	{                                                                                          \
		.archive = "artifacts", .entry = "artifact", .in_root = false, .replace = false,   \
		.whiteouts = false, .symlinks = KCI_EXTRACT_CREATE,                                \
		.hardlinks = KCI_EXTRACT_CREATE, .devices = KCI_EXTRACT_REFUSE,                    \
		.fifos = KCI_EXTRACT_REFUSE, .others = KCI_EXTRACT_REFUSE,                         \
		.symlinks_inside = true, .hardlinks_extracted = true, .sparse = true,              \
		.modes = KCI_EXTRACT_MODES_CLAMP, .owners = false, .times = true,                  \
		.compressed = false, .empty = true, .confined = true,                              \
		.max_stream = (1ULL << 30) + 10002ULL * 64 * 1024, .max_bytes = 1ULL << 30,        \
		.max_file = 1ULL << 30, .max_entries = UINT64_MAX, .max_names = 10000,             \
		.max_path = 4096, .max_xattr = 64 * 1024                                           \
	}

/* What an archive held. */
struct kci_extract_stats {
	uint64_t stream;	 /* uncompressed tar stream bytes */
	uint64_t entries;	 /* tar headers, whiteouts included */
	uint64_t names;		 /* names created */
	uint64_t bytes;		 /* regular files' sizes */
	uint64_t whiteouts;	 /* .wh.NAME and opaque markers applied */
	uint64_t skipped;	 /* entries the policy passes over (and aufs metadata) */
	uint64_t skipped_xattrs; /* not applied: by policy, or unsupported by the file system */
};

/*
 * Extracts the tar archive read from fd into the existing directory dest, as
 * p says (KCI_EXTRACT_LAYER, _LOAD, _ARTIFACTS, or a copy with other caps).
 * With a digest ("sha256:<hex>", may be NULL) the whole uncompressed stream
 * must hash to it, KCI_DIGEST otherwise. KCI_INVALID for a malformed,
 * hostile or oversized archive, the message naming the entry ("artifact
 * 'x': symlink to '/etc' points outside the archive"). On error dest may
 * hold part of the tree; the caller removes it. stats (may be NULL) says
 * what the archive held.
 */
int kci_images_extract(const char *dest, int fd, const struct kci_extract_policy *p,
		       const char *digest, struct kci_extract_stats *stats, struct kci_err *err);

#endif
