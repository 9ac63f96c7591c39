/*
 * The local image store as users see it: resolving refs to configs and
 * layers, listing, removing, pruning and verifying. Pulling is in pull.c,
 * loading from files in load.c.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/parse.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "images/internal.h"
#include "images/manifest.h"

uint64_t
kci_images_max_bytes(void)
{
	const char *v = getenv("KCI_IMAGE_MAX");
	uint64_t mib;

	return v && kci_parse_size_mib(v, &mib) == 0 && mib > 0 ? mib << 20 : 16ULL << 30;
}

int
kci_images_open(struct kci_images **out, const char *home, struct kci_err *err)
{
	struct kci_images *im = kci_xcalloc(1, sizeof(*im));
	char *dir = kci_xasprintf("%s/store", home);
	int rc = store_new(&im->store, dir, err);

	free(dir);
	if (rc < 0) {
		free(im);
		return rc;
	}
	im->home = kci_xstrdup(home);
	*out = im;
	return 0;
}

void
kci_images_free(struct kci_images *im)
{
	if (!im)
		return;
	store_free(im->store);
	free(im->home);
	free(im);
}

int
image_canonical(const char *ref, char *out, size_t size, struct kci_image_ref *parsed,
		struct kci_err *err)
{
	struct kci_image_ref r;
	int rc;

	if ((rc = kci_images_ref_parse(ref, &r, err)) < 0)
		return rc;
	kci_images_ref_format(&r, out, size);
	if (parsed)
		*parsed = r;
	return 0;
}

/* The store's ref for `ref`: by canonical name, else (for name@digest) by manifest digest. */
static int
find_ref(struct kci_images *im, const char *ref, struct store_ref *out, struct kci_err *err)
{
	struct kci_image_ref parsed;
	struct store_ref *refs = NULL;
	char canon[600];
	size_t n = 0;
	int rc, found = -1;

	if ((rc = image_canonical(ref, canon, sizeof(canon), &parsed, err)) < 0)
		return rc;
	if ((rc = store_refs(im->store, &refs, &n, err)) < 0)
		return rc;
	for (size_t i = 0; i < n && found < 0; i++)
		if (strcmp(refs[i].name, canon) == 0)
			found = (int)i;
	/* name@digest also finds the image under a tag of the same repository. */
	char repo[600];
	size_t rlen = (size_t)snprintf(repo, sizeof(repo), "%s/%s", parsed.registry, parsed.repo);
	for (size_t i = 0; i < n && found < 0 && parsed.digest[0]; i++)
		if (strcmp(refs[i].digest, parsed.digest) == 0 &&
		    strncmp(refs[i].name, repo, rlen) == 0 &&
		    (refs[i].name[rlen] == ':' || refs[i].name[rlen] == '@'))
			found = (int)i;
	if (found < 0) {
		store_refs_free(refs, n);
		return kci_err_set(err, KCI_NOTFOUND, "no image %s in the store", canon);
	}
	*out = refs[found];
	refs[found] = (struct store_ref){ 0 };
	store_refs_free(refs, n);
	return 0;
}

static void
ref_clear(struct store_ref *r)
{
	free(r->name);
	free(r->digest);
	free(r->media_type);
}

/*
 * Reads and parses a stored manifest and (if cfg) its config, checking that
 * the config's diff_ids match the layer count. Caller clears both.
 */
static int
image_load_manifest(struct kci_images *im, const char *digest, const char *media_type,
		    struct manifest *m, struct kci_image_config *cfg, struct kci_err *err)
{
	char *body = NULL;
	size_t len = 0;
	int rc;

	if ((rc = store_read_blob(im->store, digest, MANIFEST_MAX, &body, &len, err)) < 0)
		return rc;
	rc = manifest_parse(body, len, media_type ? media_type : "", m, err);
	free(body);
	if (rc < 0 || !cfg)
		return rc;
	if ((rc = store_read_blob(im->store, m->config.digest, IMAGE_CONFIG_MAX, &body, &len,
				  err)) < 0)
		goto out;
	rc = image_config_parse(body, len, cfg, err);
	free(body);
	if (rc < 0)
		goto out;
	size_t ndiff = 0;
	while (cfg->diff_ids && cfg->diff_ids[ndiff])
		ndiff++;
	if (ndiff != m->n_layers) {
		rc = kci_err_set(err, KCI_INVALID,
				 "image config %s lists %zu layers (diff_ids), the manifest %zu",
				 m->config.digest, ndiff, m->n_layers);
		kci_images_config_clear(cfg);
	}
out:
	if (rc < 0)
		manifest_clear(m);
	return rc;
}

int
kci_images_resolve(struct kci_images *im, const char *ref, struct kci_image_config *cfg,
		   char config_digest[72], char ***layers, struct kci_err *err)
{
	struct store_ref r = { 0 };
	struct manifest m = { 0 };
	char **paths;
	int rc;

	if ((rc = find_ref(im, ref, &r, err)) < 0)
		return rc;
	rc = image_load_manifest(im, r.digest, r.media_type, &m, cfg, err);
	ref_clear(&r);
	if (rc < 0)
		return kci_err_prefix(err, "image %s", ref);
	paths = kci_xcalloc(m.n_layers + 1, sizeof(char *));
	for (size_t i = 0; i < m.n_layers && rc == 0; i++) {
		if (!store_has_blob(im->store, m.layers[i].digest, m.layers[i].size))
			rc = kci_err_set(err, KCI_NOTFOUND,
					 "image %s: layer %s is missing from the store", ref,
					 m.layers[i].digest);
		else
			rc = store_blob_path(im->store, m.layers[i].digest, &paths[i], err);
	}
	if (rc < 0) {
		for (size_t i = 0; paths[i]; i++)
			free(paths[i]);
		free(paths);
		kci_images_config_clear(cfg);
	} else {
		snprintf(config_digest, 72, "%s", m.config.digest);
		*layers = paths;
	}
	manifest_clear(&m);
	return rc;
}

