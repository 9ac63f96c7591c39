/* The extractor: one untrusted tar stream read, checked and dispatched entry by entry. */
#include "images/extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/xalloc.h"

#define STREAM_CHUNK (128 * 1024)
#define WHITEOUT     ".wh."
#define OPAQUE	     ".wh..wh..opq"
#define AUFS_META    ".wh..wh."

static const char *
aerr(struct archive *a)
{
	const char *s = archive_error_string(a);
	return s ? s : "unknown error";
}

/* ---- the stream: fd -> (decompress, count, cap, hash) -> tar reader ---- */

static la_ssize_t
stream_fill(struct xt *x, char *buf, size_t len)
{
	ssize_t n;

	if (x->raw_eof)
		return 0;
	if (x->raw) {
		if ((n = archive_read_data(x->raw, buf, len)) < 0)
			x->stream_rc = kci_err_set(x->err, KCI_INVALID, "%s: decompress: %s",
						   x->p->archive, aerr(x->raw));
		return n;
	}
	while ((n = read(x->in_fd, buf, len)) < 0 && errno == EINTR)
		;
	if (n < 0)
		x->stream_rc = kci_err_sys(x->err, errno, "%s: read", x->p->archive);
	return n;
}

static la_ssize_t
stream_read(struct archive *a, void *opaque, const void **out)
{
	struct xt *x = opaque;
	la_ssize_t n = 0, got = 0;

	(void)a;
	/*
	 * Fill the whole chunk: the decompressor and pipes hand out small
	 * pieces, and the tar reader's data blocks (so our writes) are never
	 * larger than what we return here.
	 */
	while (n < STREAM_CHUNK &&
	       (got = stream_fill(x, x->chunk + n, (size_t)(STREAM_CHUNK - n))) > 0)
		n += got;
	if (got < 0)
		return -1;
	/* untrusted: the whole stream <= p->max_stream, checked here */
	x->stats->stream += (uint64_t)n;
	if (x->stats->stream > x->p->max_stream) {
		x->stream_rc = kci_err_set(x->err, KCI_INVALID,
					   "%s: tar stream larger than %" PRIu64 " bytes",
					   x->p->archive, x->p->max_stream);
		return -1;
	}
	if (x->hash)
		kci_sha256_update(x->hash, x->chunk, (size_t)n);
	*out = x->chunk;
	return n;
}

/* The codecs OCI layers use, only built in: for one it lacks, libarchive would run a program. */
static int
raw_open(struct xt *x, struct kci_err *err)
{
	struct archive_entry *e;
	int r;

	if (!(x->raw = archive_read_new()))
		abort();
	if (archive_read_support_filter_gzip(x->raw) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(x->raw) != ARCHIVE_OK ||
	    archive_read_support_format_raw(x->raw) != ARCHIVE_OK)
		return kci_err_set(err, KCI_ERROR, "libarchive lacks built-in gzip or zstd: %s",
				   aerr(x->raw));
	if (archive_read_open_fd(x->raw, x->in_fd, STREAM_CHUNK) != ARCHIVE_OK)
		return kci_err_set(err, KCI_INVALID, "%s: %s", x->p->archive, aerr(x->raw));
	r = archive_read_next_header(x->raw, &e);
	if (r == ARCHIVE_EOF && x->p->empty)
		x->raw_eof = true;
	else if (r != ARCHIVE_OK)
		return kci_err_set(err, KCI_INVALID, "%s: %s", x->p->archive,
				   r == ARCHIVE_EOF ? "empty file" : aerr(x->raw));
	return 0;
}

static int
stream_open(struct xt *x, struct kci_err *err)
{
	int rc;

	if (x->p->compressed && (rc = raw_open(x, err)) < 0)
		return rc;
	if (!(x->tar = archive_read_new()))
		abort();
	/* tar in all its dialects (ustar, GNU, pax), and where allowed the empty stream. */
	if (archive_read_support_format_tar(x->tar) != ARCHIVE_OK ||
	    (x->p->empty && archive_read_support_format_empty(x->tar) != ARCHIVE_OK))
		return kci_err_set(err, KCI_ERROR, "libarchive: %s", aerr(x->tar));
	if (archive_read_open(x->tar, x, NULL, stream_read, NULL) != ARCHIVE_OK)
		return x->stream_rc ? x->stream_rc
				    : kci_err_set(err, KCI_INVALID, "%s: corrupt archive: %s",
						  x->p->archive, aerr(x->tar));
	return 0;
}

/* The digest covers the whole stream, including what follows the tar's end marker. */
static int
stream_drain(struct xt *x)
{
	const void *buf;
	la_ssize_t n;

	while ((n = stream_read(NULL, x, &buf)) > 0)
		;
	return n < 0 ? x->stream_rc : 0;
}

/* ---- whiteouts ---- */

