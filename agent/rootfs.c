/* The job's root: image disk as overlay lower layer, scratch disk as upper; then switch root. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "agent/internal.h"

#define ROOT_SERIAL    "kci-root"
#define SCRATCH_SERIAL "kci-scratch"
#define DISK_WAIT_MS   5000

/* Mount points inside the initramfs; they vanish from view with the switch. */
#define LOWER_DIR   "/kci/lower"
#define SCRATCH_DIR "/kci/scratch"
#define NEWROOT_DIR "/kci/root"

/* Scans /sys/block/vd* for both serials; KCI_NOTFOUND until the root disk is there. */
static int
probe_disks(void *ctx)
{
	struct rootfs_disks *disks = ctx;
	char path[300], serial[64];
	struct dirent *de;
	DIR *dir;

	disks->root[0] = disks->scratch[0] = '\0';
	dir = opendir("/sys/block");
	if (!dir)
		return KCI_NOTFOUND;
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, "vd", 2) != 0 || strlen(de->d_name) > 16)
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/serial", de->d_name);
		if (sysfs_read(path, serial, sizeof(serial)) < 0)
			continue;
		if (strcmp(serial, ROOT_SERIAL) == 0)
			snprintf(disks->root, sizeof(disks->root), "/dev/%.16s", de->d_name);
		else if (strcmp(serial, SCRATCH_SERIAL) == 0)
			snprintf(disks->scratch, sizeof(disks->scratch), "/dev/%.16s", de->d_name);
	}
	closedir(dir);
	return disks->root[0] ? 0 : KCI_NOTFOUND;
}

/*
 * Finds the disks by their virtio serials, waiting a little for the driver.
 * Returns 0, or KCI_NOTFOUND when there is no root disk (a debugging boot).
 * Both disks come from the same driver probe, so once the root disk is
 * visible a scratch disk that is not is absent.
 */
int
rootfs_find(struct rootfs_disks *disks)
{
	return sysfs_wait(probe_disks, disks, DISK_WAIT_MS);
}

struct scratch_mount {
	const struct rootfs_disks *disks;
	struct kci_err err;
	int rc;
};

static void *
mount_scratch(void *arg)
{
	struct scratch_mount *m = arg;

	if (m->disks->scratch[0])
		m->rc = mount_at(m->disks->scratch, SCRATCH_DIR, "ext4", MS_NOATIME, NULL, &m->err);
	else
		m->rc = mount_at("scratch", SCRATCH_DIR, "tmpfs", 0, "mode=0755", &m->err);
	return NULL;
}

/*
 * Mounts lower, upper and the overlay of the two at NEWROOT_DIR. The two
 * disks mount concurrently: each ext4 mount is tens of milliseconds of
 * emulated I/O under TCG, and every job waits for them.
 */
static int
mount_overlay(const struct rootfs_disks *disks, struct kci_err *err)
{
	struct scratch_mount scratch = { .disks = disks, .err = KCI_ERR_INIT };
	pthread_t thread;
	int threaded, rc;
	char opts[256];

	threaded = pthread_create(&thread, NULL, mount_scratch, &scratch) == 0;
	if (!threaded)
		mount_scratch(&scratch);
	rc = mount_at(disks->root, LOWER_DIR, "ext4", MS_RDONLY, NULL, err);
	if (threaded)
		pthread_join(thread, NULL);
	if (rc < 0)
		return kci_err_prefix(err, "root disk");
	if (scratch.rc < 0) {
		*err = scratch.err;
		return kci_err_prefix(err, "scratch disk");
	}
	if ((rc = mkdir_p(SCRATCH_DIR "/upper", 0755)) < 0 ||
	    (rc = mkdir_p(SCRATCH_DIR "/work", 0755)) < 0)
		return kci_err_sys(err, -rc, "create overlay dirs in %s", SCRATCH_DIR);
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", LOWER_DIR,
		 SCRATCH_DIR, SCRATCH_DIR);
	if ((rc = mount_at("overlay", NEWROOT_DIR, "overlay", 0, opts, err)) < 0)
		return kci_err_prefix(err, "root overlay");
	return 0;
}

/*
 * Builds the overlay root and makes it "/", carrying /dev, /proc and /sys
 * along. The initramfs root cannot be unmounted, so this is the switch_root
 * dance: move the new root over "/" and chroot into it.
 */
int
rootfs_switch(const struct rootfs_disks *disks, struct kci_err *err)
{
	static const char *const moved[] = { "/dev", "/proc", "/sys" };
	char target[64];
	int rc;

	if ((rc = mount_overlay(disks, err)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
		snprintf(target, sizeof(target), NEWROOT_DIR "%s", moved[i]);
		if ((rc = mount_at(moved[i], target, NULL, MS_MOVE, NULL, err)) < 0)
			return rc;
	}
	if (chdir(NEWROOT_DIR) < 0)
		return kci_err_sys(err, errno, "chdir %s", NEWROOT_DIR);
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
		return kci_err_sys(err, errno, "move %s to /", NEWROOT_DIR);
	if (chroot(".") < 0)
		return kci_err_sys(err, errno, "chroot into the new root");
	if (chdir("/") < 0)
		return kci_err_sys(err, errno, "chdir / in the new root");
	return 0;
}
