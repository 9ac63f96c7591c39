/* The names of build and job statuses, as the UI, the API and /metrics show them. */
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
