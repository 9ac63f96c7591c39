/* The running job's streams: its output to frames, STDIN frames to it, and its end. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/internal.h"
#include "common/xalloc.h"

/*
 * How much output is still collected after the process exits. Everything it
 * wrote sits in a pipe (64 KiB) or the pty buffers (under 1 MiB) by then, and
 * comes first; the bound only stops a background grandchild that keeps the
 * pipe open and full from holding the EXIT back forever.
 */
#define DRAIN_MAX (1024 * 1024)

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Sets up an idle job; its stdin buffer lives as long as the agent. */
void
job_init(struct job *job)
{
	memset(job, 0, sizeof(*job));
	job->pty = job->in_fd = job->out_fd = job->err_fd = -1;
	job->stdin_buf = kci_xmalloc(KCI_FRAME_MAX);
}

/*
 * Reads once from an output fd and sends what it got as a frame of the given
 * type. Returns the bytes read, 0 at EOF (the fd is closed), -1 if none were
 * ready.
 */
static ssize_t
pump(struct agent *a, int *fd, uint8_t type)
{
	ssize_t n;

	n = read(*fd, a->out_buf, AGENT_READ_MAX);
	if (n > 0) {
		agent_send(a, type, a->job.id, a->out_buf, (size_t)n);
		return n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	/* EOF, or EIO from a pty master once no slave is open. */
	close_fd(fd);
	return 0;
}

/* Forwards what is ready on the job's stdout (KCI_F_STDOUT) or stderr (KCI_F_STDERR). */
void
job_read_output(struct agent *a, uint8_t stream)
{
	int *fd = stream == KCI_F_STDOUT ? &a->job.out_fd : &a->job.err_fd;

	if (*fd >= 0)
		(void)pump(a, fd, stream);
}

static void
drain(struct agent *a, int *fd, uint8_t type)
{
	size_t total = 0;
	ssize_t n;

	while (*fd >= 0 && total < DRAIN_MAX && (n = pump(a, fd, type)) > 0)
		total += (size_t)n;
}

/* True while a STDIN frame waits for the process: the host must then wait too. */
int
job_stdin_blocked(const struct agent *a)
{
	return a->job.pid > 0 && a->job.stdin_off < a->job.stdin_len;
}

/* Writes buffered stdin without blocking; called again when the fd is writable. */
void
job_flush_stdin(struct agent *a)
{
	struct job *j = &a->job;
	ssize_t n;

	while (j->in_fd >= 0 && j->stdin_off < j->stdin_len) {
		n = write(j->in_fd, j->stdin_buf + j->stdin_off, j->stdin_len - j->stdin_off);
		if (n > 0) {
			j->stdin_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		/* EPIPE or EIO: the process closed its stdin; the unread rest is dropped. */
		close_fd(&j->in_fd);
	}
	j->stdin_off = j->stdin_len = 0;
}

/*
 * Handles a STDIN frame. The serve loop dispatches none while earlier input is
 * still buffered, so the buffer is free here. Frames for a process that has
 * ended, or whose stdin is closed, are dropped: they crossed its EXIT.
 */
void
job_stdin(struct agent *a, uint16_t id, const uint8_t *p, size_t len)
{
	struct job *j = &a->job;

	if (j->pid <= 0 || id != j->id || j->in_fd < 0)
		return;
	if (len == 0) {
		/* A pty has no EOF to pass on; the host forwards the user's ^D as a byte. */
		if (!j->tty)
			close_fd(&j->in_fd);
		return;
	}
	/* untrusted: len <= KCI_FRAME_MAX, checked by kci_decoder_next */
	memcpy(j->stdin_buf, p, len);
	j->stdin_off = 0;
	j->stdin_len = len;
	job_flush_stdin(a);
}

/*
 * The job's process exited with status: send the output it left behind,
 * then EXIT, then kill what it left running in its process group.
 */
void
job_finish(struct agent *a, int status)
{
	struct job *j = &a->job;
	struct kci_exit ex;

	drain(a, &j->out_fd, KCI_F_STDOUT);
	drain(a, &j->err_fd, KCI_F_STDERR);
	memset(&ex, 0, sizeof(ex));
	if (WIFSIGNALED(status))
		ex.signal = WTERMSIG(status);
	else
		ex.code = WEXITSTATUS(status);
	agent_send_exit(a, j->id, &ex);
	/* A group's id is not reused while members remain; an empty group makes this a no-op. */
	(void)kill(-j->pid, SIGKILL);
	close_fd(&j->pty);
	close_fd(&j->in_fd);
	close_fd(&j->out_fd);
	close_fd(&j->err_fd);
	j->pid = 0;
	j->stdin_off = j->stdin_len = 0;
}
