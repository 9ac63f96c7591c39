/* The confined child that extracts archives: fds, mounts, capabilities, seccomp, its report. */
#include "images/extract.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <langinfo.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/xalloc.h"

/* Closes every fd but 0-2, root_fd and keep[], so the child holds nothing else of its parent's. */
static void
close_other_fds(int root_fd, const int *keep, size_t n_keep)
{
	size_t n = n_keep + 1;
	int *fds = kci_xmalloc(n * sizeof(*fds));
	unsigned lo = 3;

	if (n_keep)
		memcpy(fds, keep, n_keep * sizeof(*fds));
	fds[n_keep] = root_fd;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
			int t = fds[j];
			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		if (fds[i] < 0 || (unsigned)fds[i] < lo)
			continue;
		if ((unsigned)fds[i] > lo)
			close_range(lo, (unsigned)fds[i] - 1, 0);
		lo = (unsigned)fds[i] + 1;
	}
	close_range(lo, ~0U, 0);
	free(fds);
}

/*
 * Libraries that read files lazily must do so now, from the host, and never
 * after chroot from the image: OpenSSL loads its configuration (which can name
 * modules to load) on first use, glibc's iconv (libarchive's, for UTF-8 tar
 * names) its module list.
 */
static void
warm_up(void)
{
	iconv_t cd = iconv_open(nl_langinfo(CODESET), "UTF-8");

	if (cd != (iconv_t)-1)
		iconv_close(cd);
	kci_sha256_free(kci_sha256_new());
}

/*
 * Defence in depth beneath seccomp: a private mount namespace in which the
 * root is bind-mounted nodev (a device node a layer creates cannot be opened
 * to reach the host's disks), then chroot into it so no absolute path names a
 * host file. Both need privileges kci may lack inside a container; without
 * them the child still runs under seccomp with every path resolved beneath
 * root_fd. Propagation is made private first so nothing reaches the host.
 * The root is named by the path its fd has now, and must still be the same
 * directory once mounted.
 */
static int
enter_root(int *root_fd, struct kci_err *err)
{
	char link[64], dir[4096];
	struct stat want, got;
	ssize_t len;
	int fd;

	if (fstat(*root_fd, &want) < 0)
		return kci_err_sys(err, errno, "stat the root");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", *root_fd);
	len = readlink(link, dir, sizeof(dir));
	dir[len > 0 && len < (ssize_t)sizeof(dir) ? len : 0] = '\0';
	if (dir[0] == '/' && unshare(CLONE_NEWNS) == 0 &&
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	    mount(dir, dir, NULL, MS_BIND, NULL) == 0) {
		if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_NODEV | MS_NOSUID | MS_NOEXEC,
			  NULL) < 0)
			return kci_err_sys(err, errno, "remount %s nodev", dir);
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return kci_err_sys(err, errno, "open %s", dir);
		/* The path must still name the directory the parent opened. */
		if (fstat(fd, &got) < 0 || !same_inode(&want, &got)) {
			close(fd);
			return kci_err_set(err, KCI_ERROR, "%s changed under us", dir);
		}
		close(*root_fd);
		*root_fd = fd;
	}
	if (fchdir(*root_fd) < 0)
		return kci_err_sys(err, errno, "chdir to the root");
	if (chroot(".") < 0 && errno != EPERM)
		return kci_err_sys(err, errno, "chroot to the root");
	return 0;
}

/* Keeps only the capabilities p needs (often none), in every set, for good. */
static int
drop_caps(const struct kci_extract_policy *p, struct kci_err *err)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	uint64_t keep = 0;

	if (p->modes == KCI_EXTRACT_MODES_EXACT)
		keep |= 1ULL << CAP_DAC_OVERRIDE |    /* writing into read-only directories */
			1ULL << CAP_DAC_READ_SEARCH | /* listing them for whiteouts */
			1ULL << CAP_FOWNER |	      /* chmod and utimes on others' files */
			1ULL << CAP_FSETID;	      /* setgid bits for groups kci is not in */
	if (p->owners)
		keep |= 1ULL << CAP_CHOWN |  /* the archive's owners */
			1ULL << CAP_FOWNER | /* chmod and utimes on others' files */
			1ULL << CAP_FSETID | /* setuid bits kept after chown */
			1ULL << CAP_SETFCAP; /* security.capability xattrs */
	if (p->devices == KCI_EXTRACT_CREATE)
		keep |= 1ULL << CAP_MKNOD; /* device nodes */
	/* EINVAL past the last capability; EPERM without CAP_SETPCAP, i.e. nothing to drop. */
	for (int cap = 0; cap < 64; cap++)
		if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
		    errno != EINVAL && errno != EPERM)
			return kci_err_sys(err, errno, "drop capability %d", cap);
	if (syscall(SYS_capget, &hdr, data) < 0)
		return kci_err_sys(err, errno, "capget");
	for (int i = 0; i < 2; i++) {
		data[i].effective &= (uint32_t)(keep >> (32 * i));
		data[i].permitted &= (uint32_t)(keep >> (32 * i));
		data[i].inheritable = 0;
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return kci_err_sys(err, errno, "capset");
	return 0;
}

