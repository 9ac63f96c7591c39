/*
 * The guest kit: what every VM of a command or a run shares -- the data
 * directories, the guest kernel, the agent's initramfs, the accelerator --
 * and the root and workspace disks VMs boot from. `kci exec` and the job
 * runner start their VMs from the same kit, so there is one way to get from
 * a command to a VM.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "engine/internal.h"

struct kci_kit {
	char *home, *cache, *rundir;
	struct kci_guest *guest;
	char *agent, *initrd;
	enum kci_accel accel;
	char accel_why[256];
	pthread_mutex_t lock; /* one root disk built at a time: pulls and unpacks are heavy */
	char *base_rootfs;    /* the busybox base disk, once built (under lock) */
	int warm;	      /* VMs start from templates */
};

int
kci_engine_kit_new(struct kci_kit **out, const struct kci_kit_opts *o, struct kci_err *err)
{
	struct kci_kit *k = kci_xcalloc(1, sizeof(*k));
	int rc;

	pthread_mutex_init(&k->lock, NULL);
	/* The environment's say is for the test suite's cold pass and for scripts. */
	const char *env = getenv("KCI_COLD");
	k->warm = !o->cold && !(env && strcmp(env, "1") == 0);
	if (o->home)
		k->home = kci_xstrdup(o->home);
	else if ((rc = kci_home(&k->home, err)) < 0)
		goto out;
	k->cache = kci_xasprintf("%s/cache", k->home);
	k->rundir = kci_xasprintf("%s/run", k->home);
	if ((rc = kci_mkdir_p(k->cache, 0700, err)) < 0 ||
	    (rc = kci_mkdir_p(k->rundir, 0700, err)) < 0)
		goto out;
	kci_vm_sweep_stale(k->rundir);
	kci_sweep_orphans(k->cache);
	if ((rc = kci_vm_guest_find(&k->guest, o->kernel, k->home, err)) < 0 ||
	    (rc = kci_vm_agent_find(&k->agent, err)) < 0 ||
	    (rc = kci_vm_initramfs_get(k->guest, k->agent, k->cache, &k->initrd, err)) < 0 ||
	    (rc = kci_vm_accel_choose(o->accel, &k->accel, k->accel_why, sizeof(k->accel_why),
				      err)) < 0)
		goto out;
	*out = k;
	k = NULL;
out:
	kci_engine_kit_free(k);
	return rc;
}

void
kci_engine_kit_free(struct kci_kit *k)
{
	if (!k)
		return;
	kci_vm_guest_free(k->guest);
	pthread_mutex_destroy(&k->lock);
	free(k->home);
	free(k->cache);
	free(k->rundir);
	free(k->agent);
	free(k->initrd);
	free(k->base_rootfs);
	free(k);
}

const char *
kci_engine_kit_run_dir(const struct kci_kit *k)
{
	return k->rundir;
}

enum kci_accel
kci_engine_kit_accel(const struct kci_kit *k, const char **why)
{
	if (why)
		*why = k->accel_why;
	return k->accel;
}

void
kci_engine_root_clear(struct kci_root *r)
{
	free(r->disk);
	free(r->label);
	kci_images_config_clear(&r->image);
	memset(r, 0, sizeof(*r));
}

int
kci_engine_root_image(struct kci_kit *k, const char *ref, const struct kci_root_progress *p,
		      struct kci_root *out, struct kci_err *err)
{
	struct kci_image_disk_opts o = { .home = k->home, .cache = k->cache };
	int rc;

	if (p) {
		o.progress = p->progress;
		o.phase = p->phase;
		o.ctx = p->ctx;
		o.cancel = p->cancel;
		o.policy = p->policy;
	}
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&k->lock);
	rc = kci_engine_image_disk(ref, &o, &out->image, &out->disk, err);
	pthread_mutex_unlock(&k->lock);
	out->label = kci_xstrdup(ref);
	return rc;
}

int
kci_engine_root_dir(struct kci_kit *k, const char *dir, struct kci_root *out, struct kci_err *err)
{
	memset(out, 0, sizeof(*out));
	out->label = kci_xasprintf("directory %s", dir);
	return kci_vm_rootfs_from_dir(dir, k->cache, &out->disk, err);
}

int
kci_engine_root_base(struct kci_kit *k, struct kci_root *out, struct kci_err *err)
{
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&k->lock);
	if (!k->base_rootfs)
		rc = kci_vm_rootfs_base(k->guest, k->cache, &k->base_rootfs, err);
	if (rc == 0)
		out->disk = kci_xstrdup(k->base_rootfs);
	out->label = kci_xstrdup("base system");
	pthread_mutex_unlock(&k->lock);
	return rc;
}

int
kci_engine_workspace_disk(const struct kci_kit *k, const char *dir, uint64_t free_mib, char **out,
			  struct kci_err *err)
{
	char *final = kci_xasprintf("%s/workspace.ext4", k->cache), *tmp = NULL;
	int fd, rc;

	/*
	 * A temp file's name (kci_tmpfile_near): if kci is killed before the
	 * caller removes it, the cache's next pruning removes it as an orphan.
	 */
	if ((rc = fd = kci_tmpfile_near(final, &tmp, err)) < 0)
		goto out;
	close(fd);
	if ((rc = kci_vm_disk_build_rw(dir, tmp, free_mib, err)) < 0) {
		unlink(tmp);
		kci_err_prefix(err, "workspace disk");
		goto out;
	}
	*out = tmp;
	tmp = NULL;
out:
	free(tmp);
	free(final);
	return rc;
}

void
kci_engine_vm_opts(const struct kci_kit *k, const struct kci_root *root, struct kci_vm_opts *vo)
{
	vo->kernel = kci_vm_guest_kernel(k->guest);
	vo->initrd = k->initrd;
	vo->rootfs = root->disk;
	vo->run_dir = k->rundir;
	vo->cache_dir = k->cache;
	vo->accel = k->accel;
	vo->warm = k->warm;
	vo->label = root->label;
}
