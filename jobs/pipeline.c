/* The pipeline file (docs/pipeline.md): checks a YAML tree key by key and builds the plan. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/parse.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "jobs/internal.h"

#define NAME_MAX_LEN	 64
#define IMAGE_MAX_LEN	 1024
#define ENV_BYTES_MAX	 (128 * 1024) /* merged env of one job */
#define MATRIX_VARS_MAX	 16
#define MATRIX_VALUE_MAX 128

/* A growable NULL-terminated string vector; v is never NULL once used. */
struct strv {
	char **v;
	size_t n, cap;
};

/* One job as written in the file; its expanded jobs are plan->jobs[first .. first+count). */
struct base {
	const struct kci_yaml_node *key, *body;
	size_t first, count;
};

struct ctx {
	const char *file;
	struct kci_err *err;
	struct kci_plan *plan;
	size_t cap;
	const struct kci_yaml_node *image, *env, *secrets; /* top-level defaults, may be NULL */
	struct base bases[KCI_PLAN_JOBS_MAX];
	size_t n_bases;
};

static const char *const top_keys[] = { "image", "env", "secrets", "jobs" };
static const char *const job_keys[] = { "image", "env",	      "secrets", "needs",   "timeout",
					"cpus",	 "memory",    "disk",	 "network", "steps",
					"run",	 "artifacts", "matrix" };
static const char *const step_keys[] = { "name", "run", "allow_failure" };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* "FILE:LINE:COL: message" at node n. */
#define perr(c, n, ...) kci_jobs_yaml_error((c)->err, (c)->file, (n), __VA_ARGS__)

static void
strv_push(struct strv *s, char *str)
{
	if (s->n + 2 > s->cap) {
		s->cap = s->cap ? 2 * s->cap : 8;
		s->v = kci_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

static int
strv_has(const struct strv *s, const char *str)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (strcmp(s->v[i], str) == 0)
			return 1;
	}
	return 0;
}

/* Hands the vector over as a NULL-terminated array, an empty one when nothing was pushed. */
static char **
strv_take(struct strv *s)
{
	char **v = s->v ? s->v : kci_xcalloc(1, sizeof(char *));

	s->v = NULL;
	s->n = s->cap = 0;
	return v;
}

static int
want(const struct ctx *c, const struct kci_yaml_node *n, enum kci_yaml_kind kind, const char *what)
{
	static const char *const names[] = { "a string", "a list", "a mapping" };

	if (n->kind != kind || (kind == KCI_YAML_SCALAR && kci_jobs_yaml_is_null(n)))
		return perr(c, n, "%s must be %s", what, names[kind]);
	return 0;
}

static int
check_keys(const struct ctx *c, const struct kci_yaml_node *map, const char *const *known,
	   size_t n_known, const char *where)
{
	return kci_jobs_yaml_check_keys(map, known, n_known, c->file, where, c->err);
}

/* [A-Za-z_][A-Za-z0-9_]* for env, secret and matrix variable names. */
static int
is_var_name(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (s++; *s; s++) {
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	}
	return 1;
}

/* [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64: names that are safe as directory names. */
static int
is_job_name(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		char ch = s[i];
		int alnum = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			    (ch >= '0' && ch <= '9');
		if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
			return 0;
	}
	return i > 0 && i <= NAME_MAX_LEN;
}

/* Sets NAME=value in env, replacing an earlier NAME, so later sources win. */
static int
env_set(const struct ctx *c, const struct kci_yaml_node *at, struct strv *env, size_t *bytes,
	const char *name, const char *value)
{
	size_t i, nlen = strlen(name);

	*bytes += nlen + strlen(value) + 2;
	if (*bytes > ENV_BYTES_MAX)
		return perr(c, at, "environment larger than %d KiB", ENV_BYTES_MAX / 1024);
	for (i = 0; i < env->n; i++) {
		if (strncmp(env->v[i], name, nlen) == 0 && env->v[i][nlen] == '=') {
			free(env->v[i]);
			env->v[i] = kci_xasprintf("%s=%s", name, value);
			return 0;
		}
	}
	strv_push(env, kci_xasprintf("%s=%s", name, value));
	return 0;
}

