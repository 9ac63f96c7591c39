/* The kci program's subcommands and the helpers they share. */
#ifndef KCI_RUNNER_CLI_H
#define KCI_RUNNER_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* kci's own failure, as docker run: 125. */
#define KCI_EXIT_RUNNER	 125
#define KCI_EXIT_TIMEOUT 124

int kci_cmd_run(int argc, char **argv);
int kci_cmd_exec(int argc, char **argv);
int kci_cmd_doctor(int argc, char **argv);
int kci_cmd_pull(int argc, char **argv);
int kci_cmd_images(int argc, char **argv);
int kci_cmd_rmi(int argc, char **argv);
int kci_cmd_prune(int argc, char **argv);
int kci_cmd_load(int argc, char **argv);

/* Pull progress on stderr's terminal, for kci_image_disk(). */
void kci_print_progress(void *ctx, const char *digest, uint64_t done, uint64_t total);

/* Levenshtein distance, for "did you mean". */
size_t kci_distance(const char *a, const char *b);

/* Prints "kci: msg" to stderr; multi-line messages get their continuation lines indented. */
void kci_print_error(const char *msg);

#endif
