/*
 * kci serve and kci agent: option parsing, signals and log lines around
 * server/, which does the work.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/parse.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "runner/cli.h"
#include "server/server.h"

#define TOKEN_MAX 4096

static const char serve_usage[] =
	"Usage: kci serve --config FILE [OPTIONS]\n"
	"\n"
	"A CI server: receives GitHub, Gitea/Forgejo and GitLab webhooks, builds each push\n"
	"in micro-VMs (here, and on any kci agent that connects), posts commit statuses,\n"
	"and serves a web UI with live logs and an API. See docs/server.md.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE     the server's config (YAML; docs/server.md)\n"
	"      --data DIR        its state: database, logs, mirrors (default\n"
	"                        $KCI_HOME/server)\n"
	"      --no-local-agent  run no jobs here: only agents on other machines do\n"
	"      --capacity N      jobs at once here (default: from host CPUs and memory)\n"
	"      --registry HOST, --insecure-registry HOST, --timeout DUR, --max-output SIZE,\n"
	"      --kernel PATH, --accel MODE, --cold\n"
	"                        for the jobs run here, as for kci run\n"
	"  -h, --help            this help\n"
	"\n"
	"Stop it with SIGTERM or Ctrl-C: the jobs running here are handed back and run\n"
	"again when it starts (or on an agent). Nothing is lost when it is killed.\n";

static const char agent_usage[] =
	"Usage: kci agent --server URL --token-file FILE [OPTIONS]\n"
	"\n"
	"Runs jobs a kci server hands out, each in a micro-VM on this machine, and streams\n"
	"their logs back. See docs/server.md.\n"
	"\n"
	"Options:\n"
	"  -s, --server URL      the server: https://ci.example.com\n"
	"      --token-file FILE the agent token (the file named by the server's\n"
	"                        agent_token_file)\n"
	"      --name NAME       how the server shows this agent (default: the host name)\n"
	"      --capacity N      jobs at once (default: from host CPUs and memory)\n"
	"      --insecure        allow plain http to a server that is not on loopback\n"
	"                        (the token and the jobs' secrets cross in the clear)\n"
	"      --ca-file FILE    trust the CAs in FILE (PEM) for the server's certificate\n"
	"                        instead of the system's\n"
	"      --registry HOST   let the pipelines' images come from HOST[:PORT] over HTTPS\n"
	"                        (repeatable; docker.io for Docker Hub)\n"
	"      --insecure-registry HOST\n"
	"                        the same over plain HTTP (repeatable)\n"
	"      --timeout DUR     time limit of a job whose pipeline sets none (default 1h)\n"
	"      --max-output SIZE output a job may print before it is failed (default 64M)\n"
	"      --kernel PATH     guest kernel bundle directory or vmlinuz file\n"
	"      --accel MODE      auto (default), kvm or tcg\n"
	"      --cold            boot every job's kernel; no VM templates (docs/templates.md)\n"
	"  -h, --help            this help\n"
	"\n"
	"Stop it with SIGTERM or Ctrl-C: it takes no new jobs and finishes the running\n"
	"ones; a second signal hands them back to the server at once.\n";

enum {
	OPT_DATA = 256,
	OPT_NO_LOCAL,
	OPT_CAPACITY,
	OPT_TOKEN_FILE,
	OPT_NAME,
	OPT_INSECURE,
	OPT_CA_FILE,
	OPT_REGISTRY,
	OPT_INSECURE_REGISTRY,
	OPT_TIMEOUT,
	OPT_MAX_OUTPUT,
	OPT_KERNEL,
	OPT_ACCEL,
	OPT_COLD,
};

static const struct option serve_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "data", required_argument, NULL, OPT_DATA },
	{ "no-local-agent", no_argument, NULL, OPT_NO_LOCAL },
	{ "capacity", required_argument, NULL, OPT_CAPACITY },
	{ "registry", required_argument, NULL, OPT_REGISTRY },
	{ "insecure-registry", required_argument, NULL, OPT_INSECURE_REGISTRY },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "cold", no_argument, NULL, OPT_COLD },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const struct option agent_opts[] = {
	{ "server", required_argument, NULL, 's' },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "capacity", required_argument, NULL, OPT_CAPACITY },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "ca-file", required_argument, NULL, OPT_CA_FILE },
	{ "registry", required_argument, NULL, OPT_REGISTRY },
	{ "insecure-registry", required_argument, NULL, OPT_INSECURE_REGISTRY },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "cold", no_argument, NULL, OPT_COLD },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct opts {
	const char *config, *data, *token_file;
	int no_local;
	struct kci_agent_opts agent;
	char **registries, **insecure;
	size_t nregistries, ninsecure;
	uint64_t max_output_mib;
};

static int
bad_value(const char *cmd, const char *opt, const char *value, const char *want)
{
	fprintf(stderr, "kci: %s: invalid %s '%s': expected %s\n", cmd, opt, value, want);
	return -1;
}

/* 1: go on; 0: --help printed; -1: a usage error, printed. */
static int
parse(const char *cmd, int argc, char **argv, const struct option *longs, const char *shorts,
      const char *usage, struct opts *o)
{
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 's':
			o->agent.server = optarg;
			break;
		case OPT_DATA:
			o->data = optarg;
			break;
		case OPT_NO_LOCAL:
			o->no_local = 1;
			break;
		case OPT_TOKEN_FILE:
			o->token_file = optarg;
			break;
		case OPT_NAME:
			if (!optarg[0] || strlen(optarg) > 128)
				return bad_value(cmd, "--name", optarg, "1 to 128 characters");
			o->agent.name = optarg;
			break;
		case OPT_INSECURE:
			o->agent.insecure = 1;
			break;
		case OPT_CA_FILE:
			if (access(optarg, R_OK) < 0)
				return bad_value(cmd, "--ca-file", optarg,
						 "a readable PEM file of CA certificates");
			o->agent.ca_file = optarg;
			break;
		case OPT_CAPACITY:
			if (kci_parse_uint(optarg, 1, 256, &o->agent.capacity) < 0)
				return bad_value(cmd, "--capacity", optarg,
						 "a number from 1 to 256");
			break;
		case OPT_REGISTRY:
			kci_strv_add(&o->registries, &o->nregistries, optarg);
			break;
		case OPT_INSECURE_REGISTRY:
			kci_strv_add(&o->insecure, &o->ninsecure, optarg);
			break;
		case OPT_TIMEOUT:
			if (kci_parse_duration(optarg, &o->agent.default_timeout_ms) < 0 ||
			    o->agent.default_timeout_ms <= 0)
				return bad_value(cmd, "--timeout", optarg,
						 "a duration such as 90, 30s, 5m or 1h30m");
			break;
		case OPT_MAX_OUTPUT:
			if (kci_parse_size_mib(optarg, &o->max_output_mib) < 0 ||
			    o->max_output_mib < 1 || o->max_output_mib > 1 << 20)
				return bad_value(cmd, "--max-output", optarg,
						 "a size from 1M to 1024G, e.g. 64M");
			o->agent.output_limit = o->max_output_mib << 20;
			break;
		case OPT_KERNEL:
			o->agent.kernel = optarg;
			break;
		case OPT_ACCEL:
			if (kci_vm_accel_parse(optarg, &o->agent.accel) < 0)
				return bad_value(cmd, "--accel", optarg, "auto, kvm or tcg");
			break;
		case OPT_COLD:
			o->agent.cold = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			if (optopt > 0 && optopt < 256 && argv[optind - 1][1] != '-')
				fprintf(stderr, "kci: %s: option '-%c' %s\n", cmd, optopt,
					strchr(shorts, optopt) ? "needs a value" : "is unknown");
			else
				kci_unknown_option(cmd, longs, argv[optind - 1]);
			fprintf(stderr, "Run 'kci %s --help' for the options.\n", cmd);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"kci: %s: unexpected argument '%s'\nRun 'kci %s --help' for the "
			"options.\n",
			cmd, argv[optind], cmd);
		return -1;
	}
	o->agent.registries.registries = o->registries;
	o->agent.registries.insecure = o->insecure;
	return 1;
}

