/* The kci program's subcommands and the helpers they share. */
#ifndef KCI_RUNNER_CLI_H
#define KCI_RUNNER_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "engine/engine.h"

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
int kci_cmd_serve(int argc, char **argv);
int kci_cmd_agent(int argc, char **argv);

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

/* ---- render.c: a run's events as text or JSON ---- */

struct kci_render;
/* Renders to out the run of the selected jobs (NULL = all) of p, as JSON or text (colour). */
struct kci_render *kci_render_new(FILE *out, const struct kci_plan *p, const int *selected,
				  int json, int color);
void kci_render_free(struct kci_render *r);
/* One event; KCI_EV_RUN_END prints the summary. Errors show in ferror(out). */
void kci_render_event(struct kci_render *r, const struct kci_event *ev);
/* The run was stopped: the summary says so. */
void kci_render_interrupted(struct kci_render *r);
/* Whether every selected job passed. */
int kci_render_passed(const struct kci_render *r);
/* kci run --list: jobs, images, step counts and needs. */
void kci_render_list(FILE *f, const struct kci_plan *p, const int *selected, int json);
/*
 * Guest and repository text is hostile: it must not drive the user's
 * terminal. Writes s with every control byte (C0, DEL, C1 raw or UTF-8) as
 * '?', except tabs and colour (SGR: ESC [ digits ; ... m).
 */
void kci_put_sanitized(FILE *f, const char *s, size_t len);
/* A new copy of s with every control as '?' (colour included): for names. */
char *kci_plain(const char *s);

/* "kci: CMD: unknown option '--jbo'; did you mean '--job'?" (or "needs a value") on stderr. */
struct option;
void kci_unknown_option(const char *cmd, const struct option *opts, const char *arg);

/*
 * Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread it starts
 * from here on (so none is lost while a command sets up), and returns a
 * non-blocking signalfd that reads them; -1 with errno on failure.
 */
int kci_stop_signalfd(void);

/* Prints "kci: msg" to stderr; multi-line messages get their continuation lines indented. */
void kci_print_error(const char *msg);

#endif
