/* Helpers every subcommand shares: error lines and "did you mean". */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>

#include "common/xalloc.h"

#include "runner/cli.h"

/* Levenshtein distance, for "did you mean". */
size_t
kci_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[32];

	if (la >= 31 || lb >= 31)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t sub = prev + (a[i - 1] != b[j - 1]);
			size_t best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
			row[j] = sub < best ? sub : best;
			prev = cur;
		}
	}
	return row[lb];
}

void
kci_print_error(const char *msg)
{
	fputs("kci: ", stderr);
	for (const char *p = msg; *p; p++) {
		fputc(*p, stderr);
		if (*p == '\n' && p[1])
			fputs("  | ", stderr);
	}
	fputc('\n', stderr);
}

void
kci_unknown_option(const char *cmd, const struct option *opts, const char *arg)
{
	const char *best = NULL;
	size_t best_d = 3, len = strcspn(arg, "=");

	for (const struct option *o = opts; o->name; o++) {
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
		fprintf(stderr, "kci: %s: option '%s' needs a value\n", cmd, arg);
	else if (best)
		fprintf(stderr, "kci: %s: unknown option '%s'; did you mean '--%s'?\n", cmd, arg,
			best);
	else
		fprintf(stderr, "kci: %s: unknown option '%s'\n", cmd, arg);
}

int
kci_stop_signalfd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}