static int
env_merge(const struct ctx *c, const struct kci_yaml_node *map, struct strv *env, size_t *bytes)
{
	size_t i;
	int rc;

	if (!map)
		return 0;
	if ((rc = want(c, map, KCI_YAML_MAP, "env")) < 0)
		return rc;
	for (i = 0; i < map->n; i += 2) {
		const struct kci_yaml_node *k = map->items[i], *v = map->items[i + 1];
		if (!is_var_name(k->str))
			return perr(c, k, "bad variable name \"%s\" (letters, digits and _)",
				    k->str);
		/* Numbers and booleans are kept as written: the shell sees text anyway. */
		if (v->kind != KCI_YAML_SCALAR)
			return perr(c, v, "value of %s must be a string", k->str);
		if ((rc = env_set(c, v, env, bytes, k->str, v->str)) < 0)
			return rc;
	}
	return 0;
}

static int
secrets_merge(const struct ctx *c, const struct kci_yaml_node *seq, struct strv *out)
{
	size_t i;
	int rc;

	if (!seq)
		return 0;
	if ((rc = want(c, seq, KCI_YAML_SEQ, "secrets")) < 0)
		return rc;
	for (i = 0; i < seq->n; i++) {
		const struct kci_yaml_node *s = seq->items[i];
		if (s->kind != KCI_YAML_SCALAR || !is_var_name(s->str))
			return perr(c, s, "bad secret name (letters, digits and _)");
		if (!strv_has(out, s->str))
			strv_push(out, kci_xstrdup(s->str));
	}
	return 0;
}

/* Artifacts are copied out of the VM into .kci/artifacts/<job>/, so they must stay inside. */
static int
artifacts_build(const struct ctx *c, const struct kci_yaml_node *seq, struct strv *out)
{
	size_t i;
	int rc;

	if (!seq)
		return 0;
	if ((rc = want(c, seq, KCI_YAML_SEQ, "artifacts")) < 0)
		return rc;
	for (i = 0; i < seq->n; i++) {
		const struct kci_yaml_node *a = seq->items[i];
		const char *p;
		if ((rc = want(c, a, KCI_YAML_SCALAR, "an artifact")) < 0)
			return rc;
		if (a->str[0] == '/')
			return perr(c, a, "artifact \"%s\" must be a relative path", a->str);
		for (p = a->str; p; p = strchr(p, '/'), p = p ? p + 1 : NULL) {
			if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == '\0'))
				return perr(c, a, "artifact \"%s\" must not contain \"..\"",
					    a->str);
		}
		strv_push(out, kci_xstrdup(a->str));
	}
	return 0;
}

static int
parse_bool(const struct ctx *c, const struct kci_yaml_node *n, const char *what, int *out)
{
	if (kci_jobs_yaml_bool(n, out) < 0)
		return perr(c, n, "%s must be true or false", what);
	return 0;
}

static char *
first_line(const char *run)
{
	size_t n = strcspn(run, "\n");

	return kci_xasprintf("%.*s", (int)n, run);
}

static int
step_build(const struct ctx *c, const struct kci_yaml_node *map, const char *job,
	   struct kci_step *s)
{
	const struct kci_yaml_node *name = kci_jobs_yaml_get(map, "name"),
				   *run = kci_jobs_yaml_get(map, "run");
	const struct kci_yaml_node *allow = kci_jobs_yaml_get(map, "allow_failure");
	char where[NAME_MAX_LEN + 32];
	int rc;

