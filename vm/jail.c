/*
 * QEMU in a jail, as Firecracker's jailer runs its VMM: TCG is no security
 * boundary, so a guest that breaks out of QEMU must find itself in a process
 * that can do next to nothing. The jailed process
 *  - runs in new mount, PID, IPC, UTS and network namespaces (no network at
 *    all: its NIC is a socket kci hands it);
 *  - sees a root of its own: a small read-only tmpfs holding /usr (for QEMU
 *    and its libraries, read-only), four device nodes, and in /vm only the
 *    kernel, initramfs and disks of its VM;
 *  - has an unprivileged uid and gid of its own (a slot per VM), no
 *    capabilities, no_new_privs, an empty environment, and only the fds kci
 *    passes;
 *  - sits in a cgroup leaf capping its memory, processes and CPU (cgroup.c).
 * As root all of it applies. Without root, a user namespace provides the
 * namespaces and the private root, the uid stays the caller's, and there is
 * no cgroup unless one is delegated; `kci doctor` says which.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/fs.h"
#include "common/xalloc.h"
#include "vm/internal.h"

#define UID_DIR	  "/run/kci"
#define UID_SLOTS 4096

/* Where the child failed, for the parent's message. */
enum jail_step {
	STEP_WAIT = 1,
	STEP_FDS,
	STEP_PRIVATE,
	STEP_TMPFS,
	STEP_USR,
	STEP_DEV,
	STEP_FILES,
	STEP_PIVOT,
	STEP_READONLY,
	STEP_HOSTNAME,
	STEP_CAPS,
	STEP_IDS,
	STEP_EXEC,
};

static const char *const step_names[] = {
	[STEP_WAIT] = "waiting for kci",
	[STEP_FDS] = "arranging its fds",
	[STEP_PRIVATE] = "making its mounts private",
	[STEP_TMPFS] = "mounting its root",
	[STEP_USR] = "mounting /usr",
	[STEP_DEV] = "mounting /dev nodes",
	[STEP_FILES] = "mounting the VM's files",
	[STEP_PIVOT] = "switching root",
	[STEP_READONLY] = "making its root read-only",
	[STEP_HOSTNAME] = "setting its hostname",
	[STEP_CAPS] = "dropping capabilities",
	[STEP_IDS] = "dropping to its uid",
	[STEP_EXEC] = "exec",
};

static const char *const dev_nodes[] = { "null", "zero", "random", "urandom", "kvm" };

/* Everything the child needs, prepared by the parent: the child only makes syscalls. */
struct plan {
	const struct jail *j;
	char *usr, *dev, *vm;		     /* root/usr, root/dev, root/vm */
	char *dev_node[5];		     /* root/dev/NAME; NULL = not wanted */
	char *host_dev[5];		     /* /dev/NAME */
	char *file_path[JAIL_FILES_MAX];     /* root/vm/NAME */
	char *link_name[3], *link_target[3]; /* root/lib -> usr/lib, ... (merged /usr) */
	char *bind_dir[3], *bind_src[3];     /* root/lib <- /lib, ... (split /usr) */
	int userns;
	int sync_fd, report_fd;
};

static void __attribute__((noreturn)) child_fail(const struct plan *p, enum jail_step step)
{
	int report[2] = { (int)step, errno };

	(void)!write(p->report_fd, report, sizeof(report));
	_exit(127);
}

