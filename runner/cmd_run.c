/*
 * kci run: the repository's pipeline, each job in its own VM. The CLI around
 * engine/'s projects: options, signals and a closed stdout, the exit status;
 * render.c draws the engine's events.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/parse.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "engine/engine.h"
#include "jobs/jobs.h"
#include "runner/cli.h"

#define PIPELINE_FILE	   ".kci.yml"
#define SECRET_FILE_MAX	   (1024 * 1024)
#define EXIT_JOBS_FAILED   1
#define EXIT_INTERRUPTED   130
#define EXIT_OUTPUT_CLOSED 141 /* 128 + SIGPIPE: what a process writing there would die of */
#define PREFIX_WIDTH_MAX   28

static const char usage_text[] =
	"Usage: kci run [DIR] [OPTIONS]\n"
	"\n"
	"Run the pipeline (.kci.yml) of the repository at DIR (default: the current\n"
	"directory), each job in a fresh micro-VM with the repository at /workspace.\n"
	"Jobs run as their 'needs' allow; output streams live, prefixed with the job.\n"
	"\n"
	"Options:\n"
	"      --job NAME        run NAME and the jobs it needs (repeatable)\n"
	"  -j, --jobs N          at most N VMs at once (default: from host CPUs and memory)\n"
	"      --list            list the jobs, their images and needs; run nothing\n"
	"      --commit REV      run a clean checkout of REV (HEAD~1, a tag, an id) instead\n"
	"                        of the working tree\n"
	"      --json            print one JSON object per event instead of text\n"
	"      --secret NAME     grant the pipeline secret NAME, with the value it has in\n"
	"                        your environment (repeatable); the pipeline only asks\n"
	"      --secret-file F   grant the NAME=VALUE lines of F as secrets\n"
	"      --registry HOST   let the pipeline's images come from HOST[:PORT] over HTTPS,\n"
	"                        with your credentials (repeatable; docker.io for Docker Hub)\n"
	"      --insecure-registry HOST\n"
	"                        the same over plain HTTP (repeatable)\n"
	"      --timeout DUR     time limit of a job whose pipeline sets none (default 1h)\n"
	"      --max-output SIZE output a job may print before it is failed (default 64M)\n"
	"      --kernel PATH     guest kernel bundle directory or vmlinuz file\n"
	"      --accel MODE      auto (default), kvm or tcg\n"
	"      --cold            boot every job's kernel; no VM templates (docs/templates.md)\n"
	"      --debug           copy every guest console to stderr\n"
	"  -h, --help            this help\n"
	"\n"
	"Logs are saved to DIR/.kci/logs/<job>.log and artifacts to DIR/.kci/artifacts/<job>/.\n"
	"The pipeline file is described in docs/pipeline.md.\n"
	"\n"
	"Exit status:\n"
	"  0    every job passed\n"
	"  1    a job failed, timed out, or was skipped\n"
	"  125  kci itself failed, or the pipeline file is wrong (nothing ran)\n"
	"  130  interrupted (Ctrl-C); every VM was torn down\n"
	"  141  stdout was closed by its reader; every VM was torn down\n";

enum {
	OPT_JOB = 256,
	OPT_LIST,
	OPT_COMMIT,
	OPT_JSON,
	OPT_SECRET,
	OPT_SECRET_FILE,
	OPT_TIMEOUT,
	OPT_MAX_OUTPUT,
	OPT_REGISTRY,
	OPT_INSECURE_REGISTRY,
	OPT_KERNEL,
	OPT_ACCEL,
	OPT_DEBUG,
	OPT_COLD
};

