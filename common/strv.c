/* NULL-terminated string vectors. */
#include "common/strv.h"

#include <stdlib.h>

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
