/*
 * Launching QEMU and tearing it down. Every VM has a private runtime dir
 * (0700) holding its QMP socket, scratch and workspace disks and lock;
 * kci_vm_free() removes it on every path, and kci_vm_sweep_stale() removes
 * those of dead kci processes. QEMU gets PR_SET_PDEATHSIG so it never
 * outlives kci, and passt (--net nat) exits when QEMU's end of its socket closes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/proto.h"
#include "common/fs.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "vm/vmpriv.h"

/* Name of a VM's RAM file while it is being made (make_ram): a kci temp file's. */
#define RAM_PREFIX "kci-ram.tmp-"

/* The fd numbers QEMU sees for its inherited sockets. */
enum { CHILD_CONSOLE_FD = 3, CHILD_AGENT_FD = 4, CHILD_QMP_FD = 5, CHILD_NET_FD = 6 };

int64_t
vm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void
kci_vm_sweep_stale(const char *run_dir)
{
	DIR *d = opendir(run_dir);
	struct dirent *de;

	cgroup_sweep();
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "vm-", 3) != 0)
			continue;
		char *dir = kci_xasprintf("%s/%s", run_dir, de->d_name);
		char *lock = kci_xasprintf("%s/lock", dir);
		int fd = open(lock, O_RDONLY | O_CLOEXEC);
		struct stat st;
		/*
		 * A lock nobody holds means its kci died. No lock at all is a dir
		 * being created, unless it is old: then its kci died before locking.
		 */
		if (fd >= 0 ? flock(fd, LOCK_EX | LOCK_NB) == 0
			    : (errno == ENOENT && stat(dir, &st) == 0 &&
			       time(NULL) - st.st_mtime > 60))
			kci_rm_rf(dir, NULL);
		if (fd >= 0)
			close(fd);
		free(lock);
		free(dir);
	}
	closedir(d);
}

