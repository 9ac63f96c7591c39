/* NULL-terminated string vectors (argv, env, digest lists): the one implementation. */
#ifndef KCI_COMMON_STRV_H
#define KCI_COMMON_STRV_H

#include <stddef.h>

/* Appends a copy of s to *v, which holds *n strings (both updated); *v may start NULL. */
void kci_strv_add(char ***v, size_t *n, const char *s);
/* Sets "K=V" in an env vector of *n entries, replacing an entry with the same K. */
void kci_env_set(char ***env, size_t *n, const char *kv);
/* Frees every string and the vector; NULL is a no-op. */
void kci_strv_free(char **v);

#endif
