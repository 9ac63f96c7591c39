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
#include <sys/socket.h>
#include <sys/stat.h>
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

/* Copies only the data extents of src into a new dst: a formatted 8G disk is ~4 MiB of data. */
static int
copy_sparse(const char *src, const char *dst, struct kci_err *err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), outfd = -1, rc = 0;
	struct stat st;
	off_t data, hole;

	if (in < 0)
		return kci_err_sys(err, errno, "open %s", src);
	outfd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (outfd < 0 || fstat(in, &st) < 0 || ftruncate(outfd, st.st_size) < 0) {
		rc = kci_err_sys(err, errno, "create %s", dst);
		goto out;
	}
	for (data = 0; (data = lseek(in, data, SEEK_DATA)) >= 0; data = hole) {
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = st.st_size;
		for (off_t off = data; off < hole;) {
			off_t o_in = off, o_out = off;
			ssize_t n =
				copy_file_range(in, &o_in, outfd, &o_out, (size_t)(hole - off), 0);
			if (n <= 0) {
				rc = kci_err_sys(err, n < 0 ? errno : EIO, "copy %s", src);
				goto out;
			}
			off += n;
		}
	}
	if (errno != ENXIO)
		rc = kci_err_sys(err, errno, "seek %s", src);
out:
	close(in);
	if (outfd >= 0)
		close(outfd);
	return rc;
}

/* The per-VM writable disk: a sparse copy of the cached empty template. */
static int
make_scratch(struct kci_vm *vm, const char *cache_dir, uint64_t mib, char **out,
	     struct kci_err *err)
{
	char *template = NULL, *path;
	int rc;

	if ((rc = scratch_template(cache_dir, mib, &template, err)) < 0)
		return rc;
	path = kci_xasprintf("%s/scratch.ext4", vm->dir);
	rc = copy_sparse(template, path, err);
	free(template);
	if (rc < 0) {
		free(path);
		return rc;
	}
	*out = path;
	return 0;
}

