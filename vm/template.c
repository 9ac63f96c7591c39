/*
 * VM templates (docs/templates.md): a guest booted once, saved where its
 * agent waits for RESUME, and restored for every later job of the same
 * kind instead of booting a kernel again. A template is a directory in
 * $KCI_HOME/cache/templates/<key>:
 *   state        QEMU's migration stream: the device state, without the RAM
 *   ram          the guest's RAM, sparse: clones map it copy-on-write
 *   scratch.ext4 the scratch disk as the saved guest had it (clones copy it)
 *   key          what the key is a digest of: the QEMU command line and the
 *                identity of every file it reads (QEMU, kernel, initramfs,
 *                root disk), the disks' sizes, under KVM the host CPU
 *   meta         the state's size and SHA-256, the label, when it was made
 * It is filled under a temp name and renamed into place whole, so nobody
 * sees half of one; <key>.lock (flock) keeps two kci processes from making
 * the same one at once. The state is read through a read-only fd; the RAM
 * file is mapped privately, so nothing a clone's guest does reaches it, and
 * a change by anything else (a compromised QEMU, a damaged disk, a person)
 * changes its ctime, which is checked before every use.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/digest.h"
#include "common/fdio.h"
#include "common/fs.h"
#include "common/version.h"
#include "common/xalloc.h"
#include "vm/vmpriv.h"

#define TEMPLATE_FORMAT 1
#define META_MAX	65536
#define SAVE_TIMEOUT_MS 60000
/* QEMU answers within a second; a clone that cannot start in this long boots cold. */
#define RESTORE_QMP_TIMEOUT_MS 20000
/* The migration stream goes to a local file: QEMU's default cap (32 MiB/s) is for networks. */
#define SAVE_BANDWIDTH "17179869184"
#define FDNAME	       "kci-template"

static char *
templates_dir(const char *cache_dir)
{
	return kci_xasprintf("%s/templates", cache_dir);
}

