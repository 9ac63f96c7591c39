/* Private to vm/: the state of one running VM, shared by launch.c and session.c. */
#ifndef KCI_VM_VMPRIV_H
#define KCI_VM_VMPRIV_H

#include <stdint.h>
#include <sys/types.h>

#include "common/proto.h"
#include "vm/internal.h"

/* What kci_vm_start() resolved to launch QEMU, kept (copied) for a relaunch. */
struct vm_boot {
	char *qemu, *kernel, *initrd, *rootfs, *cache_dir; /* qemu, rootfs may be NULL */
	char *scratch, *workspace; /* the VM's own disks in its dir, or NULL */
	enum kci_accel accel;
	unsigned cpus;
	uint64_t memory_mib;
	int console_fd;
	int network;
};

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
	int alive;	  /* the agent's first console line seen (session.c) */
	int ready;	  /* HELLO received */
	int busy;	  /* a process is running in the guest */
	uint16_t next_id; /* last process id handed to the agent */
	int broken;	  /* protocol error or death: never talk to the agent again */
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

#endif
