/*
 * One job: its root disk (image or busybox base), a fresh VM with the
 * workspace disk, its steps run in order through the agent with the job's
 * env, its artifacts copied out, the VM torn down on every path. Output
 * leaves as masked lines, to events and to the job's log file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/fs.h"
#include "common/parse.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "engine/internal.h"

#define STDERR_KEEP 2048 /* bytes of a helper command's stderr kept for messages */

struct job_ctx {
	const struct job_shared *sh;
	size_t idx;
	const struct kci_job *j;
	size_t step;
	int stream; /* the stream being fed to a logbuf */
	struct logbuf out[3];
	FILE *log;
	uint64_t out_bytes; /* output the job's steps printed so far: its budget's use */
	int over_budget;    /* it printed more than sh->output_limit */
	/* Artifact collection: the tar stream from the guest; a helper command's complaints. */
	int tar_fd, tar_overflow;
	uint64_t tar_bytes;
	char helper_err[STDERR_KEEP];
	size_t helper_err_len;
};

/* The event's line in the job's log file, as kci serve's logs have it too. */
static void
log_event(struct job_ctx *c, const struct kci_event *ev)
{
	char *line;

	if (!c->log || !(line = kci_engine_log_line(ev)))
		return;
	fputs(line, c->log);
	fputc('\n', c->log);
	if (ev->kind != KCI_EV_LOG)
		fflush(c->log);
	free(line);
}

