/* Finds the guest kernel bundle and the agent binary on the host. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "vm/internal.h"

/*
 * A bundle directory holds vmlinuz, release (the kernel release string),
 * modules/ (lib/modules/<release> with modules.dep) and busybox. It is made
 * by scripts/fetch-guest.sh from Debian's packages.
 */
struct kci_guest {
	char *dir;
	char *kernel;
	char *release;
	char *busybox;
};

static int
is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int
load_dir(struct kci_guest **out, const char *dir, struct kci_err *err)
{
	struct kci_guest *g;
	char *path, *release = NULL;
	size_t len = 0;

	path = kci_xasprintf("%s/vmlinuz", dir);
	if (!is_file(path)) {
		free(path);
		return kci_err_set(err, KCI_NOTFOUND, "%s has no vmlinuz", dir);
	}
	g = kci_xcalloc(1, sizeof(*g));
	g->dir = kci_xstrdup(dir);
	g->kernel = path;
	path = kci_xasprintf("%s/release", dir);
	if (kci_read_file(path, 256, &release, &len, NULL) == 0) {
		release[strcspn(release, "\r\n")] = '\0';
		g->release = release;
	} else {
		g->release = kci_xstrdup("");
	}
	free(path);
	path = kci_xasprintf("%s/busybox", dir);
	if (is_file(path))
		g->busybox = path;
	else
		free(path);
	*out = g;
	return 0;
}

int
kci_vm_guest_find(struct kci_guest **out, const char *override, const char *home,
		  struct kci_err *err)
{
	const char *env = getenv("KCI_GUEST_DIR");
	char *candidates[3] = { NULL, NULL, NULL };
	char *exe = kci_exe_dir();
	int rc = KCI_NOTFOUND;

	if (override) {
		if (is_dir(override)) {
			rc = load_dir(out, override, err);
		} else if (is_file(override)) {
			struct kci_guest *g = kci_xcalloc(1, sizeof(*g));
			g->kernel = kci_xstrdup(override);
			g->release = kci_xstrdup("");
			*out = g;
			rc = 0;
		} else {
			rc = kci_err_set(err, KCI_NOTFOUND,
					 "--kernel %s: no such file or directory", override);
		}
		free(exe);
		return rc;
	}
	candidates[0] = env && *env ? kci_xstrdup(env) : NULL;
	candidates[1] = home ? kci_xasprintf("%s/guest", home) : NULL;
	candidates[2] = kci_xasprintf("%s/../share/kci/guest", exe);
	for (int i = 0; i < 3 && rc < 0; i++) {
		if (candidates[i] && is_dir(candidates[i]))
			rc = load_dir(out, candidates[i], err);
	}
	if (rc < 0 && rc == KCI_NOTFOUND)
		rc = kci_err_set(err, KCI_NOTFOUND,
				 "no guest kernel found (looked in %s%s%s/guest and %s); "
				 "run scripts/fetch-guest.sh or see `kci doctor`",
				 env && *env ? "$KCI_GUEST_DIR, " : "", home ? home : "",
				 home ? "" : "$KCI_HOME", candidates[2]);
	for (int i = 0; i < 3; i++)
		free(candidates[i]);
	free(exe);
	return rc;
}

void
kci_vm_guest_free(struct kci_guest *g)
{
	if (!g)
		return;
	free(g->dir);
	free(g->kernel);
	free(g->release);
	free(g->busybox);
	free(g);
}

const char *
kci_vm_guest_dir(const struct kci_guest *g)
{
	return g->dir;
}

const char *
kci_vm_guest_kernel(const struct kci_guest *g)
{
	return g->kernel;
}

const char *
kci_vm_guest_release(const struct kci_guest *g)
{
	return g->release;
}

const char *
kci_vm_guest_busybox(const struct kci_guest *g)
{
	return g->busybox;
}

int
kci_vm_agent_find(char **out, struct kci_err *err)
{
	const char *env = getenv("KCI_AGENT");
	char *exe = kci_exe_dir();
	char *paths[2] = { kci_xasprintf("%s/kci-agent", exe),
			   kci_xasprintf("%s/../lib/kci/kci-agent", exe) };
	int rc = KCI_NOTFOUND;

	if (env && *env) {
		if (is_file(env)) {
			*out = kci_xstrdup(env);
			rc = 0;
		} else {
			rc = kci_err_set(err, KCI_NOTFOUND, "KCI_AGENT=%s: no such file", env);
		}
	} else {
		for (int i = 0; i < 2 && rc < 0; i++) {
			if (is_file(paths[i])) {
				*out = paths[i];
				paths[i] = NULL;
				rc = 0;
			}
		}
		if (rc < 0)
			rc = kci_err_set(err, KCI_NOTFOUND,
					 "kci-agent not found next to kci (%s) or in %s/../lib/kci",
					 exe, exe);
	}
	free(paths[0]);
	free(paths[1]);
	free(exe);
	return rc;
}
