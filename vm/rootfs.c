/*
 * Root filesystem disks: a directory tree becomes a cached read-only ext4
 * image (mke2fs -d), shared by every VM that boots it; and writable
 * workspace disks, built the same way with free space added.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/xalloc.h"
#include "vm/internal.h"

#define ROOTFS_RECIPE "kci-rootfs-v1"
#define BASE_RECIPE   "kci-base-v1"

/* Totals gathered while hashing a tree; nftw() offers no context pointer. */
struct tree_walk {
	struct kci_sha256 *h;
	size_t root_len;
	unsigned long long bytes, entries;
	int error;
};
static __thread struct tree_walk *walk_state;

static int
walk_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct tree_walk *w = walk_state;
	char meta[256], target[4096];
	ssize_t n;

	(void)ftw;
	if (flag == FTW_NS || flag == FTW_DNR) {
		w->error = errno ? errno : EACCES;
		return 1;
	}
	/* Metadata, not contents: hashing gigabytes per `kci exec` would cost more than it saves.
	 */
	/* ctime too: tools that restore mtimes (cp -p, rsync -a) cannot restore it. */
	snprintf(meta, sizeof(meta), "%o %u %u %lld %lld.%09ld %lld.%09ld %llu", st->st_mode,
		 st->st_uid, st->st_gid, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
		 st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec,
		 (unsigned long long)st->st_ino);
	kci_sha256_update(w->h, path + w->root_len, strlen(path + w->root_len) + 1);
	kci_sha256_update(w->h, meta, strlen(meta) + 1);
	if (S_ISLNK(st->st_mode) && (n = readlink(path, target, sizeof(target))) > 0)
		kci_sha256_update(w->h, target, (size_t)n);
	w->bytes += (unsigned long long)st->st_blocks * 512;
	w->entries++;
	return 0;
}

static int
tree_digest(const char *dir, char hex[65], unsigned long long *bytes, unsigned long long *entries,
	    struct kci_err *err)
{
	struct tree_walk w = { .h = kci_sha256_new(), .root_len = strlen(dir) };
	int rc;

	kci_sha256_update(w.h, ROOTFS_RECIPE, sizeof(ROOTFS_RECIPE));
	walk_state = &w;
	rc = nftw(dir, walk_entry, 64, FTW_PHYS | FTW_MOUNT);
	walk_state = NULL;
	if (rc < 0 || w.error) {
		kci_sha256_free(w.h);
		return kci_err_sys(err, w.error ? w.error : errno, "read rootfs tree %s", dir);
	}
	kci_sha256_hex(w.h, hex);
	*bytes = w.bytes;
	*entries = w.entries;
	return 0;
}

/* How make_ext4 lays out an image; the read-only root and the writable workspace differ. */
struct ext4_layout {
	const char *label;
	uint64_t free_mib; /* room for the guest's writes beyond the tree itself */
	int writable;	   /* leave inode count to mke2fs so new files have inodes too */
};

