/*
 * What a NAT guest may reach. passt opens the guest's connections from the
 * host's own sockets, and has no destination filter: by itself it would let a
 * job reach the host's other addresses, private networks and cloud metadata
 * (169.254.169.254). When kci runs as root, passt runs as a uid of its own
 * (KCI_NET_UID) and an nftables table rejects that uid's traffic to any
 * address of the host, to private, shared, link-local, loopback, multicast
 * and reserved IPv4 ranges, and to IPv6 altogether, except DNS to the host's
 * resolvers (passt forwards the guest's DNS there). The table touches no
 * other traffic, and is removed when the last kci with a nat VM is done.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/fs.h"
#include "common/xalloc.h"
#include "vm/internal.h"

#define RESOLV_CONF   "/etc/resolv.conf"
#define RESOLVERS_MAX 3

/* The host's IPv4 resolvers from resolv.conf, as an nft set body ("a, b"), or "" for none. */
static char *
resolvers(void)
{
	char line[512], *out = kci_xstrdup("");
	FILE *f = fopen(RESOLV_CONF, "re");
	int n = 0;

	while (f && n < RESOLVERS_MAX && fgets(line, sizeof(line), f)) {
		char addr[64], *grown;
		struct in_addr a;

		if (sscanf(line, " nameserver %63s", addr) != 1 ||
		    inet_pton(AF_INET, addr, &a) != 1)
			continue;
		grown = kci_xasprintf("%s%s%s", out, n ? ", " : "", addr);
		free(out);
		out = grown;
		n++;
	}
	if (f)
		fclose(f);
	return out;
}

/*
 * The networks the host is directly connected to (each IPv4 interface's
 * address and prefix), as an nft set body, or "" for none. A LAN may use any
 * range, public or documentation ones included (192.0.2.0/24 here), which no
 * fixed list of private ranges covers.
 */
static char *
connected_networks(void)
{
	struct ifaddrs *ifs = NULL;
	char *out = kci_xstrdup("");
	int n = 0;

	if (getifaddrs(&ifs) < 0)
		return out;
	for (struct ifaddrs *i = ifs; i && n < 64; i = i->ifa_next) {
		char net[INET_ADDRSTRLEN], host[INET_ADDRSTRLEN], *grown;
		struct in_addr a, m;
		int prefix;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		m = ((struct sockaddr_in *)i->ifa_netmask)->sin_addr;
		prefix = __builtin_popcount(ntohl(m.s_addr));
		/*
		 * The address itself too: seen from a network namespace of its own
		 * (kci without root), the host's addresses are not local there.
		 */
		if (!inet_ntop(AF_INET, &a, host, sizeof(host)))
			continue;
		a.s_addr &= m.s_addr;
		if (!inet_ntop(AF_INET, &a, net, sizeof(net)))
			continue;
		grown = kci_xasprintf("%s%s%s/%d, %s", out, n ? ", " : "", net, prefix, host);
		free(out);
		out = grown;
		n++;
	}
	freeifaddrs(ifs);
	return out;
}

/*
 * The rules. root: in the host's own table, for KCI_NET_UID's sockets only.
 * Otherwise: for a network namespace of the VM's own (kci without root),
 * where every packet is the guest's and the table goes with the namespace.
 */
static char *
ruleset(int root)
{
	char *dns = resolvers(), *dns_rule, *rules, *lan = connected_networks(), *lan_rule;

	dns_rule = dns[0] ? kci_xasprintf("\t\tip daddr { %s } meta l4proto { tcp, udp } th dport "
					  "53 accept\n",
					  dns)
			  : kci_xstrdup("");
	lan_rule = lan[0] ? kci_xasprintf("\t\tip daddr { %s } reject\n", lan) : kci_xstrdup("");
	char *who = root ? kci_xasprintf("\t\tmeta skuid %d jump guest\n", KCI_NET_UID)
			 : kci_xstrdup("\t\toif lo accept\n\t\tjump guest\n");
	/*
	 * One transaction: the table is replaced whole, never absent in between.
	 * The output hook jumps to `guest` only for packets whose socket belongs
	 * to KCI_NET_UID. The match must be positive: packets without an owning
	 * socket (the kernel's own RSTs and ACKs) match neither `skuid X` nor
	 * `skuid != X`, and a negated match let them fall through to the rejects,
	 * which broke the host's loopback TCP for every process.
	 */
	rules = kci_xasprintf(
		"table inet kci_net {}\n"
		"delete table inet kci_net\n"
		"table inet kci_net {\n"
		"\tchain guest {\n"
		"%s"
		"\t\tfib daddr type { local, broadcast, multicast } reject\n"
		"\t\tip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, "
		"169.254.0.0/16, 172.16.0.0/12, 192.0.0.0/24, 192.168.0.0/16, 198.18.0.0/15, "
		"224.0.0.0/4, 240.0.0.0/4 } reject\n"
		"%s"
		"\t\tmeta nfproto ipv6 reject\n"
		"\t}\n"
		"\tchain out {\n"
		"\t\ttype filter hook output priority filter; policy accept;\n"
		"%s"
		"\t}\n"
		"}\n",
		dns_rule, lan_rule, who);
	free(dns);
	free(dns_rule);
	free(lan);
	free(lan_rule);
	free(who);
	return rules;
}

