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

/* Progress of pulls and disk builds on stderr, when it is a terminal (progress.c). */
struct kci_progress {
	int tty; /* 0: print nothing */
	int64_t last_ms;
	unsigned long redraws;
};
/* kci_image_disk_opts.progress and kci_pull_opts.progress; ctx is a struct kci_progress. */
void kci_progress_blob(void *ctx, const char *digest, uint64_t done, uint64_t total);
/* kci_image_disk_opts.phase: "pulling REF..." on its own line. */
void kci_progress_phase(void *ctx, const char *what);
/* 1234567 -> "1.2MB". */
void kci_human_size(uint64_t n, char *buf, size_t size);

/* Levenshtein distance, for "did you mean". */
size_t kci_distance(const char *a, const char *b);

/* Prints "kci: msg" to stderr; multi-line messages get their continuation lines indented. */
void kci_print_error(const char *msg);

#endif
