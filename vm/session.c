/*
 * Running a process in a VM: the host side of the agent protocol. One poll
 * loop multiplexes the agent channel, the guest console, QEMU's exit, the
 * caller's stdin and signals, and enforces the VM deadline, the boot
 * deadline and agent liveness. Everything read from the guest is untrusted.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "vm/vmpriv.h"

/* The guest must say HELLO this long after QEMU starts (TCG boots take ~2-4 s). */
#define BOOT_TIMEOUT_MS 60000
/*
 * The agent's first console line: the kernel has booted and run /init (~1.6 s
 * here, under 10 s on a loaded host). A first boot that has not got there in
 * BOOT_ALIVE_MS is taken for stalled (below) and redone.
 */
#define BOOT_ALIVE_MS	20000
#define BOOT_ALIVE_MARK "kci-agent: " KCI_BOOT_STARTED
/* The agent heartbeats every 2 s; this much silence means it is gone. */
#define SILENCE_TIMEOUT_MS 30000
#define CONSOLE_LINES	   12
/*
 * Under TCG on a busy host the guest kernel can mis-measure its local APIC
 * timer (its vCPU is descheduled inside the 100 ms calibration), turn the
 * timer off and, with no other clock event device on microvm, hang for good
 * while bringing up its other CPUs. It says so first (at loglevel 5, which
 * qemu.c sets), so such a boot is redone at once, up to BOOT_TRIES boots.
 * A first boot that stalls without a word (about 1 in 100 here: the kernel's
 * console stops after its last quiet-mode line and /init never runs; both
 * vCPUs livelock in the int3 handler of a late-boot static-key patch under
 * multi-threaded TCG, docs/conventions.md) is redone once, when BOOT_ALIVE_MS
 * pass without the agent's first line, or BOOT_TIMEOUT_MS without its HELLO.
 */
#define BOOT_TRIES		3
#define BOOT_CALIBRATION_FAILED "APIC frequency too slow"
/*
 * A guest restored from a template answers RESUME in well under a second; one
 * that has not in this long will not, and the VM boots cold instead.
 */
#define RESTORE_TIMEOUT_MS 20000

/* Which deadline comes next (next_deadline). */
enum deadline {
	DL_VM,	    /* the VM's whole life (--timeout) */
	DL_HELLO,   /* BOOT_TIMEOUT_MS after QEMU's launch without HELLO */
	DL_SILENCE, /* SILENCE_TIMEOUT_MS without a frame once the agent is up */
	DL_ALIVE,   /* BOOT_ALIVE_MS after a first launch without the agent's first line */
	DL_RESTORE, /* RESTORE_TIMEOUT_MS after a restore without the agent's HELLO */
};

/* Frames queued for the agent; STDIN is read only when this is empty, so it stays small. */
struct outq {
	uint8_t *buf;
	size_t len, off;
};

struct session {
	struct kci_vm *vm;
	const struct kci_run_req *req;
	const struct kci_vm_io *io;
	struct kci_vm_result *res;
	uint16_t id;
	int sent_run, stdin_open, done;
	int signo; /* the signal that canceled us */
	struct outq out;
};

static void
outq_push(struct outq *q, uint8_t type, uint16_t id, const void *p, size_t len)
{
	if (q->off == q->len)
		q->off = q->len = 0;
	q->buf = kci_xrealloc(q->buf, q->len + KCI_FRAME_HDR + len);
	kci_frame_header(q->buf + q->len, type, id, (uint32_t)len);
	if (len)
		memcpy(q->buf + q->len + KCI_FRAME_HDR, p, len);
	q->len += KCI_FRAME_HDR + len;
}

static int
outq_flush(struct outq *q, int fd, struct kci_err *err)
{
	while (q->off < q->len) {
		ssize_t n = write(fd, q->buf + q->off, q->len - q->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return errno == EPIPE || errno == ECONNRESET
				       ? 0
				       : kci_err_sys(err, errno, "write to agent");
		q->off += (size_t)n;
	}
	return 0;
}

/* Printable, single-line, bounded copy of guest text for our messages. */
static void
clean_text(char *dst, size_t size, const uint8_t *src, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < size; i++)
		dst[n++] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : ' ';
	dst[n] = '\0';
}

