/* `kci exec`: run one command in a fresh micro-VM and exit with its status. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/fs.h"
#include "common/parse.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "engine/engine.h"
#include "images/images.h"
#include "runner/cli.h"
#include "vm/vm.h"

static const char usage_text[] =
	"Usage: kci exec [OPTIONS] [--] COMMAND [ARG...]\n"
	"       kci exec --image REF [OPTIONS] [--] [COMMAND [ARG...]]\n"
	"\n"
	"Run COMMAND in a fresh micro-VM with its own Linux kernel. stdout and stderr\n"
	"stream live; stdin is forwarded unless it is a terminal (then use -i or -it).\n"
	"\n"
	"Options:\n"
	"      --image REF       run in an OCI image (pulled if not in the store); its Env,\n"
	"                        WorkingDir, User, Entrypoint and Cmd apply\n"
	"      --rootfs DIR      root filesystem from a directory (cached as an ext4 image);\n"
	"                        default: a built-in busybox system\n"
	"      --kernel PATH     guest kernel bundle directory or vmlinuz file\n"
	"      --cpus N          virtual CPUs (default 2)\n"
	"      --memory SIZE     guest memory, e.g. 512M or 2G (default 512M)\n"
	"      --disk SIZE       writable scratch disk, sparse on the host (default 8G)\n"
	"      --timeout DUR     kill the VM after DUR, boot included: 90, 30s, 5m, 1h30m\n"
	"      --net MODE        guest networking: none (default: only lo) or nat (outbound\n"
	"                        TCP/UDP and DNS through passt; the host's loopback stays\n"
	"                        out of reach)\n"
	"      --workspace DIR   build a writable disk of DIR and mount it at /workspace;\n"
	"                        changes stay in the VM (DIR is never written)\n"
	"      --accel MODE      auto (default), kvm or tcg\n"
	"      --cold            boot the guest kernel; do not start from (or make) a VM\n"
	"                        template (docs/templates.md)\n"
	"  -e, --env K=V         set a variable in the guest (repeatable); -e K copies the host's\n"
	"  -w, --workdir DIR     working directory in the guest (default: the image's, or /)\n"
	"  -u, --user USER       run as USER (name, uid, name:group or uid:gid in the guest)\n"
	"  -i, --interactive     forward stdin even when it is a terminal\n"
	"  -t, --tty             give the command a pseudo-terminal (stdin must be a terminal)\n"
	"  -q, --quiet           no notices from kci itself\n"
	"      --debug           copy the guest console and QEMU command line to stderr\n"
	"  -h, --help            this help\n"
	"\n"
	"Exit status:\n"
	"  the command's own status, or 128+N when a signal N killed it\n"
	"  124  --timeout expired; the VM was killed\n"
	"  125  kci itself failed (a one-line 'kci: ...' message says why)\n"
	"  126  the command could not be executed\n"
	"  127  the command was not found\n"
	"  130  kci was interrupted (143 for SIGTERM); the VM was torn down\n"
	"  141  stdout or stderr was closed by its reader (as SIGPIPE); the VM was torn down\n";

struct exec_opts {
	const char *rootfs, *kernel, *workdir, *image, *user, *workspace;
	int network; /* KCI_VM_NET_* */
	unsigned cpus;
	uint64_t memory_mib, disk_mib;
	int64_t timeout_ms;
	enum kci_accel accel;
	int interactive, tty, quiet, debug, cold;
	char **env;
	size_t nenv;
};

enum {
	OPT_IMAGE = 255,
	OPT_ROOTFS = 256,
	OPT_KERNEL,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_DISK,
	OPT_TIMEOUT,
	OPT_NET,
	OPT_WORKSPACE,
	OPT_ACCEL,
	OPT_DEBUG,
	OPT_COLD
};

static const struct option long_opts[] = {
	{ "image", required_argument, NULL, OPT_IMAGE },
	{ "rootfs", required_argument, NULL, OPT_ROOTFS },
	{ "user", required_argument, NULL, 'u' },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "net", required_argument, NULL, OPT_NET },
	{ "workspace", required_argument, NULL, OPT_WORKSPACE },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "env", required_argument, NULL, 'e' },
	{ "workdir", required_argument, NULL, 'w' },
	{ "interactive", no_argument, NULL, 'i' },
	{ "tty", no_argument, NULL, 't' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ "cold", no_argument, NULL, OPT_COLD },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int
bad_value(const char *opt, const char *value, const char *expected)
{
	fprintf(stderr, "kci: exec: invalid %s '%s': expected %s\n", opt, value, expected);
	return -1;
}