/* kci's own line about the job, to the events and the log. */
static void note(struct job_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
note(struct job_ctx *c, const char *fmt, ...)
{
	struct kci_event ev = { .kind = KCI_EV_JOB_NOTE, .job = c->idx };
	size_t len;
	char *text, *masked;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	if (!text)
		return;
	masked = mask_str(c->sh->mask, text, strlen(text), &len);
	ev.text = masked;
	ev.len = len;
	emitter_send(c->sh->em, &ev);
	log_event(c, &ev);
	free(masked);
	free(text);
}

/* The VM's own news (a boot redone) is the job's note. */
static void
on_notice(void *ctx, const char *text)
{
	note(ctx, "%s", text);
}

static void
on_line(void *ctx, const char *line, size_t len)
{
	struct job_ctx *c = ctx;
	struct kci_event ev = { .kind = KCI_EV_LOG,
				.job = c->idx,
				.step = c->step,
				.step_name = c->j->steps[c->step].name,
				.stream = c->stream,
				.text = line,
				.len = len };

	emitter_send(c->sh->em, &ev);
	log_event(c, &ev);
}

/*
 * The job's output, within one budget for the events and the log alike: a
 * guest that floods is stopped, not followed (the refusal ends its VM).
 */
static int
on_output(void *ctx, int stream, const uint8_t *buf, size_t len)
{
	struct job_ctx *c = ctx;

	if (c->over_budget)
		return -1;
	if (len > c->sh->output_limit - c->out_bytes) {
		len = (size_t)(c->sh->output_limit - c->out_bytes);
		c->over_budget = 1;
	}
	c->out_bytes += len;
	c->stream = stream == 2 ? 2 : 1;
	logbuf_feed(&c->out[c->stream], c->sh->mask, (const char *)buf, len, on_line, c);
	return c->over_budget ? -1 : 0;
}

static void
flush_output(struct job_ctx *c)
{
	for (int s = 1; s <= 2; s++) {
		c->stream = s;
		logbuf_flush(&c->out[s], c->sh->mask, on_line, c);
	}
	if (c->log)
		fflush(c->log);
}

/*
 * What a job adds to every step's environment, after the image's Env: CI
 * markers, the job's env, its secrets. NULL when a secret has no value.
 */
static char **
step_env(struct job_ctx *c, struct kci_err *err)
{
	const struct kci_job *j = c->j;
	char *const *granted = c->sh->secrets;
	char **env = NULL, *kv;
	size_t n = 0;

	kci_env_set(&env, &n, "CI=true");
	kci_env_set(&env, &n, "KCI=true");
	kv = kci_xasprintf("KCI_JOB=%s", j->name);
	kci_env_set(&env, &n, kv);
	free(kv);
	for (size_t i = 0; j->env && j->env[i]; i++)
		kci_env_set(&env, &n, j->env[i]);
	for (size_t i = 0; j->secrets && j->secrets[i]; i++) {
		size_t len = strlen(j->secrets[i]);
		const char *found = NULL;

		for (size_t k = 0; granted && granted[k]; k++)
			if (strncmp(granted[k], j->secrets[i], len) == 0 && granted[k][len] == '=')
				found = granted[k];
		if (!found) {
			kci_err_set(err, KCI_INVALID, "secret %s has no value", j->secrets[i]);
			kci_strv_free(env);
			return NULL;
		}
		kci_env_set(&env, &n, found);
	}
	return env;
}

/* "64 MiB" */
static const char *
format_mib(char *buf, size_t size, uint64_t bytes)
{
	snprintf(buf, size, "%llu MiB", (unsigned long long)(bytes >> 20));
	return buf;
}

/* The job's own timeout, else the run's default: no job runs forever. */
static int64_t
job_timeout(const struct job_ctx *c)
{
	return c->j->timeout_ms ? c->j->timeout_ms : c->sh->default_timeout_ms;
}

/*
 * Maps a failed kci_vm_exec to the job's state and a one-line reason;
 * `during` says what the job was doing ("step 'make'").
 */
static enum kci_job_state
exec_failure(struct job_ctx *c, int rc, const struct kci_err *err, const char *during, char **why)
{
	char d[32];

	if (rc == KCI_TIMEOUT) {
		*why = kci_xasprintf("timed out after %s",
				     kci_format_duration(d, sizeof(d), job_timeout(c)));
		return KCI_JOB_TIMEOUT;
	}
	if (rc == KCI_CANCELED) {
		*why = kci_xasprintf("stopped during %s", during);
		return KCI_JOB_CANCELED;
	}
	*why = kci_xstrdup(err->msg);
	return KCI_JOB_ERROR;
}

static enum kci_job_state give_workspace(struct job_ctx *c, struct kci_vm *vm, const char *user,
					 char **why);

/* Runs the steps in order; returns the job's state so far. */
static enum kci_job_state
run_steps(struct job_ctx *c, struct kci_vm *vm, const struct kci_image_config *cfg, char **why)
{
	struct kci_err err = KCI_ERR_INIT;
	enum kci_job_state st = KCI_JOB_PASSED;
	char *argv[5] = { "/bin/sh", "-e", "-c", NULL, NULL };
	struct kci_req_opts ro = { .argv = argv };
	char **env;

	if (!(env = step_env(c, &err))) {
		*why = kci_xstrdup(err.msg);
		return KCI_JOB_ERROR;
	}
	ro.env = env;
	/* In the project's dir of the workspace; without one, where the image says. */
	if (c->sh->workspace_disk)
		ro.cwd = c->sh->workdir ? c->sh->workdir : "/workspace";
	if (c->sh->workspace_disk && !user_is_root(cfg->user) &&
	    (st = give_workspace(c, vm, cfg->user, why)) != KCI_JOB_PASSED) {
		kci_strv_free(env);
		return st;
	}
	for (c->step = 0; c->step < c->j->n_steps; c->step++) {
		const struct kci_step *s = &c->j->steps[c->step];
		struct kci_event ev = { .kind = KCI_EV_STEP_START,
					.job = c->idx,
					.step = c->step,
					.step_name = s->name };
		struct kci_vm_io io = KCI_VM_IO_INIT;
		struct kci_vm_result res = { 0 };
		struct kci_run_req req;
		int64_t t0 = emitter_now_ms(c->sh->em);
		int rc, signo = 0, code;

		emitter_send(c->sh->em, &ev);
		log_event(c, &ev);
		argv[3] = s->run;
		if ((rc = kci_engine_request(cfg, &ro, &req, &err)) < 0) {
			st = KCI_JOB_ERROR;
			*why = kci_xstrdup(err.msg);
			break;
		}
		io.cancel_fd = c->sh->cancel->fd;
		io.output = on_output;
		io.notice = on_notice;
		io.ctx = c;
		rc = kci_vm_exec(vm, &req, &io, &res, &signo, &err);
		kci_run_req_clear(&req);
		flush_output(c);
		if (rc < 0 && c->over_budget) {
			char size[32];
			st = KCI_JOB_FAILED;
			*why = kci_xasprintf("step '%s' printed more than %s, the job's output "
					     "budget; its VM was stopped",
					     s->name,
					     format_mib(size, sizeof(size), c->sh->output_limit));
			break;
		}
		if (rc < 0) {
			/* The reason is logged, masked, when the job ends. */
			char *during = kci_xasprintf("step '%s'", s->name);
			st = exec_failure(c, rc, &err, during, why);
			free(during);
			break;
		}
		code = res.signal ? 128 + res.signal : res.code;
		if (res.error[0])
			note(c, "%s", res.error);
		ev = (struct kci_event){ .kind = KCI_EV_STEP_END,
					 .job = c->idx,
					 .step = c->step,
					 .step_name = s->name,
					 .state = code == 0 ? KCI_JOB_PASSED : KCI_JOB_FAILED,
					 .exit_code = code,
					 .duration_ms = emitter_now_ms(c->sh->em) - t0 };
		emitter_send(c->sh->em, &ev);
		log_event(c, &ev);
		if (code != 0 && !s->allow_failure) {
			st = KCI_JOB_FAILED;
			*why = kci_xasprintf("step '%s' exited with %d", s->name, code);
			break;
		}
		if (code != 0)
			note(c, "step '%s' failed (exit %d), allowed to fail", s->name, code);
	}
	kci_strv_free(env);
	return st;
}

/* A helper command's output: stderr kept (bounded) for messages, stdout dropped. */
static int
keep_stderr(void *ctx, int stream, const uint8_t *buf, size_t len)
{
	struct job_ctx *c = ctx;
	size_t room = sizeof(c->helper_err) - 1 - c->helper_err_len;
	size_t n = len < room ? len : room;

	if (stream != 2)
		return 0;
	memcpy(c->helper_err + c->helper_err_len, buf, n);
	c->helper_err_len += n;
	c->helper_err[c->helper_err_len] = '\0';
	return 0;
}

static int
on_tar(void *ctx, int stream, const uint8_t *buf, size_t len)
{
	struct job_ctx *c = ctx;

	if (stream == 2)
		return keep_stderr(ctx, stream, buf, len);
	/* Headers and padding on top of the byte cap; beyond that the archive is cut. */
	if (c->tar_overflow || c->tar_bytes + len > ART_MAX_BYTES + ART_MAX_BYTES / 8) {
		c->tar_overflow = 1;
		return 0;
	}
	if (kci_write_all(c->tar_fd, buf, len) < 0)
		c->tar_overflow = 1;
	c->tar_bytes += len;
	return 0;
}

/* The first line of what the helper (tar, chown) said, masked: "tar: out/x: No such file ...". */
static char *
helper_complaint(struct job_ctx *c)
{
	size_t len = strcspn(c->helper_err, "\n"), outlen;

	return mask_str(c->sh->mask, c->helper_err, len, &outlen);
}

/*
 * The workspace disk holds the host user's uids; an image that runs as
 * another user gets the workspace handed over, so its steps can write there
 * as they would in a checkout of their own. Returns the job's state so far.
 */
static enum kci_job_state
give_workspace(struct job_ctx *c, struct kci_vm *vm, const char *user, char **why)
{
	char *argv[] = { "chown", "-R", (char *)user, "/workspace", NULL };
	char *env[] = { "PATH=" KCI_ENGINE_PATH, NULL };
	struct kci_run_req req = { .argv = argv, .env = env, .cwd = "/", .user = "0:0" };
	struct kci_vm_io io = KCI_VM_IO_INIT;
	struct kci_vm_result res = { 0 };
	struct kci_err err = KCI_ERR_INIT;
	int rc, signo;
	char *what;

	io.cancel_fd = c->sh->cancel->fd;
	io.output = keep_stderr;
	io.notice = on_notice;
	io.ctx = c;
	c->helper_err_len = 0;
	c->helper_err[0] = '\0';
	if ((rc = kci_vm_exec(vm, &req, &io, &res, &signo, &err)) < 0)
		return exec_failure(c, rc, &err, "the hand-over of /workspace", why);
	if (res.code == 0 && res.signal == 0)
		return KCI_JOB_PASSED;
	if (res.code == 127 && res.signal == 0) {
		note(c, "the image has no chown: /workspace stays owned by root, not %s", user);
		return KCI_JOB_PASSED;
	}
	what = helper_complaint(c);
	*why = kci_xasprintf("cannot give /workspace to the image's user %s: %s", user,
			     what[0] ? what : "chown failed");
	free(what);
	return KCI_JOB_ERROR;
}

/*
 * An unlinked file beside the artifacts for the guest's tar stream: O_TMPFILE,
 * else a named temp file unlinked at once (never RAM: the stream may be large).
 */
static int
open_spool(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	char *tmp;

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	tmp = kci_xasprintf("%s/.spool.tmp-%d-XXXXXX", dir, (int)getpid());
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd >= 0)
		unlink(tmp);
	free(tmp);
	return fd;
}