/* What a call is for beyond every extraction: it is allowed only when the policy needs it. */
enum need {
	ALWAYS = 0,
	FOR_OWNERS = 1 << 0,	/* p->owners */
	FOR_NODES = 1 << 1,	/* devices, fifos or sockets created */
	FOR_SYMLINKS = 1 << 2,	/* symlinks created */
	FOR_HARDLINKS = 1 << 3, /* hardlinks created */
};

/* An allowed system call, optionally only when argument `arg` compares as given. */
struct allow {
	const char *name;
	unsigned need;
	int arg; /* -1: any arguments */
	enum scmp_compare op;
	uint64_t a, b;
};
#define ALLOW(name)                                                                                \
	{                                                                                          \
		name, ALWAYS, -1, SCMP_CMP_EQ, 0, 0                                                \
	}
#define ALLOW_FOR(name, need)                                                                      \
	{                                                                                          \
		name, need, -1, SCMP_CMP_EQ, 0, 0                                                  \
	}
#define ALLOW_IF(name, arg, op, a, b)                                                              \
	{                                                                                          \
		name, ALWAYS, arg, op, a, b                                                        \
	}

static const struct allow allowed[] = {
	ALLOW("read"),	     /* the archives */
	ALLOW("write"),	     /* file contents; the report to the parent */
	ALLOW("pwrite64"),   /* file contents at the archive's offsets (sparse files) */
	ALLOW("writev"),     /* glibc's fatal messages (heap corruption) before it aborts */
	ALLOW("lseek"),	     /* libarchive skipping within a blob */
	ALLOW("close"),	     /* every fd the extractor opens */
	ALLOW("openat"),     /* files and directories beneath an already resolved parent */
	ALLOW("openat2"),    /* resolving parents beneath the root (RESOLVE_IN_ROOT/BENEATH) */
	ALLOW("newfstatat"), /* types and inode identities, never following symlinks */
	ALLOW("fstat"),	     /* the same, on an fd, for older glibc */
	ALLOW("statx"),	     /* the same, where glibc implements stat with it */
	ALLOW("getdents64"), /* listing directories that whiteouts and opaque markers clear */
	ALLOW("fcntl"),	     /* fdopendir checks the fd's flags */
	ALLOW("mkdirat"),    /* the archive's directories */
	ALLOW("unlinkat"),   /* whiteouts and entries the archive replaces */
	ALLOW("ftruncate"),  /* sparse files ending in a hole */
	ALLOW("fchmod"),     /* exact modes of files and directories */
	ALLOW("utimensat"),  /* mtimes (futimens too) */
	ALLOW_FOR("mknodat", FOR_NODES),      /* device nodes and fifos */
	ALLOW_FOR("fchmodat", FOR_NODES),     /* their modes on kernels without fchmodat2 */
	ALLOW_FOR("symlinkat", FOR_SYMLINKS), /* symlinks, targets verbatim */
	ALLOW_FOR("linkat", FOR_HARDLINKS),   /* hardlinks, within the root */
	ALLOW_FOR("fchown", FOR_OWNERS),      /* owners of files and directories */
	ALLOW_FOR("fchownat", FOR_OWNERS),    /* owners of symlinks and nodes, NOFOLLOW */
	ALLOW_FOR("fsetxattr", FOR_OWNERS),   /* user.* and security.capability */
	ALLOW("brk"),			      /* malloc */
	ALLOW("munmap"),		      /* malloc */
	ALLOW("mremap"),		      /* realloc */
	ALLOW("madvise"),		      /* free returning memory */
	ALLOW_IF("mmap", 2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0),	   /* malloc, never executable */
	ALLOW_IF("mprotect", 2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0), /* malloc arenas, same */
	ALLOW("rt_sigprocmask"), /* abort() on a bug or out of memory ... */
	ALLOW("getpid"),	 /* ... finding itself ... */
	ALLOW("gettid"),	 /* ... to raise SIGABRT (tgkill, restricted below) */
	ALLOW("rt_sigreturn"),	 /* returning from a handler inherited from the parent */
	ALLOW("sigaltstack"),	 /* the sanitizer runtime (KCI_SANITIZE) on exit; own stack only */
	ALLOW("exit_group"),	 /* done */
	ALLOW("exit"),		 /* done */
};

