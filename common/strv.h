/* NULL-terminated string vectors (argv, env, digest lists): the one implementation. */
#ifndef KCI_COMMON_STRV_H
#define KCI_COMMON_STRV_H

#include <stddef.h>

/* Appends a copy of s to *v, which holds *n strings (both updated); *v may start NULL. */
void kci_strv_add(char ***v, size_t *n, const char *s);
/* Frees every string and the vector; NULL is a no-op. */
void kci_strv_free(char **v);

#endif