/* The VM's own copy of the workspace template, which stays untouched for the next VM. */
static int
make_workspace(struct kci_vm *vm, const char *template, char **out, struct kci_err *err)
{
	char *path = kci_xasprintf("%s/workspace.ext4", vm->dir);
	int rc = copy_sparse(template, path, err);

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
	int rc;

	/*
	 * As root, passt runs as KCI_NET_UID behind the host filter that keeps
	 * guests off the host's addresses and private networks; without root
	 * there is no filter to load (docs/exec.md says what that allows).
	 */
	if (geteuid() == 0) {
		if ((rc = net_filter_acquire(cache_dir, err)) < 0)
			return rc;
		vm->filtered = 1;
		runas = KCI_NET_UID;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return kci_err_sys(err, errno, "socketpair");
	rc = passt_start(sv[0], log_fd, runas, &vm->passt_pid, err);
	close(sv[0]);
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

	vm->qmp_path = kci_xasprintf("%s/qmp.sock", vm->dir);
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

/* In the child: put the inherited sockets at fixed numbers and exec QEMU. */
static void __attribute__((noreturn)) exec_qemu(char **argv, int console, int agent, int qmp,
						int net, int errfd, int report, pid_t parent)
{
	int devnull = open("/dev/null", O_RDONLY);
	int e;

	/* QEMU dies with kci, whatever kills kci. */
	child_detach(parent);
	/* dup2 order matters: move everything above the target numbers first. */
	console = fcntl(console, F_DUPFD, 10);
	agent = fcntl(agent, F_DUPFD, 10);
	qmp = fcntl(qmp, F_DUPFD, 10);
	errfd = fcntl(errfd, F_DUPFD, 10);
	if (net >= 0 && (net = fcntl(net, F_DUPFD, 10)) < 0)
		goto out;
	if (devnull < 0 || console < 0 || agent < 0 || qmp < 0 || errfd < 0 ||
	    dup2(devnull, 0) < 0 || dup2(errfd, 1) < 0 || dup2(errfd, 2) < 0 ||
	    dup2(console, CHILD_CONSOLE_FD) < 0 || dup2(agent, CHILD_AGENT_FD) < 0 ||
	    dup2(qmp, CHILD_QMP_FD) < 0 || (net >= 0 && dup2(net, CHILD_NET_FD) < 0))
		goto out;
	execvp(argv[0], argv);
out:
	e = errno;
	(void)!write(report, &e, sizeof(e));
	_exit(127);
}

static int
spawn(struct kci_vm *vm, char **argv, int console, int agent, int qmp, int net, struct kci_err *err)
{
	int errpipe[2] = { -1, -1 }, report[2] = { -1, -1 }, e = 0, rc = 0;
	pid_t parent = getpid();
	ssize_t n;

	if (pipe2(errpipe, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0) {
		rc = kci_err_sys(err, errno, "pipe");
		goto out;
	}
	vm->pid = fork();
	if (vm->pid < 0) {
		vm->pid = 0;
		rc = kci_err_sys(err, errno, "fork");
		goto out;
	}
	if (vm->pid == 0)
		exec_qemu(argv, console, agent, qmp, net, errpipe[1], report[1], parent);
	close(report[1]);
	report[1] = -1;
	while ((n = read(report[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	if (n == sizeof(e)) {
		rc = kci_err_sys(err, e, "cannot run %s%s", argv[0],
				 e == ENOENT ? " (install qemu-system-x86)" : "");
		goto out;
	}
	vm->stderr_fd = errpipe[0];
	errpipe[0] = -1;
	set_nonblock(vm->stderr_fd);
	vm->pidfd = (int)syscall(SYS_pidfd_open, vm->pid, 0);
	if (vm->pidfd < 0)
		rc = kci_err_sys(err, errno, "pidfd_open");
	else
		fcntl(vm->pidfd, F_SETFD, FD_CLOEXEC);
out:
	for (int i = 0; i < 2; i++) {
		if (errpipe[i] >= 0)
			close(errpipe[i]);
		if (report[i] >= 0)
			close(report[i]);
	}
	return rc;
}

int
kci_vm_start(struct kci_vm **out, const struct kci_vm_opts *o, struct kci_err *err)
{
	struct kci_vm *vm = kci_xcalloc(1, sizeof(*vm));
	int con[2] = { -1, -1 }, agent[2] = { -1, -1 }, qmp = -1, net = -1, rc;
	char *scratch = NULL, *workspace = NULL;
	char **argv = NULL;

	vm->pidfd = vm->agent_fd = vm->console_fd = vm->stderr_fd = vm->lock_fd = -1;
	vm->console_copy_fd = o->console_fd;
	vm->dec = kci_xmalloc(sizeof(*vm->dec));
	kci_decoder_init(vm->dec);
	vm->started_ms = vm_now_ms();
	vm->deadline_ms = o->timeout_ms > 0 ? vm->started_ms + o->timeout_ms : 0;
	if ((rc = make_run_dir(vm, o->run_dir, err)) < 0)
		goto out;
	if (o->scratch_mib &&
	    (rc = make_scratch(vm, o->cache_dir, o->scratch_mib, &scratch, err)) < 0)
		goto out;
	if (o->workspace && (rc = make_workspace(vm, o->workspace, &workspace, err)) < 0)
		goto out;
	if (o->network != KCI_VM_NET_NONE && o->network != KCI_VM_NET_NAT) {
		rc = kci_err_set(err, KCI_INVALID, "unknown network mode %d", o->network);
		goto out;
	}
	if (o->network == KCI_VM_NET_NAT &&
	    (rc = start_net(vm, o->cache_dir, o->console_fd, &net, err)) < 0)
		goto out;
	if ((qmp = make_qmp(vm, err)) < 0) {
		rc = qmp;
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, agent) < 0) {
		rc = kci_err_sys(err, errno, "socketpair");
		goto out;
	}
	struct qemu_cmd cmd = {
		.qemu = o->qemu,
		.kernel = o->kernel,
		.initrd = o->initrd,
		.rootfs = o->rootfs,
		.scratch = scratch,
		.workspace = workspace,
		.net = net >= 0 ? VM_NET_ADDRESSING : NULL,
		.accel = o->accel,
		.cpus = o->cpus,
		.memory_mib = o->memory_mib,
		.tsc_khz = kci_host_tsc_khz(),
		.console_fd = CHILD_CONSOLE_FD,
		.agent_fd = CHILD_AGENT_FD,
		.qmp_fd = CHILD_QMP_FD,
		.net_fd = CHILD_NET_FD,
	};
	argv = qemu_argv(&cmd);
	if (o->console_fd >= 0) {
		for (size_t i = 0; argv[i]; i++)
			dprintf(o->console_fd, "%s%s", i ? " " : "kci: debug: ", argv[i]);
		dprintf(o->console_fd, "\n");
	}
	if ((rc = spawn(vm, argv, con[1], agent[1], qmp, net, err)) < 0)
		goto out;
	vm->console_fd = con[0];
	vm->agent_fd = agent[0];
	con[0] = agent[0] = -1;
	set_nonblock(vm->console_fd);
	set_nonblock(vm->agent_fd);
	rc = 0;
	*out = vm;
	vm = NULL;
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
	kci_strv_free(argv);
	free(scratch);
	free(workspace);
	kci_vm_free(vm);
	return rc;
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
	/* Only once passt is gone: nothing of this VM's may run unfiltered. */
	if (vm->filtered)
		net_filter_release();
	int fds[] = { vm->pidfd, vm->agent_fd, vm->console_fd, vm->stderr_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (vm->dir)
		kci_rm_rf(vm->dir, NULL);
	if (vm->lock_fd >= 0)
		close(vm->lock_fd);
	free(vm->dir);
	free(vm->qmp_path);
	free(vm->dec);
	free(vm);
}