/* ---- signals become bytes on a pipe: one stop request each ---- */

struct stopper {
	int signal_fd, pipe[2], quit;
	pthread_t thread;
	int running;
};

static void *
stopper_main(void *arg)
{
	struct stopper *st = arg;
	struct signalfd_siginfo si;

	for (;;) {
		struct pollfd p[2] = { { st->signal_fd, POLLIN, 0 }, { st->quit, POLLIN, 0 } };

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return NULL;
		if (p[1].revents)
			return NULL;
		if ((p[0].revents & POLLIN) &&
		    read(st->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			(void)!write(st->pipe[1], "x", 1);
	}
}

static int
stopper_start(struct stopper *st, struct kci_err *err)
{
	st->signal_fd = kci_stop_signalfd();
	st->quit = eventfd(0, EFD_CLOEXEC);
	if (st->signal_fd < 0 || st->quit < 0 || pipe2(st->pipe, O_CLOEXEC) < 0)
		return kci_err_sys(err, errno, "signalfd/pipe");
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
		(void)!write(st->quit, &one, sizeof(one));
		pthread_join(st->thread, NULL);
	}
	st->running = 0;
	if (st->signal_fd >= 0)
		close(st->signal_fd);
	if (st->quit >= 0)
		close(st->quit);
	for (int i = 0; i < 2; i++)
		if (st->pipe[i] >= 0)
			close(st->pipe[i]);
}

/* ---- log lines, stamped ---- */

static void
log_line(void *ctx, const char *line)
{
	const char *who = ctx;
	char stamp[32];
	struct tm tm;
	time_t t = time(NULL);

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s kci %s: ", stamp, who);
	kci_put_sanitized(stderr, line, strlen(line));
	fputc('\n', stderr);
	funlockfile(stderr);
}

static void
opts_clear(struct opts *o)
{
	kci_strv_free(o->registries);
	kci_strv_free(o->insecure);
}

int
kci_cmd_serve(int argc, char **argv)
{
	struct kci_err err = KCI_ERR_INIT;
	struct opts o = { 0 };
	struct stopper st = { .signal_fd = -1, .pipe = { -1, -1 }, .quit = -1 };
	struct kci_serve_opts so = { 0 };
	int rc;

	if ((rc = parse("serve", argc, argv, serve_opts, "c:h", serve_usage, &o)) <= 0) {
		opts_clear(&o);
		return rc == 0 ? 0 : KCI_EXIT_RUNNER;
	}
	if (!o.config) {
		fprintf(stderr,
			"kci: serve: --config FILE is required (docs/server.md shows one)\n");
		opts_clear(&o);
		return KCI_EXIT_RUNNER;
	}
	if ((rc = stopper_start(&st, &err)) == 0) {
		so.config = o.config;
		so.data = o.data;
		so.local = o.no_local ? NULL : &o.agent;
		so.stop_fd = st.pipe[0];
		so.log = log_line;
		so.log_ctx = "serve";
		o.agent.log = log_line;
		o.agent.log_ctx = "agent";
		rc = kci_server_serve(&so, &err);
	}
	stopper_end(&st);
	opts_clear(&o);
	if (rc < 0) {
		kci_print_error(err.msg);
		return KCI_EXIT_RUNNER;
	}
	return 0;
}

int
kci_cmd_agent(int argc, char **argv)
{
	struct kci_err err = KCI_ERR_INIT;
	struct opts o = { 0 };
	struct stopper st = { .signal_fd = -1, .pipe = { -1, -1 }, .quit = -1 };
	char *token = NULL;
	size_t len = 0;
	int rc;

	if ((rc = parse("agent", argc, argv, agent_opts, "s:h", agent_usage, &o)) <= 0) {
		opts_clear(&o);
		return rc == 0 ? 0 : KCI_EXIT_RUNNER;
	}
	if (!o.agent.server || !o.token_file) {
		fprintf(stderr, "kci: agent: --server URL and --token-file FILE are required\n"
				"Run 'kci agent --help' for the options.\n");
		opts_clear(&o);
		return KCI_EXIT_RUNNER;
	}
	if ((rc = kci_read_file(o.token_file, TOKEN_MAX, &token, &len, &err)) == 0) {
		while (len && (token[len - 1] == '\n' || token[len - 1] == '\r'))
			token[--len] = '\0';
		if (!len || strlen(token) != len)
			rc = kci_err_set(&err, KCI_INVALID, "%s holds no token", o.token_file);
		/* It goes into an HTTP header: one line of printable ASCII, nothing else. */
		for (size_t i = 0; rc == 0 && i < len; i++)
			if (token[i] <= ' ' || token[i] > '~')
				rc = kci_err_set(&err, KCI_INVALID,
						 "%s: a token is one line of printable characters",
						 o.token_file);
	}
	if (rc == 0 && (rc = stopper_start(&st, &err)) == 0) {
		o.agent.token = token;
		o.agent.stop_fd = st.pipe[0];
		o.agent.log = log_line;
		o.agent.log_ctx = "agent";
		rc = kci_server_agent(&o.agent, &err);
	}
	stopper_end(&st);
	if (token)
		memset(token, 0, len);
	free(token);
	opts_clear(&o);
	if (rc < 0) {
		kci_print_error(err.msg);
		return KCI_EXIT_RUNNER;
	}
	return 0;
}