	snprintf(where, sizeof(where), "in a step of job \"%s\"", job);
	if ((rc = check_keys(c, map, step_keys, COUNT(step_keys), where)) < 0)
		return rc;
	if (!run)
		return perr(c, map, "step of job \"%s\" has no \"run\"", job);
	if ((rc = want(c, run, KCI_YAML_SCALAR, "run")) < 0)
		return rc;
	if (name && (rc = want(c, name, KCI_YAML_SCALAR, "name")) < 0)
		return rc;
	if (allow && (rc = parse_bool(c, allow, "allow_failure", &s->allow_failure)) < 0)
		return rc;
	s->run = kci_xstrdup(run->str);
	s->name = name ? kci_xstrdup(name->str) : first_line(run->str);
	s->line = map->line;
	return 0;
}

/* A job is either "run: cmd" (one step) or "steps: [...]", never both, never neither. */
static int
steps_build(const struct ctx *c, const struct kci_yaml_node *key, const struct kci_yaml_node *body,
	    struct kci_job *j)
{
	const struct kci_yaml_node *run = kci_jobs_yaml_get(body, "run"),
				   *steps = kci_jobs_yaml_get(body, "steps");
	size_t i;
	int rc;

	if (run && steps)
		return perr(c, steps, "job \"%s\" has both \"run\" and \"steps\"; keep one",
			    key->str);
	if (!run && !steps)
		return perr(c, key, "job \"%s\" needs \"run\" or \"steps\"", key->str);
	if (run) {
		if ((rc = want(c, run, KCI_YAML_SCALAR, "run")) < 0)
			return rc;
		j->steps = kci_xcalloc(1, sizeof(*j->steps));
		j->n_steps = 1;
		j->steps[0].run = kci_xstrdup(run->str);
		j->steps[0].name = first_line(run->str);
		j->steps[0].line = run->line;
		return 0;
	}
	if ((rc = want(c, steps, KCI_YAML_SEQ, "steps")) < 0)
		return rc;
	if (steps->n == 0)
		return perr(c, steps, "job \"%s\" has no steps", key->str);
	if (steps->n > KCI_PLAN_STEPS_MAX)
		return perr(c, steps, "job \"%s\" has more than %d steps", key->str,
			    KCI_PLAN_STEPS_MAX);
	j->steps = kci_xcalloc(steps->n, sizeof(*j->steps));
	for (i = 0; i < steps->n; i++) {
		if ((rc = want(c, steps->items[i], KCI_YAML_MAP, "a step")) < 0)
			return rc;
		/* Count as we go so kci_plan_free() sees exactly the filled steps. */
		j->n_steps++;
		if ((rc = step_build(c, steps->items[i], key->str, &j->steps[i])) < 0)
			return rc;
	}
	return 0;
}

static int
resources_build(const struct ctx *c, const struct kci_yaml_node *body, struct kci_job *j)
{
	const struct kci_yaml_node *timeout = kci_jobs_yaml_get(body, "timeout"),
				   *cpus = kci_jobs_yaml_get(body, "cpus");
	const struct kci_yaml_node *memory = kci_jobs_yaml_get(body, "memory"),
				   *net = kci_jobs_yaml_get(body, "network");
	const struct kci_yaml_node *disk = kci_jobs_yaml_get(body, "disk");
	int rc;

	if (timeout && (rc = want(c, timeout, KCI_YAML_SCALAR, "timeout")) < 0)
		return rc;
	if (timeout && kci_parse_duration(timeout->str, &j->timeout_ms) < 0)
		return perr(c, timeout,
			    "bad duration \"%s\" for timeout (examples: 90, 30s, 5m, 1h30m)",
			    timeout->str);
	if (cpus &&
	    (cpus->kind != KCI_YAML_SCALAR || kci_parse_uint(cpus->str, 1, 64, &j->cpus) < 0))
		return perr(c, cpus, "bad cpus \"%s\" (a whole number from 1 to 64)",
			    cpus->str ? cpus->str : "");
	if (memory && (memory->kind != KCI_YAML_SCALAR ||
		       kci_parse_size_mib(memory->str, &j->memory_mib) < 0 || j->memory_mib < 64 ||
		       j->memory_mib > 1024 * 1024))
		return perr(c, memory,
			    "bad size \"%s\" for memory (examples: 512M, 2G, 2048; 64M to 1024G)",
			    memory->str ? memory->str : "");
	if (disk &&
	    (disk->kind != KCI_YAML_SCALAR || kci_parse_size_mib(disk->str, &j->disk_mib) < 0 ||
	     j->disk_mib < 256 || j->disk_mib > 1024 * 1024))
		return perr(c, disk, "bad size \"%s\" for disk (examples: 4G, 20G; 256M to 1024G)",
			    disk->str ? disk->str : "");
	if (net) {
		if (net->kind == KCI_YAML_SCALAR && !strcmp(net->str, "nat"))
			j->network = KCI_NET_NAT;
		else if (!(net->kind == KCI_YAML_SCALAR && !strcmp(net->str, "none")))
			return perr(c, net, "bad network \"%s\" (none or nat)",
				    net->str ? net->str : "");
	}
	return 0;
}

