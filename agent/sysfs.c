/* Finding devices through sysfs: reading attributes and waiting for them to appear. */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "agent/internal.h"

#define SYSFS_POLL_MS 20

/*
 * Reads a small sysfs attribute into buf as a string, without the trailing
 * newline. Returns 0 or -errno.
 */
int
sysfs_read(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

static long long
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Calls probe(ctx) until it returns something other than KCI_NOTFOUND or
 * timeout_ms pass. Drivers probe devices and hosts announce port names
 * asynchronously, so the first look may come too early.
 */
int
sysfs_wait(int (*probe)(void *ctx), void *ctx, int timeout_ms)
{
	struct timespec pause = { 0, SYSFS_POLL_MS * 1000000L };
	long long deadline = monotonic_ms() + timeout_ms;
	int rc;

	for (;;) {
		rc = probe(ctx);
		if (rc != KCI_NOTFOUND || monotonic_ms() >= deadline)
			return rc;
		nanosleep(&pause, NULL);
	}
}
