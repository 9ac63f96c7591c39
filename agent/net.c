/* Bringing up the loopback interface, which jobs' test servers on 127.0.0.1 rely on. */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/internal.h"

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
