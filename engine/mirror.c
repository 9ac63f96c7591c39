/*
 * Local clones of remote repositories, for kci serve (to read a pushed
 * commit's pipeline) and kci agent (to stage a job's workspace at a commit):
 * one clone per URL, fetched as builds need commits, under a lock so builds
 * of one repository never fetch into it at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/xalloc.h"
#include "engine/internal.h"

/* libgit2 asks for credentials: the token, as every forge takes it over https. */
static int
credentials(git_credential **out, const char *url, const char *user, unsigned allowed,
	    void *payload)
{
	const char *token = payload;

	(void)url;
	(void)user;
	if (!token || !(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
		return GIT_PASSTHROUGH;
	return git_credential_userpass_plaintext_new(out, "oauth2", token);
}

/* Whether the clone at repo has commit (40 hex). */
static int
has_commit(git_repository *repo, const char *commit)
{
	git_oid oid;
	git_commit *c = NULL;
	int ok;

	if (git_oid_fromstr(&oid, commit) < 0)
		return 0;
	ok = git_commit_lookup(&c, repo, &oid) == 0;
	git_commit_free(c);
	return ok;
}

static int
fetch(git_repository *repo, const char *ref, const char *token, struct kci_err *err)
{
	git_fetch_options fo;
	git_remote *remote = NULL;
	char *extra = ref ? kci_xasprintf("+%s:refs/kci/fetched", ref) : NULL;
	char *specs[] = { "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*",
			  extra };
	git_strarray refspecs = { specs, extra ? 3 : 2 };
	int rc = 0;

	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.callbacks.credentials = credentials;
	fo.callbacks.payload = (void *)token;
	fo.prune = GIT_FETCH_PRUNE;
	if (git_remote_lookup(&remote, repo, "origin") < 0 ||
	    git_remote_fetch(remote, &refspecs, &fo, "kci fetch") < 0)
		rc = gitdir_err(err, KCI_ERROR, "fetch %s", ref ? ref : "branches and tags");
	git_remote_free(remote);
	free(extra);
	return rc;
}

int
kci_engine_mirror_sync(const char *url, const char *token, const char *dir, const char *ref,
		       const char *commit, struct kci_err *err)
{
	char *lock = kci_xasprintf("%s.lock", dir), *parent = kci_xstrdup(dir), *slash;
	git_repository *repo = NULL;
	git_clone_options co;
	int fd = -1, rc;

	gitdir_init();
	if ((slash = strrchr(parent, '/')))
		*slash = '\0';
	if ((rc = kci_mkdir_p(parent, 0700, err)) < 0)
		goto out;
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || flock(fd, LOCK_EX) < 0) {
		rc = kci_err_sys(err, errno, "lock %s", lock);
		goto out;
	}
	if (git_repository_open_ext(&repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		/* First use: a clone without a checkout (jobs check out their commit). */
		kci_rm_rf(dir, NULL);
		git_clone_options_init(&co, GIT_CLONE_OPTIONS_VERSION);
		co.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
		co.fetch_opts.callbacks.credentials = credentials;
		co.fetch_opts.callbacks.payload = (void *)token;
		if (git_clone(&repo, url, dir, &co) < 0) {
			rc = gitdir_err(err, KCI_ERROR, "clone %s", url);
			kci_rm_rf(dir, NULL);
			goto out;
		}
	}
	if (commit && has_commit(repo, commit))
		goto out;
	if ((rc = fetch(repo, NULL, token, err)) < 0)
		goto out;
	/* A pull request's head is on no branch: fetch its ref by name. */
	if (commit && !has_commit(repo, commit) && ref && (rc = fetch(repo, ref, token, err)) < 0)
		goto out;
	if (commit && !has_commit(repo, commit))
		rc = kci_err_set(err, KCI_NOTFOUND, "commit %s is not in %s%s%s", commit, url,
				 ref ? " at " : "", ref ? ref : "");
out:
	git_repository_free(repo);
	if (fd >= 0)
		close(fd);
	free(lock);
	free(parent);
	return rc < 0 ? kci_err_prefix(err, "repository %s", url) : 0;
}

int
kci_engine_mirror_read(const char *dir, const char *commit, const char *path, size_t max,
		       char **out, size_t *len, struct kci_err *err)
{
	git_repository *repo = NULL;
	git_commit *c = NULL;
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	git_blob *blob = NULL;
	git_oid oid;
	int rc = 0;

	gitdir_init();
	if (git_repository_open_ext(&repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
	    git_oid_fromstr(&oid, commit) < 0 || git_commit_lookup(&c, repo, &oid) < 0 ||
	    git_commit_tree(&tree, c) < 0) {
		rc = gitdir_err(err, KCI_ERROR, "commit %s", commit);
		goto out;
	}
	if (git_tree_entry_bypath(&e, tree, path) < 0) {
		rc = kci_err_set(err, KCI_NOTFOUND, "no %s at %.12s", path, commit);
		goto out;
	}
	/* A blob, not a link or a submodule: nothing the repository may point elsewhere. */
	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB ||
	    git_tree_entry_filemode(e) == GIT_FILEMODE_LINK) {
		rc = kci_err_set(err, KCI_INVALID, "%s at %.12s is not a regular file", path,
				 commit);
		goto out;
	}
	if (git_blob_lookup(&blob, repo, git_tree_entry_id(e)) < 0) {
		rc = gitdir_err(err, KCI_ERROR, "read %s at %.12s", path, commit);
		goto out;
	}
	if ((uint64_t)git_blob_rawsize(blob) > max) {
		rc = kci_err_set(err, KCI_INVALID, "%s at %.12s is larger than %zu bytes", path,
				 commit, max);
		goto out;
	}
	*len = (size_t)git_blob_rawsize(blob);
	*out = kci_xmalloc(*len + 1);
	memcpy(*out, git_blob_rawcontent(blob), *len);
	(*out)[*len] = '\0';
out:
	git_blob_free(blob);
	git_tree_entry_free(e);
	git_tree_free(tree);
	git_commit_free(c);
	git_repository_free(repo);
	return rc;
}

char *
kci_engine_mirror_dir(const char *parent, const char *url)
{
	struct kci_sha256 *h = kci_sha256_new();
	char hex[65];

	kci_sha256_update(h, url, strlen(url));
	kci_sha256_hex(h, hex);
	return kci_xasprintf("%s/%.16s", parent, hex);
}