/* Creates vm->dir with its lock held. */
static int
make_run_dir(struct kci_vm *vm, const char *run_dir, struct kci_err *err)
{
	char *lock;
	int rc;

	if ((rc = kci_mkdir_p(run_dir, 0700, err)) < 0)
		return rc;
	kci_vm_sweep_stale(run_dir);
	vm->dir = kci_xasprintf("%s/vm-XXXXXX", run_dir);
	if (!mkdtemp(vm->dir)) {
		rc = kci_err_sys(err, errno, "create VM runtime dir in %s", run_dir);
		free(vm->dir);
		vm->dir = NULL;
		return rc;
	}
	/*
	 * The lock appears under its name only once held: a sweeper that opened
	 * a fresh, not-yet-locked "lock" would take this live dir for a dead one.
	 */
	lock = kci_xasprintf("%s/lock", vm->dir);
	char *fresh = kci_xasprintf("%s/lock.new", vm->dir);
	vm->lock_fd = open(fresh, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (vm->lock_fd < 0 || flock(vm->lock_fd, LOCK_EX) < 0 || rename(fresh, lock) < 0)
		rc = kci_err_sys(err, errno, "lock %s", lock);
	free(fresh);
	free(lock);
	return rc;
}

/* Formats the cached, empty scratch template once per size. */
static int
scratch_template(const char *cache_dir, uint64_t mib, char **out, struct kci_err *err)
{
	char size[32];
	char *path, *tmp = NULL;
	int fd, rc;

	path = kci_xasprintf("%s/scratch-%lluM.ext4", cache_dir, (unsigned long long)mib);
	if (access(path, R_OK) == 0) {
		*out = path;
		return 0;
	}
	if ((rc = kci_mkdir_p(cache_dir, 0700, err)) < 0 ||
	    (rc = fd = kci_tmpfile_near(path, &tmp, err)) < 0)
		goto out;
	snprintf(size, sizeof(size), "%lluM", (unsigned long long)mib);
	/* Throwaway disk: no journal, no reserved blocks, lazy init; sparse on the host. */
	char *argv[] = { "mke2fs",
			 "-q",
			 "-F",
			 "-t",
			 "ext4",
			 "-O",
			 "^has_journal",
			 "-m",
			 "0",
			 "-E",
			 "lazy_itable_init=1,root_owner=0:0",
			 tmp,
			 size,
			 NULL };
	if ((rc = run_tool(argv, err)) < 0) {
		kci_err_prefix(err, "create scratch disk");
		close(fd);
		unlink(tmp);
		goto out;
	}
	if ((rc = kci_commit_file(fd, tmp, path, err)) < 0)
		goto out;
	*out = path;
	path = NULL;
out:
	free(tmp);
	free(path);
	return rc;
}

/* With templates, the workspace's size in whole GiB: one template serves every size below. */
static uint64_t
work_pad(const char *workspace)
{
	struct stat st;

	if (!workspace || stat(workspace, &st) < 0)
		return 0;
	return ((uint64_t)st.st_size + (1ull << 30) - 1) & ~((1ull << 30) - 1);
}

/*
 * The VM's writable disks are sparse, but the guest may fill them: refuse to
 * start a VM whose worst case does not fit in the free space where they go.
 */
static int
check_room(const struct kci_vm_opts *o, struct kci_err *err)
{
	uint64_t work = 0, worst, avail;
	struct statvfs v;
	struct stat st;

	if (o->workspace && stat(o->workspace, &st) == 0)
		work = (o->warm ? work_pad(o->workspace) : (uint64_t)st.st_size) >> 20;
	worst = o->scratch_mib + work;
	if (!worst || statvfs(o->run_dir, &v) < 0)
		return 0;
	avail = (uint64_t)v.f_bavail * v.f_frsize >> 20;
	avail = avail > VM_DISK_RESERVE_MIB ? avail - VM_DISK_RESERVE_MIB : 0;
	if (worst <= avail)
		return 0;
	return kci_err_set(err, KCI_NOSPACE,
			   "the VM could write %llu MiB (its scratch disk%s), more than the %llu "
			   "MiB free in %s less a %d MiB reserve: ask for a smaller disk",
			   (unsigned long long)worst, work ? " and its workspace" : "",
			   (unsigned long long)avail, o->run_dir, VM_DISK_RESERVE_MIB);
}

/*
 * The per-VM writable disk: a sparse copy of the cached empty one, or of the
 * template's for a VM restored from it (the saved guest has it mounted).
 */
static int
make_scratch(struct kci_vm *vm, const char *cache_dir, uint64_t mib, char **out,
	     struct kci_err *err)
{
	char *src = NULL, *path;
	int rc;

	if (vm->mode == VM_CLONE)
		src = kci_xasprintf("%s/scratch.ext4", vm->tmpl.dir);
	else if ((rc = scratch_template(cache_dir, mib, &src, err)) < 0)
		return rc;
	path = kci_xasprintf("%s/scratch.ext4", vm->dir);
	(void)unlink(path); /* a cold boot after a failed restore starts afresh */
	rc = vm_copy_sparse(src, path, err);
	free(src);
	if (rc < 0) {
		free(path);
		return rc;
	}
	*out = path;
	return 0;
}

/*
 * The VM's own copy of the workspace disk, which stays untouched for the next
 * VM. With templates it is padded (sparse) to work_pad: the saved guest's
 * kernel knows the disk's size from its boot, so every clone's must be the
 * same, at least as large as the file system in it.
 */
static int
make_workspace(struct kci_vm *vm, const char *src, uint64_t pad, char **out, struct kci_err *err)
{
	char *path = kci_xasprintf("%s/workspace.ext4", vm->dir);
	int rc;

	(void)unlink(path);
	if ((rc = vm_copy_sparse(src, path, err)) == 0 && pad && truncate(path, (off_t)pad) < 0)
		rc = kci_err_sys(err, errno, "pad %s", path);
	if (rc < 0) {
		free(path);
		return kci_err_prefix(err, "workspace disk");
	}
	*out = path;
	return 0;
}

/*
 * Starts passt on one end of a socketpair; *qemu_end gets the other, for
 * QEMU's NIC. Once QEMU holds it kci must close its copy: passt exits when
 * the last holder of that end is gone.
 */
static int
start_net(struct kci_vm *vm, const char *cache_dir, int log_fd, int *qemu_end, struct kci_err *err)
{
	int sv[2], runas = -1;
	char *rules = NULL;
	int rc;

	/*
	 * As root, passt runs as KCI_NET_UID behind the host filter that keeps
	 * guests off the host's addresses and private networks. Without root the
	 * same rules go into a network namespace of the VM's own (passt.c).
	 */
	if (geteuid() == 0) {
		if (!vm->filtered && (rc = net_filter_acquire(cache_dir, err)) < 0)
			return rc;
		vm->filtered = 1;
		runas = KCI_NET_UID;
	} else {
		/* pasta needs it; without, the VM would boot with a dead network. */
		if (access("/dev/net/tun", R_OK | W_OK) < 0)
			return kci_err_sys(err, errno,
					   "--net nat without root needs /dev/net/tun usable by "
					   "you (chmod 0666 /dev/net/tun, Debian's default; or run "
					   "kci as root)");
		rules = kci_xasprintf("%s/net.nft", vm->dir);
		if ((rc = net_filter_write_sandbox(rules, err)) < 0) {
			free(rules);
			return rc;
		}
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		free(rules);
		return kci_err_sys(err, errno, "socketpair");
	}
	rc = passt_start(sv[0], log_fd, runas, rules, &vm->passt_pid, err);
	free(rules);
	close(sv[0]);
	/* The VM's network stack counts against the VM's caps. */
	if (rc == 0 && cgroup_attach(vm->cg, vm->passt_pid) < 0 && geteuid() == 0)
		rc = kci_err_sys(err, errno, "cannot put passt in the VM's cgroup");
	if (rc < 0) {
		close(sv[1]);
		return rc;
	}
	*qemu_end = sv[1];
	return 0;
}

/* A listening QMP socket created by us (so it exists, 0600, before QEMU runs). */
static int
make_qmp(struct kci_vm *vm, struct kci_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	free(vm->qmp_path);
	vm->qmp_path = kci_xasprintf("%s/qmp.sock", vm->dir);
	(void)unlink(vm->qmp_path); /* a relaunch's: QEMU is gone */
	if (strlen(vm->qmp_path) >= sizeof(sa.sun_path))
		return kci_err_set(err, KCI_INVALID, "runtime dir path too long for a socket: %s",
				   vm->qmp_path);
	strcpy(sa.sun_path, vm->qmp_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return kci_err_sys(err, errno, "socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(vm->qmp_path, 0600) < 0 ||
	    listen(fd, 2) < 0) {
		int rc = kci_err_sys(err, errno, "QMP socket %s", vm->qmp_path);
		close(fd);
		return rc;
	}
	return fd;
}

/*
 * A read-only input for the jail: bound in place when its uid may read it,
 * else (a kernel or initramfs, a few MiB) copied in. Root disks are large and
 * always kci's own cache files: those are made readable instead, as their
 * directory (0700) already keeps other users away.
 */
static int
add_ro_file(struct jail *j, const char *host, const char *name, int big, struct kci_err *err)
{
	struct jail_file *f = &j->files[j->n_files++];
	struct stat st;

	*f = (struct jail_file){ .host = host, .name = name };
	if (stat(host, &st) < 0)
		return kci_err_sys(err, errno, "%s", host);
	if (geteuid() != 0 || (st.st_mode & S_IROTH))
		return 0;
	if (!big) {
		f->copy = 1;
		return 0;
	}
	if (st.st_uid != geteuid() || chmod(host, (st.st_mode & 07777) | 0444) < 0)
		return kci_err_set(err, KCI_INVALID,
				   "%s is not readable by QEMU's unprivileged uid (make it "
				   "world-readable, or let kci build it)",
				   host);
	return 0;
}

static int
add_rw_file(struct jail *j, const char *host, const char *name, struct kci_err *err)
{
	j->files[j->n_files++] = (struct jail_file){ .host = host, .name = name, .writable = 1 };
	if (geteuid() == 0 && chown(host, j->uid, j->gid) < 0)
		return kci_err_sys(err, errno, "chown %s", host);
	return 0;
}

/*
 * The cap on one VM: guest RAM plus what QEMU itself needs under TCG
 * (translated code, device state), measured at ~215 MiB for a 256 MiB
 * guest; threads: one per vCPU plus QEMU's workers.
 */
static void
vm_limits(const struct kci_vm_opts *o, struct cgroup_limits *l)
{
	l->memory_bytes = (o->memory_mib + VM_OVERHEAD_MIB) << 20;
	l->pids = 64 + 2 * o->cpus;
	l->cpus = o->cpus;
}

/*
 * What confines the VM's processes: as root, a uid for its QEMU and a cgroup
 * leaf capping QEMU and passt together (required); without root, a cgroup
 * if the host delegates one.
 */
static int
make_limits(struct kci_vm *vm, const struct kci_vm_opts *o, struct kci_err *err)
{
	struct cgroup_limits lim;
	int rc;

	if (geteuid() == 0 && (rc = jail_uid_acquire(&vm->uid, &vm->uid_lock_fd, err)) < 0)
		return rc;
	vm_limits(o, &lim);
	rc = cgroup_create(&vm->cg, strrchr(vm->dir, '/') + 1, &lim, err);
	return geteuid() == 0 ? rc : 0;
}

/* The command line's paths as QEMU sees them in its jail (/vm/...). */
static void
jail_paths(const struct vm_boot *b, struct qemu_cmd *cmd)
{
	cmd->kernel = "/vm/vmlinuz";
	cmd->initrd = "/vm/initrd";
	cmd->rootfs = b->rootfs ? "/vm/root.ext4" : NULL;
	cmd->scratch = b->scratch_mib ? "/vm/scratch.ext4" : NULL;
	cmd->workspace = b->workspace_src ? "/vm/work.ext4" : NULL;
}

/* What this VM's launches pass QEMU; name and fds are the caller's. */
static void
base_cmd(const struct kci_vm *vm, struct qemu_cmd *cmd)
{
	const struct vm_boot *b = vm->boot;

	*cmd = (struct qemu_cmd){
		.net = b->network == KCI_VM_NET_NAT ? VM_NET_ADDRESSING : NULL,
		.accel = b->accel,
		.cpus = b->cpus,
		.memory_mib = b->memory_mib,
		.tsc_khz = kci_vm_host_tsc_khz(),
		.console_fd = CHILD_CONSOLE_FD,
		.agent_fd = CHILD_AGENT_FD,
		.qmp_fd = CHILD_QMP_FD,
		.net_fd = CHILD_NET_FD,
		.ram_path = vm->mode != VM_COLD ? "/vm/ram" : NULL,
		.ram_shared = vm->mode == VM_MAKE,
	};
	jail_paths(b, cmd);
}

/*
 * Picks the VM's mode (template.c) by the command line its template would
 * have. The TSC frequency is left out: the kernel reads it only as it boots,
 * and a host whose reported frequency wanders would never reuse a template.
 */
static void
choose_mode(struct kci_vm *vm)
{
	const struct vm_boot *b = vm->boot;
	struct qemu_cmd cmd;
	char *exe = tool_path(b->qemu ? b->qemu : "qemu-system-x86_64"), *text;
	char **argv;
	size_t len = 0;

	if (!exe)
		return; /* launch() says QEMU is missing */
	base_cmd(vm, &cmd);
	cmd.tsc_khz = 0;
	/* As a clone has it; the VM that makes the template shares it instead. */
	cmd.ram_path = "/vm/ram";
	cmd.ram_shared = 0;
	cmd.qemu = exe;
	argv = qemu_argv(&cmd);
	for (size_t i = 0; argv[i]; i++)
		len += strlen(argv[i]) + 1;
	text = kci_xmalloc(len + 1);
	text[0] = '\0';
	for (size_t i = 0; argv[i]; i++) {
		strcat(text, argv[i]);
		strcat(text, " ");
	}
	template_choose(vm, exe, text);
	free(text);
	kci_strv_free(argv);
	free(exe);
}

/* Starts QEMU in its jail, with the sockets it needs at fixed fd numbers. */
static int
spawn(struct kci_vm *vm, struct qemu_cmd *cmd, int console, int agent, int qmp, int net,
      struct kci_err *err)
{
	const struct vm_boot *o = vm->boot;
	const char *scratch = o->scratch, *workspace = o->workspace;
	struct jail j = { .out_fd = -1, .hostname = "kci-vm", .kvm = o->accel == KCI_ACCEL_KVM };
	int errpipe[2] = { -1, -1 }, rc = 0;
	char *root = kci_xasprintf("%s/root", vm->dir), *exe = NULL;
	char **argv = NULL;

	if (!(exe = tool_path(o->qemu ? o->qemu : "qemu-system-x86_64"))) {
		rc = kci_err_set(err, KCI_NOTFOUND,
				 "cannot run qemu-system-x86_64: not found (install "
				 "qemu-system-x86)");
		goto out;
	}
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		rc = kci_err_sys(err, errno, "mkdir %s", root);
		goto out;
	}
	j.uid = vm->uid;
	j.gid = (gid_t)vm->uid;
	if ((vm->mode != VM_CLONE && ((rc = add_ro_file(&j, o->kernel, "vmlinuz", 0, err)) < 0 ||
				      (rc = add_ro_file(&j, o->initrd, "initrd", 0, err)) < 0)) ||
	    (o->rootfs && (rc = add_ro_file(&j, o->rootfs, "root.ext4", 1, err)) < 0) ||
	    (scratch && (rc = add_rw_file(&j, scratch, "scratch.ext4", err)) < 0) ||
	    (workspace && (rc = add_rw_file(&j, workspace, "work.ext4", err)) < 0) ||
	    (vm->mode == VM_MAKE && (rc = add_rw_file(&j, vm->ram, "ram", err)) < 0))
		goto out;
	/*
	 * A clone maps the template's RAM privately (copy-on-write): what its guest
	 * writes never reaches the file. QEMU 7.2 opens it read-write all the same
	 * (docs/templates.md says what that leaves open and how kci checks it).
	 */
	if (vm->mode == VM_CLONE)
		j.files[j.n_files++] =
			(struct jail_file){ .host = vm->ram, .name = "ram", .writable = 1 };
	jail_paths(o, cmd);
	cmd->qemu = exe;
	/* The saved state comes after the other inherited fds. */
	if (vm->mode == VM_CLONE)
		cmd->restore_fd = 3 + (net >= 0 ? 4 : 3);
	argv = qemu_argv(cmd);
	if (o->console_fd >= 0) {
		for (size_t i = 0; argv[i]; i++)
			dprintf(o->console_fd, "%s%s", i ? " " : "kci: debug: ", argv[i]);
		dprintf(o->console_fd, "\n");
	}
	if (pipe2(errpipe, O_CLOEXEC) < 0) {
		rc = kci_err_sys(err, errno, "pipe");
		goto out;
	}
	j.root = root;
	j.exe = exe;
	j.argv = argv;
	j.fds[j.n_fds++] = console; /* CHILD_CONSOLE_FD */
	j.fds[j.n_fds++] = agent;   /* CHILD_AGENT_FD */
	j.fds[j.n_fds++] = qmp;	    /* CHILD_QMP_FD */
	if (net >= 0)
		j.fds[j.n_fds++] = net; /* CHILD_NET_FD */
	if (vm->mode == VM_CLONE)
		j.fds[j.n_fds++] = vm->tmpl.state_fd; /* cmd->restore_fd */
	j.out_fd = errpipe[1];
	j.cg = vm->cg;
	rc = jail_spawn(&j, err);
	/* Bound into the jail (or failed to be): its name is of no more use. */
	if (vm->mode == VM_MAKE)
		(void)unlink(vm->ram);
	vm->pid = j.pid;
	vm->pidfd = j.pidfd;
	if (rc < 0)
		goto out;
	vm->stderr_fd = errpipe[0];
	errpipe[0] = -1;
	set_nonblock(vm->stderr_fd);
out:
	for (int i = 0; i < 2; i++)
		if (errpipe[i] >= 0)
			close(errpipe[i]);
	kci_strv_free(argv);
	free(exe);
	free(root);
	return rc;
}

/*
 * Passt (with a NIC) and QEMU, for vm->boot: the part of kci_vm_start() that
 * vm_relaunch() repeats.
 */
static int
launch(struct kci_vm *vm, struct kci_err *err)
{
	const struct vm_boot *b = vm->boot;
	int con[2] = { -1, -1 }, agent[2] = { -1, -1 }, qmp = -1, net = -1, rc;

	if (b->network == KCI_VM_NET_NAT &&
	    (rc = start_net(vm, b->cache_dir, b->console_fd, &net, err)) < 0)
		return rc;
	if ((qmp = make_qmp(vm, err)) < 0) {
		rc = qmp;
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, agent) < 0) {
		rc = kci_err_sys(err, errno, "socketpair");
		goto out;
	}
	struct qemu_cmd cmd;
	base_cmd(vm, &cmd);
	cmd.name = vm->dir;
	if ((rc = spawn(vm, &cmd, con[1], agent[1], qmp, net, err)) < 0)
		goto out;
	vm->console_fd = con[0];
	vm->agent_fd = agent[0];
	con[0] = agent[0] = -1;
	if (vm->mode == VM_CLONE && (rc = template_incoming(vm, cmd.restore_fd, err)) < 0)
		goto out;
	set_nonblock(vm->console_fd);
	set_nonblock(vm->agent_fd);
	/* A restored guest is past its boot, waiting for RESUME (template.c). */
	vm->hello = vm->alive = vm->resume_due = vm->mode == VM_CLONE;
	vm->resumed = vm->ready = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (con[i] >= 0)
			close(con[i]);
		if (agent[i] >= 0)
			close(agent[i]);
	}
	if (qmp >= 0)
		close(qmp);
	if (net >= 0)
		close(net);
	return rc;
}

