/* Loading the kernel modules the initramfs carries (virtio, block, console, overlay, NIC). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/internal.h"
#include "common/xalloc.h"

/* Loads one module; EEXIST means it is loaded or built in, which is what we want. */
static void
load_one(struct agent *a, const char *path)
{
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		agent_log(a, "module %s: %s", path, strerror(errno));
		return;
	}
	if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
		agent_log(a, "load module %s: %s", path, strerror(errno));
	close(fd);
}

struct module_job {
	struct agent *a;
	char *path;
	int level;
	pthread_t thread;
	int started;
};

static void *
load_thread(void *arg)
{
	struct module_job *j = arg;

	load_one(j->a, j->path);
	return NULL;
}

/* Loads every module of one level at once; finit_module is slow under TCG, and they are
 * independent. */
static void
load_level(struct module_job *jobs, size_t n, int level)
{
	for (size_t i = 0; i < n; i++)
		if (jobs[i].level == level)
			jobs[i].started =
				pthread_create(&jobs[i].thread, NULL, load_thread, &jobs[i]) == 0;
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].level != level)
			continue;
		if (jobs[i].started)
			pthread_join(jobs[i].thread, NULL);
		else
			load_one(jobs[i].a, jobs[i].path);
	}
}

/* Appends the modules of one "LEVEL PATH" list to *jobs. */
static void
read_list(struct agent *a, const char *list_path, struct module_job **jobs, size_t *njobs,
	  int *max_level)
{
	char *line = NULL;
	size_t size = 0;
	ssize_t n;
	FILE *f;

	f = fopen(list_path, "re");
	if (!f) {
		agent_log(a, "%s: %s; loading no modules from it", list_path, strerror(errno));
		return;
	}
	while ((n = getline(&line, &size, f)) >= 0) {
		char *path;
		long level;

		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		level = strtol(line, &path, 10);
		if (path == line || *path != ' ' || level < 0 || level > 64) {
			agent_log(a, "%s: bad line '%s'", list_path, line);
			continue;
		}
		*jobs = kci_xrealloc(*jobs, (*njobs + 1) * sizeof(**jobs));
		(*jobs)[(*njobs)++] = (struct module_job){ .a = a,
							   .path = kci_xstrdup(path + 1),
							   .level = (int)level };
		if (level > *max_level)
			*max_level = (int)level;
	}
	free(line);
	fclose(f);
}

/*
 * Loads the modules named in the NULL-terminated list_paths, one "LEVEL
 * PATH" a line: kci computed each module's depth in the dependency graph
 * (over all the lists together), so all of level N can load together once
 * levels below N are in. Failures are logged, not fatal, since a module may
 * be built into the kernel; a missing device shows up later with a clearer
 * message.
 */
void
modules_load(struct agent *a, const char *const *list_paths)
{
	struct module_job *jobs = NULL;
	size_t njobs = 0;
	int max_level = 0;

	for (size_t i = 0; list_paths[i]; i++)
		read_list(a, list_paths[i], &jobs, &njobs, &max_level);
	for (int level = 0; level <= max_level; level++)
		load_level(jobs, njobs, level);
	for (size_t i = 0; i < njobs; i++)
		free(jobs[i].path);
	free(jobs);
}
