/* Helpers every subcommand shares: error lines and "did you mean". */
#include <stdio.h>
#include <string.h>

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
