/*
 * Builds the guest initramfs with libarchive (newc cpio): the agent as /init,
 * the kernel modules it loads (the NIC's in a list of their own, loaded only
 * with a network), and nothing else. Cached by content digest.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/xalloc.h"
#include "common/strv.h"
#include "vm/internal.h"

/* Bump when the layout of the initramfs changes, so old caches are not reused. */
#define INITRAMFS_RECIPE "kci-initramfs-v3"

struct cpio {
	struct archive *a;
	char **dirs; /* directories already written */
	size_t ndirs;
};

static int
cpio_fail(struct cpio *c, const char *what, struct kci_err *err)
{
	return kci_err_set(err, KCI_ERROR, "initramfs: %s: %s", what, archive_error_string(c->a));
}

static int
cpio_header(struct cpio *c, const char *path, mode_t type, mode_t perm, int64_t size,
	    unsigned rmajor, unsigned rminor, struct kci_err *err)
{
	struct archive_entry *e = archive_entry_new();
	int rc = 0;

	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm);
	archive_entry_set_size(e, size);
	archive_entry_set_mtime(e, 0, 0); /* reproducible bytes for identical inputs */
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_nlink(e, type == AE_IFDIR ? 2 : 1);
	if (type == AE_IFCHR) {
		archive_entry_set_rdevmajor(e, rmajor);
		archive_entry_set_rdevminor(e, rminor);
	}
	if (archive_write_header(c->a, e) != ARCHIVE_OK)
		rc = cpio_fail(c, path, err);
	archive_entry_free(e);
	return rc;
}

