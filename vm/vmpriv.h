/* Private to vm/: the state of one running VM, shared by launch.c and session.c. */
#ifndef KCI_VM_VMPRIV_H
#define KCI_VM_VMPRIV_H

#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#include "common/proto.h"
#include "vm/internal.h"

/* What kci_vm_start() resolved to launch QEMU, kept (copied) for a relaunch. */
struct vm_boot {
	char *qemu, *kernel, *initrd, *rootfs, *cache_dir; /* qemu, rootfs may be NULL */
	char *scratch, *workspace; /* the VM's own disks in its dir, or NULL */
	char *workspace_src;	   /* what the workspace disk is a copy of */
	char *label;		   /* what the root disk is, for `kci images` */
	char *scope;		   /* opts->template_scope, or NULL */
	enum kci_accel accel;
	unsigned cpus;
	uint64_t memory_mib, scratch_mib;
	uint64_t work_pad; /* with a template: the size the workspace copy is padded to */
	int console_fd;
	int network;
};

/* How a VM boots (template.c, docs/templates.md). */
enum vm_mode {
	VM_COLD,  /* boots its kernel */
	VM_MAKE,  /* boots its kernel and is saved as a template once the agent is READY */
	VM_CLONE, /* restored from a template */
};

/* The VM template a VM makes or was restored from. */
struct vm_template {
	char *key;     /* hex digest of everything that shapes the saved guest */
	char *dir;     /* $KCI_HOME/cache/templates/<key>: state, scratch.ext4, meta */
	char *keytext; /* what the key is a digest of (kept in meta) */
	int lock_fd;   /* VM_MAKE: flock on <dir>.lock while it is made */
	int state_fd;  /* VM_CLONE: the saved state, opened read-only, for -incoming */
};

/* A connection to QEMU's monitor (qmp.c). */
struct qmp {
	int fd;
	int64_t deadline; /* vm_now_ms() by which every command must be answered */
	size_t len;
	char buf[65536];
};
struct json_object;
/* Connects and negotiates capabilities; every later command must finish within timeout_ms. */
int qmp_open(struct qmp *q, const char *path, int timeout_ms, struct kci_err *err);
/* Sends a command (with pass_fd as SCM_RIGHTS if >= 0); *ret gets its "return" if non-NULL. */
int qmp_cmd(struct qmp *q, const char *json, int pass_fd, struct json_object **ret,
	    struct kci_err *err);
void qmp_close(struct qmp *q);

struct kci_vm {
	pid_t pid;	 /* QEMU; 0 once reaped */
	pid_t passt_pid; /* passt with --net nat; 0 without, or once reaped */
	int filtered;	 /* holds a reference on the nat filter (net_filter_acquire) */
	int pidfd;	 /* readable when QEMU exits */
	int status;	 /* QEMU's wait status once reaped */
	int agent_fd;	 /* our end of the virtio-serial socketpair (non-blocking) */
	int console_fd;	 /* our end of the serial console socketpair (non-blocking) */
	int stderr_fd;	 /* QEMU's stderr (non-blocking pipe) */
	int lock_fd;	 /* flock held while the VM lives; see kci_vm_sweep_stale() */
	int uid_lock_fd; /* holds QEMU's uid (jail_uid_acquire), as root */
	uid_t uid;
	struct cgroup *cg; /* QEMU's cgroup leaf, or NULL */
	int console_copy_fd;
	char *dir; /* private runtime dir (0700) */
	char *qmp_path;
	int64_t started_ms, deadline_ms; /* CLOCK_MONOTONIC; deadline 0 = none */
	int64_t booted_ms; /* when QEMU was last launched (the boot deadline's start) */
	int64_t last_frame_ms;
	int alive;	/* the agent's first console line seen (session.c) */
	int hello;	/* the booting agent's HELLO received */
	int resume_due; /* READY received (or restored): RESUME is to be sent */
	int resumed;	/* RESUME sent: the agent's second HELLO makes it ready */
	int ready;	/* HELLO after RESUME received: the agent runs commands */
	enum vm_mode mode;
	struct vm_template tmpl; /* with VM_MAKE and VM_CLONE */
	char *ram;		 /* with VM_MAKE and VM_CLONE: the guest RAM's file */
	int ram_fd;		 /* VM_MAKE: the memfd that vm->ram names */
	char note[512];		 /* news for the user, told by the next kci_vm_exec() */
	int busy;		 /* a process is running in the guest */
	uint16_t next_id;	 /* last process id handed to the agent */
	int broken;		 /* protocol error or death: never talk to the agent again */
	struct vm_boot *boot;
	int relaunches; /* boots that failed and were redone (vm_relaunch) */
	struct kci_decoder *dec;
	struct console_ring console;
	struct console_ring qemu_stderr;
};

int64_t vm_now_ms(void);
/* Reads whatever the console and QEMU's stderr have buffered, without blocking. */
void vm_drain_logs(struct kci_vm *vm);
/* Reaps QEMU if it has exited (non-blocking); returns 1 if it is gone. */
int vm_reap(struct kci_vm *vm, int block);
/*
 * Starts the VM's boot over: kills QEMU (and passt), then launches them again
 * with the same disks. Only before the agent is up, when the guest has not
 * touched its disks yet.
 */
int vm_relaunch(struct kci_vm *vm, struct kci_err *err);
/* Waits up to ms for QEMU to exit by itself, draining the console; 1 if it did. */
int vm_wait_exit(struct kci_vm *vm, int ms);
/*
 * A clone whose restore failed: removes its template, tells the user why
 * (vm->note) and boots the VM cold from fresh disks.
 */
int vm_boot_cold(struct kci_vm *vm, const char *why, struct kci_err *err);

/* ---- template.c ---- */
/*
 * Decides how vm boots from vm->boot: finds a usable template (VM_CLONE,
 * its state opened), or takes the lock to make one (VM_MAKE), or neither
 * (VM_COLD, when another kci is making it). A damaged template is removed
 * here, with a note. `qemu_argv_text` is the command line every mode shares.
 */
void template_choose(struct kci_vm *vm, const char *qemu_exe, const char *qemu_argv_text);
/* VM_MAKE, at READY: saves the running guest and its scratch disk, then lets it go on. */
int template_save(struct kci_vm *vm, struct kci_err *err);
/* VM_CLONE, once QEMU runs: has it load the template's state from its fd `fd`. */
int template_incoming(struct kci_vm *vm, int fd, struct kci_err *err);
/* Removes a template (it failed, or its inputs are gone). */
void template_remove(const char *dir);
/* Releases what vm->tmpl holds (the lock of an unfinished template, the state fd). */
void template_release(struct vm_template *t);

#endif
