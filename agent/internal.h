/* Private interface between the files of kci-agent, the guest's PID 1. */
#ifndef KCI_AGENT_INTERNAL_H
#define KCI_AGENT_INTERNAL_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/proto.h"

/* Child output is read and framed in pieces of at most this size. */
#define AGENT_READ_MAX (32 * 1024)

/* The guest's disks, found by serial (rootfs.c). */
struct rootfs_disks {
	char root[32];	  /* "/dev/vdX" */
	char scratch[32]; /* "" when there is no scratch disk */
	char work[32];	  /* the workspace disk, "" when there is none */
};

/* The one process the agent runs at a time. */
struct job {
	uint16_t id; /* from RUN; echoed on every frame about the process */
	pid_t pid;   /* the process, its process group and session; 0 when idle */
	int tty;
	int pty;	    /* pty master, for RESIZE; -1 without tty */
	int in_fd;	    /* its stdin: pipe write end or a pty master dup; -1 once closed */
	int out_fd;	    /* its stdout (or the pty master); -1 at EOF */
	int err_fd;	    /* its stderr; -1 with tty or at EOF */
	uint8_t *stdin_buf; /* KCI_FRAME_MAX bytes: one STDIN frame not yet written */
	size_t stdin_off, stdin_len;
};

struct agent {
	int port;     /* the virtio-serial port, non-blocking; see port.c for why */
	int sig_fd;   /* signalfd for SIGCHLD */
	int timer_fd; /* heartbeat interval */
	struct kci_decoder *dec;
	uint8_t *out_buf;  /* AGENT_READ_MAX bytes of child output */
	uint8_t *send_buf; /* KCI_FRAME_HDR + KCI_FRAME_MAX: the frame being sent */
	struct job job;
	struct rootfs_disks disks;
};

/* log.c: diagnostics to the console and, once the port is open, as frames. */
void console_init(void);
void agent_log(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void agent_fatal(struct agent *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* power.c */
void agent_poweroff(void) __attribute__((noreturn));

/* sysfs.c: devices appear asynchronously; these find them by attribute. */
int sysfs_read(const char *path, char *buf, size_t size);
int sysfs_wait(int (*probe)(void *ctx), void *ctx, int timeout_ms);

/* mounts.c */
int mkdir_p(const char *path, mode_t mode);
int mount_at(const char *src, const char *target, const char *type, unsigned long flags,
	     const char *data, struct kci_err *err);
int mounts_early(struct kci_err *err);
int mounts_late(struct kci_err *err);

/* rootfs.c */
int rootfs_find(struct rootfs_disks *disks);
int rootfs_switch(const struct rootfs_disks *disks, struct kci_err *err);
int rootfs_mount_workspace(const struct rootfs_disks *disks, struct kci_err *err);

/* modules.c */
void modules_load(struct agent *a, const char *const *list_paths);

/* net.c */
struct net_config {
	struct in_addr addr, netmask, gateway, dns;
};
int net_loopback_up(const char **what);
int net_config_read(const char *cmdline, struct net_config *nc);
int net_nic_up(const struct net_config *nc, const char **what);
int net_write_resolv(const struct net_config *nc, struct kci_err *err);
/* Switches this process to that user (groups, gid, uid); -errno (-ENOENT: no such user). */
int user_switch(const char *spec);

/* port.c */
int port_open(int *out, struct kci_err *err);
void agent_send(struct agent *a, uint8_t type, uint16_t id, const void *payload, size_t len);
void agent_send_exit(struct agent *a, uint16_t id, const struct kci_exit *ex);
void port_read(struct agent *a);
void port_hung_up(struct agent *a) __attribute__((noreturn));

/* process.c */
int process_start(struct job *job, uint16_t id, const struct kci_run_req *req,
		  struct kci_exit *failed);

/* job.c */
void job_init(struct job *job);
void job_read_output(struct agent *a, uint8_t stream);
void job_stdin(struct agent *a, uint16_t id, const uint8_t *p, size_t len);
void job_flush_stdin(struct agent *a);
int job_stdin_blocked(const struct agent *a);
void job_finish(struct agent *a, int status);

/* resume.c: says READY, waits for RESUME and applies it (then HELLO is the caller's). */
void resume_wait(struct agent *a);

/* serve.c */
void serve(struct agent *a) __attribute__((noreturn));

#endif
