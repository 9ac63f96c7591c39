/*
 * Fuzz target: the one extractor of untrusted tar (images/extract*.c), every
 * policy. The first input byte picks it (mod 3: layer, kci load, artifacts);
 * the rest is the archive (plain tar, or gzip/zstd where the policy takes
 * them), extracted in-process with small caps into dest inside a fresh
 * temporary directory. Then: nothing may appear beside dest, and what is in
 * dest must keep the policy (kinds, modes, symlinks resolving inside, caps).
 * Built with libFuzzer (KCI_FUZZ=ON) or linked with replay.c so ctest
 * replays the corpus on every build. Runs as root to reach owners and nodes.
 */
#include <dirent.h>
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
#include "images/extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum which { LAYER, LOAD, ARTIFACTS, N_POLICIES };

/* Small caps keep each run fast; the code paths are the same as the defaults'. */
static struct kci_extract_policy
policy_for(enum which w)
{
	static const struct kci_extract_policy layer = KCI_EXTRACT_LAYER, load = KCI_EXTRACT_LOAD,
					       artifacts = KCI_EXTRACT_ARTIFACTS;
	struct kci_extract_policy p = w == LAYER ? layer : w == LOAD ? load : artifacts;

	p.confined = false;
	p.max_stream = 64 << 20;
	p.max_bytes = p.max_file = w == LAYER ? 64 << 20 : 1 << 20;
	p.max_entries = 4096;
	p.max_names = w == LAYER ? 8192 : 64;
	p.max_path = 1024;
	p.max_xattr = 4096;
	return p;
}

/* What the walk of dest found. */
struct seen {
	enum which w;
	const char *real_dest; /* realpath of dest */
	uint64_t names, bytes;
};

static void __attribute__((noreturn)) broken(const char *path, const char *why)
{
	fprintf(stderr, "fuzz_tar: %s: %s\n", path, why);
	abort();
}

/* Checks one name beneath dest against the policy (umask 022). */
static void
check_entry(const char *path, const struct stat *st, struct seen *s)
{
	char real[PATH_MAX];
	mode_t perm = st->st_mode & 07777;

	if (s->w == LAYER)
		return; /* anything an image holds, setuid and devices included */
	if (S_ISDIR(st->st_mode)) {
		if (perm != (s->w == LOAD ? 0700 : 0755))
			broken(path, "directory mode");
	} else if (S_ISREG(st->st_mode)) {
		if (s->w == LOAD ? perm != 0600 : perm != 0644 && perm != 0755)
			broken(path, "file mode");
		/* Hardlinked names count once per name here, once in bytes there. */
		if (st->st_nlink == 1)
			s->bytes += (uint64_t)st->st_size;
	} else if (S_ISLNK(st->st_mode) && s->w == ARTIFACTS) {
		/* Dangling is fine; resolving anywhere but inside dest is not. */
		if (realpath(path, real) &&
		    (strncmp(real, s->real_dest, strlen(s->real_dest)) != 0 ||
		     (real[strlen(s->real_dest)] != '/' && real[strlen(s->real_dest)])))
			broken(path, "symlink resolves outside dest");
	} else {
		broken(path, "a kind the policy does not create");
	}
}

/* Walks path (a directory beneath dest) without following symlinks. */
static void
check_tree(const char *path, struct seen *s, unsigned depth)
{
	char child[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (depth > 2100 || !(d = opendir(path)))
		broken(path, "cannot walk");
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, de->d_name) >=
		    sizeof(child))
			continue;
		if (lstat(child, &st) < 0)
			broken(child, "vanished");
		s->names++;
		check_entry(child, &st, s);
		if (S_ISDIR(st.st_mode) && s->w != LAYER)
			check_tree(child, s, depth + 1);
	}
	closedir(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kci_extract_policy p;
	struct kci_err err = KCI_ERR_INIT;
	struct kci_extract_stats st;
	char dir[] = "/tmp/kci-fuzz-tar-XXXXXX", dest[64], real[PATH_MAX];
	struct seen s = { 0 };
	int fd, root_fd, rc, n = 0;
	DIR *d;

	if (size == 0)
		return 0;
	s.w = (enum which)(data[0] % N_POLICIES);
	p = policy_for(s.w);
	umask(022);
	if ((fd = memfd_create("archive", MFD_CLOEXEC)) < 0)
		abort();
	for (size_t off = 1; off < size;) {
		ssize_t k = write(fd, data + off, size - off);
		if (k <= 0)
			abort();
		off += (size_t)k;
	}
	if (lseek(fd, 0, SEEK_SET) < 0 || !mkdtemp(dir))
		abort();
	snprintf(dest, sizeof(dest), "%s/dest", dir);
	if (mkdir(dest, 0755) < 0 || (root_fd = open(dest, O_RDONLY | O_DIRECTORY)) < 0)
		abort();
	rc = extract_stream(root_fd, fd, &p, NULL, &st, &err);
	close(root_fd);
	close(fd);
	if (rc < 0 && rc != KCI_INVALID && rc != KCI_ERROR)
		broken(dest, err.msg);
	if (!(d = opendir(dir)))
		abort();
	while (readdir(d))
		n++;
	closedir(d);
	if (n != 3) /* ".", "..", dest */
		broken(dir, "something appeared beside dest");
	if (!realpath(dest, real))
		abort();
	s.real_dest = real;
	check_tree(dest, &s, 0);
	if (st.names > p.max_names || st.bytes > p.max_bytes || st.entries > p.max_entries ||
	    (s.w != LAYER && (s.names > p.max_names || s.bytes > st.bytes)))
		broken(dest, "caps not kept");
	if (kci_rm_rf(dir, &err) < 0)
		broken(dir, err.msg);
	return 0;
}
