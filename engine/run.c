/*
 * A run of a plan: the output dirs, the workspace disk and the secrets'
 * masks every job shares, then the scheduler (sched.c) with each job in a
 * VM of its own (job.c), then a last event saying the run is over.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "engine/internal.h"

#define VM_MEMORY_BUDGET_MIB 1024 /* host memory one job's VM is allowed, QEMU included */
#define WORKSPACE_FREE_MIB   4096 /* room the jobs have to build in /workspace (sparse) */
#define VM_QEMU_MIB	     256  /* QEMU's own memory beside its guest's, as measured under TCG */
#define DISK_RESERVE_MIB     1024 /* the disk keeps this much for everything else */

unsigned
kci_engine_default_jobs(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_AVPHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	unsigned long long mem_mib =
		pages > 0 && psize > 0 ? (unsigned long long)pages * (unsigned long long)psize >> 20
				       : 0;
	unsigned n = cpus > 0 ? (unsigned)cpus : 1;

	/* Under TCG each vCPU is a busy host thread: more VMs than cores only slows all of them. */
	if (mem_mib && mem_mib / VM_MEMORY_BUDGET_MIB < n)
		n = (unsigned)(mem_mib / VM_MEMORY_BUDGET_MIB);
	return n ? n : 1;
}

/*
 * vCPUs for a job that names no number: the host's CPUs shared among the VMs
 * that will run at once, at least 1 and at most 2. Under TCG every vCPU is a
 * busy host thread while the guest boots; measured here (2 CPUs, 8 trivial
 * jobs, --jobs 2): 8.5 s with 1 vCPU each against 11.5 s with 2
 * (docs/benchmarks.md).
 */
static unsigned
default_cpus(const struct kci_plan *p, const int *selected, unsigned max_jobs)
{
	long host = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned at_once = 0, n;

	for (size_t i = 0; i < p->n_jobs; i++)
		at_once += selected[i] != 0;
	if (at_once > max_jobs)
		at_once = max_jobs;
	n = host > 0 && at_once ? (unsigned)host / at_once : 1;
	return n < 1 ? 1 : n > 2 ? 2 : n;
}

/*
 * Opens (creating it) the directory `name` under parent without following a
 * symlink: .kci/ is inside the repository, and a repository that commits
 * `.kci/artifacts -> ../.git` must not steer kci's writes.
 */
static int
open_out_dir(int parent, const char *name, const char *shown, int *out, struct kci_err *err)
{
	int fd;

	if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
		return kci_err_sys(err, errno, "mkdir %s", shown);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
		return kci_err_set(err, KCI_INVALID,
				   "%s is a symlink or not a directory; kci writes logs and "
				   "artifacts only into a real directory (remove it)",
				   shown);
	if (fd < 0)
		return kci_err_sys(err, errno, "open %s", shown);
	*out = fd;
	return 0;
}

static int
open_outputs(const char *out_dir, int *art_fd, int *logs_fd, struct kci_err *err)
{
	char *parent = kci_xstrdup(out_dir), *slash = strrchr(parent, '/');
	char *art = kci_xasprintf("%s/artifacts", out_dir);
	char *logs = kci_xasprintf("%s/logs", out_dir);
	int pfd = -1, ofd = -1, rc;

	if (!slash || !slash[1]) {
		rc = kci_err_set(err, KCI_INVALID, "output dir %s: not a path", out_dir);
		goto out;
	}
	*slash = '\0';
	pfd = open(parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0) {
		rc = kci_err_sys(err, errno, "open %s", parent);
		goto out;
	}
	if ((rc = open_out_dir(pfd, slash + 1, out_dir, &ofd, err)) < 0 ||
	    (rc = open_out_dir(ofd, "artifacts", art, art_fd, err)) < 0 ||
	    (rc = open_out_dir(ofd, "logs", logs, logs_fd, err)) < 0)
		goto out;
	/* Artifact temp dirs of killed kci processes (".NAME.tmp-PID-XXXXXX"). */
	char *dir = kci_xasprintf("/proc/self/fd/%d", *art_fd);
	kci_sweep_orphans(dir);
	free(dir);
out:
	if (pfd >= 0)
		close(pfd);
	if (ofd >= 0)
		close(ofd);
	free(parent);
	free(art);
	free(logs);
	return rc;
}

static enum kci_job_state
run_one(void *ctx, size_t idx)
{
	return job_run(ctx, idx);
}

/*
 * What a job's VM may take, in MiB: of the host's memory, its RAM and QEMU's
 * own; of the disk, its scratch disk and its copy of the workspace disk
 * filled to their sizes (both are sparse: this is the worst case).
 */