/* An empty file to bind-mount a file onto. */
static int
touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int
bind_file(const char *src, const char *dst, int writable)
{
	if (touch(dst) < 0 || mount(src, dst, NULL, MS_BIND, NULL) < 0)
		return -1;
	return writable ? 0
			: mount(NULL, dst, NULL,
				MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

/* Copies a small file into the jail (a kernel the jail's uid could not read in place). */
static int
copy_file(const char *src, const char *dst)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	ssize_t n;

	if (in < 0)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (kci_write_all(out, buf, (size_t)n) < 0)
			goto out;
	rc = out >= 0 && n == 0 ? 0 : -1;
out:
	close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* Puts the passed fds at 3, 4, ... and the output at 1 and 2; closes every other. */
static int
arrange_fds(const struct plan *p, int devnull)
{
	const struct jail *j = p->j;
	int moved[JAIL_FDS_MAX], out, report, sync;

	/* Above every target first, so no dup2 overwrites an fd still to be moved. */
	for (size_t i = 0; i < j->n_fds; i++)
		if ((moved[i] = fcntl(j->fds[i], F_DUPFD, 64)) < 0)
			return -1;
	if ((out = fcntl(j->out_fd, F_DUPFD, 64)) < 0 ||
	    (report = fcntl(p->report_fd, F_DUPFD_CLOEXEC, 64)) < 0 ||
	    (sync = fcntl(p->sync_fd, F_DUPFD_CLOEXEC, 64)) < 0)
		return -1;
	if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		return -1;
	for (size_t i = 0; i < j->n_fds; i++)
		if (dup2(moved[i], 3 + (int)i) < 0)
			return -1;
	/* The report and sync pipes stay, close-on-exec, right after the passed fds. */
	if (dup3(report, 3 + (int)j->n_fds, O_CLOEXEC) < 0 ||
	    dup3(sync, 4 + (int)j->n_fds, O_CLOEXEC) < 0)
		return -1;
	((struct plan *)p)->report_fd = 3 + (int)j->n_fds;
	((struct plan *)p)->sync_fd = 4 + (int)j->n_fds;
	return (int)syscall(SYS_close_range, 5 + j->n_fds, ~0U, 0);
}

static int
build_root(const struct plan *p)
{
	const struct jail *j = p->j;

	if (mount("kci-jail", j->root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0755,size=64m,nr_inodes=256") < 0)
		child_fail(p, STEP_TMPFS);
	if (mkdir(p->usr, 0755) < 0 || mount("/usr", p->usr, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, p->usr, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NODEV, NULL) < 0)
		child_fail(p, STEP_USR);
	for (int i = 0; i < 3; i++) {
		if (p->link_name[i] && symlink(p->link_target[i], p->link_name[i]) < 0)
			child_fail(p, STEP_USR);
		if (p->bind_dir[i] &&
		    (mkdir(p->bind_dir[i], 0755) < 0 ||
		     mount(p->bind_src[i], p->bind_dir[i], NULL, MS_BIND | MS_REC, NULL) < 0 ||
		     mount(NULL, p->bind_dir[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NODEV,
			   NULL) < 0))
			child_fail(p, STEP_USR);
	}
	if (mkdir(p->dev, 0755) < 0)
		child_fail(p, STEP_DEV);
	for (int i = 0; i < 5; i++)
		if (p->dev_node[i] &&
		    (touch(p->dev_node[i]) < 0 ||
		     mount(p->host_dev[i], p->dev_node[i], NULL, MS_BIND, NULL) < 0))
			child_fail(p, STEP_DEV);
	if (mkdir(p->vm, 0755) < 0)
		child_fail(p, STEP_FILES);
	for (size_t i = 0; i < j->n_files; i++) {
		const struct jail_file *f = &j->files[i];
		int rc = f->copy ? copy_file(f->host, p->file_path[i])
				 : bind_file(f->host, p->file_path[i], f->writable);
		if (rc < 0)
			child_fail(p, STEP_FILES);
	}
	/* The new root replaces the old one, which is then let go of entirely. */
	if (chdir(j->root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		child_fail(p, STEP_PIVOT);
	if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
	    0)
		child_fail(p, STEP_READONLY);
	return 0;
}

/* No capabilities, now or after exec, and no way to gain any. */
static void
drop_privileges(const struct plan *p)
{
	const struct jail *j = p->j;
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct none[2] = { { 0 } };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(p, STEP_CAPS);
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			child_fail(p, STEP_CAPS);
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (!p->userns) {
		/*
		 * Leaving uid 0 for another clears every capability set. Raw
		 * syscalls: this child came from clone3, behind glibc's back, and
		 * glibc's set*id() would wait forever for the parent's other
		 * threads, which it still believes it has, to follow suit.
		 */
		if (syscall(SYS_setgroups, 0, NULL) < 0 ||
		    syscall(SYS_setresgid, j->gid, j->gid, j->gid) < 0 ||
		    syscall(SYS_setresuid, j->uid, j->uid, j->uid) < 0)
			child_fail(p, STEP_IDS);
	}
	if (syscall(SYS_capset, &hdr, none) < 0)
		child_fail(p, STEP_CAPS);
}

/*
 * The child of clone3. glibc did not see this fork, so its idea of the
 * process (threads, locks held by them) is the parent's: only system calls
 * here, no malloc, stdio or glibc function that locks or signals threads.
 */
static void __attribute__((noreturn)) jail_child(struct plan *p)
{
	const struct jail *j = p->j;
	char go;
	int devnull;

	/* Whatever ends kci ends this too; and if kci is already gone, the read sees EOF. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (read(p->sync_fd, &go, 1) != 1)
		_exit(127);
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 || arrange_fds(p, devnull) < 0)
		child_fail(p, STEP_FDS);
	close(devnull);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(p, STEP_PRIVATE);
	build_root(p);
	if (sethostname(j->hostname, strlen(j->hostname)) < 0)
		child_fail(p, STEP_HOSTNAME);
	drop_privileges(p);
	/*
	 * A change of uid clears the parent-death signal: set it again, then
	 * make sure kci did not die meanwhile. kci holds the sync pipe open
	 * until the exec, so a hangup on it means kci is gone.
	 */
	struct pollfd alive = { .fd = p->sync_fd, .events = POLLIN };
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || poll(&alive, 1, 0) != 0)
		_exit(127);
	char *const envp[] = { NULL };
	execve(j->exe, j->argv, envp);
	child_fail(p, STEP_EXEC);
}

/* How /lib, /lib64 and /bin reach the jail: symlinks into /usr (merged) or bind mounts. */
static void
plan_system_dirs(struct plan *p)
{
	static const char *const dirs[3] = { "lib", "lib64", "bin" };
	char target[256];

	for (int i = 0; i < 3; i++) {
		char *host = kci_xasprintf("/%s", dirs[i]);
		ssize_t n = readlink(host, target, sizeof(target) - 1);
		struct stat st;

		if (n > 0) {
			target[n] = '\0';
			p->link_name[i] = kci_xasprintf("%s/%s", p->j->root, dirs[i]);
			p->link_target[i] = kci_xstrdup(target);
		} else if (stat(host, &st) == 0 && S_ISDIR(st.st_mode)) {
			p->bind_dir[i] = kci_xasprintf("%s/%s", p->j->root, dirs[i]);
			p->bind_src[i] = kci_xstrdup(host);
		}
		free(host);
	}
}

static void
plan_free(struct plan *p)
{
	free(p->usr);
	free(p->dev);
	free(p->vm);
	for (int i = 0; i < 5; i++) {
		free(p->dev_node[i]);
		free(p->host_dev[i]);
	}
	for (size_t i = 0; i < JAIL_FILES_MAX; i++)
		free(p->file_path[i]);
	for (int i = 0; i < 3; i++) {
		free(p->link_name[i]);
		free(p->link_target[i]);
		free(p->bind_dir[i]);
		free(p->bind_src[i]);
	}
}

static int
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = kci_write_all(fd, text, strlen(text));
	close(fd);
	return rc < 0 ? -1 : 0;
}

/* Without root: the child is root of its own user namespace, mapped to us. */
static int
map_ids(pid_t pid)
{
	char path[64], map[64];

	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)geteuid());
	if (write_file(path, map) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	if (write_file(path, "deny") < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)getegid());
	return write_file(path, map);
}

int
jail_spawn(struct jail *j, struct kci_err *err)
{
	struct plan p = { .j = j, .userns = geteuid() != 0, .sync_fd = -1, .report_fd = -1 };
	int sync[2] = { -1, -1 }, report[2] = { -1, -1 }, cg_fd = -1, pidfd = -1, rc = 0;
	int result[2] = { 0, 0 };
	struct clone_args ca = { .flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
					  CLONE_NEWNET | CLONE_PIDFD,
				 .exit_signal = SIGCHLD };
	ssize_t n;
	pid_t pid;

	j->pid = 0;
	j->pidfd = -1;
	p.usr = kci_xasprintf("%s/usr", j->root);
	p.dev = kci_xasprintf("%s/dev", j->root);
	p.vm = kci_xasprintf("%s/vm", j->root);
	for (int i = 0; i < 5; i++) {
		if (i == 4 && !j->kvm)
			continue;
		p.dev_node[i] = kci_xasprintf("%s/dev/%s", j->root, dev_nodes[i]);
		p.host_dev[i] = kci_xasprintf("/dev/%s", dev_nodes[i]);
	}
	for (size_t i = 0; i < j->n_files; i++)
		p.file_path[i] = kci_xasprintf("%s/vm/%s", j->root, j->files[i].name);
	plan_system_dirs(&p);
	if (p.userns)
		ca.flags |= CLONE_NEWUSER;
	if ((cg_fd = cgroup_fd(j->cg)) >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)cg_fd;
	}
	ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
	if (pipe2(sync, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0) {
		rc = kci_err_sys(err, errno, "pipe");
		goto out;
	}
	p.sync_fd = sync[0];
	p.report_fd = report[1];
	pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0) {
		rc = kci_err_sys(err, errno, "cannot start QEMU in new namespaces%s",
				 p.userns ? " (unprivileged user namespaces are disabled here; "
					    "`kci doctor` explains)"
					  : "");
		goto out;
	}
	if (pid == 0)
		jail_child(&p);
	j->pid = pid;
	j->pidfd = pidfd;
	close(sync[0]);
	close(report[1]);
	sync[0] = report[1] = -1;
	if (cg_fd < 0 && cgroup_attach(j->cg, pid) < 0) {
		rc = kci_err_sys(err, errno, "cannot put QEMU in its cgroup %s",
				 cgroup_leaf(j->cg));
		goto out;
	}
	if (p.userns && map_ids(pid) < 0) {
		rc = kci_err_sys(err, errno, "cannot map ids into QEMU's user namespace");
		goto out;
	}
	/*
	 * Go; then EOF on the report pipe means the exec happened (it is
	 * close-on-exec). The sync pipe stays open until then: the child takes a
	 * hangup on it for kci's death.
	 */
	if (write(sync[1], "g", 1) != 1) {
		rc = kci_err_sys(err, errno, "start QEMU");
		goto out;
	}
	while ((n = read(report[0], result, sizeof(result))) < 0 && errno == EINTR)
		;
	if (n == sizeof(result)) {
		const char *what = result[0] > 0 && result[0] <= STEP_EXEC ? step_names[result[0]]
									   : "starting";
		rc = kci_err_sys(err, result[1], "QEMU's jail: %s%s", what,
				 result[0] == STEP_EXEC && result[1] == ENOENT
					 ? " (install qemu-system-x86 under /usr)"
					 : "");
	}
out:
	for (int i = 0; i < 2; i++) {
		if (sync[i] >= 0)
			close(sync[i]);
		if (report[i] >= 0)
			close(report[i]);
	}
	if (cg_fd >= 0)
		close(cg_fd);
	plan_free(&p);
	return rc;
}

int
jail_uid_acquire(uid_t *uid, int *lock_fd, struct kci_err *err)
{
	*lock_fd = -1;
	if (kci_mkdir_p(UID_DIR, 0700, err) < 0)
		return kci_err_prefix(err, "QEMU's uids");
	/* A slot is ours while we hold its flock: kci processes that die free theirs. */
	for (unsigned slot = 0; slot < UID_SLOTS; slot++) {
		char path[64];
		int fd;

		snprintf(path, sizeof(path), UID_DIR "/uid-%u.lock", slot);
		fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return kci_err_sys(err, errno, "open %s", path);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*uid = KCI_JAIL_UID_BASE + slot;
			*lock_fd = fd;
			return 0;
		}
		close(fd);
	}
	return kci_err_set(err, KCI_ERROR, "all %d QEMU uids are in use", UID_SLOTS);
}

int
kci_vm_jail_check(char *ns, size_t nslen, char *caps, size_t capslen)
{
	int rc = 0, status = 0;
	pid_t pid;

	if (geteuid() == 0) {
		snprintf(ns, nslen,
			 "QEMU runs as an unprivileged uid without capabilities, in "
			 "its own mount, PID, IPC, UTS and network namespaces");
	} else {
		/* What jail_spawn needs without root: a user namespace with the others. */
		pid = fork();
		if (pid == 0)
			_exit(unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET) <
			      0);
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			snprintf(ns, nslen,
				 "unprivileged user namespaces are not available, "
				 "so QEMU cannot be jailed without root");
			rc = -1;
		} else {
			snprintf(ns, nslen,
				 "QEMU runs in its own user, mount, PID, IPC, UTS and "
				 "network namespaces (as you: no uid of its own without "
				 "root)");
		}
	}
	if (cgroup_probe(caps, capslen) < 0)
		rc = -1;
	return rc;
}
