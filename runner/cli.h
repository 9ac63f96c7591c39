/* The kci program's subcommands and the helpers they share. */
#ifndef KCI_RUNNER_CLI_H
#define KCI_RUNNER_CLI_H

#include <signal.h>

#include "common/err.h"

/* kci's own failure, as docker run: 125. */
#define KCI_EXIT_RUNNER	 125
#define KCI_EXIT_TIMEOUT 124

int kci_cmd_exec(int argc, char **argv);
int kci_cmd_doctor(int argc, char **argv);
int kci_cmd_pull(int argc, char **argv);
int kci_cmd_images(int argc, char **argv);
int kci_cmd_rmi(int argc, char **argv);
int kci_cmd_prune(int argc, char **argv);
int kci_cmd_load(int argc, char **argv);

struct kci_image_config;
/*
 * The cached read-only root disk for image `ref` (pulled first if the store
 * lacks it), and the image's config in *cfg (caller clears it).
 */
int kci_image_disk(const char *home, const char *cache, const char *ref, int quiet,
		   const volatile sig_atomic_t *cancel, struct kci_image_config *cfg, char **disk,
		   struct kci_err *err);

/* Prints "kci: msg" to stderr; multi-line messages get their continuation lines indented. */
void kci_print_error(const char *msg);

#endif