/* Builds the error for a guest that died under us, with its last console lines. */
static int
vm_death_error(struct kci_vm *vm, const char *what, struct kci_err *err)
{
	char panic[256], reason[512];
	const char *tail;

	vm_drain_logs(vm);
	if (console_panic_line(&vm->console, panic, sizeof(panic)))
		snprintf(reason, sizeof(reason), "guest kernel panic: %s", panic);
	else if (vm->pid == 0 && WIFEXITED(vm->status) && WEXITSTATUS(vm->status) != 0)
		snprintf(reason, sizeof(reason), "QEMU exited with status %d: %s",
			 WEXITSTATUS(vm->status), console_ring_tail(&vm->qemu_stderr, 1));
	else if (vm->pid == 0 && WIFSIGNALED(vm->status))
		snprintf(reason, sizeof(reason), "QEMU was killed by signal %d",
			 WTERMSIG(vm->status));
	else
		snprintf(reason, sizeof(reason), "%s", what);
	tail = console_ring_tail(&vm->console, CONSOLE_LINES);
	vm->broken = 1;
	return kci_err_set(err, KCI_ERROR, "%s%s%s", reason,
			   tail[0] ? "\nlast guest console lines:\n" : "", tail);
}

/* Tells the caller kci's news about the VM (and the --debug console). */
static void
tell(struct session *s, const char *text)
{
	if (s->vm->console_copy_fd >= 0)
		dprintf(s->vm->console_copy_fd, "kci: debug: %s\n", text);
	if (s->io->notice)
		s->io->notice(s->io->ctx, text);
}

/* Boots the VM again (vm_relaunch) after a failed boot, and says so: 1, or an error. */
static int
boot_again(struct session *s, const char *why, struct kci_err *err)
{
	struct kci_vm *vm = s->vm;
	char text[160];
	int rc;

	snprintf(text, sizeof(text), "%s; booting the VM again", why);
	tell(s, text);
	if ((rc = vm_relaunch(vm, err)) < 0) {
		vm->broken = 1;
		return rc;
	}
	return 1;
}

/*
 * Reads the console of a guest that has not said HELLO yet: notes the agent's
 * first line (vm->alive), and returns 1 if the kernel's boot failed in a way
 * worth redoing and QEMU was launched again, 0 if the boot goes on, an error
 * when the tries ran out.
 */
static int
check_boot(struct session *s, struct kci_err *err)
{
	struct kci_vm *vm = s->vm;
	char what[128];

	if (vm->ready)
		return 0;
	if (!vm->alive)
		vm->alive = console_shows(&vm->console, BOOT_ALIVE_MARK);
	if (!console_shows(&vm->console, BOOT_CALIBRATION_FAILED))
		return 0;
	if (vm->relaunches + 1 >= BOOT_TRIES) {
		snprintf(what, sizeof(what),
			 "the guest kernel could not calibrate its timer in %d boots (the host "
			 "is too busy)",
			 BOOT_TRIES);
		return vm_death_error(vm, what, err);
	}
	return boot_again(s, "the guest kernel's timer calibration failed", err);
}

static int read_signals(struct session *s, int *signo);
static int deadline_error(struct session *s, enum deadline which, struct kci_err *err);

/*
 * Whoever reads our stdout or stderr went away (`kci exec ... | head`): the
 * output has nowhere to go, so the command is canceled as if by SIGPIPE,
 * which is what would have ended a process writing there.
 */
static int
reader_gone(struct session *s, int stream, struct kci_err *err)
{
	s->vm->broken = 1;
	s->signo = SIGPIPE;
	return kci_err_set(err, KCI_CANCELED, "%s was closed (its reader went away)",
			   stream == 1 ? "stdout" : "stderr");
}

/*
 * Writes guest output to out_fd[stream] without ever blocking blindly: it
 * waits for the fd in poll() alongside signals, cancellation and the VM
 * deadline, and writes at most PIPE_BUF bytes per ready fd so a pipe write
 * cannot block.
 */
