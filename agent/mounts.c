/* Mount helpers and the API file systems PID 1 provides: /dev, /proc, /sys, ptys, shm, /run. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/internal.h"

/* Creates path and its missing parents. Returns 0 or -errno. */
int
mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Mounts a file system on target, creating the mount point first. */
int
mount_at(const char *src, const char *target, const char *type, unsigned long flags,
	 const char *data, struct kci_err *err)
{
	int rc;

	if ((rc = mkdir_p(target, 0755)) < 0)
		return kci_err_sys(err, -rc, "create mount point %s", target);
	if (mount(src, target, type, flags, data) < 0)
		return kci_err_sys(err, errno, "mount %s (%s) on %s", src, type ? type : "move",
				   target);
	return 0;
}

/* What the agent needs before anything else: device nodes, and /sys and /proc to find them. */
int
mounts_early(struct kci_err *err)
{
	const unsigned long api_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	int rc;

	if ((rc = mount_at("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", err)) < 0)
		return rc;
	if ((rc = mount_at("proc", "/proc", "proc", api_flags, NULL, err)) < 0)
		return rc;
	return mount_at("sysfs", "/sys", "sysfs", api_flags, NULL, err);
}

/* The links udev would make; shells need /dev/fd for process substitution. */
static void
dev_links(void)
{
	static const char *const links[][2] = {
		{ "/proc/self/fd", "/dev/fd" },
		{ "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" },
		{ "/proc/self/fd/2", "/dev/stderr" },
	};

	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		(void)symlink(links[i][0], links[i][1]);
}

/*
 * Makes a sticky world-writable dir unless the image has one (then its mode is
 * the image's business); chmod because mkdir's mode passes through the umask.
 */
static int
tmp_dir(const char *path, struct kci_err *err)
{
	struct stat st;
	int rc;

	if (stat(path, &st) == 0)
		return 0;
	if ((rc = mkdir_p(path, 01777)) < 0)
		return kci_err_sys(err, -rc, "create %s", path);
	if (chmod(path, 01777) < 0)
		return kci_err_sys(err, errno, "chmod %s", path);
	return 0;
}

/*
 * What jobs expect of a Linux system, mounted in the final root: ptys, shared
 * memory and /run. /tmp stays on the overlay, whose upper layer is the
 * scratch disk, so a job's temporary files do not eat guest RAM.
 */
int
mounts_late(struct kci_err *err)
{
	struct stat st;
	int rc;

	/*
	 * A private devpts instance; the devtmpfs /dev/ptmx node resolves to the
	 * "pts" directory beside it, so it serves this instance.
	 */
	if ((rc = mount_at("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
			   "newinstance,ptmxmode=0666,mode=620,gid=5", err)) < 0)
		return rc;
	if (lstat("/dev/ptmx", &st) < 0 && symlink("pts/ptmx", "/dev/ptmx") < 0)
		return kci_err_sys(err, errno, "link /dev/ptmx");
	if ((rc = mount_at("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", err)) < 0)
		return rc;
	if ((rc = mount_at("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", err)) < 0)
		return rc;
	if ((rc = tmp_dir("/tmp", err)) < 0)
		return rc;
	dev_links();
	return 0;
}
