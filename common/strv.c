/* NULL-terminated string vectors. */
#include "common/strv.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void
kci_strv_add(char ***v, size_t *n, const char *s)
{
	*v = kci_xrealloc(*v, (*n + 2) * sizeof(char *));
	(*v)[(*n)++] = kci_xstrdup(s);
	(*v)[*n] = NULL;
}

void
kci_strv_free(char **v)
{
	if (!v)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

void
kci_env_set(char ***env, size_t *n, const char *kv)
{
	size_t klen = strcspn(kv, "=");

	for (size_t j = 0; j < *n; j++) {
		if (strncmp((*env)[j], kv, klen) == 0 &&
		    ((*env)[j][klen] == '=' || !(*env)[j][klen])) {
			free((*env)[j]);
			(*env)[j] = kci_xstrdup(kv);
			return;
		}
	}
	kci_strv_add(env, n, kv);
}
