/*
 * Fuzz target: artifact extraction. Feeds arbitrary bytes as the guest's tar
 * stream through art_extract into a fresh dest inside a fresh temporary
 * directory, checks that nothing appeared beside dest and that what is in dest
 * keeps the policy (limits, kinds, modes, symlinks resolving inside), then
 * removes it all. Built with libFuzzer (KCI_FUZZ=ON) or linked with replay.c
 * so ctest replays the corpus on every build.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "engine/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the walk of dest found. */
struct seen {
	const char *real_dest; /* realpath of dest */
	size_t names;
	uint64_t bytes;
};

static void __attribute__((noreturn)) escaped(const char *path, const char *why)
{
	fprintf(stderr, "fuzz_artifacts: %s: %s\n", path, why);
	abort();
}

/* Walks path (a directory beneath dest) without following symlinks, checking each entry. */
static void
check_tree(const char *path, struct seen *s, unsigned depth)
{
	char child[PATH_MAX], real[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (depth > 2100 || !(d = opendir(path)))
		escaped(path, "cannot walk");
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, de->d_name) >=
		    sizeof(child))
			continue;
		if (lstat(child, &st) < 0)
			escaped(child, "vanished");
		s->names++;
		if (st.st_mode & (S_ISUID | S_ISGID | S_ISVTX))
			escaped(child, "special mode bits");
		if (S_ISDIR(st.st_mode)) {
			if ((st.st_mode & 0700) != 0700 || (st.st_mode & 022))
				escaped(child, "directory mode");
			check_tree(child, s, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			/* Hardlinked names count once per name here, once in bytes there. */
			if (st.st_nlink == 1)
				s->bytes += (uint64_t)st.st_size;
		} else if (S_ISLNK(st.st_mode)) {
			/* Dangling is fine; resolving anywhere but inside dest is not. */
			if (realpath(child, real) &&
			    (strncmp(real, s->real_dest, strlen(s->real_dest)) != 0 ||
			     (real[strlen(s->real_dest)] != '/' && real[strlen(s->real_dest)])))
				escaped(child, "symlink resolves outside dest");
		} else {
			escaped(child, "device, fifo or socket");
		}
	}
	closedir(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Small caps keep each run fast; the code paths are the same as the defaults'. */
	static const struct art_limits lim = { 1 << 20, 64 };
	struct kci_err err = KCI_ERR_INIT;
	char dir[] = "/tmp/kci-fuzz-artifacts-XXXXXX", dest[64], real[PATH_MAX];
	struct art_stats st;
	struct seen s = { 0 };
	int fd, rc, n = 0;
	DIR *d;

	if ((fd = memfd_create("artifacts", MFD_CLOEXEC)) < 0)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t k = write(fd, data + off, size - off);
		if (k <= 0)
			abort();
		off += (size_t)k;
	}
	if (lseek(fd, 0, SEEK_SET) < 0 || !mkdtemp(dir))
		abort();
	snprintf(dest, sizeof(dest), "%s/dest", dir);
	if (mkdir(dest, 0700) < 0)
		abort();
	rc = art_extract(fd, dest, &lim, &st, &err);
	close(fd);
	if (rc < 0 && rc != KCI_INVALID && rc != KCI_ERROR)
		escaped(dest, "unexpected error code");
	if (!(d = opendir(dir)))
		abort();
	while (readdir(d))
		n++;
	closedir(d);
	if (n != 3) /* ".", "..", dest */
		escaped(dir, "something appeared beside dest");
	if (!realpath(dest, real))
		abort();
	s.real_dest = real;
	check_tree(dest, &s, 0);
	if (s.names > lim.max_files || st.files > lim.max_files || st.bytes > lim.max_bytes ||
	    s.bytes > st.bytes)
		escaped(dest, "limits not kept");
	if (kci_rm_rf(dir, &err) < 0) {
		fprintf(stderr, "fuzz_artifacts: %s\n", err.msg);
		abort();
	}
	return 0;
}
