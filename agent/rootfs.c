/*
 * The job's root: image disk as overlay lower layer, scratch disk as upper;
 * then switch root. The workspace disk, if any, is mounted at /workspace.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "agent/internal.h"

#define ROOT_SERIAL    "kci-root"
#define SCRATCH_SERIAL "kci-scratch"
#define WORK_SERIAL    "kci-work"
#define DISK_WAIT_MS   5000

/* Mount points inside the initramfs; they vanish from view with the switch. */
#define LOWER_DIR   "/kci/lower"
#define SCRATCH_DIR "/kci/scratch"
#define NEWROOT_DIR "/kci/root"

/* Where jobs find the workspace, in whichever root they run. */
#define WORKSPACE "/workspace"

/* Scans /sys/block/vd* for the serials; KCI_NOTFOUND until the root disk is there. */
static int
probe_disks(void *ctx)
{
	struct rootfs_disks *disks = ctx;
	char path[300], serial[64];
	struct dirent *de;
	DIR *dir;

	disks->root[0] = disks->scratch[0] = disks->work[0] = '\0';
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
		else if (strcmp(serial, WORK_SERIAL) == 0)
			snprintf(disks->work, sizeof(disks->work), "/dev/%.16s", de->d_name);
	}
	closedir(dir);
	return disks->root[0] ? 0 : KCI_NOTFOUND;
}

/*
 * Finds the disks by their virtio serials, waiting a little for the driver.
 * Returns 0, or KCI_NOTFOUND when there is no root disk (a debugging boot).
 * All disks come from the same driver probe, so once the root disk is
 * visible a scratch or workspace disk that is not is absent.
 */
int
rootfs_find(struct rootfs_disks *disks)
{
	return sysfs_wait(probe_disks, disks, DISK_WAIT_MS);
}

/* One disk mounted on a thread of its own while the main thread mounts the root disk. */
struct disk_mount {
	const char *dev; /* "" for none */
	const char *target;
	const char *tmpfs_opts; /* without a disk: a tmpfs with these options, or nothing */
	struct kci_err err;
	int rc;
	pthread_t thread;
	int threaded;
};

static void *
mount_disk(void *arg)
{
	struct disk_mount *m = arg;

	if (m->dev[0])
		m->rc = mount_at(m->dev, m->target, "ext4", MS_NOATIME, NULL, &m->err);
	else if (m->tmpfs_opts)
		m->rc = mount_at("scratch", m->target, "tmpfs", 0, m->tmpfs_opts, &m->err);
	return NULL;
}

static void
disk_mount_start(struct disk_mount *m)
{
	m->threaded = pthread_create(&m->thread, NULL, mount_disk, m) == 0;
	if (!m->threaded)
		mount_disk(m);
}

/* Waits for the mount; on failure its message, prefixed with what, goes to err. */
static int
disk_mount_join(struct disk_mount *m, const char *what, int report, struct kci_err *err)
{
	if (m->threaded)
		pthread_join(m->thread, NULL);
	m->threaded = 0;
	if (m->rc < 0 && report) {
		*err = m->err;
		return kci_err_prefix(err, "%s", what);
	}
	return m->rc;
}

/*
 * mke2fs -d gives every ext4 a lost+found. On the workspace it would be a
 * directory the repository never had (`git status` would list it), so it goes
 * while it is empty; e2fsck makes a new one if it ever needs it.
 */
static void
drop_lost_found(const char *mnt)
{
	char path[64];

	snprintf(path, sizeof(path), "%s/lost+found", mnt);
	(void)rmdir(path);
}

/*
 * Mounts lower, upper and the overlay of the two at NEWROOT_DIR. The disks
 * mount concurrently: each ext4 mount is tens of milliseconds of emulated
 * I/O under TCG, and every job waits for them. The workspace waits for
 * RESUME (rootfs_mount_workspace): a guest restored from a template must
 * see its own job's disk, not what the template's boot saw.
 */
static int
mount_overlay(const struct rootfs_disks *disks, struct kci_err *err)
{
	struct disk_mount scratch = { .dev = disks->scratch,
				      .target = SCRATCH_DIR,
				      .tmpfs_opts = "mode=0755",
				      .err = KCI_ERR_INIT };
	int rc;
	char opts[256];

	disk_mount_start(&scratch);
	/* Both threads are joined whatever fails; the first failure is the one reported. */
	rc = mount_at(disks->root, LOWER_DIR, "ext4", MS_RDONLY, NULL, err);
	if (rc < 0)
		kci_err_prefix(err, "root disk");
	if (disk_mount_join(&scratch, "scratch disk", rc == 0, err) < 0 && rc == 0)
		rc = scratch.rc;
	if (rc < 0)
		return rc;
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

/*
 * Mounts the workspace disk at /workspace in whichever root the agent is in
 * (mount_at makes the mount point: an image need not have one). The guest
 * read this disk's first blocks when its kernel probed it; in a guest
 * restored from a template that was another disk, so the block device's
 * cache is dropped first and the mount reads only this job's bytes.
 */
int
rootfs_mount_workspace(const struct rootfs_disks *disks, struct kci_err *err)
{
	int fd;

	if (!disks->work[0])
		return 0;
	if ((fd = open(disks->work, O_RDONLY | O_CLOEXEC)) < 0)
		return kci_err_sys(err, errno, "workspace disk: open %s", disks->work);
	if (ioctl(fd, BLKFLSBUF, 0) < 0) {
		int e = errno;
		close(fd);
		return kci_err_sys(err, e, "workspace disk: drop the cache of %s", disks->work);
	}
	close(fd);
	if (mount_at(disks->work, WORKSPACE, "ext4", MS_NOATIME, NULL, err) < 0)
		return kci_err_prefix(err, "workspace disk");
	drop_lost_found(WORKSPACE);
	return 0;
}