/* Checks a matrix and sets *count to its number of combinations (1 without a matrix). */
static int
matrix_count(const struct ctx *c, const struct kci_yaml_node *key, const struct kci_yaml_node *m,
	     size_t *count)
{
	size_t i, k, v;
	int rc;

	*count = 1;
	if (!m)
		return 0;
	if ((rc = want(c, m, KCI_YAML_MAP, "matrix")) < 0)
		return rc;
	if (m->n == 0 || m->n / 2 > MATRIX_VARS_MAX)
		return perr(c, m, "matrix of job \"%s\" needs 1 to %d variables", key->str,
			    MATRIX_VARS_MAX);
	for (i = 0; i < m->n; i += 2) {
		const struct kci_yaml_node *var = m->items[i], *vals = m->items[i + 1];
		if (!is_var_name(var->str))
			return perr(c, var, "bad variable name \"%s\" (letters, digits and _)",
				    var->str);
		if (vals->kind != KCI_YAML_SEQ || vals->n == 0)
			return perr(c, vals, "matrix variable %s must be a non-empty list",
				    var->str);
		for (k = 0; k < vals->n; k++) {
			const struct kci_yaml_node *val = vals->items[k];
			if (val->kind != KCI_YAML_SCALAR || strlen(val->str) > MATRIX_VALUE_MAX)
				return perr(c, val,
					    "matrix values must be strings of at most %d "
					    "characters",
					    MATRIX_VALUE_MAX);
			for (v = 0; v < k; v++) {
				if (!strcmp(vals->items[v]->str, val->str))
					return perr(c, val, "matrix value \"%s\" is repeated",
						    val->str);
			}
		}
		*count *= vals->n;
		if (*count > KCI_PLAN_MATRIX_MAX)
			return perr(c, m, "matrix of job \"%s\" has more than %d combinations",
				    key->str, KCI_PLAN_MATRIX_MAX);
	}
	return 0;
}

/* Combination combo (the last variable varies fastest): its values go into the env and name. */
static int
matrix_apply(const struct ctx *c, const struct kci_yaml_node *key, const struct kci_yaml_node *m,
	     size_t combo, struct kci_job *j, struct strv *env, size_t *bytes)
{
	size_t idx[MATRIX_VARS_MAX], nv = m->n / 2, k;
	char *name = kci_xasprintf("%s (", key->str), *longer;
	int rc;

	for (k = nv; k-- > 0;) {
		size_t len = m->items[2 * k + 1]->n;
		idx[k] = combo % len;
		combo /= len;
	}
	for (k = 0; k < nv; k++) {
		const char *var = m->items[2 * k]->str;
		const struct kci_yaml_node *val = m->items[2 * k + 1]->items[idx[k]];
		if ((rc = env_set(c, val, env, bytes, var, val->str)) < 0) {
			free(name);
			return rc;
		}
		longer = kci_xasprintf("%s%s%s=%s", name, k ? ", " : "", var, val->str);
		free(name);
		name = longer;
	}
	j->name = kci_xasprintf("%s)", name);
	free(name);
	return 0;
}

