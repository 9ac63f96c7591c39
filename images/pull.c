/*
 * `kci pull`: resolve a reference on its registry, choose linux/amd64 from an
 * index, and bring the manifest, config and layers into the store, each one
 * verified before it becomes visible. Layers download in parallel; blobs the
 * store already has are not fetched again, so a pull killed halfway is
 * completed by the next one, which also sweeps the killed one's temp blobs.
 */
#include <pthread.h>
#include <sys/statvfs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "images/internal.h"
#include "images/registry.h"

#define PULL_PARALLEL 4
#define PULL_RESERVE  (1ULL << 30) /* the store's disk keeps this much free for everything else */

struct pull {
	struct kci_images *im;
	struct registry *reg;
	const struct kci_pull_opts *opts;
	const struct manifest *m;
	pthread_mutex_t lock; /* guards next, err, and progress output */
	size_t next;
	int rc;
	struct kci_err err;
	volatile sig_atomic_t cancel; /* set after the first failure: the others stop early */
};

static void
progress(void *ctx, const char *digest, uint64_t done, uint64_t total)
{
	struct pull *p = ctx;

	pthread_mutex_lock(&p->lock);
	p->opts->progress(p->opts->ctx, digest, done, total);
	pthread_mutex_unlock(&p->lock);
}

static int
fetch_layer(struct pull *p, const struct descriptor *d, struct kci_err *err)
{
	struct store_writer w = { .fd = -1 };
	int rc;

	if (store_has_blob(p->im->store, d->digest, d->size))
		return 0;
	if ((rc = store_writer_begin(p->im->store, &w, err)) < 0)
		return rc;
	rc = registry_get_blob(p->reg, d->digest, d->size, w.fd,
			       p->opts && p->opts->progress ? progress : NULL, p, err);
	if (rc < 0) {
		store_writer_abort(&w);
		return rc;
	}
	/* registry_get_blob hashed the stream and checked size and digest. */
	return store_writer_commit(p->im->store, &w, d->digest, d->size, 1, err);
}

static void *
worker(void *arg)
{
	struct pull *p = arg;

	for (;;) {
		struct kci_err err = KCI_ERR_INIT;
		size_t i;

		pthread_mutex_lock(&p->lock);
		i = p->next++;
		pthread_mutex_unlock(&p->lock);
		if (i >= p->m->n_layers || p->cancel)
			return NULL;
		if (fetch_layer(p, &p->m->layers[i], &err) < 0) {
			pthread_mutex_lock(&p->lock);
			if (p->rc == 0) {
				p->rc = err.code ? err.code : KCI_ERROR;
				p->err = err;
			}
			p->cancel = 1;
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
	}
}

static int
fetch_layers(struct pull *p, struct kci_err *err)
{
	unsigned n = p->opts && p->opts->parallel ? p->opts->parallel : PULL_PARALLEL;
	pthread_t threads[16];
	unsigned started = 0;

	if (n > 16)
		n = 16;
	if (n > p->m->n_layers)
		n = (unsigned)p->m->n_layers;
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&threads[started], NULL, worker, p) == 0)
			started++;
	if (started == 0 && p->m->n_layers)
		worker(p);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (p->rc < 0)
		*err = p->err;
	return p->rc;
}

/*
 * The layers the store still lacks must fit: their declared sizes added up
 * against the store's free space less a reserve, checked before the first
 * byte, so a registry declaring (or sending) an endless blob is refused
 * instead of filling the disk. Sizes are also each blob's cap as it arrives.
 */
static int
check_room(struct pull *p, struct kci_err *err)
{
	uint64_t need = 0, avail = 0;
	struct statvfs v;

	for (size_t i = 0; i < p->m->n_layers; i++)
		if (!store_has_blob(p->im->store, p->m->layers[i].digest, p->m->layers[i].size))
			need += (uint64_t)p->m->layers[i].size;
	if (need == 0)
		return 0;
	if (statvfs(store_dir(p->im->store), &v) == 0)
		avail = (uint64_t)v.f_bavail * v.f_frsize;
	avail = avail > PULL_RESERVE ? avail - PULL_RESERVE : 0;
	if (need > kci_images_max_bytes())
		return kci_err_set(
			err, KCI_NOSPACE,
			"its layers add up to %llu MiB, more than the cap of %llu MiB per "
			"image (KCI_IMAGE_MAX raises it)",
			(unsigned long long)(need >> 20),
			(unsigned long long)(kci_images_max_bytes() >> 20));
	if (need <= avail)
		return 0;
	return kci_err_set(err, KCI_NOSPACE,
			   "its layers add up to %llu MiB, more than the %llu MiB the store (%s) "
			   "has free, less a %llu MiB reserve",
			   (unsigned long long)(need >> 20), (unsigned long long)(avail >> 20),
			   store_dir(p->im->store), (unsigned long long)(PULL_RESERVE >> 20));
}

