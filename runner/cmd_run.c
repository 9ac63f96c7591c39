/*
 * kci run: the repository's pipeline, each job in its own VM. This file is
 * the CLI around engine/: options, the workspace, secrets, signals, and the
 * rendering of the engine's events as prefixed live lines, a summary table,
 * or a JSON event stream.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/fs.h"
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
	"      --secret-file F   NAME=VALUE lines for the pipeline's secrets (else taken\n"
	"                        from the environment)\n"
	"      --kernel PATH     guest kernel bundle directory or vmlinuz file\n"
	"      --accel MODE      auto (default), kvm or tcg\n"
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
	OPT_SECRET_FILE,
	OPT_KERNEL,
	OPT_ACCEL,
	OPT_DEBUG
};

static const struct option long_opts[] = {
	{ "job", required_argument, NULL, OPT_JOB },
	{ "jobs", required_argument, NULL, 'j' },
	{ "list", no_argument, NULL, OPT_LIST },
	{ "commit", required_argument, NULL, OPT_COMMIT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "secret-file", required_argument, NULL, OPT_SECRET_FILE },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct run_opts {
	const char *dir, *commit, *secret_file, *kernel;
	char **jobs;
	size_t njobs;
	unsigned max_jobs;
	int list, json, debug;
	enum kci_accel accel;
};

/* ---- rendering ---- */

/* A path as the user would name it: relative to the current directory when below it. */
static char *
shown_path(const char *path)
{
	char *cwd = getcwd(NULL, 0);
	size_t n = cwd ? strlen(cwd) : 0;
	char *out;

	if (cwd && n > 1 && strncmp(path, cwd, n) == 0 && path[n] == '/')
		out = kci_xstrdup(path + n + 1);
	else
		out = kci_xstrdup(path);
	free(cwd);
	return out;
}

static const char *const colors[] = { "36", "33", "35", "32", "34", "91", "96", "93" };

struct job_view {
	enum kci_job_state state;
	int64_t duration_ms;
	char *why;
	char *log;  /* its log file as the user would name it, or NULL */
	char *name; /* the job's name made safe to print, once (it prefixes every line) */
};

struct stopper;
static void output_failed(struct stopper *st, int e);

struct render {
	struct stopper *stop; /* told when stdout cannot be written */
	const struct kci_plan *p;
	const int *selected;
	int json, color;
	int width;
	struct job_view *jobs;
};

/*
 * Whether byte i of s is a control a terminal would act on: C0 and DEL, and C1
 * (0x80-0x9f), whether raw or UTF-8 encoded (0xc2 0x80-0x9f). *skip is set
 * to the bytes to drop after it.
 */
static int
is_control(const unsigned char *s, size_t len, size_t i, size_t *skip)
{
	*skip = 0;
	if (s[i] < 0x20 || s[i] == 0x7f)
		return 1;
	if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) {
		*skip = 1;
		return 1;
	}
	/* A continuation byte right after ASCII is a raw C1 control or junk. */
	return s[i] >= 0x80 && s[i] <= 0x9f && (i == 0 || s[i - 1] < 0x80);
}

/*
 * Guest output is hostile: it must not drive the user's terminal. Control
 * bytes become '?', except tabs and colour (SGR: ESC [ digits ; ... m).
 */
static void
put_sanitized(FILE *f, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = u[i];
		size_t skip;

		if (c == 0x1b && i + 1 < len && s[i + 1] == '[') {
			size_t k = i + 2;

			while (k < len && ((s[k] >= '0' && s[k] <= '9') || s[k] == ';'))
				k++;
			if (k < len && s[k] == 'm') {
				fwrite(s + i, 1, k + 1 - i, f);
				i = k;
				continue;
			}
		}
		if (c != '\t' && is_control(u, len, i, &skip)) {
			fputc('?', f);
			i += skip;
			continue;
		}
		fputc(c, f);
	}
}

/*
 * A string from the repository (job and step names: matrix values are any
 * YAML scalar) made safe to print: a new string with every control as '?'.
 */
