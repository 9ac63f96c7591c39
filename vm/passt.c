/*
 * NAT networking for a VM: one passt process per VM, connected to QEMU's NIC
 * through a socketpair. passt gives the guest the outside world but, with
 * --no-map-gw, not the host's loopback.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vm/internal.h"

/* The fd number passt sees for its end of the NIC socketpair. */
enum { CHILD_TAP_FD = 3 };

/* The programs a nat VM needs, found before forking (the child runs without PATH). */
struct net_tools {
	char *passt, *pasta, *nft, *sh;
};

/*
 * The command line. As root: passt as KCI_NET_UID, which the host's table
 * confines. Without root: pasta makes a user and network namespace of the
 * VM's own, connected outward through its tap (no port forwarded either way,
 * the gateway not mapped to the host), and runs a shell there that loads the
 * sandbox rules into that namespace's nftables and then becomes passt; every
 * connection the guest makes leaves from inside, through the rules.
 */
static void
net_argv(const struct net_tools *t, const char *tap, const char *uid, const char *rules,
	 char **argv, size_t max)
{
	const char *passt[] = {
		t->passt,    "--foreground", "--quiet",	    "--one-off",    "--fd",
		tap,	     "--ipv4-only",  "--no-map-gw", "--address",    VM_NET_ADDR,
		"--netmask", VM_NET_PREFIX,  "--gateway",   VM_NET_GATEWAY, "--dns-forward",
		VM_NET_DNS,  "--tcp-ports",  "none",	    "--udp-ports",  "none"
	};
	size_t n = 0;

	if (rules) {
		const char *pasta[] = {
			t->pasta,      "--config-net", "--foreground",
			"--quiet",     "--ipv4-only",  "--no-map-gw",
			"--tcp-ports", "none",	       "--udp-ports",
			"none",	       "--tcp-ns",     "none",
			"--udp-ns",    "none",	       "--",
			t->sh,	       "-ec",	       "\"$1\" -f \"$2\"; shift 2; exec \"$@\"",
			"kci-net",     t->nft,	       rules
		};
		for (size_t i = 0; i < sizeof(pasta) / sizeof(*pasta) && n + 1 < max; i++)
			argv[n++] = (char *)pasta[i];
	}
	for (size_t i = 0; i < sizeof(passt) / sizeof(*passt) && n + 1 < max; i++)
		argv[n++] = (char *)passt[i];
	/* As root: a uid of its own, which the host's nftables table confines (netfilter.c). */
	if (uid && n + 3 < max) {
		argv[n++] = "--runas";
		argv[n++] = (char *)uid;
	}
	argv[n] = NULL;
}

/* In the child: put the tap socket at CHILD_TAP_FD, quiet stdio, and exec. */
static void __attribute__((noreturn))
exec_net(const struct net_tools *t, int tap_fd, int log_fd, int runas, const char *rules,
	 int report, pid_t parent)
{
	char tap[16], uid[32], *argv[64];
	int devnull = open("/dev/null", O_RDWR), e;

	/*
	 * passt changes its credentials as it starts (to KCI_NET_UID as root),
	 * which clears the parent-death signal; so this covers only startup. What
	 * ends it later is --one-off: kci's death kills QEMU (its own
	 * PDEATHSIG), which closes the other end of tap_fd, and passt exits
	 * (and pasta with it, without root).
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
	snprintf(uid, sizeof(uid), "%d:%d", runas, runas);
	net_argv(t, tap, runas >= 0 ? uid : NULL, rules, argv, sizeof(argv) / sizeof(*argv));
	/* No environment: nothing of kci's (secrets included) reaches it. */
	char *const envp[] = { NULL };
	execve(argv[0], argv, envp);
out:
	e = errno;
	(void)!write(report, &e, sizeof(e));
	_exit(127);
}

int
passt_start(int tap_fd, int log_fd, int runas, const char *rules, pid_t *pid, struct kci_err *err)
{
	struct net_tools t = { .passt = tool_path("passt"),
			       .pasta = rules ? tool_path("pasta") : NULL,
			       .nft = rules ? tool_path("nft") : NULL,
			       .sh = rules ? tool_path("sh") : NULL };
	int report[2] = { -1, -1 }, e = 0, rc = 0;
	pid_t parent = getpid();
	ssize_t n;

	*pid = 0;
	if (!t.passt || (rules && (!t.pasta || !t.nft || !t.sh))) {
		rc = kci_err_set(err, KCI_NOTFOUND,
				 "--net nat needs %s, which is not installed (apt-get install %s)",
				 !t.passt   ? "passt"
				 : !t.pasta ? "pasta"
				 : !t.nft   ? "nft"
					    : "sh",
				 !t.nft && t.pasta ? "nftables" : "passt");
		goto out;
	}
	if (pipe2(report, O_CLOEXEC) < 0) {
		rc = kci_err_sys(err, errno, "pipe");
		goto out;
	}
	*pid = fork();
	if (*pid < 0) {
		*pid = 0;
		rc = kci_err_sys(err, errno, "fork");
		goto out;
	}
	if (*pid == 0)
		exec_net(&t, tap_fd, log_fd, runas, rules, report[1], parent);
	close(report[1]);
	report[1] = -1;
	/* EOF means the exec succeeded (the pipe is close-on-exec). */
	while ((n = read(report[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	if (n == sizeof(e)) {
		rc = kci_err_sys(err, e, "cannot run %s for --net nat", rules ? t.pasta : t.passt);
		waitpid(*pid, NULL, 0);
		*pid = 0;
	}
out:
	for (int i = 0; i < 2; i++)
		if (report[i] >= 0)
			close(report[i]);
	free(t.passt);
	free(t.pasta);
	free(t.nft);
	free(t.sh);
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