/* "path size mtime ino" of a file the template depends on, or "path missing". */
static char *
ident(const char *path)
{
	struct stat st;

	if (!path)
		return kci_xstrdup("-");
	if (stat(path, &st) < 0)
		return kci_xasprintf("%s missing", path);
	return kci_xasprintf("%s %lld %lld.%09ld %llu", path, (long long)st.st_size,
			     (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
			     (unsigned long long)st.st_ino);
}

/* Under KVM the saved vCPUs are this host's CPU: its model and flags are part of the key. */
static char *
cpu_identity(enum kci_accel accel)
{
	char *text = NULL, *model, *flags, *out;
	size_t len;
	struct kci_err err = KCI_ERR_INIT;

	if (accel != KCI_ACCEL_KVM)
		return kci_xstrdup("tcg");
	if (kci_read_file("/proc/cpuinfo", 4 << 20, &text, &len, &err) < 0)
		return kci_xstrdup("kvm unknown-cpu");
	model = strstr(text, "model name");
	flags = strstr(text, "\nflags");
	struct kci_sha256 *h = kci_sha256_new();
	char hex[65];
	if (model)
		kci_sha256_update(h, model, strcspn(model, "\n"));
	if (flags)
		kci_sha256_update(h, flags, strcspn(flags + 1, "\n") + 1);
	kci_sha256_hex(h, hex);
	out = kci_xasprintf("kvm %s", hex);
	free(text);
	return out;
}

static char *
key_text(const struct vm_boot *b, const char *exe, const char *argv_text)
{
	const char *paths[] = { exe, b->kernel, b->initrd, b->rootfs };
	char *ids[4], *cpu = cpu_identity(b->accel), *text;

	for (int i = 0; i < 4; i++)
		ids[i] = ident(paths[i]);
	text = kci_xasprintf("kci-template %d\nkci %s\nqemu %s\nkernel %s\ninitrd %s\nroot %s\n"
			     "scratch_mib %llu\nwork_pad %llu\ncpu %s\nscope %s\nargv %s\n",
			     TEMPLATE_FORMAT, KCI_VERSION, ids[0], ids[1], ids[2], ids[3],
			     (unsigned long long)b->scratch_mib, (unsigned long long)b->work_pad,
			     cpu, b->scope ? b->scope : "-", argv_text);
	for (int i = 0; i < 4; i++)
		free(ids[i]);
	free(cpu);
	return text;
}

/* Reads the little files of a template (bounded); NULL if absent or too big. */
static char *
read_small(const char *dir, const char *name)
{
	struct kci_err err = KCI_ERR_INIT;
	char *path = kci_xasprintf("%s/%s", dir, name), *text = NULL;
	size_t len;

	if (kci_read_file(path, META_MAX, &text, &len, &err) < 0)
		text = NULL;
	free(path);
	return text;
}

static struct json_object *
read_meta(const char *dir)
{
	char *text = read_small(dir, "meta");
	struct json_object *m = text ? json_tokener_parse(text) : NULL;

	free(text);
	if (m && !json_object_is_type(m, json_type_object)) {
		json_object_put(m);
		m = NULL;
	}
	return m;
}

static const char *
meta_str(struct json_object *m, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(m, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : "";
}

static int64_t
meta_int(struct json_object *m, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(m, key, &v) && json_object_is_type(v, json_type_int)
		       ? json_object_get_int64(v)
		       : -1;
}

/* SHA-256 of an open file from its start (the offset is left at its end). */
static int
hash_fd(int fd, char hex[65], struct kci_err *err)
{
	struct kci_sha256 *h;
	int rc;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return kci_err_sys(err, errno, "seek the state");
	h = kci_sha256_new();
	if ((rc = kci_sha256_update_fd(h, fd, "the state", err)) < 0) {
		kci_sha256_free(h);
		return rc;
	}
	kci_sha256_hex(h, hex);
	return 0;
}

/*
 * Checks a template against its key and meta and opens its state: 0 with
 * *state_fd, or -1 with why it cannot be used in `why`.
 */
static int
check(const char *dir, const char *keytext, int *state_fd, char *why, size_t whylen)
{
	struct json_object *m = read_meta(dir);
	char *key = read_small(dir, "key"), *state = kci_xasprintf("%s/state", dir);
	char hex[65];
	struct kci_err err = KCI_ERR_INIT;
	struct stat st;
	int fd = -1, rc = -1;

	if (!m || !key) {
		snprintf(why, whylen, "its %s is missing or unreadable", m ? "key" : "meta data");
		goto out;
	}
	if (strcmp(key, keytext) != 0) {
		snprintf(why, whylen, "it was made for another configuration");
		goto out;
	}
	if ((fd = open(state, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 || fstat(fd, &st) < 0) {
		snprintf(why, whylen, "its state: %s", strerror(errno));
		goto out;
	}
	char *ram = kci_xasprintf("%s/ram", dir);
	struct stat rs;
	int ram_errno = stat(ram, &rs) == 0 ? 0 : errno;
	free(ram);
	if (ram_errno) {
		snprintf(why, whylen, "its RAM file: %s", strerror(ram_errno));
		goto out;
	}
	if (rs.st_size != meta_int(m, "ram_bytes") ||
	    (int64_t)rs.st_ino != meta_int(m, "ram_ino") ||
	    rs.st_ctim.tv_sec * 1000000000LL + rs.st_ctim.tv_nsec != meta_int(m, "ram_ctime_ns")) {
		snprintf(why, whylen, "its RAM file was changed after it was made");
		goto out;
	}
	if (st.st_size != meta_int(m, "state_bytes")) {
		snprintf(why, whylen, "its state is %lld bytes, not %lld", (long long)st.st_size,
			 (long long)meta_int(m, "state_bytes"));
		goto out;
	}
	/* The device state is small: a flipped bit in it might restore, and break the job. */
	if (hash_fd(fd, hex, &err) < 0) {
		snprintf(why, whylen, "its state: %.200s", err.msg);
		goto out;
	}
	if (strcmp(hex, meta_str(m, "state_sha256")) != 0) {
		snprintf(why, whylen, "its state does not match its checksum");
		goto out;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		snprintf(why, whylen, "its state: %s", strerror(errno));
		goto out;
	}
	*state_fd = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	json_object_put(m);
	free(key);
	free(state);
	return rc;
}

void
template_remove(const char *dir)
{
	/* Renamed away first: from that instant no kci finds it half-removed. */
	char *dead = kci_xasprintf("%s.tmp-%d-dead", dir, (int)getpid());

	if (rename(dir, dead) == 0)
		kci_rm_rf(dead, NULL);
	else if (errno != ENOENT)
		kci_rm_rf(dir, NULL);
	free(dead);
}

void
template_choose(struct kci_vm *vm, const char *exe, const char *argv_text)
{
	struct vm_template *t = &vm->tmpl;
	struct kci_err err = KCI_ERR_INIT;
	char *root = templates_dir(vm->boot->cache_dir), *lock = NULL, why[256];
	struct stat st;
	int fd;

	vm->mode = VM_COLD;
	t->lock_fd = t->state_fd = -1;
	if (kci_mkdir_p(root, 0700, &err) < 0)
		goto out;
	kci_sweep_orphans(root);
	t->keytext = key_text(vm->boot, exe, argv_text);
	struct kci_sha256 *h = kci_sha256_new();
	char hex[65];
	kci_sha256_update(h, t->keytext, strlen(t->keytext));
	kci_sha256_hex(h, hex);
	t->key = kci_xstrndup(hex, 32);
	t->dir = kci_xasprintf("%s/%s", root, t->key);
	lock = kci_xasprintf("%s.lock", t->dir);
	for (int tries = 0; tries < 2; tries++) {
		if (stat(t->dir, &st) == 0) {
			if (check(t->dir, t->keytext, &t->state_fd, why, sizeof(why)) == 0) {
				/* Its use is what `kci prune` goes by. */
				char *meta = kci_xasprintf("%s/meta", t->dir);
				(void)utimensat(AT_FDCWD, meta, NULL, 0);
				free(meta);
				vm->mode = VM_CLONE;
				goto out;
			}
			template_remove(t->dir);
			snprintf(vm->note, sizeof(vm->note),
				 "the VM template for this job could not be used (%s): it was "
				 "removed, and this VM boots cold",
				 why);
		}
		if (t->lock_fd >= 0)
			break;
		/* Someone making it now: this VM boots cold rather than wait. */
		if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
			goto out;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			goto out;
		}
		t->lock_fd = fd;
		/* It may have been finished between the look and the lock: look again. */
	}
	if (t->lock_fd >= 0 && vm->mode == VM_COLD)
		vm->mode = VM_MAKE;
out:
	if (vm->mode != VM_MAKE && t->lock_fd >= 0) {
		close(t->lock_fd);
		t->lock_fd = -1;
	}
	free(lock);
	free(root);
}

void
template_release(struct vm_template *t)
{
	if (t->lock_fd >= 0)
		close(t->lock_fd);
	if (t->state_fd >= 0)
		close(t->state_fd);
	t->lock_fd = t->state_fd = -1;
	free(t->key);
	free(t->dir);
	free(t->keytext);
	t->key = t->dir = t->keytext = NULL;
}

/* Waits for the migration to finish: 0 when completed, else QEMU's reason. */
static int
wait_migration(struct qmp *q, struct kci_err *err)
{
	for (;;) {
		struct json_object *ret = NULL, *v;
		const char *status;
		int rc;

		if ((rc = qmp_cmd(q, "{\"execute\":\"query-migrate\"}", -1, &ret, err)) < 0)
			return rc;
		status = json_object_object_get_ex(ret, "status", &v) ? json_object_get_string(v)
								      : "";
		if (strcmp(status, "completed") == 0) {
			json_object_put(ret);
			return 0;
		}
		if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
			rc = kci_err_set(err, KCI_ERROR, "saving the VM %s: %.200s", status,
					 json_object_object_get_ex(ret, "error-desc", &v)
						 ? json_object_get_string(v)
						 : "no reason given");
			json_object_put(ret);
			return rc;
		}
		json_object_put(ret);
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* fsync(2) of a file or directory by name. */
static int
sync_file(const char *path, struct kci_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = kci_err_sys(err, errno, "sync %s", path);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int
write_small(const char *dir, const char *name, const char *text, struct kci_err *err)
{
	char *path = kci_xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), rc = 0;

	if (fd < 0 || kci_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0)
		rc = kci_err_sys(err, errno, "write %s", path);
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* The template's files once the guest is saved: scratch copy, checksum, meta. */
static int
finish_files(struct kci_vm *vm, const char *tmp, int state_fd, struct kci_err *err)
{
	const struct vm_boot *b = vm->boot;
	struct json_object *m;
	struct stat st, rs;
	char hex[65], *ram = kci_xasprintf("%s/ram", tmp);
	int rc;

	/*
	 * As root, clones' QEMUs run as other uids, one each, and QEMU 7.2 opens
	 * the RAM file read-write to map it privately; the templates dir (0700)
	 * keeps everyone else away.
	 */
	rc = geteuid() == 0 ? chmod(ram, 0666) : 0;
	if (rc == 0)
		rc = stat(ram, &rs);
	free(ram);
	if (rc < 0)
		return kci_err_sys(err, errno, "template RAM file");
	if (fsync(state_fd) < 0 || fstat(state_fd, &st) < 0)
		return kci_err_sys(err, errno, "save the VM's state");
	if ((rc = hash_fd(state_fd, hex, err)) < 0)
		return kci_err_prefix(err, "checksum the VM's state");
	m = json_object_new_object();
	json_object_object_add(m, "format", json_object_new_int(TEMPLATE_FORMAT));
	json_object_object_add(m, "state_bytes", json_object_new_int64(st.st_size));
	json_object_object_add(m, "state_sha256", json_object_new_string(hex));
	json_object_object_add(m, "ram_bytes", json_object_new_int64(rs.st_size));
	json_object_object_add(m, "ram_ino", json_object_new_int64((int64_t)rs.st_ino));
	json_object_object_add(
		m, "ram_ctime_ns",
		json_object_new_int64(rs.st_ctim.tv_sec * 1000000000LL + rs.st_ctim.tv_nsec));
	json_object_object_add(m, "label", json_object_new_string(b->label ? b->label : ""));
	json_object_object_add(m, "created", json_object_new_int64(time(NULL)));
	json_object_object_add(m, "cpus", json_object_new_int((int)b->cpus));
	json_object_object_add(m, "memory_mib", json_object_new_int64((int64_t)b->memory_mib));
	json_object_object_add(m, "network", json_object_new_boolean(b->network));
	rc = write_small(tmp, "meta", json_object_to_json_string(m), err);
	json_object_put(m);
	if (rc < 0 || (rc = write_small(tmp, "key", vm->tmpl.keytext, err)) < 0)
		return rc;
	return 0;
}

int
template_save(struct kci_vm *vm, struct kci_err *err)
{
	struct vm_template *t = &vm->tmpl;
	struct qmp q = { .fd = -1 };
	char *tmp = kci_xasprintf("%s.tmp-%d-XXXXXX", t->dir, (int)getpid()), *path = NULL;
	int state_fd = -1, rc, saved = 0;

	if (!mkdtemp(tmp)) {
		rc = kci_err_sys(err, errno, "create %s", tmp);
		free(tmp);
		return rc;
	}
	path = kci_xasprintf("%s/state", tmp);
	if ((state_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		rc = kci_err_sys(err, errno, "create %s", path);
		goto out;
	}
	if ((rc = qmp_open(&q, vm->qmp_path, SAVE_TIMEOUT_MS, err)) < 0 ||
	    (rc = qmp_cmd(&q,
			  "{\"execute\":\"migrate-set-parameters\",\"arguments\":"
			  "{\"max-bandwidth\":" SAVE_BANDWIDTH "}}",
			  -1, NULL, err)) < 0 ||
	    (rc = qmp_cmd(
		     &q,
		     "{\"execute\":\"migrate-set-capabilities\",\"arguments\":"
		     "{\"capabilities\":[{\"capability\":\"x-ignore-shared\",\"state\":true}]}}",
		     -1, NULL, err)) < 0 ||
	    (rc = qmp_cmd(&q, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"" FDNAME "\"}}",
			  state_fd, NULL, err)) < 0 ||
	    (rc = qmp_cmd(&q, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:" FDNAME "\"}}",
			  -1, NULL, err)) < 0)
		goto out;
	/* Once it completes the guest is paused: it must go on whatever happens next. */
	rc = wait_migration(&q, err);
	saved = rc == 0;
	/* The guest is paused: its RAM and disks are as the saved state has them. */
	if (saved) {
		free(path);
		path = kci_xasprintf("%s/ram", tmp);
		/* What the guest touched and freed since is often zero: no need to keep it. */
		if ((rc = vm_copy_extents(vm->ram_fd, "the guest's RAM", path, 1, err)) == 0)
			rc = sync_file(path, err);
	}
	if (saved && rc == 0 && vm->boot->scratch) {
		free(path);
		path = kci_xasprintf("%s/scratch.ext4", tmp);
		if ((rc = vm_copy_sparse(vm->boot->scratch, path, err)) == 0)
			rc = sync_file(path, err);
	}
	if (saved) {
		struct kci_err cerr = KCI_ERR_INIT;
		if (qmp_cmd(&q, "{\"execute\":\"cont\"}", -1, NULL, &cerr) < 0) {
			*err = cerr;
			rc = kci_err_prefix(err, "resume the VM after saving it");
			vm->broken = 1;
			goto out;
		}
	}
	if (rc < 0 || (rc = finish_files(vm, tmp, state_fd, err)) < 0)
		goto out;
	/* Every file is on the disk before the name says the template is whole. */
	if ((rc = sync_file(tmp, err)) < 0)
		goto out;
	if (rename(tmp, t->dir) < 0) {
		rc = kci_err_sys(err, errno, "rename %s", tmp);
		goto out;
	}
	free(tmp);
	tmp = NULL;
	char *root = templates_dir(vm->boot->cache_dir);
	(void)sync_file(root, err);
	free(root);
out:
	qmp_close(&q);
	if (state_fd >= 0)
		close(state_fd);
	if (tmp) {
		kci_rm_rf(tmp, NULL);
		free(tmp);
	}
	free(path);
	/* Made or not, the lock goes: the next VM of this kind tries again. */
	if (t->lock_fd >= 0)
		close(t->lock_fd);
	t->lock_fd = -1;
	vm->mode = VM_COLD;
	return rc;
}

int
template_incoming(struct kci_vm *vm, int fd, struct kci_err *err)
{
	struct qmp q = { .fd = -1 };
	char cmd[160];
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:%d\"}}", fd);
	if ((rc = qmp_open(&q, vm->qmp_path, RESTORE_QMP_TIMEOUT_MS, err)) == 0 &&
	    (rc = qmp_cmd(
		     &q,
		     "{\"execute\":\"migrate-set-capabilities\",\"arguments\":"
		     "{\"capabilities\":[{\"capability\":\"x-ignore-shared\",\"state\":true}]}}",
		     -1, NULL, err)) == 0)
		rc = qmp_cmd(&q, cmd, -1, NULL, err);
	qmp_close(&q);
	return rc < 0 ? kci_err_prefix(err, "restore the VM") : 0;
}

/* 1 if a line "NAME <ident>" of a template's key no longer matches its file. */
static int
input_changed(const char *keytext, const char *name)
{
	size_t n = strlen(name);
	const char *line = keytext;
	int changed = 0;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (len > n + 1 && strncmp(line, name, n) == 0 && line[n] == ' ') {
			char *recorded = kci_xstrndup(line + n + 1, len - n - 1), *path, *now;
			/* "PATH SIZE MTIME INO" or "PATH missing": the path is all but the tail. */
			int fields = strcmp(recorded, "-") == 0		    ? 0
				     : strstr(recorded, " missing") != NULL ? 1
									    : 3;
			path = kci_xstrdup(recorded);
			for (int i = 0; i < fields; i++) {
				char *sp = strrchr(path, ' ');
				if (sp)
					*sp = '\0';
			}
			now = ident(fields ? path : NULL);
			changed = strcmp(now, recorded) != 0;
			free(now);
			free(path);
			free(recorded);
			break;
		}
		line = end ? end + 1 : NULL;
	}
	return changed;
}

/* Disk space of a template dir's files (allocated blocks: its files are sparse). */
static uint64_t
dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t total = 0;
	struct stat st;

	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			total += (uint64_t)st.st_blocks * 512;
	if (d)
		closedir(d);
	return total;
}

static int
is_key(const char *name)
{
	return strlen(name) == 32 && strspn(name, "0123456789abcdef") == 32;
}

int
kci_vm_templates_list(const char *cache_dir, struct kci_vm_template_info **out, size_t *n,
		      struct kci_err *err)
{
	char *root = templates_dir(cache_dir);
	DIR *d = opendir(root);
	struct dirent *de;
	struct stat st;

	*out = NULL;
	*n = 0;
	if (!d) {
		int rc = errno == ENOENT ? 0 : kci_err_sys(err, errno, "open %s", root);
		free(root);
		return rc;
	}
	while ((de = readdir(d))) {
		if (!is_key(de->d_name))
			continue;
		char *dir = kci_xasprintf("%s/%s", root, de->d_name), *meta_path;
		struct json_object *m = read_meta(dir);
		char *key = read_small(dir, "key");
		struct kci_vm_template_info *t;

		*out = kci_xrealloc(*out, (*n + 1) * sizeof(**out));
		t = &(*out)[(*n)++];
		memset(t, 0, sizeof(*t));
		memcpy(t->key, de->d_name, 32); /* is_key(): 32 hex digits */
		snprintf(t->label, sizeof(t->label), "%s", m ? meta_str(m, "label") : "");
		t->cpus = m ? (unsigned)meta_int(m, "cpus") : 0;
		t->memory_mib = m ? (uint64_t)meta_int(m, "memory_mib") : 0;
		t->network = m && json_object_get_boolean(json_object_object_get(m, "network"));
		t->created = m ? meta_int(m, "created") : 0;
		meta_path = kci_xasprintf("%s/meta", dir);
		t->used = stat(meta_path, &st) == 0 ? st.st_mtime : 0;
		t->bytes = dir_bytes(dir);
		t->stale = !m || !key;
		static const char *const inputs[] = { "qemu", "kernel", "initrd", "root" };
		for (size_t i = 0; !t->stale && i < 4; i++)
			t->stale = input_changed(key, inputs[i]);
		free(meta_path);
		free(key);
		json_object_put(m);
		free(dir);
	}
	closedir(d);
	free(root);
	return 0;
}

int
kci_vm_templates_prune(const char *cache_dir, int all, int64_t unused_for, uint64_t *freed,
		       size_t *removed, struct kci_err *err)
{
	struct kci_vm_template_info *t;
	char *root = templates_dir(cache_dir);
	size_t n;
	int rc;

	*freed = 0;
	*removed = 0;
	if ((rc = kci_vm_templates_list(cache_dir, &t, &n, err)) < 0) {
		free(root);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (!all && !t[i].stale && time(NULL) - t[i].used < unused_for)
			continue;
		char *dir = kci_xasprintf("%s/%s", root, t[i].key);
		char *lock = kci_xasprintf("%s.lock", dir);
		template_remove(dir);
		(void)unlink(lock);
		*freed += t[i].bytes;
		(*removed)++;
		free(lock);
		free(dir);
	}
	free(t);
	/* Half-made templates of dead kci processes. */
	kci_sweep_orphans(root);
	free(root);
	return 0;
}
