/* Full-write helpers used by both the host and the agent. */
#include "common/fdio.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "common/proto.h"

int
kci_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Non-blocking fds: wait until writable rather than spin; a hung-up peer is
			 * EPIPE. */
			if (errno == EAGAIN) {
				if (poll(&pfd, 1, -1) > 0 && (pfd.revents & (POLLHUP | POLLERR)))
					return -EPIPE;
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
