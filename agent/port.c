/* The virtio-serial port to the host: finding it by name, and sending frames on it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/internal.h"

#define PORT_WAIT_MS 5000

/*
 * Why the port is non-blocking, and frames are not sent with blocking writes:
 * virtio_console blocks a write for as long as the host side is closed, so a
 * blocking write after the host left would hang PID 1 for good. Instead we
 * wait in poll(), where a closed host shows as POLLHUP. Frames still go out
 * whole and in order, and a slow host still slows us down.
 */

struct port_probe {
	char dev[300]; /* "/dev/vportNpM" once found */
};

/* Looks for the port whose name the host set to KCI_PORT_NAME. */
static int
probe_port(void *ctx)
{
	struct port_probe *probe = ctx;
	char path[300], name[128];
	struct dirent *de;
	DIR *dir;
	int found = 0;

	dir = opendir("/sys/class/virtio-ports");
	if (!dir)
		return KCI_NOTFOUND;
	while (!found && (de = readdir(dir))) {
		if (de->d_name[0] == '.' || strlen(de->d_name) > 64)
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
		if (sysfs_read(path, name, sizeof(name)) < 0 || strcmp(name, KCI_PORT_NAME) != 0)
			continue;
		snprintf(probe->dev, sizeof(probe->dev), "/dev/%s", de->d_name);
		found = 1;
	}
	closedir(dir);
	return found ? 0 : KCI_NOTFOUND;
}

/*
 * QEMU announces the port's name just before it says the host side is open,
 * so a port can be found a moment before it is connected: POLLHUP then means
 * "not yet". KCI_NOTFOUND until the port is writable.
 */
static int
probe_connected(void *ctx)
{
	struct pollfd pfd = { .fd = *(int *)ctx, .events = POLLOUT };

	if (poll(&pfd, 1, 0) < 0)
		return errno == EINTR ? KCI_NOTFOUND : KCI_ERROR;
	return pfd.revents & POLLOUT ? 0 : KCI_NOTFOUND;
}

/*
 * Finds and opens the host's port, waiting up to PORT_WAIT_MS each for the
 * host to name it and to connect. The device node exists by the time the
 * name does: devtmpfs creates it when the port is registered. Returns 0,
 * KCI_NOTFOUND or KCI_TIMEOUT.
 */
int
port_open(int *out, struct kci_err *err)
{
	struct port_probe probe = { { 0 } };
	int fd, rc;

	if ((rc = sysfs_wait(probe_port, &probe, PORT_WAIT_MS)) < 0)
		return kci_err_set(err, rc, "no virtio-serial port named %s appeared within %d ms",
				   KCI_PORT_NAME, PORT_WAIT_MS);
	fd = open(probe.dev, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return kci_err_sys(err, errno, "open %s (port %s)", probe.dev, KCI_PORT_NAME);
	if (sysfs_wait(probe_connected, &fd, PORT_WAIT_MS) < 0) {
		close(fd);
		return kci_err_set(err, KCI_TIMEOUT, "port %s (%s): host not connected after %d ms",
				   KCI_PORT_NAME, probe.dev, PORT_WAIT_MS);
	}
	*out = fd;
	return 0;
}

/* The host is gone, or the port broke: with no one to serve, power off. */
static void __attribute__((noreturn)) port_lost(const char *what, int errnum)
{
	char msg[160];
	int n;

	/* Not agent_log(): that would send on the port again. */
	n = snprintf(msg, sizeof(msg), "kci-agent: port %s: %s; powering off\n", what,
		     errnum ? strerror(errnum) : "host hung up");
	(void)!write(2, msg, (size_t)n);
	agent_poweroff();
}

/* Writes all of buf, waiting in poll() while the host is connected but slow. */
static void
port_write(int fd, const uint8_t *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			port_lost("write", errno);
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			port_lost("poll", errno);
		if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
			port_lost("write", 0);
	}
}

/*
 * Sends one whole frame, blocking while the host is not reading. A port that
 * fails is a host that is gone, and without it the guest has no purpose, so
 * this powers off rather than returning an error to every caller.
 */
void
agent_send(struct agent *a, uint8_t type, uint16_t id, const void *payload, size_t len)
{
	if (len > KCI_FRAME_MAX)
		len = KCI_FRAME_MAX;
	kci_frame_header(a->send_buf, type, id, (uint32_t)len);
	if (len)
		memcpy(a->send_buf + KCI_FRAME_HDR, payload, len);
	port_write(a->port, a->send_buf, KCI_FRAME_HDR + len);
}

/* Sends EXIT for process id. */
void
agent_send_exit(struct agent *a, uint16_t id, const struct kci_exit *ex)
{
	size_t len;
	char *json = kci_proto_encode_exit(ex, &len);

	agent_send(a, KCI_F_EXIT, id, json, len);
	free(json);
}

/* Hands the host's bytes to the decoder. EOF or a hang-up means the host is gone. */
void
port_read(struct agent *a)
{
	uint8_t *p;
	size_t space = kci_decoder_space(a->dec, &p);
	ssize_t n;

	/* Full only with a whole frame waiting on blocked stdin; the port is not polled then. */
	if (space == 0)
		return;
	n = read(a->port, p, space);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0)
		port_lost("read", n < 0 ? errno : 0);
	kci_decoder_commit(a->dec, (size_t)n);
}

/* The port hung up while we were not reading it: the host left. */
void
port_hung_up(struct agent *a)
{
	port_lost("poll", 0);
}
