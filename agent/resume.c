/*
 * READY and RESUME: the end of every boot. The agent says READY once the
 * guest is up (root switched, network configured) and waits for RESUME,
 * which makes the guest this job's: its entropy, wall clock, host name,
 * machine id and workspace disk. A VM template is saved at exactly that
 * wait, so every guest restored from it starts here too (docs/templates.md):
 * whatever is random or per-job is set only after this point.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/internal.h"

#define PREWARM_SEC 5

/* The host's bytes go into the kernel's pool, credited, and the RNG is reseeded from it at once. */
static int
add_entropy(const struct kci_resume *r, struct kci_err *err)
{
	struct {
		struct rand_pool_info info;
		uint8_t buf[KCI_RESUME_ENTROPY];
	} e;
	int fd, rc = 0;

	e.info.entropy_count = 8 * KCI_RESUME_ENTROPY;
	e.info.buf_size = KCI_RESUME_ENTROPY;
	memcpy(e.buf, r->entropy, KCI_RESUME_ENTROPY);
	if ((fd = open("/dev/urandom", O_RDWR | O_CLOEXEC)) < 0)
		return kci_err_sys(err, errno, "open /dev/urandom");
	/*
	 * Without the reseed, a restored guest's RNG would go on from the
	 * template's key until its next scheduled reseed, so sibling clones would
	 * hand out the same "random" bytes for a while.
	 */
	if (ioctl(fd, RNDADDENTROPY, &e) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0)
		rc = kci_err_sys(err, errno, "feed the kernel's random pool");
	close(fd);
	explicit_bzero(&e, sizeof(e));
	return rc;
}

/*
 * Best effort: an image without /etc, or a read-only one, still runs. The
 * placeholders written before READY have the final length, so RESUME only
 * overwrites bytes in place (no truncation, no new blocks).
 */
static void
write_etc(struct agent *a, const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0444);

	if (fd < 0 || pwrite(fd, text, len, 0) != (ssize_t)len || ftruncate(fd, (off_t)len) < 0)
		agent_log(a, "resume: cannot write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void
apply(struct agent *a, const struct kci_resume *r)
{
	struct kci_err err = KCI_ERR_INIT;
	struct timespec now = { .tv_sec = r->time_ns / 1000000000,
				.tv_nsec = r->time_ns % 1000000000 };
	char line[80];

	if (add_entropy(r, &err) < 0)
		agent_fatal(a, "resume: %s", err.msg);
	if (clock_settime(CLOCK_REALTIME, &now) < 0)
		agent_fatal(a, "resume: set the clock: %s", strerror(errno));
	if (sethostname(r->hostname, strlen(r->hostname)) < 0)
		agent_fatal(a, "resume: set the host name: %s", strerror(errno));
	snprintf(line, sizeof(line), "%s\n", r->hostname);
	write_etc(a, "/etc/hostname", line);
	snprintf(line, sizeof(line), "%s\n", r->machine_id);
	write_etc(a, "/etc/machine-id", line);
	if (rootfs_mount_workspace(&a->disks, &err) < 0)
		agent_fatal(a, "%s", err.msg);
}

/*
 * In a VM that is about to be saved as a template (kci.prewarm on its kernel
 * command line), runs `/bin/sh -c true` once: what that reads (the shell, the
 * libraries, their directory entries) is then in the saved page cache, and
 * every clone's first command starts ~50 ms sooner under TCG. Best effort:
 * an image without /bin/sh just skips it, and a shell that hangs is killed.
 * Nothing it started may live on into the saved guest: everything but PID 1
 * is killed and reaped before READY.
 */
static void
prewarm(void)
{
	char cmdline[4096];
	int status;
	pid_t pid;

	if (sysfs_read("/proc/cmdline", cmdline, sizeof(cmdline)) < 0 ||
	    !strstr(cmdline, " kci.prewarm"))
		return;
	if ((pid = fork()) == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		alarm(PREWARM_SEC);
		execl("/bin/sh", "sh", "-c", "true", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 10 * PREWARM_SEC; i++) {
		struct timespec tick = { 0, 100 * 1000 * 1000 };
		if (waitpid(pid, &status, WNOHANG) != 0)
			break;
		nanosleep(&tick, NULL);
	}
	(void)kill(-1, SIGKILL);
	while (waitpid(-1, &status, 0) > 0 || errno == EINTR)
		;
}

void
resume_wait(struct agent *a)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_resume r;
	struct kci_frame f;
	int rc;

	/*
	 * The files exist before READY, so that RESUME only rewrites them: their
	 * first write into the overlay copies them up, and in a restored guest,
	 * whose emulator has not translated that code yet, that takes ~50 ms.
	 */
	write_etc(a, "/etc/hostname", "kci-00000000\n");
	write_etc(a, "/etc/machine-id", "00000000000000000000000000000000\n");
	prewarm();
	agent_send(a, KCI_F_READY, 0, NULL, 0);
	for (;;) {
		struct pollfd pfd = { .fd = a->port, .events = POLLIN };
		if ((rc = kci_decoder_next(a->dec, &f, &err)) < 0)
			agent_fatal(a, "protocol error from the host: %s", err.msg);
		if (rc == 1)
			break;
		/* No heartbeats yet: nothing may be in flight when a template is saved here. */
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			agent_fatal(a, "poll: %s", strerror(errno));
		if (pfd.revents & POLLIN)
			port_read(a);
		else if (pfd.revents)
			port_hung_up(a);
	}
	if (f.type == KCI_F_SHUTDOWN)
		agent_poweroff();
	if (f.type != KCI_F_RESUME)
		agent_fatal(a, "protocol error from the host: %s before RESUME",
			    kci_frame_name(f.type));
	/* untrusted: f.len <= KCI_FRAME_MAX; the parser bounds and checks every field */
	if (kci_proto_parse_resume(f.payload, f.len, &r, &err) < 0)
		agent_fatal(a, "protocol error from the host: %s", err.msg);
	apply(a, &r);
	explicit_bzero(&r, sizeof(r));
}
