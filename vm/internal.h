/* Private to vm/: pieces shared between its files and exercised by unit tests. */
#ifndef KCI_VM_INTERNAL_H
#define KCI_VM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "vm/vm.h"

/* Kernel modules the agent needs, by name; dependencies are added by modules_resolve(). */
extern const char *const vm_guest_modules[];

/*
 * From the text of a modules.dep, lists the relative paths of `wanted`
 * modules and their dependencies in a valid load order (dependencies
 * first, each once). Wanted modules absent from the file are skipped: they
 * may be built in. *out is a NULL-terminated malloc'd vector; (*levels)[i]
 * is module i's depth in the dependency graph, so modules of one level can
 * load in parallel once every lower level has loaded.
 */
int modules_resolve(const char *dep_text, const char *const *wanted, char ***out, int **levels,
		    struct kci_err *err);

/* The QEMU command line for a VM; fds are the numbers QEMU will see. */
struct qemu_cmd {
	const char *name; /* the VM's runtime dir: names the QEMU process for ps and pgrep */
	const char *qemu, *kernel, *initrd, *rootfs, *scratch;
	const char *workspace; /* writable disk with serial kci-work, or NULL */
	const char *net;       /* the guest's addressing (VM_NET_ADDRESSING) with a NIC, or NULL */
	enum kci_accel accel;
	unsigned cpus;
	unsigned long long memory_mib;
	unsigned tsc_khz;
	int console_fd, agent_fd, qmp_fd;
	int net_fd;	/* the NIC's stream socket to passt, with net */
	int restore_fd; /* > 0: restore from the migration stream on this fd; 0 = boot */
	/*
	 * Guest RAM in this file instead of anonymous memory (VM templates):
	 * shared (the guest being saved writes the file) or private (a clone
	 * maps the template's RAM copy-on-write). NULL = anonymous.
	 */
	const char *ram_path;
	int ram_shared;
};
/* Returns a NULL-terminated malloc'd argv (free with kci_strv_free). */
char **qemu_argv(const struct qemu_cmd *c);

/*
 * Guest addressing under NAT, on the kernel command line as kci.net=: the
 * guest's address/prefix, its gateway, and the DNS address passt forwards to
 * the host's resolver. Fixed, like QEMU's user networking: every VM has its
 * own passt, so VMs never see each other.
 */
#define VM_NET_ADDR	  "10.0.2.15"
#define VM_NET_PREFIX	  "24"
#define VM_NET_GATEWAY	  "10.0.2.2"
#define VM_NET_DNS	  "10.0.2.3"
#define VM_NET_ADDRESSING VM_NET_ADDR "/" VM_NET_PREFIX "," VM_NET_GATEWAY "," VM_NET_DNS

/* Modules for the guest NIC, carried in the initramfs but loaded only with kci.net=. */
extern const char *const vm_guest_net_modules[];

/*
 * Starts passt (the user-mode network stack) in the foreground on tap_fd,
 * one end of a socketpair whose other end becomes QEMU's NIC; passt exits
 * when that end closes. Its output goes to log_fd (-1 = /dev/null).
 * *pid is its pid; stop it with passt_stop().
 */
int passt_start(int tap_fd, int log_fd, int runas, const char *rules, pid_t *pid,
		struct kci_err *err);

/*
 * The uid passt runs as when kci is root (runas above; -1 = passt's default),
 * whose traffic the nftables table of net_filter_acquire() confines.
 */
#define KCI_NET_UID 64999
/*
 * Loads (afresh, for every VM) the nftables table that confines KCI_NET_UID
 * and takes a reference on it for one VM. Root only.
 */
int net_filter_acquire(const char *cache_dir, struct kci_err *err);
/* Drops a VM's reference; the last one on the host removes the table. */
void net_filter_release(void);
/*
 * Writes, for kci without root, the same policy as an nftables ruleset for a
 * network namespace of the VM's own (every packet in it is the guest's).
 */
int net_filter_write_sandbox(const char *path, struct kci_err *err);
/*
 * In a child kci forked for QEMU or passt, before exec: SIGKILL when kci dies
 * (PR_SET_PDEATHSIG), its own process group, no blocked signals, SIGPIPE back
 * to default. Exits at once if kci is already gone.
 */
void child_detach(pid_t parent);
/* Kills and reaps passt; a pid of 0 is a no-op. */
void passt_stop(pid_t pid);

/* ---- cgroup.c: a cgroup leaf capping one VM ---- */

struct cgroup;
struct cgroup_limits {
	uint64_t memory_bytes; /* RAM (and swap, where accounted) */
	unsigned pids;	       /* processes and threads */
	unsigned cpus;	       /* CPU time: this many CPUs' worth */
};
/*
 * Creates the leaf `name` under kci/ in kci's own cgroup (v2 when it offers
 * memory, pids and cpu; else the v1 hierarchies) with limits l.
 */
int cgroup_create(struct cgroup **out, const char *name, const struct cgroup_limits *l,
		  struct kci_err *err);
