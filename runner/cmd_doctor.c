/* `kci doctor`: a checklist of what this host needs, with the fix for each missing piece. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "runner/cli.h"
#include "vm/vm.h"

struct checklist {
	int failed;
};

static void
check(struct checklist *c, int ok, const char *what, const char *detail, const char *fix)
{
	printf("  %s %-13s %s\n", ok ? "[ok]  " : "[FAIL]", what, detail);
	if (!ok) {
		printf("         %-13s fix: %s\n", "", fix);
		c->failed = 1;
	}
}

/* First line a command prints, or NULL if it cannot run. */
static char *
first_line(const char *cmd)
{
	char buf[256];
	FILE *f = popen(cmd, "r");
	char *line = NULL;

	if (!f)
		return NULL;
	if (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = '\0';
		line = kci_xstrdup(buf);
	}
	if (pclose(f) != 0) {
		free(line);
		return NULL;
	}
	return line;
}

static void
check_tools(struct checklist *c)
{
	char *qemu = first_line("qemu-system-x86_64 --version 2>/dev/null");
	/* Where vm/tool.c looks too: a normal user's PATH on Debian has no sbin. */
	char *mke2fs = first_line("PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\" mke2fs -V 2>&1");

	check(c, qemu != NULL, "qemu", qemu ? qemu : "qemu-system-x86_64 not found",
	      "apt-get install qemu-system-x86");
	check(c, mke2fs != NULL, "mke2fs", mke2fs ? mke2fs : "mke2fs not found",
	      "apt-get install e2fsprogs");
	free(qemu);
	free(mke2fs);
}

static void
check_jail(struct checklist *c)
{
	char ns[256], caps[512];
	int root = geteuid() == 0;

	kci_vm_jail_check(ns, sizeof(ns), caps, sizeof(caps));
	check(c, strstr(ns, "not available") == NULL, "jail", ns,
	      "sysctl -w kernel.unprivileged_userns_clone=1 (or run kci as root)");
	/* Without root a cgroup is a bonus the host may not grant; as root it is required. */
	if (root || strstr(caps, "cgroup v"))
		check(c, strstr(caps, "cgroup v") != NULL, "limits", caps,
		      "mount cgroup2 on /sys/fs/cgroup, or the memory, pids and cpu v1 "
		      "hierarchies");
	else
		printf("  %s %-13s %s\n", "[warn]", "limits",
		       "no cgroup is delegated to you: a VM's memory and CPU are capped only by "
		       "QEMU's -m and -smp (run as root for cgroup caps)");
}

/* What `network: nat` needs: passt, and its filter (nftables as root; pasta and tun without). */
static void
check_net(struct checklist *c)
{
	char *passt = first_line("command -v passt 2>/dev/null");
	char *nft = first_line("PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\" command -v nft");
	char *pasta = first_line("command -v pasta 2>/dev/null");
	int root = geteuid() == 0, tun = access("/dev/net/tun", R_OK | W_OK) == 0;
	int ok = passt && nft && (root || (pasta && tun));
	const char *detail = ok	      ? (root ? "passt, filtered by an nftables table on the host"
					      : "passt in a network namespace of its own, filtered by "
						"nftables there, connected out by pasta")
			     : !passt ? "passt is not installed"
			     : !nft   ? "nft is not installed (the filter cannot be loaded)"
			     : !pasta ? "pasta is not installed"
				      : "/dev/net/tun is not usable by you (pasta needs it)";

	/* Optional: only `network: nat` needs it, so a gap is a warning, not a failure. */
	if (ok)
		check(c, 1, "nat", detail, "");
	else
		printf("  [warn] %-13s %s: network: nat will not work\n"
		       "         %-13s fix: %s\n",
		       "nat", detail, "",
		       !passt || !pasta ? "apt-get install passt"
		       : !nft		? "apt-get install nftables"
			      : "chmod 0666 /dev/net/tun (Debian's default), or run kci as root");
	free(passt);
	free(nft);
	free(pasta);
}