/* The config: fetched if missing, parsed, and checked against the manifest and platform. */
static int
fetch_config(struct pull *p, struct kci_err *err)
{
	const struct descriptor *c = &p->m->config;
	struct kci_image_config cfg = { 0 };
	char *body = NULL;
	size_t len = 0, ndiff = 0;
	int rc;

	if (!store_has_blob(p->im->store, c->digest, c->size)) {
		if ((rc = registry_get_blob_bytes(p->reg, c->digest, c->size, IMAGE_CONFIG_MAX,
						  &body, &len, err)) < 0)
			return rc;
		rc = store_put_bytes(p->im->store, body, len, c->digest, err);
		free(body);
		if (rc < 0)
			return rc;
	}
	if ((rc = store_read_blob(p->im->store, c->digest, IMAGE_CONFIG_MAX, &body, &len, err)) < 0)
		return rc;
	rc = image_config_parse(body, len, &cfg, err);
	free(body);
	if (rc < 0)
		return rc;
	while (cfg.diff_ids && cfg.diff_ids[ndiff])
		ndiff++;
	if (ndiff != p->m->n_layers)
		rc = kci_err_set(err, KCI_INVALID, "config %s lists %zu layers, the manifest %zu",
				 c->digest, ndiff, p->m->n_layers);
	else if ((cfg.os && strcmp(cfg.os, "linux") != 0) ||
		 (cfg.architecture && strcmp(cfg.architecture, "amd64") != 0))
		rc = kci_err_set(err, KCI_INVALID, "image is %s/%s; kci runs linux/amd64 guests",
				 cfg.os ? cfg.os : "?", cfg.architecture ? cfg.architecture : "?");
	kci_images_config_clear(&cfg);
	return rc;
}

/* Fetches the image manifest for ref, descending from an index to linux/amd64. */
static int
fetch_manifest(struct pull *p, const struct kci_image_ref *ref, struct registry_manifest *out,
	       struct kci_err *err)
{
	struct descriptor chosen;
	int rc;

	rc = registry_get_manifest(p->reg, ref->digest[0] ? ref->digest : ref->tag, out, err);
	if (rc < 0)
		return rc;
	if (manifest_kind_of(out->media_type) != MANIFEST_INDEX)
		return 0;
	/*
	 * The index is stored (verified) too, though no ref names it, so the next
	 * prune drops it: refs point at the platform manifest kci runs.
	 */
	if ((rc = store_put_bytes(p->im->store, out->body, out->len, out->digest, err)) < 0)
		return rc;
	rc = manifest_index_select(out->body, out->len, out->media_type, "linux", "amd64",
				   out->digest, &chosen, err);
	registry_manifest_clear(out);
	if (rc < 0)
		return rc;
	if ((rc = registry_get_manifest(p->reg, chosen.digest, out, err)) < 0)
		return rc;
	if (manifest_kind_of(out->media_type) == MANIFEST_INDEX)
		return kci_err_set(err, KCI_INVALID, "index entry %s is itself an index",
				   chosen.digest);
	return 0;
}

int
kci_images_pull(struct kci_images *im, const char *ref_s, const struct kci_pull_opts *o,
		char digest[72], struct kci_err *err)
{
	struct pull p = { .im = im, .opts = o };
	struct registry_manifest man = { 0 };
	struct manifest m = { 0 };
	struct kci_image_ref ref;
	char canon[600];
	int rc, locked = 0;

	pthread_mutex_init(&p.lock, NULL);
	if ((rc = image_canonical(ref_s, canon, sizeof(canon), &ref, err)) < 0)
		goto out;
	struct registry_opts ropts = REGISTRY_OPTS_INIT;
	ropts.cancel = o ? o->cancel : NULL;
	/* A pipeline's image: only the operator's registries, and their replies only. */
	if (o && o->policy) {
		if ((rc = kci_images_policy_check(o->policy, ref_s, &ropts.plain_http, err)) < 0)
			goto out;
		ropts.loopback_https = !ropts.plain_http;
		ropts.quiet_bodies = 1;
	}
	if ((rc = registry_new(&p.reg, &ref, &ropts, err)) < 0)
		goto fail;
	/* Shared: a concurrent prune must not delete blobs that no ref names yet. */
	if ((rc = store_gc_lock(im->store, 0, err)) < 0)
		goto fail;
	locked = 1;
	/* A pull killed mid-blob left its temp file; only a dead writer's go, so this is safe. */
	store_sweep_orphans(im->store);
	if ((rc = fetch_manifest(&p, &ref, &man, err)) < 0 ||
	    (rc = manifest_parse(man.body, man.len, man.media_type, &m, err)) < 0)
		goto fail;
	p.m = &m;
	if ((rc = check_room(&p, err)) < 0 || (rc = fetch_config(&p, err)) < 0 ||
	    (rc = fetch_layers(&p, err)) < 0 ||
	    (rc = store_put_bytes(im->store, man.body, man.len, man.digest, err)) < 0 ||
	    (rc = store_ref_set(im->store, canon, m.media_type, man.digest, (int64_t)man.len,
				err)) < 0)
		goto fail;
	snprintf(digest, 72, "%s", man.digest);
	goto out;
fail:
	kci_err_prefix(err, "pull %s", canon);
out:
	if (locked)
		store_gc_unlock(im->store);
	manifest_clear(&m);
	registry_manifest_clear(&man);
	registry_free(p.reg);
	pthread_mutex_destroy(&p.lock);
	return rc;
}
