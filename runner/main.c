/*
 * kci: run CI jobs in throwaway micro-VMs. This file dispatches subcommands.
 *
 * What this process may do: spawn QEMU and host tools (mke2fs), read and write
 * under KCI_HOME, read the guest bundle, talk to its VMs over socketpairs. It
 * never runs anything it got from a guest.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/version.h"
#include "runner/cli.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "run", kci_cmd_run, "run the repository's pipeline (.kci.yml), each job in a micro-VM" },
	{ "exec", kci_cmd_exec, "run one command in a fresh micro-VM" },
	{ "serve", kci_cmd_serve, "a CI server: webhooks, a build queue, agents, a web UI" },
	{ "agent", kci_cmd_agent, "run the jobs a kci server hands out, here" },
	{ "pull", kci_cmd_pull, "pull an image from a registry into the local store" },
	{ "images", kci_cmd_images, "list the images in the local store" },
	{ "load", kci_cmd_load, "load an OCI layout directory or a docker save tarball" },
	{ "rmi", kci_cmd_rmi, "remove images from the local store" },
	{ "prune", kci_cmd_prune, "delete blobs and disks no image needs" },
	{ "doctor", kci_cmd_doctor, "check this host: accelerator, QEMU, guest kernel, store" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *f)
{
	fprintf(f, "Usage: kci COMMAND [OPTIONS]\n\n"
		   "Run CI jobs, each in its own throwaway micro-VM with its own Linux kernel.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "  %-8s %s\n", "version", "print the version");
	fprintf(f, "\nRun 'kci COMMAND --help' for a command's options.\n"
		   "Environment: KCI_HOME (data dir), KCI_GUEST_DIR (guest kernel bundle).\n");
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	/* A closed stdout is an error to report, not a reason to die silently. */
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Started with stdin, stdout or stderr closed, our next fds would take
	 * their numbers and guest output would land in them: fill the gaps.
	 */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return KCI_EXIT_RUNNER;
	if (!cmd || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(cmd ? stdout : stderr);
		return cmd ? 0 : KCI_EXIT_RUNNER;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("kci %s\n", KCI_VERSION);
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kci: unknown command '%s'", cmd);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (kci_distance(cmd, commands[i].name) <= 2) {
			fprintf(stderr, "; did you mean '%s'?", commands[i].name);
			break;
		}
	}
	fprintf(stderr, "\nRun 'kci --help' for the list of commands.\n");
	return KCI_EXIT_RUNNER;
}
