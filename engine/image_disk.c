/* Glue between images/ and vm/: an image reference becomes a cached read-only root disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "images/images.h"
#include "engine/engine.h"
#include "vm/vm.h"

#define SHM_DIR	   "/dev/shm"
#define SHM_PREFIX "kci-unpack-"

#define SHM_RESERVE_MIN (512ULL << 20) /* tmpfs is RAM: this much (or a quarter) stays free */
#define DISK_RESERVE	(1ULL << 30)   /* the disk keeps this much for everything else */

/* What may be written under path: its free space less a reserve, 0 if none. */
static uint64_t
room(const char *path, uint64_t reserve_min, unsigned reserve_div)
{
	struct statvfs v;
	uint64_t avail, total, reserve;

	if (statvfs(path, &v) < 0)
		return 0;
	avail = (uint64_t)v.f_bavail * v.f_frsize;
	total = (uint64_t)v.f_blocks * v.f_frsize;
	reserve = reserve_div && total / reserve_div > reserve_min ? total / reserve_div
								   : reserve_min;
	return avail > reserve ? avail - reserve : 0;
}

static uint64_t
min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Removes unpack trees in tmpfs whose kci is gone: they hold RAM until reboot otherwise. */
static void
sweep_shm(void)
{
	DIR *d = opendir(SHM_DIR);
	struct dirent *de;
	struct stat st;

	while (d && (de = readdir(d))) {
		int pid;
		if (sscanf(de->d_name, SHM_PREFIX "%d-", &pid) != 1 || pid <= 0 ||
		    (kill(pid, 0) == 0 || errno != ESRCH))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode) && st.st_uid == geteuid()) {
			char *path = kci_xasprintf(SHM_DIR "/%s", de->d_name);
			kci_rm_rf(path, NULL);
			free(path);
		}
	}
	if (d)
		closedir(d);
}

/* Unpacks the layers into a fresh tree at parent (a mkdtemp template) within budget bytes. */
static int
unpack_in(char *parent, char **layers, size_t n, const struct kci_image_config *cfg,
	  uint64_t budget, const char *disk, struct kci_err *err)
{
	char *tree;
	int rc;

	/*
	 * The tree lives inside a 0700 dir: in a shared tmpfs, other local users
	 * must not read the image, plant files in its world-writable dirs before
	 * mke2fs copies them, or swap dirs for symlinks under our removal.
	 */
	if (!mkdtemp(parent))
		return kci_err_sys(err, errno, "mkdtemp %s", parent);
	tree = kci_xasprintf("%s/rootfs", parent);
	rc = kci_images_unpack(tree, (const char *const *)layers,
			       (const char *const *)cfg->diff_ids, n, budget, err);
	if (rc == 0)
		rc = kci_vm_rootfs_build(tree, disk, err);
	kci_rm_rf(parent, NULL);
	free(tree);
	return rc;
}

/*
 * Unpacks the layers into a temp tree, builds the ext4 image from it, removes
 * the tree. The tree goes to tmpfs when the layers, generously inflated, fit
 * in half of its room (writing thousands of files there costs a fraction of
 * writing them to a journalled disk: 1.4 s versus 3.7 s for bench/pull's
 * image), else next to the disk image. Either way the files may add up only
 * to the room there (a decompression bomb is stopped before it fills RAM or
 * disk) and to the per-image cap; a tree too big for tmpfs is tried on disk.
 */
