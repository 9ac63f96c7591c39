/* NULL-terminated string vectors (argv, env, digest lists): the one implementation. */
#ifndef KCI_COMMON_STRV_H
#define KCI_COMMON_STRV_H

#include <stddef.h>

/* Appends a copy of s to *v, which holds *n strings (both updated); *v may start NULL. */
void kci_strv_add(char ***v, size_t *n, const char *s);
/* Sets "K=V" in an env vector of *n entries, replacing an entry with the same K. */
void kci_env_set(char ***env, size_t *n, const char *kv);
/*
 * Sets each NAME=VALUE line of text (len bytes; "#" comments, blank lines and
 * a CR before the LF skipped) into an env vector as kci_env_set does. 0 when
 * every line is one; -1 for a NUL byte; else the 1-based number of the first
 * line that is not NAME=VALUE (lines before it are set).
 */
int kci_env_set_lines(char ***env, size_t *n, const char *text, size_t len);
/* Frees every string and the vector; NULL is a no-op. */
void kci_strv_free(char **v);

#endif
