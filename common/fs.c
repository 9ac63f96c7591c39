/* File-system helpers shared by the host modules. */
#include "common/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/xalloc.h"

int
kci_mkdir_p(const char *path, unsigned mode, struct kci_err *err)
{
	struct stat st;
	char *p;
	int rc = 0;

	if (!path[0])
		return kci_err_set(err, KCI_INVALID, "mkdir: empty path");
	p = kci_xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		int made = mkdir(p, mode) == 0;
		if (!made && errno != EEXIST) {
			rc = kci_err_sys(err, errno, "mkdir %s", p);
			break;
		}
		*s = c;
		if (c == '\0') {
			/* EEXIST only says the name is taken: mkdir -p wants a directory. */
			if (!made && (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)))
				rc = kci_err_sys(err, EEXIST, "mkdir %s", p);
			break;
		}
	}
	free(p);
	return rc;
}

int
kci_home(char **out, struct kci_err *err)
{
	const char *env = getenv("KCI_HOME");
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	char *path;
	int rc;

	if (env && *env)
		path = kci_xstrdup(env);
	else if (geteuid() == 0)
		path = kci_xstrdup("/var/lib/kci");
	else if (xdg && *xdg)
		path = kci_xasprintf("%s/kci", xdg);
	else if (home && *home)
		path = kci_xasprintf("%s/.local/share/kci", home);
	else
		return kci_err_set(err, KCI_INVALID, "cannot find a data directory: set KCI_HOME");
	if (path[0] != '/') {
		rc = kci_err_set(err, KCI_INVALID, "KCI_HOME must be an absolute path, got '%s'",
				 path);
		free(path);
		return rc;
	}
	if ((rc = kci_mkdir_p(path, 0700, err)) < 0) {
		free(path);
		return rc;
	}
	*out = path;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int
kci_rm_rf(const char *path, struct kci_err *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : kci_err_sys(err, errno, "stat %s", path);
	/* FTW_PHYS: never follow a symlink out of the tree being removed. */
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
		return kci_err_sys(err, errno, "remove %s", path);
	return 0;
}

int
kci_tmpfile_near(const char *final, char **tmp_path, struct kci_err *err)
{
	/* The pid in the name lets a cleanup tell a dead writer's leftovers from live work. */
	char *tmpl = kci_xasprintf("%s.tmp-%d-XXXXXX", final, (int)getpid());
	int fd = mkostemp(tmpl, O_CLOEXEC);

	if (fd < 0) {
		int rc = kci_err_sys(err, errno, "create temporary file for %s", final);
		free(tmpl);
		return rc;
	}
	*tmp_path = tmpl;
	return fd;
}

int
kci_commit_file(int fd, const char *tmp_path, const char *final, struct kci_err *err)
{
	char *dir = kci_xstrdup(final);
	int dfd, rc = 0;

	if (fsync(fd) < 0) {
		rc = kci_err_sys(err, errno, "fsync %s", tmp_path);
		close(fd);
		goto out;
	}
	close(fd);
	if (rename(tmp_path, final) < 0) {
		rc = kci_err_sys(err, errno, "rename %s", final);
		goto out;
	}
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
out:
	if (rc < 0)
		unlink(tmp_path);
	free(dir);
	return rc;
}

int
kci_read_fd(int fd, size_t max, const char *shown, char **out, size_t *len, struct kci_err *err)
{
	size_t have = 0, cap = 4096;
	char *buf;
	ssize_t n;

	/* Read up to max+1 bytes: one past the limit proves the file is too large. */
	max++;
	buf = kci_xmalloc(cap + 1);
	for (;;) {
		if (have == cap) {
			if (cap >= max)
				break;
			cap = cap * 2 > max ? max : cap * 2;
			buf = kci_xrealloc(buf, cap + 1);
		}
		n = read(fd, buf + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = kci_err_sys(err, errno, "read %s", shown);
			free(buf);
			return rc;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	if (have >= max) {
		free(buf);
		return kci_err_set(err, KCI_INVALID, "%s is larger than %zu bytes", shown, max - 1);
	}
	buf[have] = '\0';
	*out = buf;
	if (len)
		*len = have;
	return 0;
}

int
kci_read_file(const char *path, size_t max, char **out, size_t *len, struct kci_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return kci_err_sys(err, errno, "open %s", path);
	rc = kci_read_fd(fd, max, path, out, len, err);
	close(fd);
	return rc;
}

int
kci_tmp_is_orphan(const char *name)
{
	const char *t = strstr(name, ".tmp-");
	int pid;

	if (!t || sscanf(t, ".tmp-%d-", &pid) != 1 || pid <= 0)
		return 0;
	return kill(pid, 0) < 0 && errno == ESRCH;
}

void
kci_sweep_orphans(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		if (!kci_tmp_is_orphan(de->d_name))
			continue;
		char *path = kci_xasprintf("%s/%s", dir, de->d_name);
		if (unlink(path) < 0 && errno == EISDIR)
			kci_rm_rf(path, NULL);
		free(path);
	}
	if (d)
		closedir(d);
}

char *
kci_shown_path(const char *path)
{
	char *cwd = getcwd(NULL, 0);
	size_t n = cwd ? strlen(cwd) : 0;
	char *out;

	if (cwd && n > 1 && strncmp(path, cwd, n) == 0 && path[n] == '/')
		out = kci_xstrdup(path + n + 1);
	else
		out = kci_xstrdup(path);
	free(cwd);
	return out;
}

unsigned
kci_umask(void)
{
	char line[128];
	unsigned mask = 022;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &mask) == 1)
			break;
	if (f)
		fclose(f);
	return mask & 0777;
}

char *
kci_exe_dir(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return kci_xstrdup(".");
	buf[n] = '\0';
	return kci_xstrdup(dirname(buf));
}

int
kci_openat2(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve };

	for (int tries = 0;; tries++) {
		long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN || tries == 16)
			return -errno;
	}
}