static int
build_disk(const char *disk, char **layers, struct kci_image_config *cfg, struct kci_err *err)
{
	char *dir = kci_xstrdup(disk), *slash = strrchr(dir, '/'), *parent;
	uint64_t compressed = 0, cap = kci_images_max_bytes(), shm, ondisk;
	size_t n = 0;
	struct stat st;
	int rc = KCI_NOSPACE, in_shm = 0;

	for (; layers[n]; n++)
		if (stat(layers[n], &st) == 0)
			compressed += (uint64_t)st.st_size;
	if (slash)
		*slash = '\0';
	sweep_shm();
	shm = room(SHM_DIR, SHM_RESERVE_MIN, 4);
	/* On disk the tree and the image built from it stand side by side for a moment. */
	ondisk = room(dir, DISK_RESERVE, 0) / 2;
	if (compressed < UINT64_MAX / 8 && shm / 2 > compressed * 8) {
		in_shm = 1;
		parent = kci_xasprintf(SHM_DIR "/" SHM_PREFIX "%d-XXXXXX", (int)getpid());
		rc = unpack_in(parent, layers, n, cfg, min64(cap, shm), disk, err);
		free(parent);
	}
	/* Too big for tmpfs (not for the cap): the disk may have the room. */
	if (rc == KCI_NOSPACE && (!in_shm || (shm < cap && ondisk > shm))) {
		parent = kci_xasprintf("%s.tree-%d-XXXXXX", disk, (int)getpid());
		rc = unpack_in(parent, layers, n, cfg, min64(cap, ondisk), disk, err);
		free(parent);
	}
	if (rc == KCI_NOSPACE)
		rc = kci_err_set(
			err, KCI_NOSPACE,
			"its layers unpack to more than kci may write: %llu MiB at most "
			"(free space in " SHM_DIR " and %s less a reserve, and the cap of "
			"%llu MiB per image, which KCI_IMAGE_MAX raises)",
			(unsigned long long)(min64(cap, shm > ondisk ? shm : ondisk) >> 20), dir,
			(unsigned long long)(cap >> 20));
	free(dir);
	return rc;
}

/* Tells the caller that `what` (ref) begins: "pulling REF (not in the store yet)". */
static void
phase(const struct kci_image_disk_opts *o, const char *what, const char *ref, const char *rest)
{
	char *line;

	if (!o->phase)
		return;
	line = kci_xasprintf("%s %s%s", what, ref, rest);
	o->phase(o->ctx, line);
	free(line);
}

int
kci_engine_image_disk(const char *ref, const struct kci_image_disk_opts *o,
		      struct kci_image_config *cfg, char **disk, struct kci_err *err)
{
	struct kci_pull_opts po = KCI_PULL_OPTS_INIT;
	struct kci_images *im = NULL;
	char config_digest[72], manifest[72];
	char **layers = NULL;
	int rc;

	int plain_http;

	/* A pipeline's image from a registry the operator did not allow: not even from the store.
	 */
	if ((rc = kci_images_policy_check(o->policy, ref, &plain_http, err)) < 0)
		return rc;
	if ((rc = kci_images_open(&im, o->home, err)) < 0)
		return rc;
	rc = kci_images_resolve(im, ref, cfg, config_digest, &layers, err);
	if (rc == KCI_NOTFOUND) {
		/* Like docker run: an image that is not here yet is pulled first. */
		phase(o, "pulling", ref, " (not in the store yet)");
		po.progress = o->progress;
		po.ctx = o->ctx;
		po.cancel = o->cancel;
		po.policy = o->policy;
		if ((rc = kci_images_pull(im, ref, &po, manifest, err)) == 0)
			rc = kci_images_resolve(im, ref, cfg, config_digest, &layers, err);
	}
	if (rc < 0)
		goto out;
	if ((rc = kci_mkdir_p(o->cache, 0700, err)) < 0)
		goto out;
	*disk = kci_xasprintf("%s/image-%s.ext4", o->cache, config_digest + 7);
	if (access(*disk, R_OK) == 0)
		goto out;
	phase(o, "unpacking", ref, " into its root disk");
	if ((rc = build_disk(*disk, layers, cfg, err)) < 0) {
		kci_err_prefix(err, "image %s", ref);
		free(*disk);
		*disk = NULL;
	}
out:
	if (rc < 0)
		kci_images_config_clear(cfg);
	kci_strv_free(layers);
	kci_images_free(im);
	return rc;
}
