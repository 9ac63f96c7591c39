/* Runs the host tools vm/ relies on (mke2fs) and reports their failures in one line. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "vm/internal.h"

extern char **environ;

static const char *const sbin_dirs[] = { "/usr/local/sbin", "/usr/sbin", "/sbin", NULL };

/* Last non-empty line of `buf`, trimmed, for a one-line error. */
static const char *
last_line(char *buf)
{
	char *end = buf + strlen(buf);

	while (end > buf && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		*--end = '\0';
	char *nl = strrchr(buf, '\n');
	return nl ? nl + 1 : buf;
}

int
run_capture(char *const argv[], char *out, size_t outsize, struct kci_err *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pipefd[2], status, rc = 0;
	size_t have = 0;
	pid_t pid;
	ssize_t n;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return kci_err_sys(err, errno, "pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	/* Tools start with default signals, whatever kci blocks or ignores for itself. */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	/* Own process group: the terminal's Ctrl-C is kci's to handle, not mke2fs's to die of. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						POSIX_SPAWN_SETPGROUP);
	rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	/*
	 * mke2fs lives in /usr/sbin, which a normal user's PATH on Debian does not
	 * hold: look there too before giving up.
	 */
	for (const char *const *dir = sbin_dirs; rc == ENOENT && !strchr(argv[0], '/') && *dir;
	     dir++) {
		char *path = kci_xasprintf("%s/%s", *dir, argv[0]);

		rc = posix_spawn(&pid, path, &fa, &attr, argv, environ);
		free(path);
	}
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		return kci_err_sys(err, rc, "cannot run %s", argv[0]);
	}
	/* Keep the last outsize-1 bytes: the end of a tool's output says why it failed. */
	for (;;) {
		char chunk[4096];
		n = read(pipefd[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((size_t)n >= outsize - 1) {
			memcpy(out, chunk + n - (outsize - 1), outsize - 1);
			have = outsize - 1;
		} else {
			if (have + (size_t)n > outsize - 1) {
				size_t drop = have + (size_t)n - (outsize - 1);
				memmove(out, out + drop, have - drop);
				have -= drop;
			}
			memcpy(out + have, chunk, (size_t)n);
			have += (size_t)n;
		}
	}
	out[have] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return kci_err_sys(err, errno, "waitpid %s", argv[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return kci_err_set(err, KCI_ERROR, "%s failed (exit %d): %s", argv[0],
				   WEXITSTATUS(status), last_line(out));
	return kci_err_set(err, KCI_ERROR, "%s killed by signal %d", argv[0], WTERMSIG(status));
}

void
cache_prune_superseded(const char *cache_dir, const char *prefix, const char *suffix,
		       const char *keep)
{
	DIR *d = opendir(cache_dir);
	size_t plen = strlen(prefix), slen = strlen(suffix);
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		/* Temp files of a kci killed mid-build are garbage. */
		int stale_tmp = kci_tmp_is_orphan(de->d_name);
		if (!stale_tmp && (n < plen + slen || strncmp(de->d_name, prefix, plen) != 0 ||
				   strcmp(de->d_name + n - slen, suffix) != 0))
			continue;
		char *path = kci_xasprintf("%s/%s", cache_dir, de->d_name);
		if (strcmp(path, keep) != 0 && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    (stale_tmp || now - st.st_mtime > 3600))
			unlink(path);
		free(path);
	}
	closedir(d);
}

char *
tool_path(const char *name)
{
	const char *path = getenv("PATH");
	char *dirs, *save = NULL, *found = NULL;

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? kci_xstrdup(name) : NULL;
	dirs = kci_xasprintf("%s:/usr/local/sbin:/usr/sbin:/sbin",
			     path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		char *cand = kci_xasprintf("%s/%s", d, name);

		/* Not resolved further: pasta is a link to passt that acts on its name. */
		if (access(cand, X_OK) == 0)
			found = cand;
		else
			free(cand);
	}
	free(dirs);
	return found;
}

int
run_tool(char *const argv[], struct kci_err *err)
{
	char out[2048];

	return run_capture(argv, out, sizeof(out), err);
}
