/* Layers onto a root file system: the extractor with the layer policy, in one confined child. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "images/extract.h"

/* The root (made if missing) and every blob, opened here: the child can open nothing itself. */
static int
open_all(const char *rootfs_dir, const char *const *blob_paths, size_t n, int *root_fd,
	 int *blob_fds, struct kci_err *err)
{
	int rc;

	if ((rc = kci_mkdir_p(rootfs_dir, 0755, err)) < 0)
		return rc;
	if ((*root_fd = open(rootfs_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return kci_err_sys(err, errno, "open %s", rootfs_dir);
	for (size_t i = 0; i < n; i++)
		if ((blob_fds[i] = open(blob_paths[i], O_RDONLY | O_CLOEXEC)) < 0)
			return kci_err_sys(err, errno, "open layer %s", blob_paths[i]);
	return 0;
}

int
kci_images_unpack(const char *rootfs_dir, const char *const *blob_paths,
		  const char *const *diff_ids, size_t n, uint64_t max_bytes, struct kci_err *err)
{
	struct kci_extract_policy layer = KCI_EXTRACT_LAYER;
	int root_fd = -1, *blob_fds = kci_xmalloc((n + 1) * sizeof(int)), rc;

	layer.max_bytes = max_bytes;
	for (size_t i = 0; i < n; i++)
		blob_fds[i] = -1;
	if ((rc = open_all(rootfs_dir, blob_paths, n, &root_fd, blob_fds, err)) < 0)
		kci_err_prefix(err, "unpack into %s", rootfs_dir);
	/* The child names layer and entry; the temp tree path would only be noise. */
	else if ((rc = extract_confined(root_fd, blob_fds, diff_ids, n, &layer, NULL, err)) < 0)
		kci_err_prefix(err, "unpack");
	for (size_t i = 0; i < n; i++)
		if (blob_fds[i] >= 0)
			close(blob_fds[i]);
	free(blob_fds);
	if (root_fd >= 0)
		close(root_fd);
	return rc;
}