/* Removes the RAM files of VMs whose kci was killed between making one and unlinking it. */
static void
sweep_ram_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;

	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, RAM_PREFIX, strlen(RAM_PREFIX)) == 0 &&
		    kci_tmp_is_orphan(de->d_name) &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_uid == geteuid())
			(void)unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
}

/*
 * Guest RAM as a file: the template's for a clone. For the VM that makes a
 * template, a file of kci's that QEMU maps shared, so that template_save()
 * can copy the saved RAM out of it (through vm->ram_fd): in /dev/shm when
 * that is a tmpfs, since on a disk every write of the first job to its RAM
 * would be written back to the disk (and the boot is slower). It is unlinked
 * as soon as QEMU's jail has it bound (spawn()); a memfd would need no name,
 * but cannot be bound into the jail's mount namespace.
 */
static int
make_ram(struct kci_vm *vm, struct kci_err *err)
{
	struct statfs sfs;
	const char *dir = "/dev/shm";

	free(vm->ram);
	vm->ram = NULL;
	if (vm->ram_fd >= 0)
		close(vm->ram_fd);
	vm->ram_fd = -1;
	if (vm->mode == VM_CLONE)
		vm->ram = kci_xasprintf("%s/ram", vm->tmpl.dir);
	if (vm->mode != VM_MAKE)
		return 0;
	/*
	 * All of the guest's RAM may end up there: a tmpfs too small for it would
	 * kill QEMU (SIGBUS) the moment it filled up.
	 */
	if (statfs(dir, &sfs) < 0 || sfs.f_type != TMPFS_MAGIC || access(dir, W_OK) < 0 ||
	    (uint64_t)sfs.f_bavail * (uint64_t)sfs.f_bsize < (vm->boot->memory_mib + 256) << 20) {
		/* On the disk, with the same care: check_room() did not count it. */
		uint64_t need = vm->boot->memory_mib + vm->boot->scratch_mib + VM_DISK_RESERVE_MIB;
		dir = vm->dir;
		if (statfs(dir, &sfs) == 0 &&
		    ((uint64_t)sfs.f_bavail * (uint64_t)sfs.f_bsize >> 20) < need)
			return kci_err_set(err, KCI_NOSPACE,
					   "no room for its %llu MiB of RAM in %s or /dev/shm",
					   (unsigned long long)vm->boot->memory_mib, dir);
	}
	sweep_ram_files(dir);
	vm->ram = kci_xasprintf("%s/" RAM_PREFIX "%d-XXXXXX", dir, (int)getpid());
	vm->ram_fd = mkostemp(vm->ram, O_CLOEXEC);
	if (vm->ram_fd < 0 || ftruncate(vm->ram_fd, (off_t)(vm->boot->memory_mib << 20)) < 0) {
		int rc = kci_err_sys(err, errno, "guest RAM for the VM template in %s", dir);
		if (vm->ram_fd >= 0)
			(void)unlink(vm->ram);
		return rc;
	}
	return 0;
}