static char *
plain(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), o = 0, skip;
	char *out = kci_xmalloc(len + 1);

	for (size_t i = 0; i < len; i++) {
		if (is_control(u, len, i, &skip)) {
			out[o++] = '?';
			i += skip;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static void
prefix(struct render *r, size_t job)
{
	const char *name = r->jobs[job].name;

	if (r->color)
		printf("\033[%sm%-*.*s |\033[0m ", colors[job % (sizeof(colors) / sizeof(*colors))],
		       r->width, r->width, name);
	else
		printf("%-*.*s | ", r->width, r->width, name);
}

static void
render_text(struct render *r, const struct kci_event *ev)
{
	char d[32], *step = ev->step_name ? plain(ev->step_name) : NULL;

	prefix(r, ev->job);
	switch (ev->kind) {
	case KCI_EV_JOB_START:
		printf("started\n");
		break;
	case KCI_EV_JOB_NOTE:
		printf("kci: ");
		put_sanitized(stdout, ev->text, ev->len);
		putchar('\n');
		break;
	case KCI_EV_STEP_START:
		printf("%s==> %s%s\n", r->color ? "\033[1m" : "", step, r->color ? "\033[0m" : "");
		break;
	case KCI_EV_LOG:
		put_sanitized(stdout, ev->text, ev->len);
		putchar('\n');
		break;
	case KCI_EV_STEP_END:
		if (ev->exit_code == 0)
			printf("<== %s passed in %s\n", step,
			       kci_format_duration(d, sizeof(d), ev->duration_ms));
		else
			printf("<== %s failed (exit %d) in %s\n", step, ev->exit_code,
			       kci_format_duration(d, sizeof(d), ev->duration_ms));
		break;
	case KCI_EV_JOB_END:
		printf("job %s", kci_job_state_name(ev->state));
		if (ev->state != KCI_JOB_SKIPPED && ev->state != KCI_JOB_CANCELED)
			printf(" in %s", kci_format_duration(d, sizeof(d), ev->duration_ms));
		if (ev->text) {
			printf(": ");
			put_sanitized(stdout, ev->text, ev->len);
		}
		putchar('\n');
		break;
	}
	free(step);
}

static const char *const kind_names[] = {
	[KCI_EV_JOB_START] = "job_start",   [KCI_EV_JOB_NOTE] = "note",
	[KCI_EV_STEP_START] = "step_start", [KCI_EV_LOG] = "log",
	[KCI_EV_STEP_END] = "step_end",	    [KCI_EV_JOB_END] = "job_end",
};

static void
render_json(const struct kci_event *ev)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string(kind_names[ev->kind]));
	json_object_object_add(o, "time_ms", json_object_new_int64(ev->time_ms));
	json_object_object_add(o, "job", json_object_new_string(ev->job_name));
	if (ev->kind == KCI_EV_STEP_START || ev->kind == KCI_EV_STEP_END ||
	    ev->kind == KCI_EV_LOG) {
		json_object_object_add(o, "step", json_object_new_int64((int64_t)ev->step));
		json_object_object_add(o, "step_name", json_object_new_string(ev->step_name));
	}
	if (ev->kind == KCI_EV_LOG)
		json_object_object_add(
			o, "stream", json_object_new_string(ev->stream == 2 ? "stderr" : "stdout"));
	if (ev->text)
		json_object_object_add(o, ev->kind == KCI_EV_LOG ? "line" : "message",
				       json_object_new_string_len(ev->text, (int)ev->len));
	if (ev->kind == KCI_EV_STEP_END)
		json_object_object_add(o, "exit_code", json_object_new_int(ev->exit_code));
	if (ev->kind == KCI_EV_STEP_END || ev->kind == KCI_EV_JOB_END) {
		json_object_object_add(o, "result",
				       json_object_new_string(kci_job_state_name(ev->state)));
		json_object_object_add(o, "duration_ms", json_object_new_int64(ev->duration_ms));
	}
	if (ev->log_path)
		json_object_object_add(o, "log", json_object_new_string(ev->log_path));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void
on_event(void *ctx, const struct kci_event *ev)
{
	struct render *r = ctx;

	if (ev->kind == KCI_EV_JOB_END) {
		struct job_view *v = &r->jobs[ev->job];

		v->state = ev->state;
		v->duration_ms = ev->duration_ms;
		free(v->why);
		v->why = ev->text ? kci_xstrndup(ev->text, ev->len) : NULL;
		free(v->log);
		v->log = ev->log_path ? shown_path(ev->log_path) : NULL;
	}
	if (r->json)
		render_json(ev);
	else
		render_text(r, ev);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		output_failed(r->stop, errno);
		clearerr(stdout);
	}
}

