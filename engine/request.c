/*
 * What a process in a VM is asked to run: the image's config (Env,
 * Entrypoint, Cmd, WorkingDir, User) merged with the caller's request the way
 * `docker run` merges them. `kci exec` and every job step go through here.
 */
#include <stdlib.h>
#include <string.h>

#include "common/strv.h"
#include "common/xalloc.h"
#include "engine/internal.h"

int
user_is_root(const char *user)
{
	return !user || !user[0] || strcmp(user, "root") == 0 || strcmp(user, "0") == 0 ||
	       strncmp(user, "0:", 2) == 0 || strncmp(user, "root:", 5) == 0;
}

int
kci_engine_request(const struct kci_image_config *img, const struct kci_req_opts *o,
		   struct kci_run_req *req, struct kci_err *err)
{
	char **argv = NULL, **env = NULL, *const * tail;
	size_t n = 0, nenv = 0;
	const char *user = o->user ? o->user : img->user;

	memset(req, 0, sizeof(*req));
	/* docker run: Entrypoint + (the caller's COMMAND, or else the image's Cmd). */
	tail = o->argv && o->argv[0] ? o->argv : img->cmd;
	for (size_t i = 0; o->entrypoint && img->entrypoint && img->entrypoint[i]; i++)
		kci_strv_add(&argv, &n, img->entrypoint[i]);
	for (size_t i = 0; tail && tail[i]; i++)
		kci_strv_add(&argv, &n, tail[i]);
	if (!argv)
		return kci_err_set(err, KCI_INVALID,
				   "the image has no Entrypoint or Cmd: give a command");
	/* Later wins: kci's defaults, the image's Env, then the caller's. */
	kci_env_set(&env, &nenv, "PATH=" KCI_ENGINE_PATH);
	/* Another user's HOME comes from the guest's passwd (the agent looks it up). */
	if (!(user && user[0]))
		kci_env_set(&env, &nenv, "HOME=/root");
	for (size_t i = 0; img->env && img->env[i]; i++)
		if (strchr(img->env[i], '='))
			kci_env_set(&env, &nenv, img->env[i]);
	for (size_t i = 0; o->env && o->env[i]; i++)
		kci_env_set(&env, &nenv, o->env[i]);
	req->argv = argv;
	req->env = env;
	req->cwd = kci_xstrdup(o->cwd					 ? o->cwd
			       : img->working_dir && img->working_dir[0] ? img->working_dir
									 : "/");
	req->user = user ? kci_xstrdup(user) : NULL;
	req->tty = o->tty;
	req->rows = o->rows;
	req->cols = o->cols;
	return 0;
}