/* The VM's own scratch and workspace disks, made afresh. */
static int
make_disks(struct kci_vm *vm, struct kci_err *err)
{
	struct vm_boot *b = vm->boot;
	int rc;

	free(b->scratch);
	free(b->workspace);
	b->scratch = b->workspace = NULL;
	if (b->scratch_mib &&
	    (rc = make_scratch(vm, b->cache_dir, b->scratch_mib, &b->scratch, err)) < 0)
		return rc;
	if (b->workspace_src &&
	    (rc = make_workspace(vm, b->workspace_src, b->work_pad, &b->workspace, err)) < 0)
		return rc;
	return 0;
}

static void
boot_free(struct vm_boot *b)
{
	if (!b)
		return;
	free(b->qemu);
	free(b->kernel);
	free(b->initrd);
	free(b->rootfs);
	free(b->cache_dir);
	free(b->scratch);
	free(b->workspace);
	free(b->workspace_src);
	free(b->label);
	free(b->scope);
	free(b);
}

static int start_cold(struct kci_vm *vm, struct kci_err *err);

int
kci_vm_start(struct kci_vm **out, const struct kci_vm_opts *o, struct kci_err *err)
{
	struct kci_vm *vm = kci_xcalloc(1, sizeof(*vm));
	struct vm_boot *b;
	int rc;

	vm->pidfd = vm->agent_fd = vm->console_fd = vm->stderr_fd = vm->lock_fd = -1;
	vm->uid_lock_fd = vm->ram_fd = -1;
	vm->console_copy_fd = o->console_fd;
	vm->dec = kci_xmalloc(sizeof(*vm->dec));
	kci_decoder_init(vm->dec);
	vm->started_ms = vm->booted_ms = vm_now_ms();
	vm->deadline_ms = o->timeout_ms > 0 ? vm->started_ms + o->timeout_ms : 0;
	/* Copies: a relaunch happens long after the caller's options are gone. */
	vm->boot = b = kci_xcalloc(1, sizeof(*b));
	b->qemu = o->qemu ? kci_xstrdup(o->qemu) : NULL;
	b->kernel = kci_xstrdup(o->kernel);
	b->initrd = kci_xstrdup(o->initrd);
	b->rootfs = o->rootfs ? kci_xstrdup(o->rootfs) : NULL;
	b->cache_dir = o->cache_dir ? kci_xstrdup(o->cache_dir) : NULL;
	b->workspace_src = o->workspace ? kci_xstrdup(o->workspace) : NULL;
	b->label = kci_xstrdup(o->label ? o->label : o->rootfs ? "root disk" : "initramfs");
	b->accel = o->accel;
	b->cpus = o->cpus;
	b->memory_mib = o->memory_mib;
	b->scratch_mib = o->scratch_mib;
	b->work_pad = o->warm ? work_pad(o->workspace) : 0;
	b->scope = o->template_scope ? kci_xstrdup(o->template_scope) : NULL;
	vm->tmpl.lock_fd = vm->tmpl.state_fd = -1;
	b->console_fd = o->console_fd;
	b->network = o->network;
	if (o->network != KCI_VM_NET_NONE && o->network != KCI_VM_NET_NAT) {
		rc = kci_err_set(err, KCI_INVALID, "unknown network mode %d", o->network);
		goto out;
	}
	if ((rc = check_room(o, err)) < 0 || (rc = make_run_dir(vm, o->run_dir, err)) < 0 ||
	    (rc = make_limits(vm, o, err)) < 0)
		goto out;
	if (o->warm && o->cache_dir)
		choose_mode(vm);
	if ((rc = make_ram(vm, err)) < 0 || (rc = make_disks(vm, err)) < 0 ||
	    (rc = launch(vm, err)) < 0) {
		/*
		 * A template that would not start (removed under us by `kci prune`,
		 * refused by QEMU) or could not be made is no reason to fail the job.
		 */
		if (vm->mode == VM_COLD || (rc = start_cold(vm, err)) < 0)
			goto out;
	}
	*out = vm;
	vm = NULL;
out:
	kci_vm_free(vm);
	return rc;
}

