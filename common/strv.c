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

int
kci_env_set_lines(char ***env, size_t *n, const char *text, size_t len)
{
	const char *line = text, *end = text + len;
	int lineno = 0;

	if (memchr(text, '\0', len))
		return -1;
	/* Line by line, blank ones counted, so a number is the line an editor shows. */
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t l = nl ? (size_t)(nl - line) : (size_t)(end - line);
		char *copy;

		lineno++;
		if (l && line[l - 1] == '\r')
			l--;
		if (l && line[0] != '#') {
			if (line[0] == '=' || !memchr(line, '=', l))
				return lineno;
			copy = kci_xstrndup(line, l);
			kci_env_set(env, n, copy);
			explicit_bzero(copy, l);
			free(copy);
		}
		line = nl ? nl + 1 : end;
	}
	return 0;
}
