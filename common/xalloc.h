/* Allocation helpers that abort on out-of-memory, so callers never handle NULL. */
#ifndef KCI_COMMON_XALLOC_H
#define KCI_COMMON_XALLOC_H

#include <stddef.h>

void *kci_xmalloc(size_t n);
void *kci_xcalloc(size_t nmemb, size_t size);
void *kci_xrealloc(void *p, size_t n);
char *kci_xstrdup(const char *s);
/* At most n bytes of s, NUL-terminated. */
char *kci_xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string. */
char *kci_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