/* Kills QEMU and passt and forgets them; the VM's dir, disks, cgroup and filter stay. */
static void
stop_processes(struct kci_vm *vm)
{
	/*
	 * SIGKILL, not a polite power-off: the scratch disk is thrown away and the
	 * root disk is read-only, so there is nothing to flush, and a guest gets no
	 * say in how long its teardown takes.
	 */
	if (vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		vm_reap(vm, 1);
	}
	passt_stop(vm->passt_pid);
	vm->passt_pid = 0;
	int *fds[] = { &vm->pidfd, &vm->agent_fd, &vm->console_fd, &vm->stderr_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Forgets what the last launch's guest said, for a new launch. */
static void
reset_boot_state(struct kci_vm *vm)
{
	stop_processes(vm);
	kci_decoder_init(vm->dec);
	memset(&vm->console, 0, sizeof(vm->console));
	memset(&vm->qemu_stderr, 0, sizeof(vm->qemu_stderr));
	vm->ready = vm->alive = vm->hello = vm->resume_due = vm->resumed = 0;
	vm->booted_ms = vm_now_ms();
}

int
vm_relaunch(struct kci_vm *vm, struct kci_err *err)
{
	int rc;

	reset_boot_state(vm);
	vm->relaunches++;
	return (rc = make_ram(vm, err)) < 0 ? rc : launch(vm, err);
}

/* kci_vm_start() after a failure to start from, or make, a template. */
static int
start_cold(struct kci_vm *vm, struct kci_err *err)
{
	char why[300];

	snprintf(why, sizeof(why), "%.*s", (int)strcspn(err->msg, "\n"), err->msg);
	*err = (struct kci_err)KCI_ERR_INIT;
	if (vm->mode == VM_MAKE) {
		snprintf(vm->note, sizeof(vm->note),
			 "could not make a VM template (%s); this VM boots cold", why);
		stop_processes(vm);
		template_release(&vm->tmpl);
		vm->mode = VM_COLD;
		int rc = make_ram(vm, err);
		if (rc == 0)
			rc = make_disks(vm, err);
		return rc < 0 ? rc : launch(vm, err);
	}
	return vm_boot_cold(vm, why, err);
}

int
vm_boot_cold(struct kci_vm *vm, const char *why, struct kci_err *err)
{
	int rc;

	reset_boot_state(vm);
	snprintf(vm->note, sizeof(vm->note),
		 "the VM template for this job could not be restored (%s): it was removed, "
		 "and this VM boots cold",
		 why);
	template_remove(vm->tmpl.dir);
	template_release(&vm->tmpl);
	vm->mode = VM_COLD;
	vm->relaunches = 0;
	/* This boot makes the next VM's template, unless another kci is at it. */
	choose_mode(vm);
	if (vm->mode == VM_CLONE) { /* made by another kci meanwhile: boot all the same */
		template_release(&vm->tmpl);
		vm->mode = VM_COLD;
	}
	/* The restored guest may have written its disks: the cold boot gets new copies. */
	if ((rc = make_ram(vm, err)) < 0 || (rc = make_disks(vm, err)) < 0)
		return rc;
	return launch(vm, err);
}

static void
drain_fd(int fd, struct console_ring *ring, int copy_fd)
{
	char buf[4096];
	ssize_t n;
	int rounds = 0;

	/* Bounded per call: a guest flooding its console must not keep us from our deadlines. */
	while (fd >= 0 && rounds++ < 16 && (n = read(fd, buf, sizeof(buf))) > 0) {
		console_ring_add(ring, buf, (size_t)n);
		if (copy_fd >= 0)
			(void)kci_write_all(copy_fd, buf, (size_t)n);
	}
}

void
vm_drain_logs(struct kci_vm *vm)
{
	drain_fd(vm->console_fd, &vm->console, vm->console_copy_fd);
	drain_fd(vm->stderr_fd, &vm->qemu_stderr, vm->console_copy_fd);
}

int
vm_reap(struct kci_vm *vm, int block)
{
	pid_t r;

	if (vm->pid <= 0)
		return 1;
	do
		r = waitpid(vm->pid, &vm->status, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == vm->pid || (r < 0 && errno == ECHILD)) {
		vm->pid = 0;
		return 1;
	}
	return 0;
}

int
vm_wait_exit(struct kci_vm *vm, int ms)
{
	int64_t end = vm_now_ms() + ms;
	struct pollfd p[2] = { { .fd = vm->pidfd, .events = POLLIN },
			       { .fd = vm->console_fd, .events = POLLIN } };

	while (!vm_reap(vm, 0)) {
		int64_t left = end - vm_now_ms();
		if (left <= 0)
			return 0;
		(void)poll(p, 2, (int)left);
		vm_drain_logs(vm);
	}
	return 1;
}

void
kci_vm_free(struct kci_vm *vm)
{
	if (!vm)
		return;
	stop_processes(vm);
	/* Only once passt is gone: nothing of this VM's may run unfiltered. */
	if (vm->filtered)
		net_filter_release();
	/* QEMU is reaped: its cgroup is empty, its uid free for the next VM. */
	cgroup_remove(vm->cg);
	if (vm->uid_lock_fd >= 0)
		close(vm->uid_lock_fd);
	if (vm->dir)
		kci_rm_rf(vm->dir, NULL);
	if (vm->lock_fd >= 0)
		close(vm->lock_fd);
	boot_free(vm->boot);
	template_release(&vm->tmpl);
	if (vm->ram_fd >= 0) {
		(void)unlink(vm->ram); /* if launch() failed before spawn() unlinked it */
		close(vm->ram_fd);
	}
	free(vm->ram);
	free(vm->dir);
	free(vm->qmp_path);
	free(vm->dec);
	free(vm);
}
