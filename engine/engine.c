/*
 * The scheduler: starts every job whose needs passed, at most max_jobs VMs
 * at once, skips the dependents of a job that did not pass, and on cancel
 * starts nothing more while the running jobs tear their VMs down. One thread
 * per running job; events are serialised so the caller never locks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "engine/job.h"

#define VM_MEMORY_BUDGET_MIB 1024 /* host memory one job's VM is allowed, QEMU included */
#define WORKSPACE_FREE_MIB   4096 /* room the jobs have to build in /workspace (sparse) */

int64_t
engine_now_ms(const struct engine *e)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - e->t0;
}

void
engine_emit(struct engine *e, struct kci_event *ev)
{
	pthread_mutex_lock(&e->ev_lock);
	ev->time_ms = engine_now_ms(e);
	if (ev->job < e->p->n_jobs && !ev->job_name)
		ev->job_name = e->p->jobs[ev->job].name;
	if (ev->text && !ev->len)
		ev->len = strlen(ev->text);
	if (e->o->event)
		e->o->event(e->o->ctx, ev);
	pthread_mutex_unlock(&e->ev_lock);
}

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

int
engine_canceled(struct engine *e)
{
	struct pollfd pfd = { .fd = e->o->cancel_fd, .events = POLLIN };

	if (e->canceled)
		return 1;
	if (e->o->cancel_fd >= 0 && poll(&pfd, 1, 0) > 0) {
		e->canceled = 1;
		return 1;
	}
	return 0;
}

/*
 * vCPUs for a job that names no number: the host's CPUs shared among the VMs
 * that will run at once, at least 1 and at most 2. Under TCG every vCPU is a
 * busy host thread while the guest boots; measured here (2 CPUs, 8 trivial
 * jobs, --jobs 2): 8.5 s with 1 vCPU each against 11.5 s with 2
 * (docs/benchmarks.md).
 */
static unsigned
default_cpus(const struct engine *e)
{
	long host = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned at_once = 0, n;

	for (size_t i = 0; i < e->p->n_jobs; i++)
		at_once += e->selected[i] != 0;
	if (at_once > e->max_jobs)
		at_once = e->max_jobs;
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

/* Removes artifact temp dirs (".NAME.tmp-PID-XXXXXX") whose kci is gone. */
static void
sweep_artifacts(int art_fd)
{
	int fd = dup(art_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d && fd >= 0)
		close(fd);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] != '.' || !kci_tmp_is_orphan(de->d_name))
			continue;
		char *path = kci_xasprintf("/proc/self/fd/%d/%s", art_fd, de->d_name);
		kci_rm_rf(path, NULL);
		free(path);
	}
	if (d)
		closedir(d);
}

