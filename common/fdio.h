/* Small fd helpers: full writes that survive EINTR and short writes. */
#ifndef KCI_COMMON_FDIO_H
#define KCI_COMMON_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* Writes all of buf, waiting in poll() on a non-blocking fd. Returns 0 or -errno (-EPIPE on
 * hang-up). */
int kci_write_all(int fd, const void *buf, size_t len);

#endif
