/* Starting the job's process: fork, wire its stdio to pipes or a pty, set its environment, exec. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "agent/internal.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_HOME "/root"
#define DEFAULT_ROWS 24
#define DEFAULT_COLS 80

/* What the child reports through the CLOEXEC pipe when it cannot exec. */
enum start_stage { STAGE_SETUP = 1, STAGE_USER, STAGE_CHDIR, STAGE_EXEC };
struct start_failure {
	int stage;
	int errnum;
};

/* The fds of one start: -1 when not open. */
struct spawn {
	int master;	   /* pty master, with tty */
	char pty_name[64]; /* the slave's path, with tty */
	int child_end[3];  /* stdin read, stdout write, stderr write; without tty */
	int parent_end[3]; /* stdin write, stdout read, stderr read; without tty */
	int report[2];	   /* start failures, child to parent */
};

static void __attribute__((noreturn)) child_fail(const struct spawn *s, int stage)
{
	struct start_failure f = { stage, errno };

	(void)!write(s->report[1], &f, sizeof(f));
	_exit(127);
}

/* The agent blocks SIGCHLD and ignores SIGPIPE; exec keeps both, so undo them. */
static void
reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Exactly the requested environment, plus the defaults a shell expects. */
static void
set_env(char **env)
{
	clearenv();
	for (size_t i = 0; env[i]; i++)
		if (strchr(env[i], '=') && env[i][0] != '=')
			putenv(env[i]);
	if (!getenv("PATH"))
		setenv("PATH", DEFAULT_PATH, 1);
}

/* Makes the pty slave the controlling terminal and stdio of this new session. */
static int
attach_tty(const struct spawn *s)
{
	int fd = open(s->pty_name, O_RDWR);

	if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (dup2(fd, i) < 0)
			return -1;
	if (fd > 2)
		close(fd);
	return 0;
}

/* Runs in the forked child; every fd of the agent is CLOEXEC and closes at exec. */
static void __attribute__((noreturn))
child_main(const struct spawn *s, const struct kci_run_req *req)
{
	reset_signals();
	/* A session of its own, so SIGNAL and the cleanup reach its whole process group. */
	if (setsid() < 0)
		child_fail(s, STAGE_SETUP);
	if (req->tty) {
		if (attach_tty(s) < 0)
			child_fail(s, STAGE_SETUP);
	} else {
		for (int i = 0; i < 3; i++)
			if (dup2(s->child_end[i], i) < 0)
				child_fail(s, STAGE_SETUP);
	}
	set_env(req->env);
	if (req->user && req->user[0] && (errno = -user_switch(req->user)) != 0)
		child_fail(s, STAGE_USER);
	/* After the switch, which sets HOME from the user's passwd entry when the job did not. */
	if (!getenv("HOME"))
		setenv("HOME", DEFAULT_HOME, 1);
	if (chdir(req->cwd) < 0)
		child_fail(s, STAGE_CHDIR);
	execvpe(req->argv[0], req->argv, environ);
	child_fail(s, STAGE_EXEC);
}

static int
set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Opens the pty master, non-blocking, sized as asked. */
static int
open_pty(struct spawn *s, const struct kci_run_req *req)
{
	struct winsize ws = { .ws_row = DEFAULT_ROWS, .ws_col = DEFAULT_COLS };

	if (req->rows && req->cols) {
		ws.ws_row = (unsigned short)req->rows;
		ws.ws_col = (unsigned short)req->cols;
	}
	s->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (s->master < 0 || grantpt(s->master) < 0 || unlockpt(s->master) < 0 ||
	    ptsname_r(s->master, s->pty_name, sizeof(s->pty_name)) != 0 ||
	    ioctl(s->master, TIOCSWINSZ, &ws) < 0)
		return -1;
	return 0;
}

/* Three pipes; our ends are non-blocking so the serve loop never stalls on them. */
static int
open_pipes(struct spawn *s)
{
	int p[2];

	for (int i = 0; i < 3; i++) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		/* stdin flows to the child (it reads p[0]); stdout and stderr flow to us. */
		s->child_end[i] = i == 0 ? p[0] : p[1];
		s->parent_end[i] = i == 0 ? p[1] : p[0];
		if (set_nonblock(s->parent_end[i]) < 0)
			return -1;
	}
	return 0;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