static int
open_outputs(struct engine *e, struct kci_err *err)
{
	char *parent = kci_xstrdup(e->o->out_dir), *slash = strrchr(parent, '/');
	char *art = kci_xasprintf("%s/artifacts", e->o->out_dir);
	char *logs = kci_xasprintf("%s/logs", e->o->out_dir);
	int pfd = -1, ofd = -1, rc;

	if (!slash || !slash[1]) {
		rc = kci_err_set(err, KCI_INVALID, "output dir %s: not a path", e->o->out_dir);
		goto out;
	}
	*slash = '\0';
	pfd = open(parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0) {
		rc = kci_err_sys(err, errno, "open %s", parent);
		goto out;
	}
	if ((rc = open_out_dir(pfd, slash + 1, e->o->out_dir, &ofd, err)) < 0 ||
	    (rc = open_out_dir(ofd, "artifacts", art, &e->art_fd, err)) < 0 ||
	    (rc = open_out_dir(ofd, "logs", logs, &e->logs_fd, err)) < 0)
		goto out;
	sweep_artifacts(e->art_fd);
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

/* Guest assets every job shares: kernel, initramfs, the base rootfs, the workspace disk. */
static int
prepare(struct engine *e, struct kci_err *err)
{
	const struct kci_engine_opts *o = e->o;
	struct stat st;
	int rc;

	e->cache = kci_xasprintf("%s/cache", o->home);
	e->rundir = kci_xasprintf("%s/run", o->home);
	if ((rc = kci_mkdir_p(e->cache, 0700, err)) < 0 ||
	    (rc = kci_mkdir_p(e->rundir, 0700, err)) < 0)
		return rc;
	kci_vm_sweep_stale(e->rundir);
	if ((rc = open_outputs(e, err)) < 0)
		return rc;
	if ((rc = kci_guest_find(&e->guest, o->kernel, o->home, err)) < 0 ||
	    (rc = kci_agent_find(&e->agent, err)) < 0 ||
	    (rc = kci_initramfs_get(e->guest, e->agent, e->cache, &e->initrd, err)) < 0)
		return rc;
	for (size_t i = 0; i < e->p->n_jobs; i++) {
		if (e->selected[i] && !e->p->jobs[i].image) {
			if ((rc = kci_rootfs_base(e->guest, e->cache, &e->base_rootfs, err)) < 0)
				return rc;
			break;
		}
	}
	if (o->workspace) {
		if (stat(o->workspace, &st) < 0 || !S_ISDIR(st.st_mode))
			return kci_err_sys(err, errno ? errno : ENOTDIR, "workspace %s",
					   o->workspace);
		if (!o->scratch_dir)
			return kci_err_set(err, KCI_INVALID, "a workspace needs a scratch dir");
		e->workspace_disk = kci_xasprintf("%s/workspace.ext4", o->scratch_dir);
		if ((rc = kci_disk_build_rw(o->workspace, e->workspace_disk, WORKSPACE_FREE_MIB,
					    err)) < 0)
			return kci_err_prefix(err, "workspace disk");
	}
	return 0;
}

/* The first of job i's needs that did not pass, or -1 (all passed), or -2 (some pending). */
static long
blocking_need(const struct engine *e, size_t i)
{
	const struct kci_job *j = &e->p->jobs[i];
	int pending = 0;

	for (size_t k = 0; j->needs && j->needs[k]; k++) {
		for (size_t d = 0; d < e->p->n_jobs; d++) {
			if (strcmp(e->p->jobs[d].name, j->needs[k]) != 0)
				continue;
			if (e->states[d] == KCI_JOB_PENDING || e->states[d] == KCI_JOB_RUNNING)
				pending = 1;
			else if (e->states[d] != KCI_JOB_PASSED)
				return (long)d;
		}
	}
	return pending ? -2 : -1;
}

static void *
job_thread(void *arg)
{
	struct job_run *jr = arg;
	struct engine *e = jr->e;
	enum kci_job_state st = job_run(jr);

	pthread_mutex_lock(&e->lock);
	e->states[jr->idx] = st;
	e->running--;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

static void
end_without_running(struct engine *e, size_t i, enum kci_job_state st, const char *why)
{
	struct kci_event ev = { .kind = KCI_EV_JOB_END, .job = i, .state = st, .text = why };

	e->states[i] = st;
	engine_emit(e, &ev);
}

/* One pass over the pending jobs: skip, cancel or start what can be. Called locked. */
static void
schedule(struct engine *e, struct job_run *runs)
{
	for (size_t i = 0; i < e->p->n_jobs; i++) {
		long need;

		if (!e->selected[i] || e->states[i] != KCI_JOB_PENDING)
			continue;
		if (engine_canceled(e)) {
			end_without_running(e, i, KCI_JOB_CANCELED, "canceled before it started");
			continue;
		}
		need = blocking_need(e, i);
		if (need >= 0) {
			char *why = kci_xasprintf("needs %s, which %s", e->p->jobs[need].name,
						  e->states[need] == KCI_JOB_SKIPPED ? "was skipped"
						  : e->states[need] == KCI_JOB_CANCELED
							  ? "was canceled"
							  : "did not pass");
			end_without_running(e, i, KCI_JOB_SKIPPED, why);
			free(why);
			/* A skip can unblock nothing but can skip more: start over. */
			i = (size_t)-1;
			continue;
		}
		if (need == -2 || e->running >= e->max_jobs)
			continue;
		runs[i] = (struct job_run){ .e = e, .idx = i, .started = 1 };
		e->states[i] = KCI_JOB_RUNNING;
		e->running++;
		if (pthread_create(&runs[i].thread, NULL, job_thread, &runs[i]) != 0) {
			runs[i].started = 0;
			e->running--;
			end_without_running(e, i, KCI_JOB_ERROR, "cannot create a thread");
		}
	}
}

static int
any_pending(const struct engine *e)
{
	for (size_t i = 0; i < e->p->n_jobs; i++)
		if (e->selected[i] && e->states[i] == KCI_JOB_PENDING)
			return 1;
	return 0;
}

int
kci_engine_run(const struct kci_plan *p, const int *selected, const struct kci_engine_opts *o,
	       enum kci_job_state *states, struct kci_err *err)
{
	struct engine e = { .p = p, .o = o, .states = states, .art_fd = -1, .logs_fd = -1 };
	struct job_run *runs;
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	e.t0 = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	e.max_jobs = o->max_jobs ? o->max_jobs : kci_engine_default_jobs();
	e.selected = kci_xcalloc(p->n_jobs ? p->n_jobs : 1, sizeof(int));
	for (size_t i = 0; i < p->n_jobs; i++) {
		e.selected[i] = selected ? selected[i] : 1;
		states[i] = KCI_JOB_PENDING;
	}
	pthread_mutex_init(&e.lock, NULL);
	pthread_mutex_init(&e.ev_lock, NULL);
	pthread_mutex_init(&e.image_lock, NULL);
	pthread_cond_init(&e.cond, NULL);
	mask_init(&e.mask, o->secrets);
	runs = kci_xcalloc(p->n_jobs ? p->n_jobs : 1, sizeof(*runs));
	e.default_cpus = default_cpus(&e);

	if ((rc = prepare(&e, err)) < 0)
		goto out;
	pthread_mutex_lock(&e.lock);
	for (;;) {
		engine_canceled(&e); /* sets the flag image pulls watch */
		schedule(&e, runs);
		if (!any_pending(&e) && e.running == 0)
			break;
		/* Wake up for a finished job, or now and then to notice a cancel. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&e.cond, &e.lock, &ts);
	}
	pthread_mutex_unlock(&e.lock);
out:
	for (size_t i = 0; i < p->n_jobs; i++)
		if (runs[i].started)
			pthread_join(runs[i].thread, NULL);
	free(runs);
	mask_free(&e.mask);
	pthread_cond_destroy(&e.cond);
	pthread_mutex_destroy(&e.image_lock);
	pthread_mutex_destroy(&e.ev_lock);
	pthread_mutex_destroy(&e.lock);
	if (e.workspace_disk)
		unlink(e.workspace_disk);
	if (e.art_fd >= 0)
		close(e.art_fd);
	if (e.logs_fd >= 0)
		close(e.logs_fd);
	free(e.workspace_disk);
	free(e.base_rootfs);
	free(e.initrd);
	free(e.agent);
	kci_guest_free(e.guest);
	free(e.cache);
	free(e.rundir);
	free(e.selected);
	return rc;
}