static uint64_t
job_cost(void *ctx, size_t idx, int resource)
{
	const struct job_shared *sh = ctx;
	const struct kci_job *j = &sh->p->jobs[idx];

	if (resource == SCHED_MEMORY)
		return (j->memory_mib ? j->memory_mib : KCI_ENGINE_JOB_MEMORY_MIB) + VM_QEMU_MIB;
	return (j->disk_mib ? j->disk_mib : KCI_ENGINE_JOB_DISK_MIB) + sh->workspace_mib;
}

/* Disk all VMs at once may fill: the free space where their disks live, less a reserve. */
static uint64_t
disk_budget(const char *dir)
{
	struct statvfs v;
	uint64_t avail;

	if (statvfs(dir, &v) < 0)
		return UINT64_MAX;
	avail = (uint64_t)v.f_bavail * v.f_frsize >> 20;
	return avail > DISK_RESERVE_MIB ? avail - DISK_RESERVE_MIB : 0;
}

/* Memory all VMs at once may take: 3/4 of the host's, the rest is the host's own. */
static uint64_t
memory_budget(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	return pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize / 4 * 3 >> 20
				      : UINT64_MAX;
}

int
kci_engine_run(const struct kci_plan *p, const int *selected, const struct kci_engine_opts *o,
	       enum kci_job_state *states, struct kci_err *err)
{
	struct job_shared sh = { .kit = o->kit,
				 .p = p,
				 .secrets = o->secrets,
				 .registries = &o->registries,
				 .art_fd = -1,
				 .logs_fd = -1,
				 .out_dir = o->out_dir,
				 .workdir = o->workdir,
				 .default_timeout_ms = o->default_timeout_ms
							       ? o->default_timeout_ms
							       : KCI_ENGINE_JOB_TIMEOUT_MS,
				 .output_limit = o->output_limit ? o->output_limit
								 : KCI_ENGINE_OUTPUT_LIMIT,
				 .console_fd = o->console_fd,
				 .template_scope = o->template_scope };
	struct cancel cancel = { .fd = o->cancel_fd };
	struct kci_event end = { .kind = KCI_EV_RUN_END };
	struct emitter em;
	struct masker mask;
	char *workspace_disk = NULL;
	int *sel = kci_xcalloc(p->n_jobs ? p->n_jobs : 1, sizeof(int)), rc;
	struct sched_opts so = { .p = p,
				 .selected = sel,
				 .run = run_one,
				 .ctx = &sh,
				 .cost = job_cost,
				 .needs_met = o->needs_met };
	struct stat st;

	for (size_t i = 0; i < p->n_jobs; i++) {
		sel[i] = selected ? selected[i] : 1;
		states[i] = KCI_JOB_PENDING;
	}
	if ((rc = open_outputs(o->out_dir, &sh.art_fd, &sh.logs_fd, err)) < 0)
		goto out;
	if (o->workspace) {
		if (stat(o->workspace, &st) < 0 || !S_ISDIR(st.st_mode)) {
			rc = kci_err_sys(err, errno ? errno : ENOTDIR, "workspace %s",
					 o->workspace);
			goto out;
		}
		if ((rc = kci_engine_workspace_disk(o->kit, o->workspace, WORKSPACE_FREE_MIB,
						    &workspace_disk, err)) < 0)
			goto out;
	}
	mask_init(&mask, o->secrets);
	emitter_init(&em, p, o->event, o->ctx);
	sh.em = &em;
	sh.cancel = &cancel;
	sh.mask = &mask;
	sh.workspace_disk = workspace_disk;
	so.max_jobs = o->max_jobs ? o->max_jobs : kci_engine_default_jobs();
	so.em = &em;
	so.cancel = &cancel;
	sh.default_cpus = default_cpus(p, sel, so.max_jobs);
	if (workspace_disk && stat(workspace_disk, &st) == 0)
		sh.workspace_mib = (uint64_t)st.st_size >> 20;
	so.budget[SCHED_MEMORY] = memory_budget();
	so.budget[SCHED_DISK] = disk_budget(kci_engine_kit_run_dir(o->kit));
	sched_run(&so, states);
	emitter_send(&em, &end);
	emitter_destroy(&em);
	mask_free(&mask);
out:
	if (workspace_disk)
		unlink(workspace_disk);
	free(workspace_disk);
	if (sh.art_fd >= 0)
		close(sh.art_fd);
	if (sh.logs_fd >= 0)
		close(sh.logs_fd);
	free(sel);
	return rc;
}