/* Runs mke2fs -d into a temp file next to `final`, then renames it into place. */
static int
make_ext4(const char *dir, const char *final, unsigned long long bytes, unsigned long long entries,
	  const struct ext4_layout *layout, struct kci_err *err)
{
	/* Room for ext4's own metadata and small-file slack; the file is sparse anyway. */
	unsigned long long mib =
		(bytes + entries * 4096) / (1 << 20) * 5 / 4 + 64 + layout->free_mib;
	char size[32], inodes[32];
	char *tmp = NULL;
	int fd, rc, argc = 0;
	char *argv[32];

	if ((fd = kci_tmpfile_near(final, &tmp, err)) < 0)
		return fd;
	snprintf(size, sizeof(size), "%lluM", mib);
	snprintf(inodes, sizeof(inodes), "%llu", entries + entries / 4 + 1024);
	argv[argc++] = "mke2fs";
	argv[argc++] = "-q";
	argv[argc++] = "-F";
	argv[argc++] = "-t";
	argv[argc++] = "ext4";
	argv[argc++] = "-b"; /* small images would get 1 KiB blocks: 4x the I/O calls */
	argv[argc++] = "4096";
	/* No journal: every disk kci builds is thrown away with its VM, never recovered. */
	argv[argc++] = "-O";
	argv[argc++] = "^has_journal";
	argv[argc++] = "-m";
	argv[argc++] = "0";
	if (!layout->writable) {
		/* Exactly the tree's inodes plus slack: nobody creates files on a read-only disk.
		 */
		argv[argc++] = "-N";
		argv[argc++] = inodes;
	}
	argv[argc++] = "-E";
	argv[argc++] = "root_owner=0:0,nodiscard,lazy_itable_init=1";
	argv[argc++] = "-L";
	argv[argc++] = (char *)layout->label;
	argv[argc++] = "-d";
	argv[argc++] = (char *)dir;
	argv[argc++] = tmp;
	argv[argc++] = size;
	argv[argc] = NULL;
	if ((rc = run_tool(argv, err)) < 0) {
		kci_err_prefix(err, "build %s filesystem from %s", layout->label, dir);
		close(fd);
		unlink(tmp);
		goto out;
	}
	rc = kci_commit_file(fd, tmp, final, err);
out:
	free(tmp);
	return rc;
}

static const struct ext4_layout root_layout = { .label = "kci-root" };

/*
 * Each --rootfs tree keeps only its newest image: a sidecar ".src" file
 * names the tree an image was built from, and building a new image for a
 * tree removes the older ones of that tree (QEMU holds its image open, so a
 * running VM is not disturbed).
 */
static void
prune_same_source(const char *cache_dir, const char *src, const char *keep)
{
	DIR *d = opendir(cache_dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (strncmp(de->d_name, "rootfs-", 7) != 0 || n < 9 ||
		    strcmp(de->d_name + n - 9, ".ext4.src") != 0)
			continue;
		char *side = kci_xasprintf("%s/%s", cache_dir, de->d_name);
		char *image = kci_xasprintf("%.*s", (int)(strlen(side) - 4), side);
		char *text = NULL;
		if (strcmp(image, keep) != 0 && kci_read_file(side, 8192, &text, NULL, NULL) == 0 &&
		    strcmp(text, src) == 0) {
			unlink(image);
			unlink(side);
		}
		free(text);
		free(image);
		free(side);
	}
	closedir(d);
}

static void
record_source(const char *image, const char *src)
{
	char *side = kci_xasprintf("%s.src", image);
	int fd = open(side, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd >= 0) {
		(void)!write(fd, src, strlen(src));
		close(fd);
	}
	free(side);
}

int
kci_vm_rootfs_from_dir(const char *dir, const char *cache_dir, char **out, struct kci_err *err)
{
	unsigned long long bytes, entries;
	struct stat st;
	char hex[65];
	char *path;
	int rc;

	if (stat(dir, &st) < 0)
		return kci_err_sys(err, errno, "--rootfs %s", dir);
	if (!S_ISDIR(st.st_mode))
		return kci_err_set(err, KCI_INVALID, "--rootfs %s: not a directory", dir);
	if ((rc = tree_digest(dir, hex, &bytes, &entries, err)) < 0)
		return rc;
	if ((rc = kci_mkdir_p(cache_dir, 0700, err)) < 0)
		return rc;
	path = kci_xasprintf("%s/rootfs-%.20s.ext4", cache_dir, hex);
	if (access(path, R_OK) != 0) {
		char *abs = realpath(dir, NULL);
		if ((rc = make_ext4(dir, path, bytes, entries, &root_layout, err)) < 0) {
			free(abs);
			free(path);
			return rc;
		}
		if (abs) {
			record_source(path, abs);
			prune_same_source(cache_dir, abs, path);
		}
		free(abs);
	}
	*out = path;
	return 0;
}

int
kci_vm_rootfs_build(const char *dir, const char *path, struct kci_err *err)
{
	unsigned long long bytes, entries;
	char hex[65];
	int rc;

	if ((rc = tree_digest(dir, hex, &bytes, &entries, err)) < 0)
		return rc;
	return make_ext4(dir, path, bytes, entries, &root_layout, err);
}

