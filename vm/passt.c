/*
 * NAT networking for a VM: one passt process per VM, connected to QEMU's NIC
 * through a socketpair. passt gives the guest the outside world but, with
 * --no-map-gw, not the host's loopback.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vm/internal.h"

/* The fd number passt sees for its end of the NIC socketpair. */
enum { CHILD_TAP_FD = 3 };

/* In the child: put the tap socket at CHILD_TAP_FD, quiet stdio, and exec passt. */
static void __attribute__((noreturn))
exec_passt(int tap_fd, int log_fd, int runas, int report, pid_t parent)
{
	char tap[16], uid[32];
	int devnull = open("/dev/null", O_RDWR), e;

	/*
	 * passt changes its credentials as it starts (to KCI_NET_UID as root),
	 * which clears the parent-death signal; so this covers only startup. What
	 * ends it later is --one-off: kci's death kills QEMU (its own
	 * PDEATHSIG), which closes the other end of tap_fd, and passt exits.
	 */
	child_detach(parent);
	tap_fd = fcntl(tap_fd, F_DUPFD, 10);
	if (log_fd < 0)
		log_fd = devnull;
	log_fd = fcntl(log_fd, F_DUPFD, 10);
	report = fcntl(report, F_DUPFD_CLOEXEC, 10);
	if (devnull < 0 || tap_fd < 0 || log_fd < 0 || report < 0 || dup2(devnull, 0) < 0 ||
	    dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0 || dup2(tap_fd, CHILD_TAP_FD) < 0 ||
	    dup3(report, CHILD_TAP_FD + 1, O_CLOEXEC) < 0)
		goto out;
	/* Only what it is given: no fd kci or its caller happened to hold stays open. */
	report = CHILD_TAP_FD + 1;
	if (syscall(SYS_close_range, CHILD_TAP_FD + 2, ~0U, 0) < 0)
		goto out;
	snprintf(tap, sizeof(tap), "%d", CHILD_TAP_FD);
	/*
	 * IPv4 only, and no ports forwarded into the guest. The guest is told
	 * its addresses on the kernel command line (VM_NET_ADDRESSING); passt
	 * must agree on them. DNS sent to VM_NET_DNS goes to the host's
	 * resolver from /etc/resolv.conf.
	 */
	char *argv[] = {
		"passt",     "--foreground", "--quiet",	    "--one-off",    "--fd",
		tap,	     "--ipv4-only",  "--no-map-gw", "--address",    VM_NET_ADDR,
		"--netmask", VM_NET_PREFIX,  "--gateway",   VM_NET_GATEWAY, "--dns-forward",
		VM_NET_DNS,  "--tcp-ports",  "none",	    "--udp-ports",  "none",
		NULL,	     NULL,	     NULL
	};
	/* As root: a uid of its own, which the host's nftables table confines (netfilter.c). */
	if (runas >= 0) {
		snprintf(uid, sizeof(uid), "%d:%d", runas, runas);
		argv[sizeof(argv) / sizeof(argv[0]) - 3] = "--runas";
		argv[sizeof(argv) / sizeof(argv[0]) - 2] = uid;
	}
	/* No environment: nothing of kci's (secrets included) reaches it. */
	char *const envp[] = { NULL };
	execvpe(argv[0], argv, envp);
out:
	e = errno;
	(void)!write(report, &e, sizeof(e));
	_exit(127);
}

int
passt_start(int tap_fd, int log_fd, int runas, pid_t *pid, struct kci_err *err)
{
	int report[2] = { -1, -1 }, e = 0, rc = 0;
	pid_t parent = getpid();
	ssize_t n;

	*pid = 0;
	if (pipe2(report, O_CLOEXEC) < 0)
		return kci_err_sys(err, errno, "pipe");
	*pid = fork();
	if (*pid < 0) {
		*pid = 0;
		rc = kci_err_sys(err, errno, "fork");
		goto out;
	}
	if (*pid == 0)
		exec_passt(tap_fd, log_fd, runas, report[1], parent);
	close(report[1]);
	report[1] = -1;
	/* EOF means the exec succeeded (the pipe is close-on-exec). */
	while ((n = read(report[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	if (n == sizeof(e)) {
		rc = kci_err_sys(err, e, "cannot run passt for --net nat%s",
				 e == ENOENT ? " (install passt)" : "");
		waitpid(*pid, NULL, 0);
		*pid = 0;
	}
out:
	for (int i = 0; i < 2; i++)
		if (report[i] >= 0)
			close(report[i]);
	return rc;
}

void
passt_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}