/*
 * Copies the job's artifacts out: tar in the guest writes them to a spool
 * file, and the host extracts that, confined, into a fresh dir that replaces
 * artifacts/<job>/ only once complete. Returns 0 or < 0 with *why set; when
 * the VM itself ended (timeout, cancel, death), *interrupted says how.
 */
static int
collect_artifacts(struct job_ctx *c, struct kci_vm *vm, char **why, enum kci_job_state *interrupted)
{
	const struct job_shared *sh = c->sh;
	const char *name = c->j->file_name;
	struct art_limits lim = { .max_bytes = ART_MAX_BYTES, .max_files = ART_MAX_FILES };
	struct kci_err err = KCI_ERR_INIT;
	struct kci_run_req req = { 0 };
	struct kci_vm_io io = KCI_VM_IO_INIT;
	struct kci_vm_result res = { 0 };
	struct art_stats stats = { 0 };
	/* Paths through the opened dir: no component of them is the repository's to steer. */
	char *dir = kci_xasprintf("/proc/self/fd/%d", sh->art_fd), *tmp = NULL, *final = NULL;
	char *shown = kci_xasprintf("%s/artifacts/%s", sh->out_dir, name);
	char **argv = NULL, *env[] = { "PATH=" KCI_ENGINE_PATH, NULL };
	size_t n = 0;
	int rc, signo, code;

	c->helper_err_len = 0;
	c->helper_err[0] = '\0';
	c->tar_fd = open_spool(dir);
	if (c->tar_fd < 0) {
		rc = -1;
		*why = kci_xasprintf("artifacts: spool file: %s", strerror(errno));
		goto out;
	}
	for (const char *a[] = { "tar", "-c", "-f", "-", "-C",
				 sh->workdir ? sh->workdir : "/workspace", "--" },
			**p = a;
	     p < a + 7; p++)
		kci_strv_add(&argv, &n, *p);
	for (size_t i = 0; c->j->artifacts[i]; i++)
		kci_strv_add(&argv, &n, c->j->artifacts[i]);
	req.argv = argv;
	req.env = env;
	req.cwd = "/";
	req.user = "0:0";
	io.cancel_fd = sh->cancel->fd;
	io.output = on_tar;
	io.notice = on_notice;
	io.ctx = c;
	if ((rc = kci_vm_exec(vm, &req, &io, &res, &signo, &err)) < 0) {
		*interrupted = exec_failure(c, rc, &err, "artifact collection", why);
		goto out;
	}
	code = res.signal ? 128 + res.signal : res.code;
	if (code == 127 || code == 126) {
		rc = -1;
		*why = kci_xstrdup(
			"artifacts: the job's image has no tar, which copying them out needs");
		goto out;
	}
	if (c->tar_overflow) {
		rc = -1;
		*why = kci_xasprintf("artifacts exceed %llu MiB",
				     (unsigned long long)(ART_MAX_BYTES >> 20));
		goto out;
	}
	tmp = kci_xasprintf("%s/.%s.tmp-%d-XXXXXX", dir, name, (int)getpid());
	if (!mkdtemp(tmp)) {
		rc = -1;
		*why = kci_xasprintf("artifacts: mkdtemp %s: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (lseek(c->tar_fd, 0, SEEK_SET) < 0 ||
	    (rc = art_extract(c->tar_fd, tmp, &lim, &stats, &err)) < 0) {
		rc = -1;
		*why = kci_xstrdup(err.msg[0] ? err.msg : "artifacts: cannot read the spool file");
		goto out;
	}
	final = kci_xasprintf("%s/%s", dir, name);
	kci_rm_rf(final, NULL);
	/* mkdtemp made it private; the artifacts are the user's, as their umask says. */
	(void)chmod(tmp, 0755 & ~kci_umask());
	if (rename(tmp, final) < 0) {
		rc = -1;
		*why = kci_xasprintf("artifacts: rename to %s: %s", shown, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	note(c, "artifacts: %zu entries, %llu bytes in %s", stats.files,
	     (unsigned long long)stats.bytes, shown);
	if (code != 0) {
		char *what = helper_complaint(c);
		rc = -1;
		*why = kci_xasprintf("artifacts incomplete: %s", what[0] ? what : "tar failed");
		free(what);
	}
out:
	if (tmp)
		kci_rm_rf(tmp, NULL);
	if (c->tar_fd >= 0)
		close(c->tar_fd);
	c->tar_fd = -1;
	kci_strv_free(argv);
	free(final);
	free(tmp);
	free(dir);
	free(shown);
	return rc;
}

/* Opens logs/<job>.log afresh; the log is best effort, the events are the record. */
static void
open_log(struct job_ctx *c)
{
	char *name = kci_xasprintf("%s.log", c->j->file_name);
	int fd = openat(c->sh->logs_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			0644);

	/* A symlink planted in the repository's .kci/logs is replaced, never written through. */
	if (fd < 0 && errno == ELOOP && unlinkat(c->sh->logs_fd, name, 0) == 0)
		fd = openat(c->sh->logs_fd, name,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd >= 0 && !(c->log = fdopen(fd, "w")))
		close(fd);
	free(name);
}

/* A pull on the job's behalf: each blob as it completes. */
static void
on_blob(void *ctx, const char *digest, uint64_t done, uint64_t total)
{
	if (done >= total)
		note(ctx, "pulled %.19s (%.1f MiB)", digest, (double)total / (1 << 20));
}

static void
on_phase(void *ctx, const char *what)
{
	note(ctx, "%s", what);
}

static int
boot(struct job_ctx *c, struct kci_root *root, struct kci_vm **vm, char **why)
{
	const struct job_shared *sh = c->sh;
	struct kci_vm_opts vo = KCI_VM_OPTS_INIT;
	struct kci_err err = KCI_ERR_INIT;
	int rc;

	if (c->j->image) {
		struct kci_root_progress rp = { .progress = on_blob,
						.phase = on_phase,
						.ctx = c,
						.cancel = &sh->cancel->flag,
						.policy = sh->registries };
		note(c, "image %s", c->j->image);
		rc = kci_engine_root_image(sh->kit, c->j->image, &rp, root, &err);
	} else {
		rc = kci_engine_root_base(sh->kit, root, &err);
	}
	if (rc < 0) {
		*why = kci_xstrdup(err.msg);
		return rc;
	}
	/* QEMU would take the host down with it before the guest noticed. */
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	uint64_t host_mib = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize >> 20 : 0;
	if (host_mib && c->j->memory_mib && c->j->memory_mib > host_mib / 4 * 3) {
		*why = kci_xasprintf("the job asks for %llu MiB of memory; this host has %llu MiB "
				     "(at most 3/4 of it goes to one VM)",
				     (unsigned long long)c->j->memory_mib,
				     (unsigned long long)host_mib);
		return KCI_INVALID;
	}
	kci_engine_vm_opts(sh->kit, root, &vo);
	vo.cpus = c->j->cpus ? c->j->cpus : sh->default_cpus;
	/* More vCPUs than host CPUs only makes them fight (and TCG threads spin). */
	long host_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (host_cpus > 0 && vo.cpus > (unsigned)host_cpus) {
		note(c, "the job asks for %u CPUs; this host has %ld, which it gets", vo.cpus,
		     host_cpus);
		vo.cpus = (unsigned)host_cpus;
	}
	vo.memory_mib = c->j->memory_mib ? c->j->memory_mib : KCI_ENGINE_JOB_MEMORY_MIB;
	vo.scratch_mib = c->j->disk_mib ? c->j->disk_mib : KCI_ENGINE_JOB_DISK_MIB;
	vo.timeout_ms = job_timeout(c);
	vo.console_fd = sh->console_fd;
	vo.template_scope = sh->template_scope;
	vo.workspace = sh->workspace_disk;
	vo.network = c->j->network == KCI_NET_NAT ? KCI_VM_NET_NAT : KCI_VM_NET_NONE;
	if ((rc = kci_vm_start(vm, &vo, &err)) < 0)
		*why = kci_xstrdup(err.msg);
	return rc;
}

enum kci_job_state
job_run(const struct job_shared *sh, size_t idx)
{
	struct job_ctx c = { .sh = sh, .idx = idx, .j = &sh->p->jobs[idx], .tar_fd = -1 };
	struct kci_event ev = { .kind = KCI_EV_JOB_START, .job = idx };
	struct kci_root root = { 0 };
	enum kci_job_state st = KCI_JOB_ERROR, interrupted = KCI_JOB_PENDING;
	struct kci_vm *vm = NULL;
	int64_t t0 = emitter_now_ms(sh->em);
	char *why = NULL, *art_why = NULL, *log_path = NULL;

	open_log(&c);
	emitter_send(sh->em, &ev);
	if (boot(&c, &root, &vm, &why) < 0) {
		st = cancel_check(sh->cancel) ? KCI_JOB_CANCELED : KCI_JOB_ERROR;
		goto out;
	}
	st = run_steps(&c, vm, &root.image, &why);
	/* Artifacts of a failed job too (test reports are what one wants then). */
	if ((st == KCI_JOB_PASSED || st == KCI_JOB_FAILED) && c.j->artifacts && c.j->artifacts[0] &&
	    collect_artifacts(&c, vm, &art_why, &interrupted) < 0) {
		if (interrupted != KCI_JOB_PENDING) {
			/* The VM ended under tar: that, not the artifacts, is the job's end. */
			st = interrupted;
			free(why);
			why = art_why;
			art_why = NULL;
		} else {
			note(&c, "%s", art_why);
			if (st == KCI_JOB_PASSED) {
				st = KCI_JOB_FAILED;
				why = art_why;
				art_why = NULL;
			}
		}
	}
out:
	kci_vm_free(vm);
	kci_engine_root_clear(&root);
	log_path = c.log ? kci_xasprintf("%s/logs/%s.log", sh->out_dir, c.j->file_name) : NULL;
	ev = (struct kci_event){ .kind = KCI_EV_JOB_END,
				 .job = idx,
				 .state = st,
				 .duration_ms = emitter_now_ms(sh->em) - t0,
				 .text = why,
				 .log_path = log_path };
	if (why) {
		size_t len;
		char *masked = mask_str(sh->mask, why, strlen(why), &len);
		free(why);
		why = masked;
		ev.text = why;
		ev.len = len;
	}
	emitter_send(sh->em, &ev);
	log_event(&c, &ev);
	if (c.log)
		fclose(c.log);
	for (int i = 0; i < 3; i++)
		logbuf_free(&c.out[i]);
	free(why);
	free(art_why);
	free(log_path);
	return st;
}