static int
write_out(struct session *s, int stream, const uint8_t *p, size_t len, struct kci_err *err)
{
	int fd = s->io->out_fd[stream];

	while (len > 0) {
		struct pollfd pf[3] = { { fd, POLLOUT, 0 },
					{ s->io->signal_fd, POLLIN, 0 },
					{ s->io->cancel_fd, POLLIN, 0 } };
		int64_t d = s->vm->deadline_ms ? s->vm->deadline_ms : INT64_MAX, now = vm_now_ms();
		if (now >= d)
			return deadline_error(s, 0, err);
		if (poll(pf, 3, d - now > 60000 ? 60000 : (int)(d - now)) < 0) {
			if (errno == EINTR)
				continue;
			return kci_err_sys(err, errno, "poll");
		}
		if (pf[1].revents && read_signals(s, &s->signo))
			return kci_err_set(err, KCI_CANCELED, "interrupted by signal %d", s->signo);
		if (pf[2].revents)
			return kci_err_set(err, KCI_CANCELED, "canceled");
		if (pf[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			return reader_gone(s, stream, err);
		if (!(pf[0].revents & POLLOUT))
			continue;
		ssize_t n = write(fd, p, len < PIPE_BUF ? len : PIPE_BUF);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return reader_gone(s, stream, err);
		if (n < 0)
			return kci_err_sys(err, errno, "write %s",
					   stream == 1 ? "stdout" : "stderr");
		p += n;
		len -= (size_t)n;
	}
	/* Time spent waiting on our reader is not the agent's silence. */
	s->vm->last_frame_ms = vm_now_ms();
	return 0;
}

static int
on_hello(struct session *s, const struct kci_frame *f, struct kci_err *err)
{
	struct kci_vm *vm = s->vm;
	struct kci_hello h;
	int rc;

	/* One HELLO as it boots, one once RESUME is applied (docs/protocol.md). */
	if (vm->ready || (vm->hello && !vm->resumed))
		return kci_err_set(err, KCI_PROTO, "agent said HELLO twice");
	if ((rc = kci_proto_parse_hello(f->payload, f->len, &h, err)) < 0)
		return rc;
	if (h.proto != KCI_PROTO_VERSION)
		return kci_err_set(err, KCI_PROTO,
				   "agent speaks protocol %d, kci speaks %d "
				   "(rebuild the initramfs: remove the cache dir)",
				   h.proto, KCI_PROTO_VERSION);
	if (vm->resumed)
		vm->ready = 1;
	vm->hello = 1;
	return 0;
}

/*
 * READY: the guest booted and waits for RESUME. A VM making a template is
 * saved right here; whether that works or not, the job goes on.
 */
static int
on_ready(struct session *s, struct kci_err *err)
{
	struct kci_vm *vm = s->vm;
	struct kci_err serr = KCI_ERR_INIT;
	char text[600];

	if (!vm->hello || vm->resume_due || vm->resumed)
		return kci_err_set(err, KCI_PROTO, "agent sent READY out of turn");
	if (vm->mode == VM_MAKE && template_save(vm, &serr) < 0) {
		if (vm->broken) {
			*err = serr;
			return KCI_ERROR;
		}
		snprintf(text, sizeof(text), "could not save a VM template (%.400s); VMs boot cold",
			 serr.msg);
		tell(s, text);
	}
	vm->resume_due = 1;
	return 0;
}

/* RESUME: what makes this guest the job's, fresh from the host (agent/resume.c). */
static void
send_resume(struct session *s)
{
	struct kci_resume r = { 0 };
	struct timespec now;
	uint8_t id[16];
	size_t len;

	if (getentropy(r.entropy, sizeof(r.entropy)) < 0 || getentropy(id, sizeof(id)) < 0)
		abort(); /* cannot fail for 256 bytes or less on Linux >= 3.17 */
	clock_gettime(CLOCK_REALTIME, &now);
	r.time_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	snprintf(r.hostname, sizeof(r.hostname), "kci-%02x%02x%02x%02x", id[0], id[1], id[2],
		 id[3]);
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(r.machine_id + 2 * i, 3, "%02x", id[i]);
	char *json = kci_proto_encode_resume(&r, &len);
	outq_push(&s->out, KCI_F_RESUME, 0, json, len);
	explicit_bzero(json, len);
	explicit_bzero(&r, sizeof(r));
	free(json);
	s->vm->resume_due = 0;
	s->vm->resumed = 1;
}

/*
 * A restored guest failed before it came up: unless it was this VM's cold
 * boot already, the template goes and the VM boots cold. 1 if it did, else rc.
 */
static int
restore_failed(struct session *s, int rc, struct kci_err *err)
{
	struct kci_vm *vm = s->vm;
	char why[300];
	int again;

	if (vm->mode != VM_CLONE || vm->ready)
		return rc;
	vm_drain_logs(vm);
	/* The first line of the error says it; the console tail is for cold boots. */
	snprintf(why, sizeof(why), "%.*s", (int)strcspn(err->msg, "\n"), err->msg);
	free(s->out.buf);
	s->out = (struct outq){ 0 };
	vm->broken = 0;
	if ((again = vm_boot_cold(vm, why, err)) < 0) {
		vm->broken = 1;
		return again;
	}
	tell(s, vm->note);
	vm->note[0] = '\0';
	return 1;
}

static int
on_frame(struct session *s, const struct kci_frame *f, struct kci_err *err)
{
	struct kci_exit ex;
	char text[512];
	int rc;

	s->vm->last_frame_ms = vm_now_ms();
	switch (f->type) {
	case KCI_F_HELLO:
		return on_hello(s, f, err);
	case KCI_F_HEARTBEAT:
		return 0;
	case KCI_F_READY:
		return on_ready(s, err);
	case KCI_F_LOG:
		if (s->vm->console_copy_fd >= 0) {
			clean_text(text, sizeof(text), f->payload, f->len);
			dprintf(s->vm->console_copy_fd, "kci-agent: %s\n", text);
		}
		return 0;
	case KCI_F_FATAL:
		clean_text(text, sizeof(text), f->payload, f->len);
		return kci_err_set(err, KCI_ERROR, "guest: %s", text);
	case KCI_F_STDOUT:
	case KCI_F_STDERR:
	case KCI_F_EXIT:
		break;
	default:
		return kci_err_set(err, KCI_PROTO,
				   "agent sent a %s frame, which only the host may send",
				   kci_frame_name(f->type));
	}
	if (!s->sent_run || s->done || f->id != s->id)
		return kci_err_set(err, KCI_PROTO,
				   "agent sent %s for process %u, which is not running",
				   kci_frame_name(f->type), f->id);
	if (f->type == KCI_F_EXIT) {
		if ((rc = kci_proto_parse_exit(f->payload, f->len, &ex, err)) < 0)
			return rc;
		s->res->code = ex.signal ? 0 : ex.code;
		s->res->signal = ex.signal;
		/* Printed on the user's terminal: no escape sequences from the guest. */
		clean_text(s->res->error, sizeof(s->res->error), (const uint8_t *)ex.error,
			   strlen(ex.error));
		s->done = 1;
		s->vm->busy = 0;
		return 0;
	}
	if (!f->len)
		return 0;
	if (s->io->output)
		return s->io->output(s->io->ctx, f->type == KCI_F_STDOUT ? 1 : 2, f->payload,
				     f->len) < 0
			       ? kci_err_set(err, KCI_ERROR, "output of process %u failed", f->id)
			       : 0;
	return write_out(s, f->type == KCI_F_STDOUT ? 1 : 2, f->payload, f->len, err);
}

/* Reads what the agent sent and handles every complete frame; 1 on EOF. */
static int
read_agent(struct session *s, struct kci_err *err)
{
	struct kci_frame f;
	uint8_t *p;
	ssize_t n;
	int rc, rounds = 0;

	/*
	 * At most 16 reads per wakeup, then back to poll(): a guest that floods
	 * frames must not keep us from signals and deadlines.
	 */
	while (rounds++ < 16) {
		size_t space = kci_decoder_space(s->vm->dec, &p);
		n = read(s->vm->agent_fd, p, space);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return 1;
		kci_decoder_commit(s->vm->dec, (size_t)n);
		while ((rc = kci_decoder_next(s->vm->dec, &f, err)) == 1) {
			if ((rc = on_frame(s, &f, err)) < 0)
				return rc;
			if (s->done)
				return 0;
		}
		if (rc < 0)
			return kci_err_prefix(err, "agent protocol error");
	}
	return 0;
}

static void
send_run(struct session *s)
{
	struct kci_run_req req = *s->req;
	struct winsize ws;
	size_t len;

	/* The terminal may have been resized while the guest booted. */
	if (req.tty && s->io->tty_fd >= 0 && ioctl(s->io->tty_fd, TIOCGWINSZ, &ws) == 0) {
		req.rows = ws.ws_row;
		req.cols = ws.ws_col;
	}
	char *json = kci_proto_encode_run(&req, &len);

	outq_push(&s->out, KCI_F_RUN, s->id, json, len);
	free(json);
	s->sent_run = 1;
	s->vm->busy = 1;
	if (!s->stdin_open)
		outq_push(&s->out, KCI_F_STDIN, s->id, NULL, 0);
}

static void
send_resize(struct session *s)
{
	struct winsize ws;
	uint8_t p[4];

	if (s->io->tty_fd < 0 || ioctl(s->io->tty_fd, TIOCGWINSZ, &ws) < 0)
		return;
	kci_proto_encode_resize(p, ws.ws_row, ws.ws_col);
	outq_push(&s->out, KCI_F_RESIZE, s->id, p, sizeof(p));
}

static void
read_stdin(struct session *s)
{
	uint8_t buf[32768];
	ssize_t n;

	do
		n = read(s->io->stdin_fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		s->stdin_open = 0;
		n = 0;
	}
	outq_push(&s->out, KCI_F_STDIN, s->id, buf, (size_t)n);
}

/* 1 if a signal asks us to stop (*signo set), 0 otherwise. */
static int
read_signals(struct session *s, int *signo)
{
	struct signalfd_siginfo si;

	while (read(s->io->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGWINCH) {
			if (s->sent_run && s->req->tty)
				send_resize(s);
			continue;
		}
		*signo = (int)si.ssi_signo;
		return 1;
	}
	return 0;
}

/* The next deadline that applies, and the error to report when it passes. */
static int64_t
next_deadline(struct session *s, enum deadline *which)
{
	struct kci_vm *vm = s->vm;
	int64_t d = vm->deadline_ms ? vm->deadline_ms : INT64_MAX;
	int64_t other;
	enum deadline w;

	if (vm->ready) {
		other = vm->last_frame_ms + SILENCE_TIMEOUT_MS;
		w = DL_SILENCE;
	} else if (vm->mode == VM_CLONE) {
		other = vm->booted_ms + RESTORE_TIMEOUT_MS;
		w = DL_RESTORE;
	} else if (!vm->alive && !vm->relaunches) {
		other = vm->booted_ms + BOOT_ALIVE_MS;
		w = DL_ALIVE;
	} else {
		other = vm->booted_ms + BOOT_TIMEOUT_MS;
		w = DL_HELLO;
	}
	*which = DL_VM;
	if (other < d) {
		d = other;
		*which = w;
	}
	return d;
}

static int
deadline_error(struct session *s, enum deadline which, struct kci_err *err)
{
	struct kci_vm *vm = s->vm;
	char what[128];
	int64_t ms;

	vm->broken = 1;
	if (which == DL_VM) {
		ms = vm->deadline_ms - vm->started_ms;
		return kci_err_set(err, KCI_TIMEOUT, "timed out after %lld.%llds%s",
				   (long long)(ms / 1000), (long long)(ms % 1000 / 100),
				   vm->ready ? "" : " (the guest had not finished booting)");
	}
	if (which == DL_HELLO) {
		snprintf(what, sizeof(what), "the guest did not start the agent within %d s%s",
			 BOOT_TIMEOUT_MS / 1000,
			 vm->relaunches ? " (booted again, to no avail)" : "");
		return vm_death_error(vm, what, err);
	}
	if (which == DL_RESTORE) {
		snprintf(what, sizeof(what), "the restored guest did not answer within %d s",
			 RESTORE_TIMEOUT_MS / 1000);
		return vm_death_error(vm, what, err);
	}
	return vm_death_error(vm, "the agent stopped responding (no heartbeat for 30 s)", err);
}

static int
loop(struct session *s, struct kci_err *err)
{
	struct kci_vm *vm = s->vm;
	enum {
		P_AGENT,
		P_CONSOLE,
		P_STDERR,
		P_QEMU,
		P_STDIN,
		P_SIG,
		P_CANCEL,
		P_OUT1,
		P_OUT2,
		P_N
	};
	struct pollfd p[P_N];
	enum deadline which;
	char why[96];
	int rc;

	while (!s->done) {
		int64_t d = next_deadline(s, &which), now = vm_now_ms();
		/* A first boot that stalled is redone once; the next deadline is an error. */
		if (now >= d && (which == DL_ALIVE || (which == DL_HELLO && !vm->relaunches))) {
			if (which == DL_ALIVE)
				snprintf(why, sizeof(why),
					 "the guest kernel did not run the agent within %d s",
					 BOOT_ALIVE_MS / 1000);
			else
				snprintf(why, sizeof(why),
					 "the guest did not start the agent within %d s",
					 BOOT_TIMEOUT_MS / 1000);
			if ((rc = boot_again(s, why, err)) < 0)
				return rc;
			continue;
		}
		if (now >= d)
			return deadline_error(s, which, err);
		if (vm->note[0]) {
			tell(s, vm->note);
			vm->note[0] = '\0';
		}
		if (vm->resume_due)
			send_resume(s);
		if (vm->ready && !s->sent_run)
			send_run(s);
		int want_stdin = s->sent_run && s->stdin_open && s->out.off == s->out.len;
		p[P_AGENT] = (struct pollfd){ vm->agent_fd,
					      POLLIN | (s->out.off < s->out.len ? POLLOUT : 0), 0 };
		p[P_CONSOLE] = (struct pollfd){ vm->console_fd, POLLIN, 0 };
		p[P_STDERR] = (struct pollfd){ vm->stderr_fd, POLLIN, 0 };
		p[P_QEMU] = (struct pollfd){ vm->pidfd, POLLIN, 0 };
		p[P_STDIN] = (struct pollfd){ want_stdin ? s->io->stdin_fd : -1, POLLIN, 0 };
		p[P_SIG] = (struct pollfd){ s->io->signal_fd, POLLIN, 0 };
		p[P_CANCEL] = (struct pollfd){ s->io->cancel_fd, POLLIN, 0 };
		/*
		 * No events asked: poll() reports POLLERR (a pipe whose reader
		 * closed) and POLLHUP (a socket's) anyway, so a silent command is
		 * stopped when nobody is left to read it, not when it next writes.
		 */
		for (int i = 1; i <= 2; i++)
			p[P_OUT1 + i - 1] =
				(struct pollfd){ s->io->output ? -1 : s->io->out_fd[i], 0, 0 };
		int64_t wait = d - now;
		if (poll(p, P_N, wait > 60000 ? 60000 : (int)wait) < 0) {
			if (errno == EINTR)
				continue;
			return kci_err_sys(err, errno, "poll");
		}
		if (p[P_CONSOLE].revents || p[P_STDERR].revents)
			vm_drain_logs(vm);
		if (p[P_CONSOLE].revents && (rc = check_boot(s, err)) != 0) {
			if (rc < 0)
				return rc;
			continue;
		}
		if (p[P_SIG].revents && read_signals(s, &s->signo)) {
			vm->broken = 1;
			return kci_err_set(err, KCI_CANCELED, "interrupted by signal %d", s->signo);
		}
		if (p[P_CANCEL].revents) {
			vm->broken = 1;
			return kci_err_set(err, KCI_CANCELED, "canceled");
		}
		for (int i = 1; i <= 2; i++)
			if (p[P_OUT1 + i - 1].revents & (POLLERR | POLLHUP))
				return reader_gone(s, i, err);
		if (p[P_AGENT].revents & (POLLIN | POLLHUP | POLLERR)) {
			if ((rc = read_agent(s, err)) < 0) {
				vm->broken = 1;
				return rc;
			}
			if (rc == 1 && !s->done) {
				/* The port closed: give QEMU a moment to exit so the error can say
				 * why. */
				vm_wait_exit(vm, 2000);
				return vm_death_error(vm, "the guest closed the agent channel",
						      err);
			}
		}
		if (s->done)
			break;
		if (p[P_QEMU].revents && vm_reap(vm, 0)) {
			vm_drain_logs(vm);
			/* Frames QEMU passed on before dying still count: read them first. */
			if ((rc = read_agent(s, err)) < 0)
				return rc;
			if (!s->done)
				return vm_death_error(vm, "QEMU exited before the command finished",
						      err);
		}
		if (p[P_STDIN].revents)
			read_stdin(s);
		if ((rc = outq_flush(&s->out, vm->agent_fd, err)) < 0)
			return rc;
	}
	return 0;
}

int
kci_vm_exec(struct kci_vm *vm, const struct kci_run_req *req, const struct kci_vm_io *io,
	    struct kci_vm_result *res, int *canceled_by, struct kci_err *err)
{
	struct session s = { .vm = vm, .req = req, .io = io, .res = res };
	int rc;

	if (vm->broken || vm->busy)
		return kci_err_set(err, KCI_ERROR, "the VM can no longer run commands");
	memset(res, 0, sizeof(*res));
	/* Ids are per VM and never 0, which names the VM itself. */
	if (++vm->next_id == 0)
		vm->next_id = 1;
	s.id = vm->next_id;
	s.stdin_open = io->stdin_fd >= 0;
	/* A guest restored from a template that fails before it is up gets one cold boot. */
	while ((rc = loop(&s, err)) == KCI_ERROR || rc == KCI_PROTO) {
		if ((rc = restore_failed(&s, rc, err)) != 1)
			break;
		*err = (struct kci_err)KCI_ERR_INIT;
	}
	if (canceled_by)
		*canceled_by = s.signo;
	/* Output the agent sent is flushed before the result; anything pending for it is moot. */
	free(s.out.buf);
	return rc;
}