spawn_close(struct spawn *s)
{
	close_fd(&s->master);
	for (int i = 0; i < 3; i++) {
		close_fd(&s->child_end[i]);
		close_fd(&s->parent_end[i]);
	}
	close_fd(&s->report[0]);
	close_fd(&s->report[1]);
}

/* Turns what the child reported into the EXIT the host sees. */
static void
describe_failure(const struct start_failure *f, const struct kci_run_req *req,
		 struct kci_exit *failed)
{
	const char *argv0 = req->argv[0];

	failed->code = 126;
	if (f->stage == STAGE_USER) {
		snprintf(failed->error, sizeof(failed->error), "user %s: %s", req->user,
			 f->errnum == ENOENT ? "no such user or group in the image"
					     : strerror(f->errnum));
	} else if (f->stage == STAGE_CHDIR) {
		snprintf(failed->error, sizeof(failed->error), "chdir %s: %s", req->cwd,
			 strerror(f->errnum));
	} else if (f->stage == STAGE_EXEC && f->errnum == ENOENT) {
		failed->code = 127;
		snprintf(failed->error, sizeof(failed->error), "%s: %s", argv0,
			 strchr(argv0, '/') ? strerror(ENOENT) : "command not found");
	} else if (f->stage == STAGE_EXEC) {
		snprintf(failed->error, sizeof(failed->error), "%s: %s", argv0,
			 strerror(f->errnum));
	} else {
		snprintf(failed->error, sizeof(failed->error), "set up the process: %s",
			 strerror(f->errnum));
	}
}

/*
 * Waits for the child to exec: the report pipe closes at a successful exec
 * and carries a start_failure otherwise. Returns 0 when it runs.
 */
static int
wait_exec(struct spawn *s, const struct kci_run_req *req, struct kci_exit *failed)
{
	struct start_failure f;
	ssize_t n;

	close_fd(&s->report[1]);
	do
		n = read(s->report[0], &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n != sizeof(f))
		f = (struct start_failure){ STAGE_SETUP, n < 0 ? errno : EIO };
	describe_failure(&f, req, failed);
	return KCI_ERROR;
}

/* Hands the parent's ends of the spawn to the job. */
static void
adopt(struct job *job, struct spawn *s, uint16_t id, pid_t pid, int tty)
{
	job->id = id;
	job->pid = pid;
	job->tty = tty;
	if (tty) {
		job->pty = s->master;
		job->in_fd = fcntl(s->master, F_DUPFD_CLOEXEC, 3);
		job->out_fd = fcntl(s->master, F_DUPFD_CLOEXEC, 3);
		job->err_fd = -1;
		s->master = -1;
	} else {
		job->in_fd = s->parent_end[0];
		job->out_fd = s->parent_end[1];
		job->err_fd = s->parent_end[2];
		s->parent_end[0] = s->parent_end[1] = s->parent_end[2] = -1;
	}
	job->stdin_off = job->stdin_len = 0;
}

/*
 * Starts req as the job's process with the given id. Returns 0 with the job
 * running, or KCI_ERROR with *failed holding the EXIT to send (code 127 or
 * 126 and an error text). A child that failed to exec is left for the reaper.
 */
int
process_start(struct job *job, uint16_t id, const struct kci_run_req *req, struct kci_exit *failed)
{
	struct spawn s = { .master = -1,
			   .child_end = { -1, -1, -1 },
			   .parent_end = { -1, -1, -1 },
			   .report = { -1, -1 } };
	int rc = KCI_ERROR;
	pid_t pid;

	memset(failed, 0, sizeof(*failed));
	if ((req->tty ? open_pty(&s, req) : open_pipes(&s)) < 0 || pipe2(s.report, O_CLOEXEC) < 0) {
		failed->code = 126;
		snprintf(failed->error, sizeof(failed->error), "set up %s: %s",
			 req->tty ? "a pty" : "pipes", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		failed->code = 126;
		snprintf(failed->error, sizeof(failed->error), "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_main(&s, req);
	for (int i = 0; i < 3; i++)
		close_fd(&s.child_end[i]);
	if ((rc = wait_exec(&s, req, failed)) < 0)
		goto out;
	adopt(job, &s, id, pid, req->tty);
out:
	spawn_close(&s);
	return rc;
}