/* Fills j from one job of the file; the caller frees j even on failure. */
static int
job_build(const struct ctx *c, const struct base *b, size_t combo, struct kci_job *j)
{
	const struct kci_yaml_node *body = b->body, *image = kci_jobs_yaml_get(body, "image");
	const struct kci_yaml_node *matrix = kci_jobs_yaml_get(body, "matrix");
	struct strv env = { 0 }, secrets = { 0 }, artifacts = { 0 };
	size_t bytes = 0;
	int rc = 0;

	j->base = kci_xstrdup(b->key->str);
	j->line = b->key->line;
	j->col = b->key->col;
	j->needs = kci_xcalloc(1, sizeof(char *));
	if (!image)
		image = c->image;
	if (image && (rc = want(c, image, KCI_YAML_SCALAR, "image")) == 0) {
		if (strlen(image->str) > IMAGE_MAX_LEN)
			rc = perr(c, image, "image name longer than %d characters", IMAGE_MAX_LEN);
		j->image = kci_xstrdup(image->str);
	}
	if (rc < 0 || (rc = env_merge(c, c->env, &env, &bytes)) < 0 ||
	    (rc = env_merge(c, kci_jobs_yaml_get(body, "env"), &env, &bytes)) < 0)
		goto out;
	if (matrix && (rc = matrix_apply(c, b->key, matrix, combo, j, &env, &bytes)) < 0)
		goto out;
	if (!matrix)
		j->name = kci_xstrdup(b->key->str);
	if ((rc = secrets_merge(c, c->secrets, &secrets)) < 0 ||
	    (rc = secrets_merge(c, kci_jobs_yaml_get(body, "secrets"), &secrets)) < 0 ||
	    (rc = resources_build(c, body, j)) < 0 || (rc = steps_build(c, b->key, body, j)) < 0)
		goto out;
	rc = artifacts_build(c, kci_jobs_yaml_get(body, "artifacts"), &artifacts);
out:
	j->env = strv_take(&env);
	j->secrets = strv_take(&secrets);
	j->artifacts = strv_take(&artifacts);
	return rc;
}

/* Resolves b's needs to expanded job names; a matrix job is needed with all its combinations. */
static int
needs_build(const struct ctx *c, const struct base *b)
{
	const struct kci_yaml_node *needs = kci_jobs_yaml_get(b->body, "needs");
	const char *names[KCI_PLAN_JOBS_MAX];
	struct strv out = { 0 };
	size_t i, t, e;
	int rc = 0;

	if (!needs)
		return 0;
	if ((rc = want(c, needs, KCI_YAML_SEQ, "needs")) < 0)
		return rc;
	for (t = 0; t < c->n_bases; t++)
		names[t] = c->bases[t].key->str;
	for (i = 0; i < needs->n && rc == 0; i++) {
		const struct kci_yaml_node *n = needs->items[i];
		const char *hint;
		if ((rc = want(c, n, KCI_YAML_SCALAR, "a needed job")) < 0)
			break;
		for (t = 0; t < c->n_bases && strcmp(names[t], n->str); t++)
			;
		if (t == c->n_bases) {
			hint = kci_jobs_closest_name(n->str, names, c->n_bases);
			rc = perr(c, n, "job \"%s\" needs unknown job \"%s\"%s%s%s", b->key->str,
				  n->str, hint ? " (did you mean \"" : "", hint ? hint : "",
				  hint ? "\"?)" : "");
		} else if (&c->bases[t] == b) {
			rc = perr(c, n, "job \"%s\" needs itself", b->key->str);
		}
		for (e = 0; rc == 0 && e < c->bases[t].count; e++) {
			const char *name = c->plan->jobs[c->bases[t].first + e].name;
			if (!strv_has(&out, name))
				strv_push(&out, kci_xstrdup(name));
		}
	}
	for (e = 0; rc == 0 && e < b->count; e++) {
		struct kci_job *j = &c->plan->jobs[b->first + e];
		free(j->needs);
		j->needs = kci_xcalloc(out.n + 1, sizeof(char *));
		for (i = 0; i < out.n; i++)
			j->needs[i] = kci_xstrdup(out.v[i]);
	}
	kci_strv_free(out.v);
	return rc;
}

