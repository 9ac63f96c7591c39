/* SHA-256 on top of OpenSSL's EVP interface. */
#include "common/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct kci_sha256 {
	EVP_MD_CTX *ctx;
};

struct kci_sha256 *
kci_sha256_new(void)
{
	struct kci_sha256 *h = malloc(sizeof(*h));

	if (!h || !(h->ctx = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
		abort();
	return h;
}

void
kci_sha256_update(struct kci_sha256 *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->ctx, data, len);
}

int
kci_sha256_update_fd(struct kci_sha256 *h, int fd, const char *shown, struct kci_err *err)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kci_err_sys(err, errno, "read %s", shown);
		EVP_DigestUpdate(h->ctx, buf, (size_t)n);
	}
	return 0;
}

int
kci_sha256_update_file(struct kci_sha256 *h, const char *path, struct kci_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return kci_err_sys(err, errno, "open %s", path);
	rc = kci_sha256_update_fd(h, fd, path, err);
	close(fd);
	return rc;
}

void
kci_sha256_hex(struct kci_sha256 *h, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(h->ctx, md, &n);
	for (unsigned i = 0; i < n && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
	kci_sha256_free(h);
}

void
kci_sha256_free(struct kci_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}