static void
add_env(struct exec_opts *o, const char *kv)
{
	o->env = kci_xrealloc(o->env, (o->nenv + 2) * sizeof(char *));
	if (strchr(kv, '=')) {
		o->env[o->nenv++] = kci_xstrdup(kv);
	} else {
		const char *v = getenv(kv);
		if (!v)
			return; /* like docker: -e NAME with NAME unset passes nothing */
		o->env[o->nenv++] = kci_xasprintf("%s=%s", kv, v);
	}
	o->env[o->nenv] = NULL;
}

/* Parses options; returns the index of COMMAND in argv, or -1 after printing why. */
static int
parse_opts(int argc, char **argv, struct exec_opts *o)
{
	int c;

	optind = 1;
	opterr = 0;
	/* "+": stop at the first non-option so the command's own flags stay its own. */
	while ((c = getopt_long(argc, argv, "+:e:w:u:itqh", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_ROOTFS:
			o->rootfs = optarg;
			break;
		case OPT_IMAGE:
			o->image = optarg;
			break;
		case 'u':
			o->user = optarg;
			break;
		case OPT_KERNEL:
			o->kernel = optarg;
			break;
		case OPT_CPUS:
			if (kci_parse_uint(optarg, 1, 64, &o->cpus) < 0)
				return bad_value("--cpus", optarg, "a number from 1 to 64");
			break;
		case OPT_MEMORY:
			if (kci_parse_size_mib(optarg, &o->memory_mib) < 0 || o->memory_mib < 64 ||
			    o->memory_mib > 1 << 20)
				return bad_value("--memory", optarg,
						 "a size from 64M to 1024G, e.g. 512M or 2G");
			break;
		case OPT_DISK:
			if (kci_parse_size_mib(optarg, &o->disk_mib) < 0 || o->disk_mib < 64)
				return bad_value("--disk", optarg,
						 "a size of at least 64M, e.g. 8G");
			break;
		case OPT_TIMEOUT:
			if (kci_parse_duration(optarg, &o->timeout_ms) < 0 || o->timeout_ms <= 0)
				return bad_value("--timeout", optarg,
						 "a duration such as 90, 30s, 5m or 1h30m");
			break;
		case OPT_NET:
			if (strcmp(optarg, "none") == 0)
				o->network = KCI_VM_NET_NONE;
			else if (strcmp(optarg, "nat") == 0)
				o->network = KCI_VM_NET_NAT;
			else
				return bad_value("--net", optarg, "none or nat");
			break;
		case OPT_WORKSPACE:
			o->workspace = optarg;
			break;
		case OPT_ACCEL:
			if (kci_vm_accel_parse(optarg, &o->accel) < 0)
				return bad_value("--accel", optarg, "auto, kvm or tcg");
			break;
		case 'e':
			add_env(o, optarg);
			break;
		case 'w':
			if (optarg[0] != '/')
				return bad_value("--workdir", optarg, "an absolute path");
			o->workdir = optarg;
			break;
		case 'i':
			o->interactive = 1;
			break;
		case 't':
			o->tty = 1;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case OPT_DEBUG:
			o->debug = 1;
			break;
		case OPT_COLD:
			o->cold = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case ':':
			fprintf(stderr, "kci: exec: %s needs a value\n", argv[optind - 1]);
			return -1;
		default:
			if (optopt)
				fprintf(stderr, "kci: exec: unknown option '-%c'\n", optopt);
			else
				fprintf(stderr, "kci: exec: unknown option '%s'\n",
					argv[optind - 1]);
			fprintf(stderr, "Run 'kci exec --help' for the options.\n");
			return -1;
		}
	}
	if (o->image && o->rootfs) {
		fprintf(stderr, "kci: exec: --image and --rootfs are alternatives; give one\n");
		return -1;
	}
	if (optind >= argc && !o->image) {
		fprintf(stderr, "kci: exec: no command given\nUsage: kci exec [OPTIONS] [--] "
				"COMMAND [ARG...]\n");
		return -1;
	}
	return optind;
}

/* What -t and -e add to the guest's environment, after the image's Env (later wins). */
static char **
exec_env(const struct exec_opts *o)
{
	const char *term = getenv("TERM");
	char **env = kci_xcalloc(1, sizeof(char *));
	size_t n = 0;

	if (o->tty) {
		char *t = kci_xasprintf("TERM=%s", term && *term ? term : "xterm");
		kci_env_set(&env, &n, t);
		free(t);
	}
	for (size_t i = 0; i < o->nenv; i++)
		kci_env_set(&env, &n, o->env[i]);
	return env;
}

/* Terminal state restored on every exit path of -t. */
struct term_state {
	int active;
	struct termios saved;
};

static int
term_raw(struct term_state *t)
{
	struct termios raw;

	if (tcgetattr(STDIN_FILENO, &t->saved) < 0)
		return -1;
	raw = t->saved;
	cfmakeraw(&raw);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
		return -1;
	t->active = 1;
	return 0;
}

static void
term_restore(struct term_state *t)
{
	if (t->active)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	t->active = 0;
}

/* Everything up to the VM: the guest kit, the root disk, the workspace disk. */
struct prepared {
	struct kci_kit *kit;
	struct kci_root root;
	char *workspace; /* this run's workspace disk template, removed afterwards */
	struct kci_progress progress;
};

/* Watches the signalfd on a thread while prepare() runs; signo is the cancel flag. */
struct watch {
	int signal_fd, stop_fd, running;
	volatile sig_atomic_t signo;
	pthread_t thread;
};

static void *
watch_main(void *arg)
{
	struct watch *w = arg;
	struct signalfd_siginfo si;

	for (;;) {
		/* stdout with no events: POLLERR/POLLHUP say its reader is gone. */
		struct pollfd p[3] = { { w->signal_fd, POLLIN, 0 },
				       { w->stop_fd, POLLIN, 0 },
				       { STDOUT_FILENO, 0, 0 } };
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			return NULL;
		if (p[1].revents)
			return NULL;
		if (p[2].revents & (POLLERR | POLLHUP)) {
			w->signo = SIGPIPE;
			return NULL;
		}
		if (p[0].revents && read(w->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si) &&
		    si.ssi_signo != SIGWINCH) {
			w->signo = (sig_atomic_t)si.ssi_signo;
			return NULL;
		}
	}
}

static void
watch_start(struct watch *w, int signal_fd)
{
	w->signal_fd = signal_fd;
	w->stop_fd = eventfd(0, EFD_CLOEXEC);
	w->running = w->stop_fd >= 0 && pthread_create(&w->thread, NULL, watch_main, w) == 0;
}

static void
watch_stop(struct watch *w)
{
	uint64_t one = 1;

	if (w->running) {
		(void)!write(w->stop_fd, &one, sizeof(one));
		pthread_join(w->thread, NULL);
	}
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	w->running = 0;
	w->stop_fd = -1;
}

static int
prepare(const struct exec_opts *o, struct prepared *p, const volatile sig_atomic_t *cancel,
	struct kci_err *err)
{
	struct kci_kit_opts ko = { .kernel = o->kernel, .accel = o->accel, .cold = o->cold };
	struct kci_root_progress rp = { .progress = kci_progress_blob,
					.phase = kci_progress_phase,
					.ctx = &p->progress,
					.cancel = cancel };
	const char *why;
	int rc;

	if ((rc = kci_engine_kit_new(&p->kit, &ko, err)) < 0)
		return rc;
	p->progress.tty = !o->quiet && isatty(STDERR_FILENO);
	if (o->image)
		rc = kci_engine_root_image(p->kit, o->image, &rp, &p->root, err);
	else if (o->rootfs)
		rc = kci_engine_root_dir(p->kit, o->rootfs, &p->root, err);
	else
		rc = kci_engine_root_base(p->kit, &p->root, err);
	if (rc < 0)
		return rc;
	/* As much room to write as the scratch disk has; sparse, so free until used. */
	if (o->workspace && (rc = kci_engine_workspace_disk(p->kit, o->workspace, o->disk_mib,
							    &p->workspace, err)) < 0)
		return kci_err_prefix(err, "--workspace %s", o->workspace);
	/* Say once, where a person is watching, that guests are emulated here. */
	if (kci_engine_kit_accel(p->kit, &why) == KCI_ACCEL_TCG && o->accel == KCI_ACCEL_AUTO &&
	    !o->quiet && isatty(STDERR_FILENO))
		fprintf(stderr, "kci: using %s\n", why);
	return 0;
}

static void
prepared_clear(struct prepared *p)
{
	if (p->workspace)
		unlink(p->workspace);
	free(p->workspace);
	kci_engine_root_clear(&p->root);
	kci_engine_kit_free(p->kit);
}

/* Maps how the run ended to kci exec's exit status, printing what the user must know. */
static int
exit_status(int rc, const struct kci_vm_result *res, int signo, struct kci_err *err)
{
	if (rc == KCI_TIMEOUT) {
		kci_print_error(err->msg);
		return KCI_EXIT_TIMEOUT;
	}
	if (rc == KCI_CANCELED) {
		fprintf(stderr, "kci: %s; the VM was torn down\n", err->msg);
		return signo ? 128 + signo : 130;
	}
	if (rc < 0) {
		kci_print_error(err->msg);
		return KCI_EXIT_RUNNER;
	}
	if (res->error[0])
		fprintf(stderr, "kci: %s\n", res->error);
	return res->signal ? 128 + res->signal : res->code;
}

/* The VM's news (a boot redone): one line on stderr, unless --quiet. */
static void
exec_notice(void *ctx, const char *text)
{
	const struct exec_opts *o = ctx;

	if (!o->quiet)
		fprintf(stderr, "kci: %s%s", text, o->tty ? "\r\n" : "\n");
}

int
kci_cmd_exec(int argc, char **argv)
{
	struct exec_opts o = {
		.cpus = 2, .memory_mib = 512, .disk_mib = 8192, .accel = KCI_ACCEL_AUTO
	};
	struct kci_vm_opts vo = KCI_VM_OPTS_INIT;
	struct kci_vm_io io = KCI_VM_IO_INIT;
	struct kci_run_req req = { 0 };
	struct kci_vm_result res = { 0 };
	struct kci_err err = KCI_ERR_INIT;
	struct prepared p = { 0 };
	struct term_state term = { 0 };
	struct kci_vm *vm = NULL;
	struct watch watch = { .stop_fd = -1 };
	char **env = NULL;
	sigset_t sigs;
	int cmd, rc, signo = 0, stdin_tty = isatty(STDIN_FILENO);

	if ((cmd = parse_opts(argc, argv, &o)) < 0)
		return KCI_EXIT_RUNNER;
	if (o.tty && !stdin_tty) {
		fprintf(stderr, "kci: exec: -t needs a terminal on stdin\n");
		return KCI_EXIT_RUNNER;
	}
	/* Signals become events in the VM loop, so teardown happens on our terms. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGWINCH);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	io.signal_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (io.signal_fd < 0) {
		rc = kci_err_sys(&err, errno, "signalfd");
		goto out;
	}

	/* Pulls can take minutes: a watcher turns Ctrl-C into cancellation meanwhile. */
	watch_start(&watch, io.signal_fd);
	rc = prepare(&o, &p, &watch.signo, &err);
	watch_stop(&watch);
	if (watch.signo) {
		signo = watch.signo;
		rc = signo == SIGPIPE
			     ? kci_err_set(&err, KCI_CANCELED,
					   "stdout was closed (its reader went away)")
			     : kci_err_set(&err, KCI_CANCELED, "interrupted by signal %d", signo);
		goto out;
	}
	if (rc < 0)
		goto out;
	struct kci_req_opts ro = { .argv = argv + cmd,
				   .entrypoint = 1,
				   .env = env = exec_env(&o),
				   .cwd = o.workdir,
				   .user = o.user,
				   .tty = o.tty };
	if (o.tty) {
		struct winsize ws;
		io.tty_fd = STDIN_FILENO;
		if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
			ro.rows = ws.ws_row;
			ro.cols = ws.ws_col;
		}
	}
	if ((rc = kci_engine_request(&p.root.image, &ro, &req, &err)) < 0) {
		if (o.image)
			kci_err_prefix(&err, "image %s", o.image);
		goto out;
	}
	io.stdin_fd = (!stdin_tty || o.interactive || o.tty) ? STDIN_FILENO : -1;
	kci_engine_vm_opts(p.kit, &p.root, &vo);
	vo.cpus = o.cpus;
	vo.memory_mib = o.memory_mib;
	vo.scratch_mib = o.disk_mib;
	vo.workspace = p.workspace;
	vo.network = o.network;
	vo.timeout_ms = o.timeout_ms;
	vo.console_fd = o.debug ? STDERR_FILENO : -1;
	io.notice = exec_notice;
	io.ctx = &o;
	if ((rc = kci_vm_start(&vm, &vo, &err)) < 0)
		goto out;
	if (o.tty && term_raw(&term) < 0) {
		rc = kci_err_sys(&err, errno, "cannot put the terminal in raw mode");
		goto out;
	}
	rc = kci_vm_exec(vm, &req, &io, &res, &signo, &err);
out:
	term_restore(&term);
	kci_vm_free(vm);
	prepared_clear(&p);
	kci_run_req_clear(&req);
	kci_strv_free(env);
	for (size_t i = 0; i < o.nenv; i++)
		free(o.env[i]);
	free(o.env);
	if (io.signal_fd >= 0)
		close(io.signal_fd);
	return exit_status(rc, &res, signo, &err);
}