/*
 * Who uses the table. Each nat VM of this process holds a reference while it
 * runs, and the process holds a shared flock on the lock file of its network
 * namespace (filter_lock_path) while it has any; the last VM to go takes the
 * lock exclusively, which succeeds only when no other kci in that namespace
 * has a nat VM running, and then removes the table. Per namespace, because the
 * table is: a kci in another one (a container, a test's netns) neither keeps
 * this table alive nor removes it. A kci killed with SIGKILL leaves the table
 * loaded: it matches only KCI_NET_UID, so it touches no other traffic.
 * Process-wide by nature (the table and the flock are), hence the statics.
 */
#define FILTER_LOCK_DIR "/run"

/* /run/kci-netfilter.<netns inode>.lock; the namespace-less name if that is unknown. */
static void
filter_lock_path(char *buf, size_t size)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st) == 0)
		snprintf(buf, size, FILTER_LOCK_DIR "/kci-netfilter.%llu.lock",
			 (unsigned long long)st.st_ino);
	else
		snprintf(buf, size, FILTER_LOCK_DIR "/kci-netfilter.lock");
}

static pthread_mutex_t filter_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned filter_users;
static int filter_lock_fd = -1;

/* Loads the table: rules in a temp file under cache_dir, then `nft -f`. */
static int
load_table(const char *cache_dir, struct kci_err *err)
{
	char *path = kci_xasprintf("%s/nat-filter.nft", cache_dir), *tmp = NULL, *rules = NULL;
	char out[512] = "";
	int fd = -1, rc;

	if ((rc = kci_mkdir_p(cache_dir, 0700, err)) < 0)
		goto out;
	if ((fd = kci_tmpfile_near(path, &tmp, err)) < 0) {
		rc = fd;
		goto out;
	}
	rules = ruleset(1);
	if (kci_write_all(fd, rules, strlen(rules)) < 0) {
		rc = kci_err_sys(err, errno, "write %s", tmp);
		goto out;
	}
	char *argv[] = { "nft", "-f", tmp, NULL };
	if ((rc = run_capture(argv, out, sizeof(out), err)) < 0)
		kci_err_prefix(err,
			       "--net nat keeps guests off the host and private networks with "
			       "an nftables table, which could not be loaded (install nftables)");
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(rules);
	free(path);
	return rc;
}

int
net_filter_acquire(const char *cache_dir, struct kci_err *err)
{
	int rc;

	pthread_mutex_lock(&filter_mutex);
	if (filter_users == 0) {
		char lock[128];

		filter_lock_path(lock, sizeof(lock));
		filter_lock_fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		while (filter_lock_fd >= 0 && flock(filter_lock_fd, LOCK_SH) < 0 && errno == EINTR)
			;
		/* Without the lock the table is simply never removed: safe, just untidy. */
	}
	/*
	 * Loaded for every VM, not once per process: someone may have deleted or
	 * changed the table since, and a guest must never run unfiltered.
	 */
	if ((rc = load_table(cache_dir, err)) == 0)
		filter_users++;
	if (filter_users == 0 && filter_lock_fd >= 0) {
		close(filter_lock_fd);
		filter_lock_fd = -1;
	}
	pthread_mutex_unlock(&filter_mutex);
	return rc;
}

void
net_filter_release(void)
{
	pthread_mutex_lock(&filter_mutex);
	if (filter_users > 0 && --filter_users == 0 && filter_lock_fd >= 0) {
		if (flock(filter_lock_fd, LOCK_EX | LOCK_NB) == 0) {
			char *argv[] = { "nft", "delete", "table", "inet", "kci_net", NULL };
			char out[256];
			struct kci_err ignored = KCI_ERR_INIT;

			(void)run_capture(argv, out, sizeof(out), &ignored);
		}
		close(filter_lock_fd);
		filter_lock_fd = -1;
	}
	pthread_mutex_unlock(&filter_mutex);
}

int
net_filter_write_sandbox(const char *path, struct kci_err *err)
{
	char *rules = ruleset(0);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), rc = 0;

	if (fd < 0 || kci_write_all(fd, rules, strlen(rules)) < 0)
		rc = kci_err_sys(err, errno, "write %s", path);
	if (fd >= 0)
		close(fd);
	free(rules);
	return rc;
}
