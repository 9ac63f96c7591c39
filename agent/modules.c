/* Loading the kernel modules the initramfs carries (virtio, block, console, overlay). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/internal.h"

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

/*
 * Loads the modules named in list_path, one absolute path a line, in order:
 * kci wrote them in dependency order. Failures are logged, not fatal, since
 * a module may be built into the kernel; a missing device shows up later
 * with a clearer message.
 */
void
modules_load(struct agent *a, const char *list_path)
{
	char *line = NULL;
	size_t size = 0;
	ssize_t n;
	FILE *f;

	f = fopen(list_path, "re");
	if (!f) {
		agent_log(a, "%s: %s; loading no modules", list_path, strerror(errno));
		return;
	}
	while ((n = getline(&line, &size, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		load_one(a, line);
	}
	free(line);
	fclose(f);
}
