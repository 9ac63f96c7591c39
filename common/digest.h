/* SHA-256 helpers (OpenSSL libcrypto) for cache keys and content digests. */
#ifndef KCI_COMMON_DIGEST_H
#define KCI_COMMON_DIGEST_H

#include <stddef.h>

#include "common/err.h"

struct kci_sha256;

/* A running SHA-256; kci_sha256_hex() finishes it and frees it. */
struct kci_sha256 *kci_sha256_new(void);
void kci_sha256_update(struct kci_sha256 *h, const void *data, size_t len);
/* Hashes a file's contents into h. */
int kci_sha256_update_file(struct kci_sha256 *h, const char *path, struct kci_err *err);
/* The same from an open fd's offset to its end (`shown` names it in messages). */
int kci_sha256_update_fd(struct kci_sha256 *h, int fd, const char *shown, struct kci_err *err);
/* Writes 64 hex digits + NUL into out and frees h. */
void kci_sha256_hex(struct kci_sha256 *h, char out[65]);
void kci_sha256_free(struct kci_sha256 *h);

#endif