/* Adds the base job at jobs[2i], expanding its matrix into plan->jobs. */
static int
base_add(struct ctx *c, const struct kci_yaml_node *key, const struct kci_yaml_node *body)
{
	struct base *b = &c->bases[c->n_bases];
	size_t count, k;
	int rc;
	char where[NAME_MAX_LEN + 16];

	if (!is_job_name(key->str))
		return perr(c, key,
			    "bad job name \"%s\" (letters, digits, _ . -; at most %d characters)",
			    key->str, NAME_MAX_LEN);
	if (kci_jobs_yaml_is_null(body))
		return perr(c, key, "job \"%s\" is empty; give it \"run\" or \"steps\"", key->str);
	if ((rc = want(c, body, KCI_YAML_MAP, "a job")) < 0)
		return rc;
	snprintf(where, sizeof(where), "in job \"%s\"", key->str);
	if ((rc = check_keys(c, body, job_keys, COUNT(job_keys), where)) < 0 ||
	    (rc = matrix_count(c, key, kci_jobs_yaml_get(body, "matrix"), &count)) < 0)
		return rc;
	if (c->plan->n_jobs + count > KCI_PLAN_JOBS_MAX)
		return perr(c, key, "more than %d jobs after matrix expansion", KCI_PLAN_JOBS_MAX);
	*b = (struct base){ .key = key, .body = body, .first = c->plan->n_jobs, .count = count };
	c->n_bases++;
	for (k = 0; k < count; k++) {
		/* Counted before it is filled so kci_plan_free() releases a half-built job. */
		struct kci_job *j = &c->plan->jobs[c->plan->n_jobs++];
		if ((rc = job_build(c, b, k, j)) < 0)
			return rc;
	}
	return 0;
}

static int
plan_build(struct ctx *c, const struct kci_yaml_node *root)
{
	const struct kci_yaml_node *jobs;
	size_t i;
	int rc;

	if (!root || root->kind != KCI_YAML_MAP)
		return perr(c, root, "a pipeline file is a mapping with a \"jobs\" key");
	if ((rc = check_keys(c, root, top_keys, COUNT(top_keys), "at the top level")) < 0)
		return rc;
	c->image = kci_jobs_yaml_get(root, "image");
	c->env = kci_jobs_yaml_get(root, "env");
	c->secrets = kci_jobs_yaml_get(root, "secrets");
	if (!(jobs = kci_jobs_yaml_get(root, "jobs")))
		return perr(c, root, "no \"jobs\": a pipeline needs at least one job");
	if (jobs->kind != KCI_YAML_MAP || jobs->n == 0)
		return perr(c, jobs, "\"jobs\" must map job names to jobs, at least one");
	if (jobs->n / 2 > KCI_PLAN_JOBS_MAX)
		return perr(c, jobs, "more than %d jobs", KCI_PLAN_JOBS_MAX);
	c->plan->jobs = kci_xcalloc(KCI_PLAN_JOBS_MAX, sizeof(struct kci_job));
	for (i = 0; i < jobs->n; i += 2) {
		if ((rc = base_add(c, jobs->items[i], jobs->items[i + 1])) < 0)
			return rc;
	}
	for (i = 0; i < c->n_bases; i++) {
		if ((rc = needs_build(c, &c->bases[i])) < 0)
			return rc;
	}
	return 0;
}