static int
apply_whiteout(struct xt *x, struct node *n, struct kci_err *err)
{
	const char *victim = n->base + strlen(WHITEOUT);
	struct stat st;
	char why[EXTRACT_SHOWN_MAX + 64];
	int rc, fd;

	if (strcmp(n->base, OPAQUE) == 0) {
		fd = tree_resolve(&x->tree, n->parent, O_RDONLY | O_DIRECTORY);
		if (fd == -ENOENT || fd == -ENOTDIR)
			return 0;
		if (fd < 0)
			return node_fail(&x->tree, n, -fd, "resolve opaque directory", err);
		x->stats->whiteouts++;
		/* Opacity hides lower layers: what this layer wrote before the marker stays. */
		return tree_clear_dir(&x->tree, fd, &x->tree.seen, n, err);
	}
	if (strncmp(n->base, AUFS_META, strlen(AUFS_META)) == 0) {
		/* aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs), not image content. */
		x->stats->skipped++;
		return 0;
	}
	if (!*victim || name_is_dot(victim)) {
		snprintf(why, sizeof(why), "whiteout of '%s' refused", victim);
		return node_refuse(&x->tree, n, why, err);
	}
	if ((rc = node_open_parent(&x->tree, n, false, err)) <= 0)
		return rc;
	x->stats->whiteouts++;
	if (fstatat(n->dir_fd, victim, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
				       : node_fail(&x->tree, n, errno, "stat whiteout target", err);
	/* A whiteout hides lower layers only; what this layer itself wrote stays. */
	if (ino_set_has(&x->tree.seen, &st))
		return 0;
	return tree_remove(&x->tree, n->dir_fd, victim, &st, n, err);
}

static int
apply_entry(struct xt *x, struct archive_entry *e, struct kci_err *err)
{
	struct node n;
	int rc;

	rc = node_split(&x->tree, archive_entry_pathname(e), NULL, &n, err);
	if (rc > 0)
		rc = entry_apply_root(x, &n, e, err);
	else if (rc == 0 && x->p->whiteouts && strncmp(n.base, WHITEOUT, strlen(WHITEOUT)) == 0)
		rc = apply_whiteout(x, &n, err);
	else if (rc == 0)
		rc = entry_apply(x, &n, e, err);
	node_clear(&n);
	return rc;
}

/* Directory times, last: adding entries to a directory changes its mtime. */
static int
finish_dirs(struct xt *x, struct kci_err *err)
{
	struct kci_err gone = KCI_ERR_INIT; /* a directory not found again is no error */
	struct node n;
	struct stat st;
	int fd, rc = 0;

	for (size_t i = 0; rc == 0 && i < x->n_dirs; i++) {
		fd = -1;
		memset(&n, 0, sizeof(n));
		n.dir_fd = -1;
		snprintf(n.shown, sizeof(n.shown), ".");
		if (!*x->dirs[i].name)
			fd = openat(x->tree.root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		else if (node_split(&x->tree, x->dirs[i].name, NULL, &n, &gone) == 0 &&
			 node_open_parent(&x->tree, &n, false, &gone) > 0)
			fd = openat(n.dir_fd, n.base,
				    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		/* Gone or replaced by a later entry of this archive: that one's times stand. */
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == x->dirs[i].dev &&
		    st.st_ino == x->dirs[i].ino && futimens(fd, x->dirs[i].ts) < 0)
			rc = node_fail(&x->tree, &n, errno, "set times", err);
		if (fd >= 0)
			close(fd);
		node_clear(&n);
	}
	return rc;
}

static int
check_digest(const struct kci_extract_policy *p, const char *digest, struct kci_err *err)
{
	char shown[EXTRACT_SHOWN_MAX];

	if (strncmp(digest, "sha256:", 7) == 0 && strlen(digest) == 7 + 64 &&
	    strspn(digest + 7, "0123456789abcdef") == 64)
		return 0;
	extract_show(digest, shown, sizeof(shown));
	return kci_err_set(err, KCI_INVALID, "%s digest '%s' is not sha256:<64 hex>", p->archive,
			   shown);
}

int
extract_stream(int root_fd, int in_fd, const struct kci_extract_policy *p, const char *digest,
	       struct kci_extract_stats *stats, struct kci_err *err)
{
	struct kci_extract_stats scratch;
	struct xt x = { .p = p, .in_fd = in_fd, .err = err };
	struct archive_entry *e;
	char hex[65];
	int rc, r;

	x.stats = stats ? stats : &scratch;
	memset(x.stats, 0, sizeof(*x.stats));
	x.tree = (struct tree){ .root_fd = root_fd, .p = p, .stats = x.stats };
	if (digest && (rc = check_digest(p, digest, err)) < 0)
		return rc;
	if (digest)
		x.hash = kci_sha256_new();
	x.chunk = kci_xmalloc(STREAM_CHUNK);
	if ((rc = stream_open(&x, err)) < 0)
		goto out;
	while ((r = archive_read_next_header(x.tar, &e)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = entry_read_fail(&x, NULL, err);
			goto out;
		}
		if (++x.stats->entries > p->max_entries) {
			rc = kci_err_set(err, KCI_INVALID, "%s: more than %" PRIu64 " entries",
					 p->archive, p->max_entries);
			goto out;
		}
		if ((rc = apply_entry(&x, e, err)) < 0)
			goto out;
	}
	if (x.hash && (rc = stream_drain(&x)) < 0)
		goto out;
	if (x.hash) {
		kci_sha256_hex(x.hash, hex);
		x.hash = NULL;
		if (strcmp(digest + 7, hex) != 0) {
			rc = kci_err_set(err, KCI_DIGEST,
					 "%s digest mismatch: expected %s, got sha256:%s",
					 p->archive, digest, hex);
			goto out;
		}
	}
	rc = finish_dirs(&x, err);
out:
	for (size_t i = 0; i < x.n_dirs; i++)
		free(x.dirs[i].name);
	free(x.dirs);
	free(x.tree.seen.slot);
	free(x.chunk);
	kci_sha256_free(x.hash);
	if (x.tar)
		archive_read_free(x.tar);
	if (x.raw)
		archive_read_free(x.raw);
	return rc;
}
