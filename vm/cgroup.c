/*
 * A cgroup leaf per VM, so one QEMU cannot take the host's memory, processes
 * or CPU: memory (guest RAM plus QEMU's own overhead), pids and CPU quota
 * (the VM's vCPUs). cgroup v2 where its controllers are available, else the
 * v1 hierarchies the host mounts (these machines have v1 for memory, pids and
 * cpu). The leaf lives under kci's own cgroup in each hierarchy, in `kci/`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/fs.h"
#include "common/xalloc.h"
#include "vm/internal.h"

#define CG_ROOT "/sys/fs/cgroup"

enum { CG_MEMORY, CG_PIDS, CG_CPU, CG_N };
static const char *const v1_names[CG_N] = { "memory", "pids", "cpu" };

struct cgroup {
	int v2;
	char *leaf[CG_N]; /* v2: leaf[0] only */
};

/* kci's own cgroup path in hierarchy `ctrl` (v1) or the unified one (ctrl NULL). */
static char *
own_path(const char *ctrl)
{
	char line[1024], *found = NULL;
	FILE *f = fopen("/proc/self/cgroup", "re");

	while (f && !found && fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;

		if (!b)
			continue;
		*a = *b = '\0';
		b[strcspn(b + 1, "\n") + 1] = '\0';
		if (ctrl ? strcmp(a + 1, ctrl) == 0 : (strcmp(line, "0") == 0 && !a[1]))
			found = kci_xstrdup(b + 1);
		else if (ctrl) {
			/* "4:cpu,cpuacct:/path": one of several co-mounted controllers. */
			for (char *t = strtok(a + 1, ","); t && !found; t = strtok(NULL, ","))
				if (strcmp(t, ctrl) == 0)
					found = kci_xstrdup(b + 1);
		}
	}
	if (f)
		fclose(f);
	return found;
}

