/*
 * The names of build and job statuses, as the UI, the API and /metrics show
 * them, and as the store keeps them.
 */
#include <string.h>

#include "server/internal.h"

static const char *const build_names[] = {
	[B_QUEUED] = "queued", [B_RUNNING] = "running",	  [B_PASSED] = "passed",
	[B_FAILED] = "failed", [B_CANCELED] = "canceled", [B_ERROR] = "error",
};

static const char *const job_names[] = {
	[J_WAITING] = "waiting", [J_QUEUED] = "queued",	    [J_RUNNING] = "running",
	[J_PASSED] = "passed",	 [J_FAILED] = "failed",	    [J_TIMEOUT] = "timeout",
	[J_SKIPPED] = "skipped", [J_CANCELED] = "canceled", [J_ERROR] = "error",
};

const char *
build_status_name(enum build_status s)
{
	if ((unsigned)s >= sizeof(build_names) / sizeof(build_names[0]))
		return "unknown";
	return build_names[s];
}

const char *
job_status_name(enum job_status s)
{
	if ((unsigned)s >= sizeof(job_names) / sizeof(job_names[0]))
		return "unknown";
	return job_names[s];
}

/* The index of name in names, or -1. */
static int
parse(const char *const *names, int n, const char *name)
{
	for (int i = 0; name && i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

int
build_status_parse(const char *name)
{
	return parse(build_names, B_ERROR + 1, name);
}

int
job_status_parse(const char *name)
{
	return parse(job_names, J_ERROR + 1, name);
}
