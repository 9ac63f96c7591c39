/*
 * A project: the repository holding a directory, the pipeline nearest to it,
 * and a private copy of the workspace the jobs see. `kci run` runs one from a
 * working tree; `kci serve` and `kci agent` run one at a commit of a clone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "engine/internal.h"

struct kci_project {
	char *root;	 /* the repository's working directory (or the plain directory) */
	char *dir;	 /* the directory holding the pipeline: root or below it */
	const char *sub; /* dir relative to root, "" for the root itself */
	char *workdir;	 /* the project in the guest: /workspace[/SUB] */
	char *commit;	 /* --commit, or NULL */
	char *pipeline;	 /* the pipeline file as the user knows it */
	char *home;
	char *scratch; /* run/run.tmp-<pid>-XXXXXX (0700): the staged tree, removed at the end */
	char *tree;    /* scratch/tree, once staged */
	struct kci_workspace_info ws;
	struct kci_plan *plan;
};

/*
 * The project is the nearest directory from `from` up to the repository
 * root that has a .kci.yml (the root when none has): a monorepo's subproject
 * runs its own pipeline, with the whole repository as its workspace.
 */
static int
find_dir(struct kci_project *p, const char *from, struct kci_err *err)
{
	char *cur = realpath(from, NULL);
	size_t rootlen = strlen(p->root);

	if (!cur)
		return kci_err_sys(err, errno, "%s", from);
	while (strlen(cur) > rootlen && strncmp(cur, p->root, rootlen) == 0 &&
	       cur[rootlen] == '/') {
		char *file = kci_xasprintf("%s/%s", cur, KCI_PIPELINE_FILE);
		int found = access(file, F_OK) == 0;

		free(file);
		if (found)
			break;
		*strrchr(cur, '/') = '\0';
	}
	if (strncmp(cur, p->root, rootlen) != 0 || (cur[rootlen] && cur[rootlen] != '/')) {
		free(cur);
		cur = kci_xstrdup(p->root);
	}
	p->dir = cur;
	p->sub = cur[rootlen] == '/' ? cur + rootlen + 1 : "";
	p->workdir = p->sub[0] ? kci_xasprintf("/workspace/%s", p->sub) : kci_xstrdup("/workspace");
	return 0;
}

/* Loads the pipeline: from the working tree, or from the staged commit. */
static int
load_plan(struct kci_project *p, struct kci_err *err)
{
	char *path = kci_xasprintf("%s%s%s/%s", p->commit ? p->tree : p->root, p->sub[0] ? "/" : "",
				   p->sub, KCI_PIPELINE_FILE);
	int rc;

	/* Messages name the file as the user knows it. */
	if (p->commit) {
		p->pipeline = kci_xasprintf("%s:%s%s%s", p->commit, p->sub, p->sub[0] ? "/" : "",
					    KCI_PIPELINE_FILE);
	} else {
		char *file = kci_xasprintf("%s/%s", p->dir, KCI_PIPELINE_FILE);
		p->pipeline = kci_shown_path(file);
		free(file);
	}
	rc = kci_plan_load(path, p->pipeline, &p->plan, err);
	if (rc == KCI_NOTFOUND)
		rc = kci_err_set(err, KCI_NOTFOUND,
				 "no %s in %s%s%s\nA pipeline file lists the jobs to run; see "
				 "docs/pipeline.md for its format.",
				 KCI_PIPELINE_FILE, p->dir, p->commit ? " at " : "",
				 p->commit ? p->commit : "");
	free(path);
	return rc;
}

/* Copies the workspace into a private dir under $KCI_HOME/run. */
static int
stage(struct kci_project *p, struct kci_err *err)
{
	char *rundir = kci_xasprintf("%s/run", p->home);
	int rc;

	if ((rc = kci_mkdir_p(rundir, 0700, err)) < 0)
		goto out;
	/* Runs of kci processes that are gone (killed by a second Ctrl-C). */
	kci_sweep_orphans(rundir);
	p->scratch = kci_xasprintf("%s/run.tmp-%d-XXXXXX", rundir, (int)getpid());
	if (!mkdtemp(p->scratch)) {
		rc = kci_err_sys(err, errno, "mkdtemp %s", p->scratch);
		free(p->scratch);
		p->scratch = NULL;
		goto out;
	}
	p->tree = kci_xasprintf("%s/tree", p->scratch);
	if (mkdir(p->tree, 0755) < 0) {
		rc = kci_err_sys(err, errno, "mkdir %s", p->tree);
		goto out;
	}
	if ((rc = kci_engine_workspace_stage(p->root, p->commit, p->tree, &p->ws, err)) < 0)
		goto out;
	/* A subproject's own output dir is kci's too, not the job's. */
	if (p->sub[0]) {
		char *out = kci_xasprintf("%s/%s/.kci", p->tree, p->sub);
		kci_rm_rf(out, NULL);
		free(out);
	}
out:
	free(rundir);
	return rc;
}

int
kci_engine_project_open(struct kci_project **out, const struct kci_project_opts *o,
			struct kci_err *err)
{
	struct kci_project *p = kci_xcalloc(1, sizeof(*p));
	const char *dir = o->dir ? o->dir : ".";
	int rc;

	p->commit = o->commit ? kci_xstrdup(o->commit) : NULL;
	if (o->home)
		p->home = kci_xstrdup(o->home);
	else if ((rc = kci_home(&p->home, err)) < 0)
		goto out;
	if ((rc = kci_engine_workspace_root(dir, &p->root, err)) < 0 ||
	    (rc = find_dir(p, dir, err)) < 0)
		goto out;
	/* The working tree's pipeline is read before anything is copied: a typo costs nothing. */
	if (p->commit && (rc = stage(p, err)) < 0)
		goto out;
	if ((rc = load_plan(p, err)) < 0)
		goto out;
	*out = p;
	p = NULL;
out:
	kci_engine_project_free(p);
	return rc;
}

void
kci_engine_project_free(struct kci_project *p)
{
	if (!p)
		return;
	if (p->scratch)
		kci_rm_rf(p->scratch, NULL);
	free(p->root);
	free(p->dir);
	free(p->workdir);
	free(p->commit);
	free(p->pipeline);
	free(p->home);
	free(p->scratch);
	free(p->tree);
	kci_plan_free(p->plan);
	free(p);
}

const struct kci_plan *
kci_engine_project_plan(const struct kci_project *p)
{
	return p->plan;
}

const char *
kci_engine_project_dir(const struct kci_project *p)
{
	return p->dir;
}

const char *
kci_engine_project_pipeline(const struct kci_project *p)
{
	return p->pipeline;
}

int
kci_engine_project_stage(struct kci_project *p, struct kci_workspace_info *info,
			 struct kci_err *err)
{
	int rc = 0;

	if (!p->tree)
		rc = stage(p, err);
	if (rc == 0 && info)
		*info = p->ws;
	return rc;
}

int
kci_engine_project_run(struct kci_project *p, const int *selected, const struct kci_engine_opts *o,
		       enum kci_job_state *states, struct kci_err *err)
{
	struct kci_engine_opts po = *o;
	char *out_dir;
	int rc;

	if (!p->tree)
		return kci_err_set(err, KCI_INVALID, "the project is not staged");
	/* The engine creates it, refusing symlinks the repository may have planted. */
	out_dir = o->out_dir ? kci_xstrdup(o->out_dir) : kci_xasprintf("%s/.kci", p->dir);
	po.workspace = p->tree;
	po.workdir = p->workdir;
	po.out_dir = out_dir;
	rc = kci_engine_run(p->plan, selected, &po, states, err);
	free(out_dir);
	return rc;
}