static int
write_str(const char *dir, const char *file, const char *value)
{
	char *path = kci_xasprintf("%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	free(path);
	if (fd < 0)
		return -errno;
	if (kci_write_all(fd, value, strlen(value)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Whether the unified hierarchy at CG_ROOT offers memory, pids and cpu. */
static int
v2_usable(void)
{
	char *text = NULL;
	struct kci_err ignored = KCI_ERR_INIT;
	int ok = 0;

	if (kci_read_file(CG_ROOT "/cgroup.controllers", 4096, &text, NULL, &ignored) == 0)
		ok = strstr(text, "memory") && strstr(text, "pids") && strstr(text, "cpu");
	free(text);
	return ok;
}

/* mkdir that tolerates an existing directory. */
static int
mkdir_once(const char *path)
{
	return mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static int
limits_v2(const char *leaf, const struct cgroup_limits *l)
{
	char v[64];
	int rc;

	snprintf(v, sizeof(v), "%llu", (unsigned long long)l->memory_bytes);
	if ((rc = write_str(leaf, "memory.max", v)) < 0)
		return rc;
	(void)write_str(leaf, "memory.swap.max", "0");
	snprintf(v, sizeof(v), "%u", l->pids);
	if ((rc = write_str(leaf, "pids.max", v)) < 0)
		return rc;
	snprintf(v, sizeof(v), "%u 100000", l->cpus * 100000);
	return write_str(leaf, "cpu.max", v);
}

static int
limits_v1(char *const leaf[CG_N], const struct cgroup_limits *l)
{
	char v[64];
	int rc;

	snprintf(v, sizeof(v), "%llu", (unsigned long long)l->memory_bytes);
	if ((rc = write_str(leaf[CG_MEMORY], "memory.limit_in_bytes", v)) < 0)
		return rc;
	/* Swap counts too where the kernel accounts it (memsw); absent otherwise. */
	(void)write_str(leaf[CG_MEMORY], "memory.memsw.limit_in_bytes", v);
	snprintf(v, sizeof(v), "%u", l->pids);
	if ((rc = write_str(leaf[CG_PIDS], "pids.max", v)) < 0)
		return rc;
	if ((rc = write_str(leaf[CG_CPU], "cpu.cfs_period_us", "100000")) < 0)
		return rc;
	snprintf(v, sizeof(v), "%u", l->cpus * 100000);
	return write_str(leaf[CG_CPU], "cpu.cfs_quota_us", v);
}

int
cgroup_create(struct cgroup **out, const char *name, const struct cgroup_limits *l,
	      struct kci_err *err)
{
	struct cgroup *cg = kci_xcalloc(1, sizeof(*cg));
	const char *what = NULL;
	int rc = 0;

	cg->v2 = v2_usable();
	for (int i = 0; i < (cg->v2 ? 1 : CG_N); i++) {
		char *own = own_path(cg->v2 ? NULL : v1_names[i]);
		char *base = cg->v2 ? kci_xasprintf(CG_ROOT "/kci")
				    : kci_xasprintf(CG_ROOT "/%s%s/kci", v1_names[i],
						    own && strcmp(own, "/") ? own : "");

		free(own);
		what = cg->v2 ? "cgroup" : v1_names[i];
		/*
		 * v2: kci/ hangs off the root (which may hold processes and
		 * still delegate controllers); the leaf gets them from kci/.
		 */
		if (cg->v2)
			(void)write_str(CG_ROOT, "cgroup.subtree_control", "+memory +pids +cpu");
		if ((rc = mkdir_once(base)) == 0 && cg->v2)
			rc = write_str(base, "cgroup.subtree_control", "+memory +pids +cpu");
		cg->leaf[i] = kci_xasprintf("%s/%s", base, name);
		free(base);
		if (rc == 0)
			rc = mkdir(cg->leaf[i], 0755) < 0 ? -errno : 0;
		if (rc < 0) {
			free(cg->leaf[i]);
			cg->leaf[i] = NULL;
			break;
		}
	}
	if (rc == 0) {
		what = "cgroup limits";
		rc = cg->v2 ? limits_v2(cg->leaf[0], l) : limits_v1(cg->leaf, l);
	}
	if (rc < 0) {
		cgroup_remove(cg);
		return kci_err_sys(err, -rc,
				   "cannot cap the VM's resources (%s under " CG_ROOT
				   "; `kci doctor` tells what this host lacks)",
				   what);
	}
	*out = cg;
	return 0;
}

int
cgroup_fd(const struct cgroup *cg)
{
	return cg && cg->v2 ? open(cg->leaf[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
}

int
cgroup_attach(const struct cgroup *cg, pid_t pid)
{
	char v[32];
	int rc = 0;

	if (!cg)
		return 0;
	snprintf(v, sizeof(v), "%d", (int)pid);
	for (int i = 0; i < (cg->v2 ? 1 : CG_N) && rc == 0; i++)
		rc = write_str(cg->leaf[i], "cgroup.procs", v);
	if (rc < 0)
		errno = -rc;
	return rc;
}

const char *
cgroup_leaf(const struct cgroup *cg)
{
	return cg ? cg->leaf[0] : NULL;
}

void
cgroup_remove(struct cgroup *cg)
{
	if (!cg)
		return;
	/* Only empty cgroups can go: called once QEMU has been reaped. */
	for (int i = 0; i < CG_N; i++) {
		if (cg->leaf[i])
			(void)rmdir(cg->leaf[i]);
		free(cg->leaf[i]);
	}
	free(cg);
}

/* Every kci/ base dir of this host's hierarchies, NULL-terminated (caller frees). */
static char **
bases(void)
{
	char **out = kci_xcalloc(CG_N + 1, sizeof(char *));
	int v2 = v2_usable();

	for (int i = 0; i < (v2 ? 1 : CG_N); i++) {
		char *own = own_path(v2 ? NULL : v1_names[i]);
		out[i] = v2 ? kci_xstrdup(CG_ROOT "/kci")
			    : kci_xasprintf(CG_ROOT "/%s%s/kci", v1_names[i],
					    own && strcmp(own, "/") ? own : "");
		free(own);
	}
	return out;
}

void
cgroup_sweep(void)
{
	char **b = bases();
	time_t now = time(NULL);

	/*
	 * Leaves of VMs whose kci was killed stay behind, empty. rmdir fails
	 * on a cgroup with processes, and the age guard spares a leaf made a
	 * moment ago for a VM whose processes are not in it yet.
	 */
	for (size_t i = 0; b[i]; i++) {
		DIR *d = opendir(b[i]);
		struct dirent *de;
		struct stat st;

		while (d && (de = readdir(d))) {
			if (strncmp(de->d_name, "vm-", 3) != 0)
				continue;
			char *leaf = kci_xasprintf("%s/%s", b[i], de->d_name);
			if (stat(leaf, &st) == 0 && now - st.st_mtime > 60)
				(void)rmdir(leaf);
			free(leaf);
		}
		if (d)
			closedir(d);
		free(b[i]);
	}
	free(b);
}

int
cgroup_probe(char *what, size_t size)
{
	struct cgroup_limits l = { .memory_bytes = 64 << 20, .pids = 16, .cpus = 1 };
	struct kci_err err = KCI_ERR_INIT;
	struct cgroup *cg = NULL;
	char name[64];
	int v2 = v2_usable();

	snprintf(name, sizeof(name), "probe-%d", (int)getpid());
	if (cgroup_create(&cg, name, &l, &err) < 0) {
		snprintf(what, size, "%s", err.msg);
		return -1;
	}
	snprintf(what, size, "%s",
		 v2 ? "cgroup v2 (memory, pids, cpu)" : "cgroup v1 (memory, pids, cpu)");
	cgroup_remove(cg);
	return 0;
}
