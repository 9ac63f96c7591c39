/* The agent's main loop: frames from the host, the job's streams, child exits and heartbeats. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "agent/internal.h"

#define HEARTBEAT_SEC 2

enum { P_PORT, P_SIGNAL, P_TIMER, P_STDOUT, P_STDERR, P_STDIN, P_COUNT };

/* The host broke the protocol: nothing it sends can be trusted any more. */
static void __attribute__((format(printf, 2, 3), noreturn))
protocol_error(struct agent *a, const char *fmt, ...)
{
	char msg[KCI_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	agent_log(a, "protocol error from the host: %s; powering off", msg);
	agent_poweroff();
}

/* SIGCHLD arrives on a signalfd; the SIGPIPE of a closed child stdin becomes EPIPE. */
static void
setup_fds(struct agent *a)
{
	struct itimerspec beat = { { HEARTBEAT_SEC, 0 }, { HEARTBEAT_SEC, 0 } };
	sigset_t mask;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (a->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		agent_fatal(a, "signalfd: %s", strerror(errno));
	a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->timer_fd < 0 || timerfd_settime(a->timer_fd, 0, &beat, NULL) < 0)
		agent_fatal(a, "timerfd: %s", strerror(errno));
}

/* Reaps every exited child; as PID 1 we inherit every orphan in the guest. */
static void
reap(struct agent *a)
{
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	while (read(a->sig_fd, &si, sizeof(si)) == sizeof(si))
		;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (pid == a->job.pid)
			job_finish(a, status);
}

static void
heartbeat(struct agent *a)
{
	uint64_t ticks;

	if (read(a->timer_fd, &ticks, sizeof(ticks)) == sizeof(ticks))
		agent_send(a, KCI_F_HEARTBEAT, 0, NULL, 0);
}

static void
on_run(struct agent *a, const struct kci_frame *f)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_run_req req;
	struct kci_exit failed;

	memset(&failed, 0, sizeof(failed));
	failed.code = 126;
	if (a->job.pid > 0) {
		snprintf(failed.error, sizeof(failed.error),
			 "the agent is still running process %u", a->job.id);
		agent_send_exit(a, f->id, &failed);
		return;
	}
	/* untrusted: f->len <= KCI_FRAME_MAX; kci_proto_parse_run bounds every field */
	if (kci_proto_parse_run(f->payload, f->len, &req, &err) < 0) {
		/* Both are NUL-terminated; the EXIT error field is just smaller. */
		memcpy(failed.error, err.msg, sizeof(failed.error) - 1);
		agent_send_exit(a, f->id, &failed);
		return;
	}
	if (process_start(&a->job, f->id, &req, &failed) < 0)
		agent_send_exit(a, f->id, &failed);
	kci_run_req_clear(&req);
}

static void
on_signal(struct agent *a, const struct kci_frame *f)
{
	if (f->len != 1)
		protocol_error(a, "SIGNAL payload must be 1 byte, got %u", f->len);
	if (f->payload[0] < 1 || f->payload[0] > 64) {
		agent_log(a, "SIGNAL %u for process %u ignored: no such signal", f->payload[0],
			  f->id);
		return;
	}
	if (a->job.pid > 0 && f->id == a->job.id)
		(void)kill(-a->job.pid, f->payload[0]);
}

static void
on_resize(struct agent *a, const struct kci_frame *f)
{
	struct kci_err err = KCI_ERR_INIT;
	unsigned rows, cols;
	struct winsize ws;

	if (kci_proto_parse_resize(f->payload, f->len, &rows, &cols, &err) < 0)
		protocol_error(a, "%s", err.msg);
	if (a->job.pid <= 0 || f->id != a->job.id || a->job.pty < 0)
		return;
	memset(&ws, 0, sizeof(ws));
	ws.ws_row = (unsigned short)rows;
	ws.ws_col = (unsigned short)cols;
	/* The kernel sends SIGWINCH to the foreground group. */
	(void)ioctl(a->job.pty, TIOCSWINSZ, &ws);
}

static void
on_frame(struct agent *a, const struct kci_frame *f)
{
	switch (f->type) {
	case KCI_F_RUN:
		on_run(a, f);
		break;
	case KCI_F_STDIN:
		job_stdin(a, f->id, f->payload, f->len);
		break;
	case KCI_F_SIGNAL:
		on_signal(a, f);
		break;
	case KCI_F_RESIZE:
		on_resize(a, f);
		break;
	case KCI_F_SHUTDOWN:
		agent_poweroff();
	default:
		protocol_error(a, "unexpected %s frame", kci_frame_name(f->type));
	}
}

/* Handles buffered frames, pausing while the job has not taken earlier stdin. */
static void
dispatch(struct agent *a)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_frame f;
	int rc;

	while (!job_stdin_blocked(a)) {
		rc = kci_decoder_next(a->dec, &f, &err);
		if (rc == 0)
			return;
		if (rc < 0)
			protocol_error(a, "%s", err.msg);
		on_frame(a, &f);
	}
}

static int
ready(const struct pollfd *pfd, int fd)
{
	/* A slot's fd may have been closed by an earlier handler in the same round. */
	return pfd->fd >= 0 && pfd->fd == fd && pfd->revents;
}

/*
 * Serves the host until SHUTDOWN or until the port closes, then powers off.
 * Every fd is non-blocking; only sending a frame waits, for the host, which
 * is how a slow host slows the guest down.
 */
void
serve(struct agent *a)
{
	struct pollfd pfd[P_COUNT];
	struct job *j = &a->job;

	setup_fds(a);
	for (;;) {
		pfd[P_PORT] = (struct pollfd){ a->port, job_stdin_blocked(a) ? 0 : POLLIN, 0 };
		pfd[P_SIGNAL] = (struct pollfd){ a->sig_fd, POLLIN, 0 };
		pfd[P_TIMER] = (struct pollfd){ a->timer_fd, POLLIN, 0 };
		pfd[P_STDOUT] = (struct pollfd){ j->out_fd, POLLIN, 0 };
		pfd[P_STDERR] = (struct pollfd){ j->err_fd, POLLIN, 0 };
		pfd[P_STDIN] = (struct pollfd){ job_stdin_blocked(a) ? j->in_fd : -1, POLLOUT, 0 };
		if (poll(pfd, P_COUNT, -1) < 0) {
			if (errno == EINTR)
				continue;
			agent_fatal(a, "poll: %s", strerror(errno));
		}
		if (ready(&pfd[P_STDOUT], j->out_fd))
			job_read_output(a, KCI_F_STDOUT);
		if (ready(&pfd[P_STDERR], j->err_fd))
			job_read_output(a, KCI_F_STDERR);
		if (ready(&pfd[P_SIGNAL], a->sig_fd))
			reap(a);
		if (ready(&pfd[P_TIMER], a->timer_fd))
			heartbeat(a);
		if (ready(&pfd[P_STDIN], j->in_fd))
			job_flush_stdin(a);
		/* POLLHUP alone comes only while we are not reading: the host left mid-input. */
		if (pfd[P_PORT].revents & POLLIN)
			port_read(a);
		else if (pfd[P_PORT].revents)
			port_hung_up(a);
		dispatch(a);
	}
}