static void
check_guest(struct checklist *c, const char *home)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_guest *g = NULL;
	char *agent = NULL, *detail;

	if (kci_vm_guest_find(&g, NULL, home, &err) < 0) {
		check(c, 0, "guest kernel", err.msg,
		      "scripts/fetch-guest.sh (downloads Debian's linux-image-cloud-amd64 and "
		      "busybox-static; installs nothing on the host)");
	} else {
		detail = kci_xasprintf("%s (%s)", kci_vm_guest_kernel(g),
				       kci_vm_guest_release(g)[0] ? kci_vm_guest_release(g)
								  : "release unknown");
		check(c, 1, "guest kernel", detail, "");
		free(detail);
		check(c, kci_vm_guest_busybox(g) != NULL, "base image",
		      kci_vm_guest_busybox(g) ? "busybox present (kci exec works without --rootfs)"
					      : "no busybox in the guest bundle",
		      "re-run scripts/fetch-guest.sh");
	}
	if (kci_vm_agent_find(&agent, &err) < 0)
		check(c, 0, "agent", err.msg, "build kci (cmake --build) or set KCI_AGENT");
	else
		check(c, 1, "agent", agent, "");
	free(agent);
	kci_vm_guest_free(g);
}

static void
check_store(struct checklist *c, char **home)
{
	struct kci_err err = KCI_ERR_INIT;
	struct statvfs vfs;
	char detail[512];

	if (kci_home(home, &err) < 0) {
		check(c, 0, "store", err.msg, "set KCI_HOME to a writable directory");
		return;
	}
	if (access(*home, W_OK) < 0) {
		snprintf(detail, sizeof(detail), "%s: %s", *home, strerror(errno));
		check(c, 0, "store", detail, "set KCI_HOME to a writable directory");
		return;
	}
	if (statvfs(*home, &vfs) == 0) {
		unsigned long long free_mib =
			(unsigned long long)vfs.f_bavail * vfs.f_frsize / (1024 * 1024);
		snprintf(detail, sizeof(detail), "%s (%llu MiB free)", *home, free_mib);
		check(c, free_mib >= 1024, "store", detail,
		      "free some space: rootfs images and scratch disks need at least 1 GiB");
	}
}

/* VM templates: informative only (docs/templates.md). */
static void
check_templates(const char *home)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_vm_template_info *t = NULL;
	char *cache, size[32];
	uint64_t bytes = 0;
	size_t n = 0, stale = 0;
	const char *cold = getenv("KCI_COLD");

	if (!home)
		return;
	cache = kci_xasprintf("%s/cache", home);
	if (kci_vm_templates_list(cache, &t, &n, &err) < 0) {
		printf("  [warn] %-13s %s\n", "templates", err.msg);
	} else {
		for (size_t i = 0; i < n; i++) {
			bytes += t[i].bytes;
			stale += t[i].stale != 0;
		}
		kci_human_size(bytes, size, sizeof(size));
		printf("  [ok]   %-13s %zu VM template%s, %s in %s/templates%s%s%s\n", "templates",
		       n, n == 1 ? "" : "s", size, cache, stale ? "; stale: " : "",
		       stale ? "kci prune removes them" : "",
		       cold && strcmp(cold, "1") == 0 ? "; KCI_COLD=1: not used" : "");
	}
	free(t);
	free(cache);
}

int
kci_cmd_doctor(int argc, char **argv)
{
	struct checklist c = { 0 };
	struct kci_err err = KCI_ERR_INIT;
	enum kci_accel a;
	char why[256], *home = NULL;

	if (argc > 1) {
		if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
			printf("Usage: kci doctor\n\nCheck this host and say how to fix what is "
			       "missing. Exit status 0 when kci can run VMs here.\n");
			return 0;
		}
		fprintf(stderr, "kci: doctor: unexpected argument '%s'\n", argv[1]);
		return KCI_EXIT_RUNNER;
	}
	printf("kci doctor\n");
	if (kci_vm_accel_choose(KCI_ACCEL_AUTO, &a, why, sizeof(why), &err) < 0)
		check(&c, 0, "accelerator", err.msg, "apt-get install qemu-system-x86");
	else
		check(&c, 1, "accelerator", why, "");
	check_tools(&c);
	check_jail(&c);
	check_net(&c);
	check_store(&c, &home);
	check_guest(&c, home);
	check_templates(home);
	printf(c.failed ? "Some checks failed; kci exec will not work until they are fixed.\n"
			: "All checks passed: `kci exec -- uname -r` should work.\n");
	free(home);
	return c.failed ? 1 : 0;
}
