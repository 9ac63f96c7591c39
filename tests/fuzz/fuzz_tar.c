/*
 * Fuzz target: the tar extractor. Feeds arbitrary bytes as a layer blob (tar,
 * tar+gzip or tar+zstd, as detected) through extract_stream with the layer
 * policy onto a fresh temporary directory, in-process, and removes the
 * directory after each input.
 * Built with libFuzzer (KCI_FUZZ=ON) or linked with replay.c so ctest replays
 * the corpus on every build. Runs as root to reach owners and device nodes.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/fs.h"
#include "images/extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Small caps keep each run fast; the code paths are the same as the defaults'. */
	static struct kci_extract_policy lim = KCI_EXTRACT_LAYER;
	struct kci_err err = KCI_ERR_INIT;
	char dir[] = "/tmp/kci-fuzz-tar-XXXXXX";
	int blob_fd, root_fd = -1;

	if ((blob_fd = memfd_create("layer", MFD_CLOEXEC)) < 0)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t n = write(blob_fd, data + off, size - off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	if (lseek(blob_fd, 0, SEEK_SET) < 0 || !mkdtemp(dir) ||
	    (root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		abort();
	lim.max_stream = 64 << 20;
	lim.max_entries = 4096;
	lim.max_path = 1024;
	lim.max_xattr = 4096;
	(void)extract_stream(root_fd, blob_fd, &lim, NULL, NULL, &err);
	close(root_fd);
	close(blob_fd);
	if (kci_rm_rf(dir, &err) < 0) {
		fprintf(stderr, "fuzz_tar: %s\n", err.msg);
		abort();
	}
	return 0;
}