static const struct option long_opts[] = {
	{ "job", required_argument, NULL, OPT_JOB },
	{ "jobs", required_argument, NULL, 'j' },
	{ "list", no_argument, NULL, OPT_LIST },
	{ "commit", required_argument, NULL, OPT_COMMIT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "secret", required_argument, NULL, OPT_SECRET },
	{ "secret-file", required_argument, NULL, OPT_SECRET_FILE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
	{ "registry", required_argument, NULL, OPT_REGISTRY },
	{ "insecure-registry", required_argument, NULL, OPT_INSECURE_REGISTRY },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ "cold", no_argument, NULL, OPT_COLD },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct run_opts {
	const char *dir, *commit, *secret_file, *kernel;
	char **jobs, **secrets; /* --job, --secret */
	size_t njobs, nsecrets;
	char **registries, **insecure; /* --registry, --insecure-registry */
	size_t nregistries, ninsecure;
	int64_t timeout_ms;
	uint64_t max_output_mib;
	unsigned max_jobs;
	int list, json, debug, cold;
	enum kci_accel accel;
};

/* ---- options ---- */

static void
run_opts_clear(struct run_opts *o)
{
	kci_strv_free(o->jobs);
	kci_strv_free(o->secrets);
	kci_strv_free(o->registries);
	kci_strv_free(o->insecure);
}

static int
bad_value(const char *opt, const char *value, const char *want)
{
	fprintf(stderr, "kci: invalid %s '%s': expected %s\n", opt, value, want);
	return -1;
}

static int
parse_opts(int argc, char **argv, struct run_opts *o)
{
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "j:h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_JOB:
			kci_strv_add(&o->jobs, &o->njobs, optarg);
			break;
		case 'j':
			if (kci_parse_uint(optarg, 1, 64, &o->max_jobs) < 0)
				return bad_value("--jobs", optarg, "a number from 1 to 64");
			break;
		case OPT_LIST:
			o->list = 1;
			break;
		case OPT_COMMIT:
			o->commit = optarg;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_SECRET:
			kci_strv_add(&o->secrets, &o->nsecrets, optarg);
			break;
		case OPT_REGISTRY:
			kci_strv_add(&o->registries, &o->nregistries, optarg);
			break;
		case OPT_INSECURE_REGISTRY:
			kci_strv_add(&o->insecure, &o->ninsecure, optarg);
			break;
		case OPT_SECRET_FILE:
			o->secret_file = optarg;
			break;
		case OPT_MAX_OUTPUT:
			if (kci_parse_size_mib(optarg, &o->max_output_mib) < 0 ||
			    o->max_output_mib < 1 || o->max_output_mib > 1 << 20)
				return bad_value("--max-output", optarg,
						 "a size from 1M to 1024G, e.g. 64M");
			break;
		case OPT_TIMEOUT:
			if (kci_parse_duration(optarg, &o->timeout_ms) < 0 || o->timeout_ms <= 0)
				return bad_value("--timeout", optarg,
						 "a duration such as 90, 30s, 5m or 1h30m");
			break;
		case OPT_KERNEL:
			o->kernel = optarg;
			break;
		case OPT_ACCEL:
			if (kci_vm_accel_parse(optarg, &o->accel) < 0)
				return bad_value("--accel", optarg, "auto, kvm or tcg");
			break;
		case OPT_DEBUG:
			o->debug = 1;
			break;
		case OPT_COLD:
			o->cold = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			if (optopt > 0 && optopt < 256 && argv[optind - 1][1] != '-')
				fprintf(stderr, "kci: run: option '-%c' %s\n", optopt,
					strchr("j", optopt) ? "needs a value" : "is unknown");
			else
				kci_unknown_option("run", long_opts, argv[optind - 1]);
			fprintf(stderr, "Run 'kci run --help' for the options.\n");
			return -1;
		}
	}
	if (optind < argc)
		o->dir = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "kci: run: unexpected argument '%s' (one DIR at most)\n",
			argv[optind]);
		return -1;
	}
	return 1;
}

/* ---- stopping: signals and a stdout nobody reads ---- */

/*
 * A thread that turns the first SIGINT/SIGTERM/SIGHUP, or stdout losing its
 * reader (`kci run --json | head`), into a write to the engine's cancel fd;
 * a second signal kills kci at once. The renderer reports write errors the
 * same way (output_gone).
 */
struct stopper {
	int signal_fd, stop_fd, cancel_fd;
	atomic_int signals;	/* stop signals received */
	atomic_int output_gone; /* stdout cannot be written: its errno, or 0 */
	pthread_t thread;
	int running;
};

static void
stop_run(struct stopper *st, const char *why)
{
	uint64_t one = 1;

	(void)!write(STDERR_FILENO, why, strlen(why));
	(void)!write(st->cancel_fd, &one, sizeof(one));
}

/* stdout failed with errno e: the first report cancels the run. Any thread. */
static void
output_failed(struct stopper *st, int e)
{
	int none = 0;
	char msg[160];

	if (!st || !atomic_compare_exchange_strong(&st->output_gone, &none, e ? e : EIO))
		return;
	if (e == EPIPE)
		snprintf(msg, sizeof(msg),
			 "kci: stdout was closed: stopping, tearing down every VM\n");
	else
		snprintf(msg, sizeof(msg), "kci: cannot write to stdout (%s): stopping\n",
			 strerror(e));
	stop_run(st, msg);
}

