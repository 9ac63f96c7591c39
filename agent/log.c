/* Agent diagnostics: to the serial console, and as LOG/FATAL frames once the port is open. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/internal.h"
#include "common/fdio.h"

/*
 * The kernel hands init /dev/console on fds 0-2, but only if the initramfs has
 * the node; children get their own stdio, so these fds serve only our logs.
 * They are made non-blocking because a host that stops draining the serial
 * console must cost us log lines, never a hung PID 1.
 */
void
console_init(void)
{
	int fd, flags;

	for (fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		/* open() returns the lowest free fd, which is this one. */
		if (open("/dev/console", O_RDWR | O_NOCTTY) < 0)
			(void)open("/dev/null", O_RDWR);
	}
	flags = fcntl(2, F_GETFL);
	if (flags >= 0)
		(void)fcntl(2, F_SETFL, flags | O_NONBLOCK);
}

static void
vlog(struct agent *a, uint8_t type, const char *fmt, va_list ap)
{
	char line[1024];
	char console[sizeof(line) + 16];
	int n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = snprintf(console, sizeof(console), "kci-agent: %s\n", line);
	(void)!write(2, console, (size_t)n);
	if (a && a->port >= 0)
		agent_send(a, type, 0, line, strlen(line));
}

void
agent_log(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(a, KCI_F_LOG, fmt, ap);
	va_end(ap);
}

/* Reports why the guest cannot go on, then powers off; the host shows the message. */
void
agent_fatal(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(a, KCI_F_FATAL, fmt, ap);
	va_end(ap);
	agent_poweroff();
}
