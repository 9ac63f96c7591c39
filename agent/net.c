/* Bringing up the loopback interface, which jobs' test servers on 127.0.0.1 rely on. */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/internal.h"

/* Sets lo up; the kernel assigns 127.0.0.1 and ::1 itself. Failure is only logged. */
void
net_loopback_up(struct agent *a)
{
	struct ifreq ifr;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		agent_log(a, "loopback: socket: %s", strerror(errno));
		return;
	}
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		agent_log(a, "loopback: get flags: %s", strerror(errno));
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		agent_log(a, "loopback: set up: %s", strerror(errno));
out:
	close(fd);
}