int
kci_vm_disk_build_rw(const char *dir, const char *path, uint64_t free_mib, struct kci_err *err)
{
	const struct ext4_layout layout = { .label = "kci-work",
					    .free_mib = free_mib,
					    .writable = 1 };
	unsigned long long bytes, entries;
	struct stat st;
	char hex[65];
	int rc;

	if (stat(dir, &st) < 0)
		return kci_err_sys(err, errno, "workspace %s", dir);
	if (!S_ISDIR(st.st_mode))
		return kci_err_set(err, KCI_INVALID, "workspace %s: not a directory", dir);
	/* The walk sizes the image; its digest is unused, since this disk is never cached. */
	if ((rc = tree_digest(dir, hex, &bytes, &entries, err)) < 0)
		return rc;
	return make_ext4(dir, path, bytes, entries, &layout, err);
}

static int
write_text(const char *root, const char *rel, const char *text, struct kci_err *err)
{
	char *path = kci_xasprintf("%s/%s", root, rel);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = 0;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		rc = kci_err_sys(err, errno, "write %s", path);
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* Lays out a minimal busybox system in `root`. */
static int
populate_base(const char *root, const char *busybox, struct kci_err *err)
{
	static const char *const dirs[] = { "bin",	 "sbin", "usr",	 "usr/bin", "usr/sbin",
					    "etc",	 "dev",	 "proc", "sys",	    "run",
					    "root",	 "home", "var",	 "tmp",	    "var/tmp",
					    "workspace", NULL };
	char list[65536];
	char *dst, *save = NULL;
	int rc;

	for (int i = 0; dirs[i]; i++) {
		char *p = kci_xasprintf("%s/%s", root, dirs[i]);
		mode_t mode = strstr(dirs[i], "tmp")	? 01777
			      : strcmp(dirs[i], "root") ? 0755
							: 0700;
		rc = mkdir(p, mode) < 0 || chmod(p, mode) < 0
			     ? kci_err_sys(err, errno, "mkdir %s", p)
			     : 0;
		free(p);
		if (rc < 0)
			return rc;
	}
	dst = kci_xasprintf("%s/bin/busybox", root);
	{
		char *argv[] = { "cp", "--", (char *)busybox, dst, NULL };
		rc = run_tool(argv, err);
	}
	free(dst);
	if (rc < 0)
		return rc;
	/* The applet list comes from the very binary we ship, so the links always match it. */
	char *argv[] = { (char *)busybox, "--list-full", NULL };
	if ((rc = run_capture(argv, list, sizeof(list), err)) < 0)
		return kci_err_prefix(err, "list busybox applets");
	for (char *a = strtok_r(list, "\n", &save); a; a = strtok_r(NULL, "\n", &save)) {
		if (strstr(a, "..") || a[0] == '/' || strcmp(a, "bin/busybox") == 0)
			continue;
		char *link = kci_xasprintf("%s/%s", root, a);
		if (symlink("/bin/busybox", link) < 0 && errno != EEXIST)
			rc = kci_err_sys(err, errno, "symlink %s", link);
		free(link);
		if (rc < 0)
			return rc;
	}
	if ((rc = write_text(root, "etc/passwd",
			     "root:x:0:0:root:/root:/bin/sh\n"
			     "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
			     err)) < 0 ||
	    (rc = write_text(root, "etc/group", "root:x:0:\nnogroup:x:65534:\n", err)) < 0 ||
	    (rc = write_text(root, "etc/hostname", "kci\n", err)) < 0 ||
	    (rc = write_text(root, "etc/hosts", "127.0.0.1 localhost kci\n", err)) < 0)
		return rc;
	return 0;
}

int
kci_vm_rootfs_base(const struct kci_guest *g, const char *cache_dir, char **out,
		   struct kci_err *err)
{
	const char *busybox = kci_vm_guest_busybox(g);
	struct kci_sha256 *h;
	char hex[65];
	char *path = NULL, *tmpdir = NULL;
	unsigned long long bytes, entries;
	int rc;

	if (!busybox)
		return kci_err_set(err, KCI_NOTFOUND,
				   "the guest bundle has no busybox for the built-in base image; "
				   "pass --rootfs DIR or re-run scripts/fetch-guest.sh");
	h = kci_sha256_new();
	kci_sha256_update(h, BASE_RECIPE, sizeof(BASE_RECIPE));
	if ((rc = kci_sha256_update_file(h, busybox, err)) < 0) {
		kci_sha256_free(h);
		return rc;
	}
	kci_sha256_hex(h, hex);
	if ((rc = kci_mkdir_p(cache_dir, 0700, err)) < 0)
		return rc;
	path = kci_xasprintf("%s/base-%.20s.ext4", cache_dir, hex);
	if (access(path, R_OK) == 0)
		goto done;
	tmpdir = kci_xasprintf("%s/base-tree-XXXXXX", cache_dir);
	if (!mkdtemp(tmpdir)) {
		rc = kci_err_sys(err, errno, "mkdtemp in %s", cache_dir);
		free(tmpdir);
		tmpdir = NULL;
		goto out;
	}
	/* mkdtemp makes it 0700, and mke2fs -d copies that onto the guest's "/". */
	(void)chmod(tmpdir, 0755);
	if ((rc = populate_base(tmpdir, busybox, err)) < 0 ||
	    (rc = tree_digest(tmpdir, hex, &bytes, &entries, err)) < 0 ||
	    (rc = make_ext4(tmpdir, path, bytes, entries, &root_layout, err)) < 0)
		goto out;
	cache_prune_superseded(cache_dir, "base-", ".ext4", path);
done:
	*out = path;
	path = NULL;
	rc = 0;
out:
	if (tmpdir)
		kci_rm_rf(tmpdir, NULL);
	free(tmpdir);
	free(path);
	return rc;
}

/*
 * Copies the data extents of `in` (named `what` in messages) into a new
 * sparse file dst (0600). With zero_holes, 4 KiB pages that are all zero are
 * left out as well, as holes.
 */
int
vm_copy_extents(int in, const char *what, const char *dst, int zero_holes, struct kci_err *err)
{
	static const uint8_t zero[4096];
	static __thread uint8_t buf[1 << 20];
	int outfd, rc = 0;
	struct stat st;
	off_t data, hole;

	outfd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (outfd < 0 || fstat(in, &st) < 0 || ftruncate(outfd, st.st_size) < 0) {
		rc = kci_err_sys(err, errno, "create %s", dst);
		goto out;
	}
	for (data = 0; (data = lseek(in, data, SEEK_DATA)) >= 0; data = hole) {
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = st.st_size;
		for (off_t off = data; off < hole;) {
			off_t o_in = off, o_out = off;
			size_t want = (size_t)(hole - off);
			ssize_t n = zero_holes ? pread(in, buf,
						       want < sizeof(buf) ? want : sizeof(buf), off)
					       : copy_file_range(in, &o_in, outfd, &o_out, want, 0);
			if (n <= 0) {
				rc = kci_err_sys(err, n < 0 ? errno : EIO, "copy %s", what);
				goto out;
			}
			for (ssize_t p = 0; zero_holes && p < n; p += 4096) {
				size_t len = (size_t)(n - p < 4096 ? n - p : 4096);
				if (memcmp(buf + p, zero, len) != 0 &&
				    pwrite(outfd, buf + p, len, off + p) != (ssize_t)len) {
					rc = kci_err_sys(err, errno, "write %s", dst);
					goto out;
				}
			}
			off += n;
		}
	}
	if (errno != ENXIO)
		rc = kci_err_sys(err, errno, "seek %s", what);
out:
	if (outfd >= 0)
		close(outfd);
	return rc;
}

/* Copies only the data extents of src into a new dst: a formatted 8G disk is ~4 MiB of data. */
int
vm_copy_sparse(const char *src, const char *dst, struct kci_err *err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), rc;

	if (in < 0)
		return kci_err_sys(err, errno, "open %s", src);
	rc = vm_copy_extents(in, src, dst, 0, err);
	close(in);
	return rc;
}