static int
summary(struct render *r, int interrupted)
{
	size_t counts[KCI_JOB_ERROR + 1] = { 0 };
	int all_passed = 1, width = 3;
	json_object *arr = NULL;
	char d[32];

	for (size_t i = 0; i < r->p->n_jobs; i++)
		if (r->selected[i] && (int)strlen(r->p->jobs[i].name) > width)
			width = (int)strlen(r->p->jobs[i].name);
	if (r->json)
		arr = json_object_new_array();
	else
		printf("\n%-*s  %-8s  %8s\n", width, "JOB", "RESULT", "DURATION");
	for (size_t i = 0; i < r->p->n_jobs; i++) {
		const struct job_view *v = &r->jobs[i];
		int ran = v->state != KCI_JOB_SKIPPED && v->state != KCI_JOB_PENDING &&
			  !(v->state == KCI_JOB_CANCELED && v->duration_ms == 0);

		if (!r->selected[i])
			continue;
		counts[v->state]++;
		all_passed &= v->state == KCI_JOB_PASSED;
		if (r->json) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "job",
					       json_object_new_string(r->p->jobs[i].name));
			json_object_object_add(
				o, "result", json_object_new_string(kci_job_state_name(v->state)));
			json_object_object_add(o, "duration_ms",
					       json_object_new_int64(v->duration_ms));
			if (v->why)
				json_object_object_add(o, "message",
						       json_object_new_string(v->why));
			if (v->log)
				json_object_object_add(o, "log", json_object_new_string(v->log));
			json_object_array_add(arr, o);
			continue;
		}
		printf("%-*s  ", width, v->name);
		if (r->color)
			printf("\033[%sm", v->state == KCI_JOB_PASSED	 ? "32"
					   : v->state == KCI_JOB_SKIPPED ? "2"
									 : "31");
		printf("%-8s", kci_job_state_name(v->state));
		if (r->color)
			printf("\033[0m");
		printf("  %8s", ran ? kci_format_duration(d, sizeof(d), v->duration_ms) : "-");
		if (v->why) {
			printf("  ");
			put_sanitized(stdout, v->why, strlen(v->why));
		}
		/* Where to read more, for every job that did not pass and has a log. */
		if (v->log && v->state != KCI_JOB_PASSED) {
			printf("%s", v->why ? "; log: " : "  log: ");
			put_sanitized(stdout, v->log, strlen(v->log));
		}
		putchar('\n');
	}
	if (r->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "event", json_object_new_string("summary"));
		json_object_object_add(o, "passed", json_object_new_boolean(all_passed));
		json_object_object_add(o, "jobs", arr);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		int first = 1;
		printf("\n");
		for (int s = KCI_JOB_PASSED; s <= KCI_JOB_ERROR; s++) {
			if (!counts[s])
				continue;
			printf("%s%zu %s", first ? "" : ", ", counts[s], kci_job_state_name(s));
			first = 0;
		}
		printf("%s\n", interrupted ? " (interrupted)" : "");
	}
	fflush(stdout);
	return interrupted ? EXIT_INTERRUPTED : all_passed ? 0 : EXIT_JOBS_FAILED;
}

/* ---- options ---- */

static int
bad_value(const char *opt, const char *value, const char *want)
{
	fprintf(stderr, "kci: invalid %s '%s': expected %s\n", opt, value, want);
	return -1;
}

