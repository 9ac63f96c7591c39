/* Names of job states, as the CLI, the JSON event stream and the logs spell them. */
#include "engine/engine.h"

const char *
kci_engine_job_state_name(enum kci_job_state s)
{
	switch (s) {
	case KCI_JOB_PENDING:
		return "pending";
	case KCI_JOB_RUNNING:
		return "running";
	case KCI_JOB_PASSED:
		return "passed";
	case KCI_JOB_FAILED:
		return "failed";
	case KCI_JOB_TIMEOUT:
		return "timeout";
	case KCI_JOB_SKIPPED:
		return "skipped";
	case KCI_JOB_CANCELED:
		return "canceled";
	case KCI_JOB_ERROR:
		return "error";
	}
	return "unknown";
}
