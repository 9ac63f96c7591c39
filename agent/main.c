/* kci-agent: PID 1 of every kci guest. Boots the guest, then runs what the host asks. */
#include <json-c/linkhash.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/internal.h"
#include "common/version.h"
#include "common/xalloc.h"

#define MODULES_LIST	 "/etc/kci/modules"
#define MODULES_NET_LIST "/etc/kci/modules-net"

static void
send_hello(struct agent *a)
{
	struct kci_hello hello;
	struct utsname uts;
	size_t len;
	char *json;

	memset(&hello, 0, sizeof(hello));
	hello.proto = KCI_PROTO_VERSION;
	snprintf(hello.agent, sizeof(hello.agent), "%s", KCI_VERSION);
	if (uname(&uts) == 0)
		snprintf(hello.kernel, sizeof(hello.kernel), "%s", uts.release);
	json = kci_proto_encode_hello(&hello, &len);
	agent_send(a, KCI_F_HELLO, 0, json, len);
	free(json);
}

/* Mounts the job's root over the initramfs, or stays put when there is no root disk. */
static void
setup_root(struct agent *a)
{
	struct kci_err err = KCI_ERR_INIT;
	struct rootfs_disks *disks = &a->disks;

	if (rootfs_find(disks) < 0)
		agent_log(a, "no disk with serial kci-root; staying in the initramfs");
	else if (rootfs_switch(disks, &err) < 0)
		agent_fatal(a, "root file system: %s", err.msg);
	else if (!disks->scratch[0])
		agent_log(a, "no disk with serial kci-scratch; writes go to RAM");
	if (mounts_late(&err) < 0)
		agent_fatal(a, "%s", err.msg);
}

struct loopback {
	const char *what;
	int rc;
};

static void *
loopback_thread(void *arg)
{
	struct loopback *lo = arg;

	lo->rc = net_loopback_up(&lo->what);
	return NULL;
}

/*
 * Reads the host's network settings from the kernel command line: 1 with
 * *nc filled for --net nat, 0 for no network, -errno if unreadable.
 */
static int
net_wanted(struct net_config *nc)
{
	char cmdline[4096];
	int rc = sysfs_read("/proc/cmdline", cmdline, sizeof(cmdline));

	return rc < 0 ? rc : net_config_read(cmdline, nc);
}

/*
 * The boot contract of docs/protocol.md, in its order. Bringing up lo needs
 * nothing else, so it runs on its own thread meanwhile (it logs nothing
 * there: only the main thread writes to the port). The NIC's modules load
 * with the others, and only when the host gave the VM a network.
 */
static void
boot(struct agent *a)
{
	struct kci_err err = KCI_ERR_INIT;
	struct loopback lo = { 0 };
	struct net_config nc;
	const char *net_what = "kci.net= on the kernel command line";
	pthread_t thread;
	int threaded, net, net_rc = 0;

	if (mounts_early(&err) < 0)
		agent_fatal(a, "%s", err.msg);
	console_init();
	/*
	 * Console only (not yet on the port). The host waits for the first to
	 * know the kernel booted (vm/session.c); if a boot ever stalls later, the
	 * error's console lines say how far it got.
	 */
	agent_log(NULL, "%s", KCI_BOOT_STARTED);
	threaded = pthread_create(&thread, NULL, loopback_thread, &lo) == 0;
	net = net_wanted(&nc);
	const char *const lists[] = { MODULES_LIST, net > 0 ? MODULES_NET_LIST : NULL, NULL };
	modules_load(a, lists);
	agent_log(NULL, "boot: modules loaded");
	/* A few ioctls: no disk I/O, so not worth a thread. */
	if (net > 0)
		net_rc = net_nic_up(&nc, &net_what);
	if (port_open(&a->port, &err) < 0)
		agent_fatal(a, "%s", err.msg);
	send_hello(a);
	/* The host asked for a network; a job without one would fail in confusing ways. */
	if (net < 0 || net_rc < 0)
		agent_fatal(a, "network: %s: %s", net_what, strerror(-(net < 0 ? net : net_rc)));
	setup_root(a);
	if (net > 0 && net_write_resolv(&nc, &err) < 0)
		agent_fatal(a, "network: %s", err.msg);
	if (threaded)
		pthread_join(thread, NULL);
	else
		loopback_thread(&lo);
	if (lo.rc < 0)
		agent_log(a, "loopback: %s: %s", lo.what, strerror(-lo.rc));
}

int
main(void)
{
	/*
	 * What PID 1 may do: everything, as root, inside the guest. It mounts file
	 * systems, loads modules, forks the host's commands, signals and kills any
	 * process, and powers the guest off. Its only channel out is the port (and
	 * the console for boot messages); the VM is the sandbox. No seccomp policy:
	 * it would be inherited by the jobs, which must be free to do anything a
	 * Linux system allows. It never returns: it powers off instead, because
	 * PID 1 exiting panics the kernel.
	 */
	struct agent a = { .port = -1, .sig_fd = -1, .timer_fd = -1 };

	/* Run by mistake on a host, kill(-1) and reboot() would be a disaster. */
	if (getpid() != 1) {
		fprintf(stderr, "kci-agent: must run as PID 1 of a kci guest\n");
		return 1;
	}
	/*
	 * json-c seeds its string hash from the kernel RNG on first use. This
	 * early in boot that read makes the kernel gather jitter entropy, about a
	 * second under TCG, and every job pays it. The agent parses only the
	 * host's JSON, which has no reason to flood a hash table, so it uses
	 * json-c's unseeded hash instead.
	 */
	json_global_set_string_hash(JSON_C_STR_HASH_PERLLIKE);
	a.dec = kci_xmalloc(sizeof(*a.dec));
	kci_decoder_init(a.dec);
	a.out_buf = kci_xmalloc(AGENT_READ_MAX);
	a.send_buf = kci_xmalloc(KCI_FRAME_HDR + KCI_FRAME_MAX);
	job_init(&a.job);
	boot(&a);
	resume_wait(&a);
	send_hello(&a);
	serve(&a);
}