/* "option '--jbo' is unknown; did you mean '--job'?" */
static void
unknown_option(const char *arg)
{
	const char *best = NULL;
	size_t best_d = 3, len = strcspn(arg, "=");

	for (const struct option *o = long_opts; o->name; o++) {
		char *name = kci_xasprintf("--%s", o->name);
		size_t d = kci_distance(name, arg);

		if (strncmp(arg, name, len) == 0 && name[len] == '\0' && o->has_arg)
			d = 0; /* known, but its value is missing */
		if (d < best_d) {
			best_d = d;
			best = o->name;
		}
		free(name);
	}
	if (best && best_d == 0)
		fprintf(stderr, "kci: run: option '%s' needs a value\n", arg);
	else if (best)
		fprintf(stderr, "kci: run: unknown option '%s'; did you mean '--%s'?\n", arg, best);
	else
		fprintf(stderr, "kci: run: unknown option '%s'\n", arg);
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
		case OPT_SECRET_FILE:
			o->secret_file = optarg;
			break;
		case OPT_KERNEL:
			o->kernel = optarg;
			break;
		case OPT_ACCEL:
			if (kci_accel_parse(optarg, &o->accel) < 0)
				return bad_value("--accel", optarg, "auto, kvm or tcg");
			break;
		case OPT_DEBUG:
			o->debug = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			if (optopt > 0 && optopt < 256 && argv[optind - 1][1] != '-')
				fprintf(stderr, "kci: run: option '-%c' %s\n", optopt,
					strchr("j", optopt) ? "needs a value" : "is unknown");
			else
				unknown_option(argv[optind - 1]);
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

/* ---- secrets ---- */

/* Reads NAME=VALUE lines ("#" comments and blank lines skipped) into *out. */
static int
read_secret_file(const char *path, char ***out, size_t *n, struct kci_err *err)
{
	char *text, *line, *next;
	size_t len;
	int rc, lineno = 0;

	if ((rc = kci_read_file(path, SECRET_FILE_MAX, &text, &len, err)) < 0)
		return kci_err_prefix(err, "--secret-file");
	if (memchr(text, '\0', len)) {
		free(text);
		return kci_err_set(err, KCI_INVALID, "--secret-file %s: contains a NUL byte", path);
	}
	/* Line by line, blank ones counted, so a message names the line an editor shows. */
	for (line = text; line && *line; line = next) {
		size_t l;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		l = strlen(line);
		lineno++;
		if (l && line[l - 1] == '\r')
			line[--l] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		if (!strchr(line, '=') || line[0] == '=') {
			rc = kci_err_set(err, KCI_INVALID,
					 "--secret-file %s: line %d is not NAME=VALUE", path,
					 lineno);
			break;
		}
		kci_env_set(out, n, line);
	}
	free(text);
	return rc < 0 ? rc : 0;
}

/* Whether `name` is one of the ", "-separated names in list (NULL = empty). */
static int
name_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		size_t l = strcspn(p, ",");

		if (l == n && strncmp(p, name, n) == 0)
			return 1;
		p += l;
		p += strspn(p, ", ");
	}
	return 0;
}

/* Values for every secret the selected jobs name: the file first, else the environment. */
static int
gather_secrets(const struct kci_plan *p, const int *selected, const char *file, char ***out,
	       struct kci_err *err)
{
	char **from_file = NULL, **values = NULL, *missing = NULL;
	size_t nfile = 0, n = 0;
	int rc = 0;