static unsigned
needs_of(const struct kci_extract_policy *p)
{
	unsigned need = 0;

	if (p->owners)
		need |= FOR_OWNERS;
	if (p->devices == KCI_EXTRACT_CREATE || p->fifos == KCI_EXTRACT_CREATE ||
	    p->others == KCI_EXTRACT_CREATE)
		need |= FOR_NODES;
	if (p->symlinks == KCI_EXTRACT_CREATE)
		need |= FOR_SYMLINKS;
	if (p->hardlinks == KCI_EXTRACT_CREATE)
		need |= FOR_HARDLINKS;
	return need;
}

/*
 * Loads the allowlist; anything else kills the process (SIGSYS), so an
 * archive that subverts libarchive still cannot exec, open a socket, ptrace,
 * mount or signal other processes, nor create what its policy does not.
 */
static int
load_seccomp(const struct kci_extract_policy *p, struct kci_err *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	unsigned need = needs_of(p);
	int rc = 0, nr;

	if (!ctx)
		return kci_err_set(err, KCI_ERROR, "seccomp_init failed");
	for (size_t i = 0; rc == 0 && i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		const struct allow *a = &allowed[i];
		if ((a->need & need) != a->need)
			continue;
		/* Calls this architecture lacks (fstat on arm64) need no rule. */
		if ((nr = seccomp_syscall_resolve_name(a->name)) == __NR_SCMP_ERROR || nr < 0)
			continue;
		if (a->arg < 0)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		else
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					      SCMP_CMP((unsigned)a->arg, a->op, a->a, a->b));
	}
	/* Modes of nodes, AT_SYMLINK_NOFOLLOW; by number, as libseccomp < 2.5.5 lacks the name. */
	if (rc == 0 && (need & FOR_NODES))
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SYS_fchmodat2, 0);
	/* abort(): SIGABRT to itself only. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 2,
				      SCMP_A0(SCMP_CMP_EQ, (uint64_t)getpid(), 0),
				      SCMP_A2(SCMP_CMP_EQ, SIGABRT, 0));
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc < 0 ? kci_err_sys(err, -rc, "load seccomp policy") : 0;
}

int
extract_confine(int *root_fd, const int *keep, size_t n_keep, const struct kci_extract_policy *p,
		struct kci_err *err)
{
	struct rlimit no_core = { 0, 0 };
	int rc;

	close_other_fds(*root_fd, keep, n_keep);
	warm_up();
	if ((rc = enter_root(root_fd, err)) < 0 || (rc = drop_caps(p, err)) < 0)
		return rc;
	/* A crash must not drop a core file into the tree. */
	if (setrlimit(RLIMIT_CORE, &no_core) < 0)
		return kci_err_sys(err, errno, "setrlimit");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return kci_err_sys(err, errno, "PR_SET_NO_NEW_PRIVS");
	return load_seccomp(p, err);
}

/* What the child tells the parent: 0, or a kci_code and its message; what it extracted. */
struct report {
	int code;
	char msg[KCI_ERR_MAX];
	struct kci_extract_stats stats;
};

static void
stats_add(struct kci_extract_stats *sum, const struct kci_extract_stats *one)
{
	sum->stream += one->stream;
	sum->entries += one->entries;
	sum->names += one->names;
	sum->bytes += one->bytes;
	sum->whiteouts += one->whiteouts;
	sum->skipped += one->skipped;
	sum->skipped_xattrs += one->skipped_xattrs;
}

