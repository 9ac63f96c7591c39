/* Resolves the guest kernel modules the agent needs into a load order, from modules.dep. */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "common/strv.h"
#include "vm/internal.h"

const char *const vm_guest_modules[] = {
	"virtio_mmio", "virtio_console", "virtio_blk", "virtio_rng", "overlay", NULL,
};

const char *const vm_guest_net_modules[] = {
	"virtio_net",
	NULL,
};

/* One line of modules.dep: "path: dep dep ...". */
struct dep_line {
	char *path;
	char **deps;
	size_t ndeps;
	int state; /* 0 new, 1 visiting, 2 done */
	int level; /* 0 without dependencies, else 1 + the deepest dependency's */
};

struct dep_table {
	struct dep_line *lines;
	size_t n;
};

/* "kernel/drivers/virtio/virtio_ring.ko" has module name "virtio_ring". */
static int
path_is_module(const char *path, const char *name)
{
	const char *base = strrchr(path, '/');
	size_t n = strlen(name);

	base = base ? base + 1 : path;
	for (size_t i = 0; i < n; i++) {
		char a = base[i] == '-' ? '_' : base[i];
		if (a != name[i])
			return 0;
	}
	return strncmp(base + n, ".ko", 3) == 0;
}

static void
table_parse(struct dep_table *t, const char *text)
{
	char *copy = kci_xstrdup(text), *save = NULL;

	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':'), *s2 = NULL;
		struct dep_line *d;

		if (!colon)
			continue;
		*colon = '\0';
		t->lines = kci_xrealloc(t->lines, (t->n + 1) * sizeof(*t->lines));
		d = &t->lines[t->n++];
		memset(d, 0, sizeof(*d));
		d->path = kci_xstrdup(line);
		for (char *w = strtok_r(colon + 1, " \t", &s2); w; w = strtok_r(NULL, " \t", &s2)) {
			d->deps = kci_xrealloc(d->deps, (d->ndeps + 1) * sizeof(char *));
			d->deps[d->ndeps++] = kci_xstrdup(w);
		}
	}
	free(copy);
}

static void
table_free(struct dep_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->lines[i].path);
		for (size_t j = 0; j < t->lines[i].ndeps; j++)
			free(t->lines[i].deps[j]);
		free(t->lines[i].deps);
	}
	free(t->lines);
}

static struct dep_line *
find_path(struct dep_table *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->lines[i].path, path) == 0)
			return &t->lines[i];
	return NULL;
}

/* Depth-first: dependencies are emitted before the module; cycles are an error. */
struct resolved {
	char **paths;
	int *levels;
	size_t n;
};

static int
visit(struct dep_table *t, struct dep_line *d, struct resolved *r, struct kci_err *err)
{
	if (d->state == 2)
		return 0;
	if (d->state == 1)
		return kci_err_set(err, KCI_INVALID, "modules.dep: dependency cycle at %s",
				   d->path);
	d->state = 1;
	for (size_t i = 0; i < d->ndeps; i++) {
		struct dep_line *dep = find_path(t, d->deps[i]);
		int rc;

		if (!dep)
			return kci_err_set(err, KCI_INVALID,
					   "modules.dep: %s needs %s, which is not listed", d->path,
					   d->deps[i]);
		if ((rc = visit(t, dep, r, err)) < 0)
			return rc;
		if (dep->level + 1 > d->level)
			d->level = dep->level + 1;
	}
	d->state = 2;
	r->paths = kci_xrealloc(r->paths, (r->n + 2) * sizeof(char *));
	r->levels = kci_xrealloc(r->levels, (r->n + 1) * sizeof(int));
	r->levels[r->n] = d->level;
	r->paths[r->n++] = kci_xstrdup(d->path);
	r->paths[r->n] = NULL;
	return 0;
}

int
modules_resolve(const char *dep_text, const char *const *wanted, char ***out, int **levels,
		struct kci_err *err)
{
	struct dep_table t = { 0 };
	struct resolved r = { .paths = kci_xcalloc(1, sizeof(char *)),
			      .levels = kci_xcalloc(1, sizeof(int)) };
	int rc = 0;

	table_parse(&t, dep_text);
	for (size_t w = 0; wanted[w] && rc == 0; w++) {
		for (size_t i = 0; i < t.n; i++) {
			if (path_is_module(t.lines[i].path, wanted[w])) {
				rc = visit(&t, &t.lines[i], &r, err);
				break;
			}
		}
	}
	table_free(&t);
	if (rc < 0) {
		kci_strv_free(r.paths);
		free(r.levels);
		return rc;
	}
	*out = r.paths;
	*levels = r.levels;
	return 0;
}