	if (file && (rc = read_secret_file(file, &from_file, &nfile, err)) < 0) {
		kci_strv_free(from_file);
		return rc;
	}
	for (size_t i = 0; i < p->n_jobs; i++) {
		for (size_t k = 0; selected[i] && p->jobs[i].secrets && p->jobs[i].secrets[k];
		     k++) {
			const char *name = p->jobs[i].secrets[k], *value = NULL;
			size_t len = strlen(name);
			char *kv;

			for (size_t f = 0; f < nfile; f++)
				if (strncmp(from_file[f], name, len) == 0 &&
				    from_file[f][len] == '=')
					value = from_file[f] + len + 1;
			if (!value)
				value = getenv(name);
			if (!value) {
				if (!name_listed(missing, name)) {
					char *m = kci_xasprintf("%s%s%s", missing ? missing : "",
								missing ? ", " : "", name);
					free(missing);
					missing = m;
				}
				continue;
			}
			kv = kci_xasprintf("%s=%s", name, value);
			kci_env_set(&values, &n, kv);
			free(kv);
		}
	}
	if (missing) {
		int several = strchr(missing, ',') != NULL;

		rc = kci_err_set(err, KCI_INVALID,
				 "secret%s %s %s not set: export %s or put NAME=VALUE lines in a "
				 "--secret-file",
				 several ? "s" : "", missing, several ? "are" : "is",
				 several ? "them" : "it");
		kci_strv_free(values);
		values = NULL;
	}
	kci_strv_free(from_file);
	free(missing);
	*out = values ? values : kci_xcalloc(1, sizeof(char *));
	return rc;
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
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	st->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
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

static void
list_jobs(const struct kci_plan *p, const int *selected, int json)
{
	int width = 3, iwidth = 5;

	for (size_t i = 0; i < p->n_jobs; i++) {
		const char *img = p->jobs[i].image ? p->jobs[i].image : "(busybox base)";
		if (!selected[i])
			continue;
		if ((int)strlen(p->jobs[i].name) > width)
			width = (int)strlen(p->jobs[i].name);
		if ((int)strlen(img) > iwidth)
			iwidth = (int)strlen(img);
	}
	if (!json)
		printf("%-*s  %-*s  %5s  %s\n", width, "JOB", iwidth, "IMAGE", "STEPS", "NEEDS");
	for (size_t i = 0; i < p->n_jobs; i++) {
		const struct kci_job *j = &p->jobs[i];
		if (!selected[i])
			continue;
		if (json) {
			json_object *o = json_object_new_object(), *needs = json_object_new_array();
			json_object_object_add(o, "job", json_object_new_string(j->name));
			json_object_object_add(o, "image",
					       j->image ? json_object_new_string(j->image) : NULL);
			json_object_object_add(o, "steps",
					       json_object_new_int64((int64_t)j->n_steps));
			for (size_t k = 0; j->needs && j->needs[k]; k++)
				json_object_array_add(needs, json_object_new_string(j->needs[k]));
			json_object_object_add(o, "needs", needs);
			puts(json_object_to_json_string_ext(
				o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_put(o);
			continue;
		}
		char *name = plain(j->name), *image = plain(j->image ? j->image : "(busybox base)");
		printf("%-*s  %-*s  %5zu  ", width, name, iwidth, image, j->n_steps);
		free(name);
		free(image);
		for (size_t k = 0; j->needs && j->needs[k]; k++) {
			char *need = plain(j->needs[k]);
			printf("%s%s", k ? ", " : "", need);
			free(need);
		}
		printf("%s\n", j->needs && j->needs[0] ? "" : "-");
	}
}

/* Removes run.tmp-<pid>-* dirs of kci processes that are gone (killed by a second Ctrl-C). */
static void
sweep_runs(const char *rundir)
{
	DIR *d = opendir(rundir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "run.tmp-", 8) != 0 || !kci_tmp_is_orphan(de->d_name))
			continue;
		char *path = kci_xasprintf("%s/%s", rundir, de->d_name);
		kci_rm_rf(path, NULL);
		free(path);
	}
	if (d)
		closedir(d);
}

struct run_state {
	struct run_opts o;
	char *project;	 /* the directory holding .kci.yml: the root or below it */
	const char *sub; /* project relative to root, "" for the root itself */
	char *workdir;	 /* the project in the guest */
	char *root, *home, *rundir, *scratch, *tree, *pipeline_path, *out_dir;
	struct kci_plan *plan;
	int *selected;
	char **secrets;
	struct kci_workspace_info ws;
};

static void
run_state_clear(struct run_state *s)
{
	if (s->scratch)
		kci_rm_rf(s->scratch, NULL);
	free(s->root);
	free(s->project);
	free(s->workdir);
	free(s->home);
	free(s->rundir);
	free(s->scratch);
	free(s->tree);
	free(s->pipeline_path);
	free(s->out_dir);
	kci_plan_free(s->plan);
	free(s->selected);
	kci_strv_free(s->secrets);
	kci_strv_free(s->o.jobs);
}

/*
 * The project is the nearest directory from DIR up to the repository root
 * that has a .kci.yml (the root when none has): a monorepo's subproject runs
 * its own pipeline, with the whole repository as its workspace.
 */
static int
find_project(struct run_state *s, struct kci_err *err)
{
	char *cur = realpath(s->o.dir ? s->o.dir : ".", NULL);
	size_t rootlen = strlen(s->root);

	if (!cur)
		return kci_err_sys(err, errno, "%s", s->o.dir ? s->o.dir : ".");
	while (strlen(cur) > rootlen && strncmp(cur, s->root, rootlen) == 0 &&
	       cur[rootlen] == '/') {
		char *file = kci_xasprintf("%s/%s", cur, PIPELINE_FILE);
		int found = access(file, F_OK) == 0;

		free(file);
		if (found)
			break;
		*strrchr(cur, '/') = '\0';
	}
	if (strncmp(cur, s->root, rootlen) != 0 || (cur[rootlen] && cur[rootlen] != '/')) {
		free(cur);
		cur = kci_xstrdup(s->root);
	}
	s->project = cur;
	s->sub = cur[rootlen] == '/' ? cur + rootlen + 1 : "";
	s->workdir = s->sub[0] ? kci_xasprintf("/workspace/%s", s->sub) : kci_xstrdup("/workspace");
	return 0;
}

/* Stages the workspace in a private dir under $KCI_HOME/run. */
static int
stage(struct run_state *s, struct kci_err *err)
{
	int rc;

	if ((rc = kci_home(&s->home, err)) < 0)
		return rc;
	s->rundir = kci_xasprintf("%s/run", s->home);
	if ((rc = kci_mkdir_p(s->rundir, 0700, err)) < 0)
		return rc;
	sweep_runs(s->rundir);
	s->scratch = kci_xasprintf("%s/run.tmp-%d-XXXXXX", s->rundir, (int)getpid());
	if (!mkdtemp(s->scratch)) {
		rc = kci_err_sys(err, errno, "mkdtemp %s", s->scratch);
		free(s->scratch);
		s->scratch = NULL;
		return rc;
	}
	s->tree = kci_xasprintf("%s/tree", s->scratch);
	if (mkdir(s->tree, 0755) < 0)
		return kci_err_sys(err, errno, "mkdir %s", s->tree);
	if ((rc = kci_workspace_stage(s->root, s->o.commit, s->tree, &s->ws, err)) < 0)
		return rc;
	/* A subproject's own output dir is kci's too, not the job's. */
	if (s->sub[0]) {
		char *out = kci_xasprintf("%s/%s/.kci", s->tree, s->sub);
		kci_rm_rf(out, NULL);
		free(out);
	}
	return 0;
}

/* Loads the pipeline: from the working tree, or from the staged commit. */
static int
load_plan(struct run_state *s, struct kci_err *err)
{
	char *path = kci_xasprintf("%s%s%s/%s", s->o.commit ? s->tree : s->root,
				   s->sub[0] ? "/" : "", s->sub, PIPELINE_FILE);
	char *text = NULL;
	size_t len;
	int rc;

	/* Messages name the file as the user knows it. */
	if (s->o.commit)
		s->pipeline_path = kci_xasprintf("%s:%s%s%s", s->o.commit, s->sub,
						 s->sub[0] ? "/" : "", PIPELINE_FILE);
	else {
		char *file = kci_xasprintf("%s/%s", s->project, PIPELINE_FILE);
		s->pipeline_path = shown_path(file);
		free(file);
	}
	rc = kci_read_file(path, KCI_PLAN_FILE_MAX, &text, &len, err);
	if (rc == KCI_NOTFOUND)
		rc = kci_err_set(err, KCI_NOTFOUND,
				 "no %s in %s%s%s\nA pipeline file lists the jobs to run; see "
				 "docs/pipeline.md for its format.",
				 PIPELINE_FILE, s->project, s->o.commit ? " at " : "",
				 s->o.commit ? s->o.commit : "");
	else if (rc == 0)
		rc = kci_plan_parse(text, len, s->pipeline_path, &s->plan, err);
	free(text);
	free(path);
	return rc;
}

int
kci_cmd_run(int argc, char **argv)
{
	struct run_state s = { .o = { .accel = KCI_ACCEL_AUTO } };
	struct kci_err err = KCI_ERR_INIT;
	struct kci_engine_opts eo = { .console_fd = -1 };
	struct stopper sw = { .signal_fd = -1, .stop_fd = -1, .cancel_fd = -1 };
	struct render r = { .stop = &sw };
	enum kci_job_state *states = NULL;
	char why[256];
	int rc, status = KCI_EXIT_RUNNER;

	rc = parse_opts(argc, argv, &s.o);
	if (rc <= 0) {
		kci_strv_free(s.o.jobs);
		return rc == 0 ? 0 : KCI_EXIT_RUNNER;
	}
	if ((rc = kci_workspace_root(s.o.dir ? s.o.dir : ".", &s.root, &err)) < 0 ||
	    (rc = find_project(&s, &err)) < 0)
		goto fail;
	/* --list of the working tree needs no copy of it. */
	if ((s.o.commit || !s.o.list) && (rc = stopper_start(&sw, &err)) < 0)
		goto fail;
	/* The working tree's pipeline is read before anything is copied: a typo costs nothing. */
	if (!s.o.commit && (rc = load_plan(&s, &err)) < 0)
		goto fail;
	if ((s.o.commit || !s.o.list) && (rc = stage(&s, &err)) < 0)
		goto fail;
	if (s.o.commit && (rc = load_plan(&s, &err)) < 0)
		goto fail;
	/* Copying a large tree takes a while: a Ctrl-C meanwhile ends the run here. */
	if (sw.signals > 0 || sw.output_gone)
		goto out;
	if (s.o.jobs) {
		if ((rc = kci_plan_select(s.plan, s.o.jobs, &s.selected, &err)) < 0)
			goto fail;
	} else {
		s.selected = kci_xcalloc(s.plan->n_jobs, sizeof(int));
		for (size_t i = 0; i < s.plan->n_jobs; i++)
			s.selected[i] = 1;
	}
	if (s.o.list) {
		list_jobs(s.plan, s.selected, s.o.json);
		status = 0;
		goto out;
	}
	if ((rc = gather_secrets(s.plan, s.selected, s.o.secret_file, &s.secrets, &err)) < 0)
		goto fail;
	if ((rc = kci_accel_choose(s.o.accel, &eo.accel, why, sizeof(why), &err)) < 0)
		goto fail;
	/* The engine creates it, refusing symlinks the repository may have planted. */
	s.out_dir = kci_xasprintf("%s/.kci", s.project);

	r.p = s.plan;
	r.selected = s.selected;
	r.json = s.o.json;
	r.color = !s.o.json && isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
	r.jobs = kci_xcalloc(s.plan->n_jobs, sizeof(*r.jobs));
	for (size_t i = 0; i < s.plan->n_jobs; i++)
		r.jobs[i].name = plain(s.plan->jobs[i].name);
	for (size_t i = 0; i < s.plan->n_jobs; i++)
		if (s.selected[i] && (int)strlen(s.plan->jobs[i].name) > r.width)
			r.width = (int)strlen(s.plan->jobs[i].name);
	if (r.width > PREFIX_WIDTH_MAX)
		r.width = PREFIX_WIDTH_MAX;
	if (!s.o.json) {
		char *where = s.o.commit ? kci_xasprintf(" at %.12s (%s)", s.ws.commit, s.o.commit)
			      : s.ws.is_git && s.ws.dirty
				      ? kci_xstrdup(" (working tree, with uncommitted changes)")
			      : s.ws.is_git ? kci_xstrdup(" (working tree)")
					    : kci_xstrdup("");
		printf("kci: %s %s%s; %s\n", s.ws.is_git ? "repository" : "directory", s.project,
		       where, why);
		fflush(stdout);
		free(where);
	}

	eo.home = s.home;
	eo.workspace = s.tree;
	eo.scratch_dir = s.scratch;
	eo.workdir = s.workdir;
	eo.out_dir = s.out_dir;
	eo.max_jobs = s.o.max_jobs;
	eo.secrets = s.secrets;
	eo.kernel = s.o.kernel;
	eo.console_fd = s.o.debug ? STDERR_FILENO : -1;
	eo.cancel_fd = sw.cancel_fd;
	eo.event = on_event;
	eo.ctx = &r;
	states = kci_xcalloc(s.plan->n_jobs, sizeof(*states));
	if ((rc = kci_engine_run(s.plan, s.selected, &eo, states, &err)) < 0)
		goto fail;
	status = summary(&r, sw.signals > 0 || sw.output_gone);
	goto out;
fail:
	if (!(rc == KCI_CANCELED && (sw.signals > 0 || sw.output_gone)))
		kci_print_error(err.msg);
out:
	stopper_end(&sw);
	for (size_t i = 0; r.jobs && i < s.plan->n_jobs; i++) {
		free(r.jobs[i].why);
		free(r.jobs[i].log);
		free(r.jobs[i].name);
	}
	free(r.jobs);
	free(states);
	run_state_clear(&s);
	/* However far the run got, how it was stopped decides the status. */
	if (sw.signals > 0)
		status = EXIT_INTERRUPTED;
	else if (sw.output_gone)
		status = sw.output_gone == EPIPE ? EXIT_OUTPUT_CLOSED : KCI_EXIT_RUNNER;
	return status;
}
