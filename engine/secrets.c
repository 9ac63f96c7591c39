/*
 * Secrets: values the operator grants a run (--secret NAME from kci's
 * environment, a --secret-file; kci serve's per-repository grants), and the
 * values the selected jobs of a plan ask for. The repository only asks: a
 * secret it names that the operator did not grant is an error, never a
 * lookup in kci's environment. The engine masks every value it hands a job.
 */
#include <stdlib.h>
#include <string.h>

#include "common/fs.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "engine/internal.h"

#define SECRET_FILE_MAX (1024 * 1024)

struct kci_secrets {
	char **values; /* "NAME=VALUE", NULL-terminated or NULL */
	size_t n;
};

struct kci_secrets *
kci_engine_secrets_new(void)
{
	return kci_xcalloc(1, sizeof(struct kci_secrets));
}

void
kci_engine_secrets_free(struct kci_secrets *s)
{
	if (!s)
		return;
	kci_strv_free(s->values);
	free(s);
}

int
kci_engine_secrets_add_file(struct kci_secrets *s, const char *path, struct kci_err *err)
{
	char *text;
	size_t len;
	int rc, bad;

	if ((rc = kci_read_file(path, SECRET_FILE_MAX, &text, &len, err)) < 0)
		return kci_err_prefix(err, "--secret-file");
	if ((bad = kci_env_set_lines(&s->values, &s->n, text, len)) < 0)
		rc = kci_err_set(err, KCI_INVALID, "--secret-file %s: contains a NUL byte", path);
	else if (bad > 0)
		rc = kci_err_set(err, KCI_INVALID, "--secret-file %s: line %d is not NAME=VALUE",
				 path, bad);
	free(text);
	return rc < 0 ? rc : 0;
}

int
kci_engine_secrets_add(struct kci_secrets *s, const char *name_value, struct kci_err *err)
{
	if (!strchr(name_value, '=') || name_value[0] == '=')
		return kci_err_set(err, KCI_INVALID, "a secret is NAME=VALUE");
	kci_env_set(&s->values, &s->n, name_value);
	return 0;
}

int
kci_engine_secrets_add_env(struct kci_secrets *s, const char *name, struct kci_err *err)
{
	const char *value = getenv(name);
	char *kv;

	if (!value)
		return kci_err_set(err, KCI_NOTFOUND,
				   "--secret %s: %s is not set in your environment", name, name);
	kv = kci_xasprintf("%s=%s", name, value);
	kci_env_set(&s->values, &s->n, kv);
	free(kv);
	return 0;
}

/* The value s grants `name`, or NULL. */
static const char *
granted(const struct kci_secrets *s, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; s && i < s->n; i++)
		if (strncmp(s->values[i], name, len) == 0 && s->values[i][len] == '=')
			return s->values[i] + len + 1;
	return NULL;
}

/* Whether `name` is one of the ", "-separated names in list (NULL = empty). */
static int
name_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		size_t l = strcspn(p, ",");

		if (l == n && strncmp(p, name, n) == 0)
			return 1;
		p += l;
		p += strspn(p, ", ");
	}
	return 0;
}

int
kci_engine_secrets_for(const struct kci_secrets *s, const struct kci_plan *p, const int *selected,
		       char ***out, struct kci_err *err)
{
	char **values = NULL, *missing = NULL;
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < p->n_jobs; i++) {
		for (size_t k = 0;
		     (!selected || selected[i]) && p->jobs[i].secrets && p->jobs[i].secrets[k];
		     k++) {
			const char *name = p->jobs[i].secrets[k], *value = granted(s, name);
			char *kv;

			if (!value) {
				if (!name_listed(missing, name)) {
					char *m = kci_xasprintf("%s%s%s", missing ? missing : "",
								missing ? ", " : "", name);
					free(missing);
					missing = m;
				}
				continue;
			}
			kv = kci_xasprintf("%s=%s", name, value);
			kci_env_set(&values, &n, kv);
			free(kv);
		}
	}
	if (missing) {
		int several = strchr(missing, ',') != NULL;

		rc = kci_err_set(
			err, KCI_INVALID,
			"the pipeline asks for secret%s %s, which %s not granted: pass "
			"--secret NAME for each (its value is taken from your environment) "
			"or NAME=VALUE lines in a --secret-file",
			several ? "s" : "", missing, several ? "were" : "was");
		kci_strv_free(values);
		values = NULL;
	}
	free(missing);
	*out = values ? values : kci_xcalloc(1, sizeof(char *));
	return rc;
}