/* v2: an fd of the leaf for clone3(CLONE_INTO_CGROUP); -1 for v1 (use cgroup_attach). */
int cgroup_fd(const struct cgroup *cg);
/* Moves a running pid into the leaf of every hierarchy. 0, or -1 with errno. */
int cgroup_attach(const struct cgroup *cg, pid_t pid);
/* Removes the empty leaves of VMs whose kci died. */
void cgroup_sweep(void);
/* The leaf's path (the memory hierarchy's for v1), for messages. */
const char *cgroup_leaf(const struct cgroup *cg);
/* Removes the (empty) leaf; NULL is a no-op. */
void cgroup_remove(struct cgroup *cg);
/* Whether this host lets kci cap a VM: 0, or -1 with what is missing in `what`. */
int cgroup_probe(char *what, size_t size);

/* ---- jail.c: QEMU in namespaces, a private root, its own uid, no capabilities ---- */

#define JAIL_FILES_MAX	    8
#define VM_OVERHEAD_MIB	    768	 /* QEMU's own memory on top of the guest's, in its cgroup */
#define VM_DISK_RESERVE_MIB 1024 /* free space a VM's worst-case disks must leave the host */
#define JAIL_FDS_MAX	    5
#define KCI_JAIL_UID_BASE   1801650176u /* 0x6b630000: uids no account on a host uses */

struct jail_file {
	const char *host; /* the file on the host */
	const char *name; /* its name in the jail's /vm */
	int writable;	  /* else read-only */
	int copy;	  /* copied into the jail (small, and not readable by its uid in place) */
};

struct jail {
	const char *root; /* an empty dir (in the VM's runtime dir) that becomes its / */
	const char *exe;  /* absolute path of the program; must be under /usr */
	char **argv;	  /* with the files' jail paths: /vm/NAME */
	struct jail_file files[JAIL_FILES_MAX];
	size_t n_files;
	int kvm;	       /* /dev/kvm inside */
	int fds[JAIL_FDS_MAX]; /* become fds 3, 4, ... of the program */
	size_t n_fds;
	int out_fd; /* its stdout and stderr */
	uid_t uid;  /* as root: the uid and gid it runs as (jail_uid_acquire) */
	gid_t gid;
	const struct cgroup *cg; /* or NULL */
	const char *hostname;
	pid_t pid; /* set by jail_spawn */
	int pidfd;
};

/*
 * Starts j->exe in the jail; returns once it has exec'd (or failed to, with
 * the step that failed in the message). The caller reaps j->pid; j->pidfd is
 * readable when it exits.
 */
int jail_spawn(struct jail *j, struct kci_err *err);
/* A uid for one VM's QEMU, held (flock on *lock_fd) until lock_fd is closed. */
int jail_uid_acquire(uid_t *uid, int *lock_fd, struct kci_err *err);

/* Accelerator choice from /proc/cpuinfo text and whether /dev/kvm opened. */
enum kci_accel accel_auto(const char *cpuinfo, int kvm_ok, char *why, size_t whylen);
/* "cpu MHz" of the first CPU in /proc/cpuinfo text, in kHz; 0 if absent. */
unsigned tsc_khz_parse(const char *cpuinfo);

/* A ring of the last bytes the guest console printed. */
#define CONSOLE_RING 16384
struct console_ring {
	char buf[CONSOLE_RING];
	size_t start, len;
	char tail[CONSOLE_RING + 1];
};
void console_ring_add(struct console_ring *r, const char *p, size_t n);
/* The last `lines` lines, cleaned of CR and control bytes. Borrowed from r. */
const char *console_ring_tail(struct console_ring *r, int lines);
/* The panic line ("Kernel panic - not syncing: ...") if the console shows one, else NULL. */
const char *console_panic_line(struct console_ring *r, char *buf, size_t size);
/* 1 if the console's kept bytes hold `needle`. */
int console_shows(struct console_ring *r, const char *needle);

/*
 * Removes cache files named PREFIX*SUFFIX other than `keep` that were last
 * modified over an hour ago: superseded builds (an older agent's initramfs,
 * an older busybox's base image). The age guard leaves alone files that a
 * concurrent kci of another version may be about to boot. Temp files of
 * dead kci processes (kci_tmp_is_orphan) are removed too.
 */
void cache_prune_superseded(const char *cache_dir, const char *prefix, const char *suffix,
			    const char *keep);

/* Copies only the data extents of src into a new file dst (0600); rootfs.c. */
int vm_copy_sparse(const char *src, const char *dst, struct kci_err *err);
/* The same from an open fd; with zero_holes, all-zero 4 KiB pages become holes too. */
int vm_copy_extents(int in, const char *what, const char *dst, int zero_holes, struct kci_err *err);

/* A program's absolute path: from PATH, then the sbin dirs; or a path as given. NULL if none. */
char *tool_path(const char *name);

/* Runs a program and waits; its stdout/stderr are captured into err on failure. */
int run_tool(char *const argv[], struct kci_err *err);
/* Same, keeping the last outsize-1 bytes of its output in out. */
int run_capture(char *const argv[], char *out, size_t outsize, struct kci_err *err);

#endif