int
kci_images_list(struct kci_images *im, struct kci_image_info **out, size_t *n, struct kci_err *err)
{
	struct store_ref *refs = NULL;
	struct kci_image_info *infos;
	size_t nrefs = 0, k = 0;
	int rc;

	if ((rc = store_refs(im->store, &refs, &nrefs, err)) < 0)
		return rc;
	infos = kci_xcalloc(nrefs ? nrefs : 1, sizeof(*infos));
	for (size_t i = 0; i < nrefs; i++) {
		struct manifest m = { 0 };
		struct kci_err ignored = KCI_ERR_INIT;
		struct kci_image_info *info = &infos[k++];

		info->ref = kci_xstrdup(refs[i].name);
		snprintf(info->digest, sizeof(info->digest), "%s", refs[i].digest);
		info->created = refs[i].created;
		info->size = (uint64_t)refs[i].manifest_size;
		/* A damaged entry is still listed, so the user can see and remove it. */
		if (image_load_manifest(im, refs[i].digest, refs[i].media_type, &m, NULL,
					&ignored) < 0)
			continue;
		snprintf(info->config_digest, sizeof(info->config_digest), "%s", m.config.digest);
		info->size += (uint64_t)m.config.size;
		for (size_t j = 0; j < m.n_layers; j++)
			info->size += (uint64_t)m.layers[j].size;
		manifest_clear(&m);
	}
	store_refs_free(refs, nrefs);
	*out = infos;
	*n = k;
	return 0;
}

void
kci_images_info_free(struct kci_image_info *infos, size_t n)
{
	for (size_t i = 0; infos && i < n; i++)
		free(infos[i].ref);
	free(infos);
}

int
kci_images_remove(struct kci_images *im, const char *ref, struct kci_err *err)
{
	struct store_ref r = { 0 };
	int rc;

	if ((rc = find_ref(im, ref, &r, err)) < 0)
		return rc;
	rc = store_ref_remove(im->store, r.name, err);
	ref_clear(&r);
	return rc;
}

/* Extraction dirs of loads that died: no live load exists while prune holds the GC lock. */
static void
sweep_loads(struct kci_images *im)
{
	DIR *d = opendir(store_dir(im->store));
	struct dirent *de;

	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "load-", 5) != 0)
			continue;
		char *path = kci_xasprintf("%s/%s", store_dir(im->store), de->d_name);
		kci_rm_rf(path, NULL);
		free(path);
	}
	if (d)
		closedir(d);
}

int
kci_images_prune(struct kci_images *im, uint64_t *freed, char ***keep_configs, struct kci_err *err)
{
	struct store_ref *refs = NULL;
	char **keep = NULL, **configs = NULL;
	size_t nrefs = 0, nkeep = 0, nconf = 0;
	int rc;

	/* Exclusive: no pull may be adding blobs that no ref names yet. */
	if ((rc = store_gc_lock(im->store, 1, err)) < 0)
		return rc;
	if ((rc = store_refs(im->store, &refs, &nrefs, err)) < 0)
		goto out;
	for (size_t i = 0; i < nrefs; i++) {
		struct manifest m = { 0 };
		struct kci_err ignored = KCI_ERR_INIT;

		kci_strv_add(&keep, &nkeep, refs[i].digest);
		if (image_load_manifest(im, refs[i].digest, refs[i].media_type, &m, NULL,
					&ignored) < 0)
			continue;
		kci_strv_add(&keep, &nkeep, m.config.digest);
		kci_strv_add(&configs, &nconf, m.config.digest);
		for (size_t j = 0; j < m.n_layers; j++)
			kci_strv_add(&keep, &nkeep, m.layers[j].digest);
		manifest_clear(&m);
	}
	rc = store_sweep(im->store, keep, freed, err);
	if (rc == 0)
		sweep_loads(im);
out:
	store_gc_unlock(im->store);
	store_refs_free(refs, nrefs);
	for (size_t i = 0; i < nkeep; i++)
		free(keep[i]);
	free(keep);
	if (rc < 0) {
		for (size_t i = 0; i < nconf; i++)
			free(configs[i]);
		free(configs);
		return rc;
	}
	*keep_configs = configs;
	return 0;
}

int
kci_images_verify(struct kci_images *im, size_t *checked, size_t *bad,
		  void (*on_bad)(void *ctx, const char *digest), void *ctx, struct kci_err *err)
{
	int rc;

	/* Exclusive: a pull must not be mid-way through a blob we are judging. */
	if ((rc = store_gc_lock(im->store, 1, err)) < 0)
		return rc;
	rc = store_verify(im->store, checked, bad, on_bad, ctx, err);
	store_gc_unlock(im->store);
	return rc;
}
