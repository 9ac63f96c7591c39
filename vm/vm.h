/*
 * vm/: boots one micro-VM per job and runs processes in it through the agent.
 * Owns the guest kernel and initramfs, root filesystem disks, the QEMU
 * command line, and the VM's whole lifetime including teardown.
 */
#ifndef KCI_VM_VM_H
#define KCI_VM_VM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/proto.h"

/* ---- guest assets: kernel, modules, busybox ---- */

struct kci_guest;

/*
 * Locates the guest kernel bundle. `override` (from --kernel) may be a
 * directory laid out like the bundle or a bare kernel image; otherwise
 * $KCI_GUEST_DIR, $KCI_HOME/guest and <exe>/../share/kci/guest are tried.
 * KCI_NOTFOUND when there is none (`kci doctor` explains the fix).
 */
int kci_vm_guest_find(struct kci_guest **out, const char *override, const char *home,
		      struct kci_err *err);
void kci_vm_guest_free(struct kci_guest *g);
const char *kci_vm_guest_dir(const struct kci_guest *g);     /* NULL for a bare kernel */
const char *kci_vm_guest_kernel(const struct kci_guest *g);  /* the vmlinuz path */
const char *kci_vm_guest_release(const struct kci_guest *g); /* "" when unknown */
const char *kci_vm_guest_busybox(const struct kci_guest *g); /* NULL when absent */

/* Finds the kci-agent binary: $KCI_AGENT, <exe>/kci-agent, <exe>/../lib/kci/kci-agent. */
int kci_vm_agent_find(char **out, struct kci_err *err);

/*
 * Returns (malloc'd) the path of a cached initramfs holding the agent as
 * /init and the kernel modules it needs, building it under cache_dir only
 * when its inputs changed.
 */
int kci_vm_initramfs_get(const struct kci_guest *g, const char *agent, const char *cache_dir,
			 char **out, struct kci_err *err);

/* Cached read-only ext4 image of a directory tree (rebuilt when the tree changes). */
int kci_vm_rootfs_from_dir(const char *dir, const char *cache_dir, char **out, struct kci_err *err);
/*
 * Builds a read-only ext4 image of `dir` at `path` (temp file + rename), for
 * callers that key their own cache (images/ by config digest).
 */
int kci_vm_rootfs_build(const char *dir, const char *path, struct kci_err *err);
/*
 * Builds a writable ext4 image of `dir` at `path` (temp file + rename) with at
 * least free_mib MiB free; the file is sparse, so the free space costs nothing
 * until the guest writes. For the per-run workspace disk.
 */
int kci_vm_disk_build_rw(const char *dir, const char *path, uint64_t free_mib, struct kci_err *err);

/* Cached ext4 image of the built-in busybox base system. */
int kci_vm_rootfs_base(const struct kci_guest *g, const char *cache_dir, char **out,
		       struct kci_err *err);

/* ---- accelerator ---- */

enum kci_accel { KCI_ACCEL_AUTO, KCI_ACCEL_KVM, KCI_ACCEL_TCG };

/*
 * Resolves `want` to KVM or TCG. AUTO picks KVM only when the CPU has
 * hardware virtualization (vmx/svm) and /dev/kvm opens; `why` explains the
 * choice in one line. Forcing KVM where it cannot work is KCI_INVALID.
 */
int kci_vm_accel_choose(enum kci_accel want, enum kci_accel *out, char *why, size_t whylen,
			struct kci_err *err);
/* Parses "auto"|"kvm"|"tcg". */
int kci_vm_accel_parse(const char *s, enum kci_accel *out);
/* Host TSC frequency in kHz from /proc/cpuinfo, 0 if unknown. */
unsigned kci_vm_host_tsc_khz(void);

/* ---- one VM ---- */

struct kci_vm_opts {
	const char *qemu;      /* QEMU binary; NULL = qemu-system-x86_64 from PATH */
	const char *kernel;    /* vmlinuz */
	const char *initrd;    /* from kci_vm_initramfs_get() */
	const char *rootfs;    /* ext4 image, attached read-only; NULL = stay in initramfs */
	const char *run_dir;   /* parent of per-VM private runtime dirs */
	const char *cache_dir; /* where the empty scratch-disk template is kept */
	enum kci_accel accel;  /* KVM or TCG (already resolved) */
	unsigned cpus;
	uint64_t memory_mib;
	uint64_t scratch_mib; /* size of the per-VM writable disk; 0 = tmpfs in the guest */
	int64_t timeout_ms;   /* whole life of the VM, boot included; 0 = none */
	int console_fd;	      /* if >= 0, the guest console is copied here (--debug) */
	/*
	 * Writable ext4 image (kci_vm_disk_build_rw) that the VM copies, sparse, into its
	 * runtime dir and attaches read-write with serial kci-work; the agent mounts
	 * it at /workspace. The template itself is never written. NULL = none.
	 */
	const char *workspace;
	/*
	 * KCI_VM_NET_NONE: no network device at all (only lo). KCI_VM_NET_NAT:
	 * user-mode networking through passt --no-map-gw, so the guest reaches the
	 * outside world but not the host's loopback.
	 */
	int network;
	/*
	 * Start from a VM template when there is one for this configuration,
	 * else boot cold and save the guest as one for the next VM
	 * (docs/templates.md). 0 = always boot the kernel (--cold).
	 */
	int warm;
	const char *template_scope; /* part of the template's key: keeps trust levels apart */
	const char *label; /* what the root disk is ("alpine:3", "base"), for `kci images` */
};

