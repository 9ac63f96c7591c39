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

int
kci_frame_send(int fd, uint8_t type, uint16_t id, const void *payload, size_t len)
{
	uint8_t buf[KCI_FRAME_HDR + 256];
	int rc;

	if (len > KCI_FRAME_MAX)
		return -EMSGSIZE;
	kci_frame_header(buf, type, id, (uint32_t)len);
	/* Small frames go out in one write so the peer sees them whole. */
	if (len <= sizeof(buf) - KCI_FRAME_HDR) {
		if (len)
			memcpy(buf + KCI_FRAME_HDR, payload, len);
		return kci_write_all(fd, buf, KCI_FRAME_HDR + len);
	}
	if ((rc = kci_write_all(fd, buf, KCI_FRAME_HDR)) < 0)
		return rc;
	return kci_write_all(fd, payload, len);
}
