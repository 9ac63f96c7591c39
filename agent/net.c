/*
 * The guest's network: loopback always (jobs' test servers on 127.0.0.1 rely
 * on it), and with --net nat the NIC, its default route and resolv.conf.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/internal.h"

#define NET_IFNAME  "eth0"
#define NET_WAIT_MS 2000

/*
 * Sets lo up; the kernel assigns 127.0.0.1 and ::1 itself. Returns 0, or
 * -errno with *what naming the failed step. Touches no agent state, so it can
 * run on its own thread while the main thread boots.
 */
int
net_loopback_up(const char **what)
{
	struct ifreq ifr;
	int fd, rc = 0;

	*what = "socket";
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	*what = "get flags";
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		rc = -errno;
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	*what = "set up";
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		rc = -errno;
out:
	close(fd);
	return rc;
}

/*
 * Reads kci.net=ADDR/PREFIX,GATEWAY,DNS from the kernel command line (the
 * host's --net nat). Returns 1 with *nc filled, 0 when the VM has no
 * network, -EINVAL when the parameter is malformed.
 */
int
net_config_read(const char *cmdline, struct net_config *nc)
{
	const char *p = strstr(cmdline, "kci.net=");
	char spec[128], *save = NULL, *addr, *gw, *dns, *slash;
	size_t n;
	long prefix;

	if (!p || (p != cmdline && p[-1] != ' '))
		return 0;
	p += strlen("kci.net=");
	n = strcspn(p, " \n");
	if (n >= sizeof(spec))
		return -EINVAL;
	memcpy(spec, p, n);
	spec[n] = '\0';
	addr = strtok_r(spec, ",", &save);
	gw = strtok_r(NULL, ",", &save);
	dns = strtok_r(NULL, ",", &save);
	if (!addr || !gw || !dns || strtok_r(NULL, ",", &save) || !(slash = strchr(addr, '/')))
		return -EINVAL;
	*slash = '\0';
	prefix = strtol(slash + 1, &slash, 10);
	if (*slash || prefix < 1 || prefix > 30 || inet_pton(AF_INET, addr, &nc->addr) != 1 ||
	    inet_pton(AF_INET, gw, &nc->gateway) != 1 || inet_pton(AF_INET, dns, &nc->dns) != 1)
		return -EINVAL;
	nc->netmask.s_addr = htonl(~0u << (32 - prefix));
	return 1;
}

static void
set_sin(struct sockaddr *sa, struct in_addr a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = a };

	memcpy(sa, &sin, sizeof(sin));
}

/* SIOCGIFINDEX until the NIC shows up: its driver registers it while loading, but be patient. */
static int
wait_for_nic(int fd, struct ifreq *ifr)
{
	struct timespec pause = { 0, 10 * 1000000L };

	for (int i = 0; i < NET_WAIT_MS / 10; i++) {
		if (ioctl(fd, SIOCGIFINDEX, ifr) == 0)
			return 0;
		if (errno != ENODEV)
			return -errno;
		nanosleep(&pause, NULL);
	}
	return -ENODEV;
}

/*
 * Gives NET_IFNAME its address and netmask, sets it up and adds the default
 * route through the gateway. Plain ioctls: no netlink, no tools in the
 * image needed. Returns 0, or -errno with *what naming the failed step.
 */
int
net_nic_up(const struct net_config *nc, const char **what)
{
	struct ifreq ifr;
	struct rtentry rt;
	int fd, rc = 0;

	*what = "socket";
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, NET_IFNAME);
	*what = "find " NET_IFNAME;
	if ((rc = wait_for_nic(fd, &ifr)) < 0)
		goto out;
	*what = "set address";
	set_sin(&ifr.ifr_addr, nc->addr);
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		goto fail;
	*what = "set netmask";
	set_sin(&ifr.ifr_netmask, nc->netmask);
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
		goto fail;
	*what = "get flags";
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		goto fail;
	*what = "set up";
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		goto fail;
	/* The subnet's route came with the address; the default route needs the link up. */
	memset(&rt, 0, sizeof(rt));
	set_sin(&rt.rt_dst, (struct in_addr){ INADDR_ANY });
	set_sin(&rt.rt_genmask, (struct in_addr){ INADDR_ANY });
	set_sin(&rt.rt_gateway, nc->gateway);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	*what = "add default route";
	if (ioctl(fd, SIOCADDRT, &rt) < 0)
		goto fail;
	goto out;
fail:
	rc = -errno;
out:
	close(fd);
	return rc;
}

/*
 * Points the job's resolver at the DNS forwarder. Run in the final root; an
 * image's own resolv.conf (often a symlink into a /run that is not there)
 * is replaced, on the overlay only.
 */
int
net_write_resolv(const struct net_config *nc, struct kci_err *err)
{
	char text[64], dns[INET_ADDRSTRLEN];
	int fd, n, rc;

	inet_ntop(AF_INET, &nc->dns, dns, sizeof(dns));
	n = snprintf(text, sizeof(text), "nameserver %s\n", dns);
	if ((rc = mkdir_p("/etc", 0755)) < 0)
		return kci_err_sys(err, -rc, "create /etc");
	if (unlink("/etc/resolv.conf") < 0 && errno != ENOENT)
		return kci_err_sys(err, errno, "replace /etc/resolv.conf");
	fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, (size_t)n) != n) {
		rc = kci_err_sys(err, errno, "write /etc/resolv.conf");
		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	return 0;
}
