/* The kci program's subcommands and the helpers they share. */
#ifndef KCI_RUNNER_CLI_H
#define KCI_RUNNER_CLI_H

/* kci's own failure, as docker run: 125. */
#define KCI_EXIT_RUNNER	 125
#define KCI_EXIT_TIMEOUT 124

int kci_cmd_exec(int argc, char **argv);
int kci_cmd_doctor(int argc, char **argv);

/* Prints "kci: msg" to stderr; multi-line messages get their continuation lines indented. */
void kci_print_error(const char *msg);

#endif