static void __attribute__((noreturn))
child_main(int root_fd, const int *in_fds, const char *const *digests, size_t n,
	   const struct kci_extract_policy *p, int report_fd, pid_t parent)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_extract_stats one;
	struct report r;
	int *keep = kci_xmalloc((n + 1) * sizeof(*keep));
	sigset_t none;
	int rc;

	/* Die with the parent; it may already be gone. Signals it blocked must reach us. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Clamped modes honour the user's umask; the others are the archive's or kci's own. */
	if (p->modes != KCI_EXTRACT_MODES_CLAMP)
		umask(022);
	memcpy(keep, in_fds, n * sizeof(*keep));
	keep[n] = report_fd;
	memset(&r, 0, sizeof(r));
	if ((rc = extract_confine(&root_fd, keep, n + 1, p, &err)) < 0)
		kci_err_prefix(&err, "confine the extracting child");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		/* One byte budget for all the archives: what the ones before used is gone. */
		struct kci_extract_policy left = *p;

		left.max_bytes = p->max_bytes - r.stats.bytes;
		rc = extract_stream(root_fd, in_fds[i], &left, digests ? digests[i] : NULL, &one,
				    &err);
		stats_add(&r.stats, &one);
		if (rc < 0 && n > 1)
			kci_err_prefix(&err, "%s %zu of %zu", p->archive, i + 1, n);
	}
	r.code = rc;
	memcpy(r.msg, err.msg, sizeof(r.msg));
	for (size_t done = 0; done < sizeof(r);) {
		ssize_t k = write(report_fd, (char *)&r + done, sizeof(r) - done);
		if (k < 0 && errno != EINTR)
			break;
		done += k > 0 ? (size_t)k : 0;
	}
	_exit(rc == 0 ? 0 : 1);
}

/* Reads the child's report, reaps it, and turns what happened into our error contract. */
static int
await_child(pid_t pid, int fd, struct kci_extract_stats *stats, struct kci_err *err)
{
	struct report r;
	size_t got = 0;
	ssize_t k;
	int status, sig;

	memset(&r, 0, sizeof(r));
	while (got < sizeof(r) && (k = read(fd, (char *)&r + got, sizeof(r) - got)) != 0) {
		if (k < 0 && errno != EINTR)
			break;
		got += k > 0 ? (size_t)k : 0;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return kci_err_sys(err, errno, "wait for child");
	if (WIFSIGNALED(status)) {
		sig = WTERMSIG(status);
		return kci_err_set(
			err,
			sig == SIGINT || sig == SIGTERM || sig == SIGHUP ? KCI_CANCELED : KCI_ERROR,
			"confined child killed by signal %d (SIG%s)%s", sig,
			sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
			sig == SIGSYS ? ": it made a system call its seccomp policy forbids" : "");
	}
	if (got != sizeof(r))
		return kci_err_set(err, KCI_ERROR, "confined child exited with status %d",
				   WEXITSTATUS(status));
	/* Counts only, for messages and logs: no decision rests on them. */
	if (stats)
		*stats = r.stats;
	if (r.code == 0 && WEXITSTATUS(status) == 0)
		return 0;
	/* The child handled hostile input: trust nothing of its report beyond text and a code. */
	r.msg[sizeof(r.msg) - 1] = '\0';
	for (char *s = r.msg; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			*s = '?';
	return kci_err_set(err, r.code < 0 && r.code >= KCI_NOSPACE ? r.code : KCI_ERROR, "%s",
			   r.msg);
}

int
extract_confined(int root_fd, const int *in_fds, const char *const *digests, size_t n,
		 const struct kci_extract_policy *p, struct kci_extract_stats *stats,
		 struct kci_err *err)
{
	int report[2] = { -1, -1 }, rc;
	pid_t pid, parent = getpid();

	if (stats)
		memset(stats, 0, sizeof(*stats));
	/*
	 * The child must not be the first to take OpenSSL's or iconv's locks:
	 * another thread of ours may hold them across fork. Warm, it only reads.
	 */
	warm_up();
	if (pipe2(report, O_CLOEXEC) < 0)
		return kci_err_sys(err, errno, "pipe");
	if ((pid = fork()) < 0) {
		rc = kci_err_sys(err, errno, "fork");
		goto out;
	}
	if (pid == 0)
		child_main(root_fd, in_fds, digests, n, p, report[1], parent);
	close(report[1]);
	report[1] = -1;
	rc = await_child(pid, report[0], stats, err);
out:
	for (int i = 0; i < 2; i++)
		if (report[i] >= 0)
			close(report[i]);
	return rc;
}

int
kci_images_extract(const char *dest, int fd, const struct kci_extract_policy *p, const char *digest,
		   struct kci_extract_stats *stats, struct kci_err *err)
{
	int root_fd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;

	if (root_fd < 0)
		return kci_err_sys(err, errno, "%s: open %s", p->archive, dest);
	if (p->confined)
		rc = extract_confined(root_fd, &fd, &digest, 1, p, stats, err);
	else
		rc = extract_stream(root_fd, fd, p, digest, stats, err);
	close(root_fd);
	return rc;
}