static void *
stopper_main(void *arg)
{
	struct stopper *st = arg;
	struct signalfd_siginfo si;
	int watch_out = 1;

	for (;;) {
		/* stdout with no events: POLLERR/POLLHUP say its reader is gone. */
		struct pollfd p[3] = { { st->signal_fd, POLLIN, 0 },
				       { st->stop_fd, POLLIN, 0 },
				       { watch_out ? STDOUT_FILENO : -1, 0, 0 } };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		if (p[2].revents & (POLLERR | POLLHUP)) {
			watch_out = 0;
			output_failed(st, EPIPE);
		}
		if (!(p[0].revents & POLLIN) ||
		    read(st->signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			continue;
		if (atomic_fetch_add(&st->signals, 1) == 0) {
			stop_run(st,
				 "kci: stopping: tearing down every VM (Ctrl-C again to kill)\n");
		} else {
			static const char msg[] = "kci: killed\n";
			/* QEMU and passt die with us (PDEATHSIG); the next run sweeps our dirs. */
			(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
			_exit(EXIT_INTERRUPTED);
		}
	}
}

/*
 * Blocks the stop signals in every thread from here on (so a Ctrl-C during
 * staging is not lost) and starts the thread that watches them.
 */
static int
stopper_start(struct stopper *st, struct kci_err *err)
{
	st->signal_fd = kci_stop_signalfd();
	st->stop_fd = eventfd(0, EFD_CLOEXEC);
	st->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (st->signal_fd < 0 || st->stop_fd < 0 || st->cancel_fd < 0)
		return kci_err_sys(err, errno, "signalfd/eventfd");
	if (pthread_create(&st->thread, NULL, stopper_main, st) != 0)
		return kci_err_set(err, KCI_ERROR, "cannot create a thread");
	st->running = 1;
	return 0;
}

static void
stopper_end(struct stopper *st)
{
	uint64_t one = 1;

	if (st->running) {
		(void)!write(st->stop_fd, &one, sizeof(one));
		pthread_join(st->thread, NULL);
	}
	st->running = 0;
	for (int *fd = &st->signal_fd; fd <= &st->cancel_fd; fd++)
		if (*fd >= 0)
			close(*fd);
}

/* ---- the command ---- */

/* Renders events to stdout; a stdout that fails stops the run. Called one at a time. */
struct run_view {
	struct kci_render *render;
	struct stopper *stop;
};

static void
on_event(void *ctx, const struct kci_event *ev)
{
	struct run_view *v = ctx;

	if (ev->kind == KCI_EV_RUN_END && (v->stop->signals > 0 || v->stop->output_gone))
		kci_render_interrupted(v->render);
	kci_render_event(v->render, ev);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		output_failed(v->stop, errno);
		clearerr(stdout);
	}
}

/* "kci: repository /src/app (working tree, with uncommitted changes); TCG: ..." */
static void
banner(const struct kci_project *proj, const struct kci_workspace_info *ws, const char *commit,
       const char *accel_why)
{
	char *where = commit ? kci_xasprintf(" at %.12s (%s)", ws->commit, commit)
		      : ws->is_git && ws->dirty
			      ? kci_xstrdup(" (working tree, with uncommitted changes)")
		      : ws->is_git ? kci_xstrdup(" (working tree)")
				   : kci_xstrdup("");

	printf("kci: %s %s%s; %s\n", ws->is_git ? "repository" : "directory",
	       kci_engine_project_dir(proj), where, accel_why);
	if (ws->foreign_gitdir[0])
		printf("kci: its .git points at %s, outside it, which does not name it back: the "
		       "jobs get it without .git\n",
		       ws->foreign_gitdir);
	fflush(stdout);
	free(where);
}

/* Every job when none was named, else the named ones and what they need. */
static int
select_jobs(const struct kci_plan *p, char **names, int **selected, struct kci_err *err)
{
	if (names)
		return kci_plan_select(p, names, selected, err);
	*selected = kci_xcalloc(p->n_jobs ? p->n_jobs : 1, sizeof(int));
	for (size_t i = 0; i < p->n_jobs; i++)
		(*selected)[i] = 1;
	return 0;
}

int
kci_cmd_run(int argc, char **argv)
{
	struct run_opts o = { .accel = KCI_ACCEL_AUTO };
	struct kci_err err = KCI_ERR_INIT;
	struct stopper sw = { .signal_fd = -1, .stop_fd = -1, .cancel_fd = -1 };
	struct kci_project_opts po = { 0 };
	struct kci_engine_opts eo = { .console_fd = -1 };
	struct kci_kit_opts ko = { 0 };
	struct kci_workspace_info ws;
	struct kci_project *proj = NULL;
	struct kci_secrets *granted = NULL;
	struct kci_kit *kit = NULL;
	struct run_view view = { .stop = &sw };
	const struct kci_plan *plan;
	enum kci_job_state *states = NULL;
	int *selected = NULL, rc, status = KCI_EXIT_RUNNER;
	char **secrets = NULL;
	const char *why;

	rc = parse_opts(argc, argv, &o);
	if (rc <= 0) {
		run_opts_clear(&o);
		return rc == 0 ? 0 : KCI_EXIT_RUNNER;
	}
	/* Signals are ours from here on (a Ctrl-C while staging is not lost); --list runs nothing.
	 */
	if ((o.commit || !o.list) && (rc = stopper_start(&sw, &err)) < 0)
		goto fail;
	po.dir = o.dir;
	po.commit = o.commit;
	if ((rc = kci_engine_project_open(&proj, &po, &err)) < 0)
		goto fail;
	plan = kci_engine_project_plan(proj);
	if ((rc = select_jobs(plan, o.jobs, &selected, &err)) < 0)
		goto fail;
	if (o.list) {
		kci_render_list(stdout, plan, selected, o.json);
		status = 0;
		goto out;
	}
	/* Secrets the pipeline asks for and the user did not grant stop the run up front. */
	granted = kci_engine_secrets_new();
	for (size_t i = 0; i < o.nsecrets; i++)
		if ((rc = kci_engine_secrets_add_env(granted, o.secrets[i], &err)) < 0)
			goto fail;
	if ((o.secret_file &&
	     (rc = kci_engine_secrets_add_file(granted, o.secret_file, &err)) < 0) ||
	    (rc = kci_engine_secrets_for(granted, plan, selected, &secrets, &err)) < 0)
		goto fail;
	ko.kernel = o.kernel;
	ko.accel = o.accel;
	ko.cold = o.cold;
	if ((rc = kci_engine_kit_new(&kit, &ko, &err)) < 0 ||
	    (rc = kci_engine_project_stage(proj, &ws, &err)) < 0)
		goto fail;
	/* Copying a large tree takes a while: a Ctrl-C meanwhile ends the run here. */
	if (sw.signals > 0 || sw.output_gone)
		goto out;
	kci_engine_kit_accel(kit, &why);
	if (!o.json)
		banner(proj, &ws, o.commit, why);
	view.render = kci_render_new(stdout, plan, selected, o.json,
				     !o.json && isatty(STDOUT_FILENO) && !getenv("NO_COLOR"));
	eo.kit = kit;
	eo.max_jobs = o.max_jobs;
	eo.default_timeout_ms = o.timeout_ms;
	eo.output_limit = o.max_output_mib << 20;
	eo.registries.registries = o.registries;
	eo.registries.insecure = o.insecure;
	eo.secrets = secrets;
	eo.console_fd = o.debug ? STDERR_FILENO : -1;
	eo.cancel_fd = sw.cancel_fd;
	eo.event = on_event;
	eo.ctx = &view;
	states = kci_xcalloc(plan->n_jobs ? plan->n_jobs : 1, sizeof(*states));
	if ((rc = kci_engine_project_run(proj, selected, &eo, states, &err)) < 0)
		goto fail;
	status = kci_render_passed(view.render) ? 0 : EXIT_JOBS_FAILED;
	goto out;
fail:
	if (!(rc == KCI_CANCELED && (sw.signals > 0 || sw.output_gone)))
		kci_print_error(err.msg);
out:
	stopper_end(&sw);
	kci_render_free(view.render);
	kci_engine_project_free(proj);
	kci_engine_kit_free(kit);
	kci_engine_secrets_free(granted);
	kci_strv_free(secrets);
	run_opts_clear(&o);
	free(selected);
	free(states);
	/* However far the run got, how it was stopped decides the status. */
	if (sw.signals > 0)
		status = EXIT_INTERRUPTED;
	else if (sw.output_gone)
		status = sw.output_gone == EPIPE ? EXIT_OUTPUT_CLOSED : KCI_EXIT_RUNNER;
	return status;
}