/* "test (GO=1.21, OS=a)" -> "test_GO-1.21_OS-a": one safe path component. */
static char *
file_name(const char *job_name)
{
	size_t n = strlen(job_name), o = 0;
	char *out = kci_xmalloc(n + 1);

	for (size_t i = 0; i < n; i++) {
		char ch = job_name[i];

		if (ch == '=')
			ch = '-';
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			   (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
			ch = '_';
		if (ch == '_' && o && out[o - 1] == '_')
			continue;
		out[o++] = ch;
	}
	while (o && out[o - 1] == '_')
		o--;
	if (o == 0)
		out[o++] = '_';
	out[o] = '\0';
	return out;
}

/* File names for every job, unique even when two names sanitise alike ("-2", "-3"...). */
static void
name_files(struct kci_plan *p)
{
	for (size_t i = 0; i < p->n_jobs; i++) {
		char *base = file_name(p->jobs[i].name), *name = kci_xstrdup(base);

		for (unsigned k = 2;; k++) {
			size_t j;

			for (j = 0; j < i && strcmp(p->jobs[j].file_name, name) != 0; j++)
				;
			if (j == i)
				break;
			free(name);
			name = kci_xasprintf("%s-%u", base, k);
		}
		free(base);
		p->jobs[i].file_name = name;
	}
}

/* Cycles are reported at the first job on them, with the path, before anything runs. */
static int
check_cycles(const struct ctx *c)
{
	struct kci_err cycle = KCI_ERR_INIT;
	size_t *order = NULL, at = 0;
	int rc;

	rc = plan_order(c->plan, &order, &at, &cycle);
	free(order);
	if (rc < 0) {
		struct kci_yaml_node where = { .line = c->plan->jobs[at].line,
					       .col = c->plan->jobs[at].col };
		return perr(c, &where, "%s", cycle.msg);
	}
	return 0;
}

int
kci_plan_load(const char *path, const char *shown, struct kci_plan **out, struct kci_err *err)
{
	char *text = NULL;
	size_t len;
	int fd, rc;

	if (!shown)
		shown = path;
	/*
	 * Never through a symlink: a repository's .kci.yml that links to a host
	 * file would have kci read that file and quote it in its errors.
	 */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		return kci_err_set(err, KCI_INVALID,
				   "%s is a symlink; kci reads a pipeline file only when it is a "
				   "regular file",
				   shown);
	if (fd < 0)
		return kci_err_sys(err, errno, "%s", shown);
	rc = kci_read_fd(fd, KCI_PLAN_FILE_MAX, shown, &text, &len, err);
	close(fd);
	if (rc == KCI_INVALID)
		rc = kci_err_set(err, KCI_INVALID, "%s: larger than %d KiB", shown,
				 KCI_PLAN_FILE_MAX / 1024);
	else if (rc == 0)
		rc = kci_plan_parse(text, len, shown, out, err);
	free(text);
	return rc;
}

int
kci_plan_parse(const char *text, size_t len, const char *filename, struct kci_plan **out,
	       struct kci_err *err)
{
	struct ctx *c = kci_xcalloc(1, sizeof(*c));
	struct kci_yaml_node *root = NULL;
	int rc;

	c->file = filename;
	c->err = err;
	c->plan = kci_xcalloc(1, sizeof(*c->plan));
	/* untrusted: len <= KCI_PLAN_FILE_MAX; every collection and string is bounded in tree.c */
	if (len > KCI_PLAN_FILE_MAX)
		rc = kci_err_set(err, KCI_INVALID, "%s: larger than %d KiB", filename,
				 KCI_PLAN_FILE_MAX / 1024);
	else if ((rc = kci_jobs_yaml_parse(text, len, filename, &root, err)) == 0 &&
		 (rc = plan_build(c, root)) == 0 && (rc = check_cycles(c)) == 0)
		name_files(c->plan);
	kci_jobs_yaml_free(root);
	if (rc < 0)
		kci_plan_free(c->plan);
	else
		*out = c->plan;
	free(c);
	return rc;
}