/* Writes every missing parent directory of `path`, since the kernel's unpacker needs them. */
static int
cpio_parents(struct cpio *c, const char *path, struct kci_err *err)
{
	char *p = kci_xstrdup(path);
	int rc = 0;

	for (char *s = strchr(p, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
		size_t i;
		*s = '\0';
		for (i = 0; i < c->ndirs && strcmp(c->dirs[i], p) != 0; i++)
			;
		if (i == c->ndirs) {
			rc = cpio_header(c, p, AE_IFDIR, 0755, 0, 0, 0, err);
			c->dirs = kci_xrealloc(c->dirs, (c->ndirs + 1) * sizeof(char *));
			c->dirs[c->ndirs++] = kci_xstrdup(p);
		}
		*s = '/';
	}
	free(p);
	return rc;
}

static int
cpio_bytes(struct cpio *c, const char *path, mode_t perm, const void *data, size_t len,
	   struct kci_err *err)
{
	int rc;

	if ((rc = cpio_parents(c, path, err)) < 0 ||
	    (rc = cpio_header(c, path, AE_IFREG, perm, (int64_t)len, 0, 0, err)) < 0)
		return rc;
	if (len && archive_write_data(c->a, data, len) != (la_ssize_t)len)
		return cpio_fail(c, path, err);
	return 0;
}

static int
cpio_file(struct cpio *c, const char *path, mode_t perm, const char *src, struct kci_err *err)
{
	char buf[65536];
	struct stat st;
	ssize_t n;
	int fd, rc;

	if ((fd = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return kci_err_sys(err, errno, "initramfs: open %s", src);
	if (fstat(fd, &st) < 0) {
		rc = kci_err_sys(err, errno, "initramfs: stat %s", src);
		goto out;
	}
	if ((rc = cpio_parents(c, path, err)) < 0 ||
	    (rc = cpio_header(c, path, AE_IFREG, perm, st.st_size, 0, 0, err)) < 0)
		goto out;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (archive_write_data(c->a, buf, (size_t)n) != n) {
			rc = cpio_fail(c, path, err);
			goto out;
		}
	}
	if (n < 0)
		rc = kci_err_sys(err, errno, "initramfs: read %s", src);
out:
	close(fd);
	return rc;
}

/* The modules to carry, in load order, as paths relative to the modules dir. */
static int
guest_module_list(const struct kci_guest *g, const char *const *wanted, char ***out, int **levels,
		  struct kci_err *err)
{
	char *dep_path, *text = NULL;
	int rc;

	*out = NULL;
	*levels = NULL;
	if (!kci_vm_guest_dir(g) || !kci_vm_guest_release(g)[0])
		return 0; /* a bare --kernel: modules must be built in */
	dep_path = kci_xasprintf("%s/modules/modules.dep", kci_vm_guest_dir(g));
	rc = kci_read_file(dep_path, 8 << 20, &text, NULL, err);
	free(dep_path);
	if (rc < 0)
		return kci_err_prefix(err, "guest kernel bundle");
	rc = modules_resolve(text, wanted, out, levels, err);
	free(text);
	return rc;
}

/*
 * Drops from the NIC's module list those the base list loads anyway
 * (virtio, virtio_ring): the agent loads the rest only when the VM has a
 * network. Levels keep their order; a gap between them costs nothing.
 */
static void
drop_base_modules(char **net, int *levels, char **base)
{
	size_t w = 0;

	for (size_t i = 0; net && net[i]; i++) {
		int dup = 0;
		for (size_t j = 0; base && base[j]; j++)
			dup |= strcmp(net[i], base[j]) == 0;
		if (dup) {
			free(net[i]);
			continue;
		}
		net[w] = net[i];
		levels[w++] = levels[i];
	}
	if (net)
		net[w] = NULL;
}

static int
hash_modules(struct kci_sha256 *h, const struct kci_guest *g, char **mods, struct kci_err *err)
{
	for (size_t i = 0; mods && mods[i]; i++) {
		char *src = kci_xasprintf("%s/modules/%s", kci_vm_guest_dir(g), mods[i]);
		int rc = kci_sha256_update_file(h, src, err);
		free(src);
		if (rc < 0)
			return rc;
		kci_sha256_update(h, mods[i], strlen(mods[i]) + 1);
	}
	return 0;
}

static char *
cache_key(const char *agent, const struct kci_guest *g, char **mods, char **net_mods,
	  struct kci_err *err)
{
	struct kci_sha256 *h = kci_sha256_new();
	char hex[65], *key = NULL;

	kci_sha256_update(h, INITRAMFS_RECIPE, sizeof(INITRAMFS_RECIPE));
	kci_sha256_update(h, kci_vm_guest_release(g), strlen(kci_vm_guest_release(g)) + 1);
	if (kci_sha256_update_file(h, agent, err) < 0 || hash_modules(h, g, mods, err) < 0)
		goto out;
	/* A separator, so moving a module between the two lists changes the key. */
	kci_sha256_update(h, "net", 4);
	if (hash_modules(h, g, net_mods, err) < 0)
		goto out;
	kci_sha256_hex(h, hex); /* frees h */
	h = NULL;
	key = kci_xasprintf("%.20s", hex);
out:
	kci_sha256_free(h);
	return key;
}

/* Adds modules to the archive and returns their "LEVEL PATH" list for the agent. */
static int
cpio_modules(struct cpio *c, const struct kci_guest *g, char **mods, int *levels, char **list,
	     struct kci_err *err)
{
	int rc = 0;

	*list = kci_xstrdup("");
	for (size_t i = 0; mods && mods[i] && rc == 0; i++) {
		char *src = kci_xasprintf("%s/modules/%s", kci_vm_guest_dir(g), mods[i]);
		char *dst = kci_xasprintf("lib/modules/%s/%s", kci_vm_guest_release(g), mods[i]);
		/* "LEVEL PATH": the agent loads one level's modules in parallel. */
		char *grown = kci_xasprintf("%s%d /%s\n", *list, levels[i], dst);

		free(*list);
		*list = grown;
		rc = cpio_file(c, dst, 0644, src, err);
		free(src);
		free(dst);
	}
	return rc;
}

static int
write_archive(int fd, const char *agent, const struct kci_guest *g, char **mods, int *levels,
	      char **net_mods, int *net_levels, struct kci_err *err)
{
	struct cpio c = { .a = archive_write_new() };
	char *list = NULL, *net_list = NULL;
	int rc;

	if (archive_write_set_format_cpio_newc(c.a) != ARCHIVE_OK ||
	    archive_write_open_fd(c.a, fd) != ARCHIVE_OK) {
		rc = cpio_fail(&c, "open", err);
		goto out;
	}
	/* The kernel opens /dev/console for PID 1 before anything is mounted. */
	if ((rc = cpio_header(&c, "dev", AE_IFDIR, 0755, 0, 0, 0, err)) < 0 ||
	    (rc = cpio_header(&c, "dev/console", AE_IFCHR, 0600, 0, 5, 1, err)) < 0 ||
	    (rc = cpio_file(&c, "init", 0755, agent, err)) < 0)
		goto out;
	if ((rc = cpio_modules(&c, g, mods, levels, &list, err)) < 0 ||
	    (rc = cpio_modules(&c, g, net_mods, net_levels, &net_list, err)) < 0)
		goto out;
	rc = cpio_bytes(&c, "etc/kci/modules", 0644, list, strlen(list), err);
	if (rc == 0)
		rc = cpio_bytes(&c, "etc/kci/modules-net", 0644, net_list, strlen(net_list), err);
	if (rc == 0 && archive_write_close(c.a) != ARCHIVE_OK)
		rc = cpio_fail(&c, "close", err);
out:
	archive_write_free(c.a);
	for (size_t i = 0; i < c.ndirs; i++)
		free(c.dirs[i]);
	free(c.dirs);
	free(list);
	free(net_list);
	return rc;
}

int
kci_vm_initramfs_get(const struct kci_guest *g, const char *agent, const char *cache_dir,
		     char **out, struct kci_err *err)
{
	char **mods = NULL, **net_mods = NULL;
	int *levels = NULL, *net_levels = NULL;
	char *key = NULL, *path = NULL, *tmp = NULL;
	int fd = -1, rc;

	if ((rc = guest_module_list(g, vm_guest_modules, &mods, &levels, err)) < 0 ||
	    (rc = guest_module_list(g, vm_guest_net_modules, &net_mods, &net_levels, err)) < 0)
		goto out;
	drop_base_modules(net_mods, net_levels, mods);
	if (!(key = cache_key(agent, g, mods, net_mods, err))) {
		rc = err->code ? err->code : KCI_ERROR;
		goto out;
	}
	path = kci_xasprintf("%s/initramfs-%s.cpio", cache_dir, key);
	if (access(path, R_OK) == 0)
		goto done;
	if ((rc = kci_mkdir_p(cache_dir, 0700, err)) < 0)
		goto out;
	if ((fd = kci_tmpfile_near(path, &tmp, err)) < 0) {
		rc = fd;
		goto out;
	}
	if ((rc = write_archive(fd, agent, g, mods, levels, net_mods, net_levels, err)) < 0) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	if ((rc = kci_commit_file(fd, tmp, path, err)) < 0)
		goto out;
	cache_prune_superseded(cache_dir, "initramfs-", ".cpio", path);
done:
	*out = path;
	path = NULL;
	rc = 0;
out:
	kci_strv_free(mods);
	free(levels);
	kci_strv_free(net_mods);
	free(net_levels);
	free(key);
	free(path);
	free(tmp);
	return rc;
}