enum { KCI_VM_NET_NONE = 0, KCI_VM_NET_NAT = 1 };

#define KCI_VM_OPTS_INIT                                                                           \
	{                                                                                          \
		.accel = KCI_ACCEL_TCG, .cpus = 2, .memory_mib = 512, .scratch_mib = 8192,         \
		.console_fd = -1                                                                   \
	}

struct kci_vm;

/*
 * Boots a VM: creates its private runtime dir under run_dir, launches QEMU
 * and returns without waiting for the guest. The VM is torn down by
 * kci_vm_free() on every path.
 */
int kci_vm_start(struct kci_vm **out, const struct kci_vm_opts *o, struct kci_err *err);

/* Kills QEMU if it still runs, reaps it and removes the runtime dir. NULL is a no-op. */
void kci_vm_free(struct kci_vm *vm);

/* How a process ended. */
struct kci_vm_result {
	int code;	 /* exit code when signal == 0 */
	int signal;	 /* terminating signal, or 0 */
	char error[256]; /* why it could not start (code 126/127) */
};

/* Output sink: must consume all of buf promptly (it runs inside the VM's event loop). */
typedef int (*kci_vm_output_fn)(void *ctx, int stream, const uint8_t *buf, size_t len);

struct kci_vm_io {
	int stdin_fd;  /* forwarded to the process; -1 = closed at once */
	int tty_fd;    /* with req->tty: the terminal whose size is mirrored, else -1 */
	int signal_fd; /* signalfd: SIGINT/SIGTERM/SIGHUP cancel, SIGWINCH resizes; -1 */
	int cancel_fd; /* becomes readable to cancel; -1 */
	/*
	 * Where output goes: with `output` NULL, to out_fd[1] (stdout) and
	 * out_fd[2] (stderr), waiting for them to drain while still honouring
	 * signals and deadlines; a slow reader slows the guest (backpressure)
	 * and host memory stays bounded.
	 */
	int out_fd[3];
	kci_vm_output_fn output; /* else called with stream 1 = stdout, 2 = stderr */
	void *ctx;
	/* kci's own news about the VM for the user ("booting it again: ..."), or NULL. */
	void (*notice)(void *ctx, const char *text);
};

#define KCI_VM_IO_INIT                                                                             \
	{                                                                                          \
		.stdin_fd = -1, .tty_fd = -1, .signal_fd = -1, .cancel_fd = -1, .out_fd = {        \
			-1,                                                                        \
			1,                                                                         \
			2                                                                          \
		}                                                                                  \
	}

/*
 * Runs one process in the VM (waiting for the agent first if needed) and
 * streams its output to io->output. Returns 0 with *res filled when the
 * process ended, whatever its status. Errors: KCI_TIMEOUT (deadline),
 * KCI_CANCELED (signal, *canceled_by holds it; or out_fd's reader went away,
 * *canceled_by = SIGPIPE; or cancel_fd), KCI_PROTO (hostile or broken
 * guest), KCI_ERROR (guest died: the message carries its last console lines).
 */
int kci_vm_exec(struct kci_vm *vm, const struct kci_run_req *req, const struct kci_vm_io *io,
		struct kci_vm_result *res, int *canceled_by, struct kci_err *err);

/*
 * For kci doctor: how this host confines a VM's QEMU. *ns says what the jail
 * gets (namespaces, uid), *caps how its memory, processes and CPU are
 * capped (a cgroup). -1 when something is missing; the lines say what.
 */
int kci_vm_jail_check(char *ns, size_t nslen, char *caps, size_t capslen);

/* ---- VM templates (template.c, docs/templates.md) ---- */

struct kci_vm_template_info {
	char key[33];
	char label[128]; /* what its root disk is */
	unsigned cpus;
	uint64_t memory_mib;
	int network;
	uint64_t bytes;	       /* disk space it takes (its files are sparse) */
	int64_t created, used; /* seconds since the epoch */
	int stale; /* made from files that changed or are gone: no VM can use it again */
};

/* The templates in cache_dir (malloc'd array; an absent dir is none). */
int kci_vm_templates_list(const char *cache_dir, struct kci_vm_template_info **out, size_t *n,
			  struct kci_err *err);
/*
 * Removes stale templates and those unused for `unused_for` seconds (every
 * one with `all`), and half-made ones of dead kci processes.
 */
int kci_vm_templates_prune(const char *cache_dir, int all, int64_t unused_for, uint64_t *freed,
			   size_t *removed, struct kci_err *err);

/* Removes runtime dirs left by kci processes that died without cleaning up. */
void kci_vm_sweep_stale(const char *run_dir);

#endif
