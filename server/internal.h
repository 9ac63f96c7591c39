/* Private to server/: the pieces of kci serve and kci agent, and their contracts. */
#ifndef KCI_SERVER_INTERNAL_H
#define KCI_SERVER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "server/server.h"

/* ---- config.c: the server's YAML config (docs/server.md) ---- */

#define CONFIG_LEASE_TTL_MS 30000 /* lease_timeout's default */

enum forge { FORGE_GITHUB, FORGE_GITEA, FORGE_GITLAB };

struct repo_conf {
	char *name; /* as the forge names it: "acme/widget" */
	enum forge forge;
	char *secret;	       /* webhook secret (read from secret_file), NUL-free */
	char *clone_url;       /* https://, or file:// (only when written in the config) */
	char *clone_token;     /* for https clones (clone_token_file), or NULL */
	char *status_token;    /* status_token_file's content, or NULL: no statuses */
	char *api_url;	       /* GitHub/Gitea/GitLab API base; NULL = the forge's default */
	char **secrets;	       /* "NAME=VALUE" granted to this repository's builds (secrets_file) */
	int cancel_superseded; /* a newer push to the same ref cancels the older build (default 1)
				*/
};

struct config {
	char *listen;		  /* "127.0.0.1:8080" */
	char *url;		  /* external base URL for links, no trailing slash */
	char *agent_token;	  /* agent_token_file's content */
	char *admin_token;	  /* admin_token_file's content, or NULL: no cancel/restart */
	char *tls_cert, *tls_key; /* PEM file contents, or NULL: plain HTTP */
	int64_t lease_ttl_ms;	  /* lease_timeout: an agent silent this long loses its job */
	struct repo_conf *repos;
	size_t n_repos;
};

/*
 * Parses the config at path (YAML; unknown keys are KCI_INVALID with
 * FILE:LINE:COL) and reads every file it names (tokens, secrets, TLS),
 * trimming one trailing newline. Caller frees with config_free().
 */
int config_load(const char *path, struct config **out, struct kci_err *err);
void config_free(struct config *c);
const struct repo_conf *config_repo(const struct config *c, const char *name, enum forge f);

/* ---- hooks.c: webhooks, verified before anything else is done with them ---- */

#define HOOK_BODY_MAX (1u << 20) /* larger bodies are 413 */

enum hook_kind { HOOK_PING, HOOK_PUSH, HOOK_PULL_REQUEST, HOOK_IGNORED };

/* What a verified delivery asks for. Strings are malloc'd; hook_clear() frees them. */
struct hook {
	enum hook_kind kind;
	char *delivery; /* the forge's delivery id (header), or NULL */
	char *repo;	/* full name as the forge gives it */
	char *ref;	/* "refs/heads/main", "refs/tags/v1", "refs/pull/7/head" */
	char *commit;	/* 40 hex */
	int trusted;	/* 0 for pull requests from forks: no secrets */
	char *ignored;	/* HOOK_IGNORED: why ("branch deletion", "event issues") */
};
void hook_clear(struct hook *h);

/* The request as libmicrohttpd handed it over: headers by name (case-insensitive). */
struct hook_req {
	enum forge forge;
	const char *(*header)(void *ctx, const char *name); /* NULL when absent */
	void *ctx;
	const uint8_t *body;
	size_t len;
};

/*
 * The repository named in the body, before verification, to find its secret:
 * KCI_INVALID for a malformed body.
 */
int hook_repo_name(const struct hook_req *r, char **repo, struct kci_err *err);
/*
 * Verifies the signature (GitHub X-Hub-Signature-256, Gitea X-Gitea-Signature,
 * Forgejo X-Forgejo-Signature: HMAC-SHA256 of the body; GitLab X-Gitlab-Token)
 * in constant time, then parses the event. KCI_INVALID "signature ..." for a
 * missing or wrong signature (401), KCI_INVALID otherwise for a malformed body
 * (400); *out filled on success.
 */
int hook_verify_parse(const struct hook_req *r, const char *secret, struct hook *out,
		      int *unauthorized, struct kci_err *err);

/* ---- store.c: the server's state in SQLite (WAL); logs as append-only files ---- */

enum build_status { B_QUEUED, B_RUNNING, B_PASSED, B_FAILED, B_CANCELED, B_ERROR };
enum job_status {
	J_WAITING, /* its needs have not passed yet */
	J_QUEUED,  /* ready for an agent */
	J_RUNNING, /* leased */
	J_PASSED,
	J_FAILED,
	J_TIMEOUT,
	J_SKIPPED,
	J_CANCELED,
	J_ERROR,
};
const char *build_status_name(enum build_status s);
const char *job_status_name(enum job_status s);
/* The status a name means, or -1. */
int build_status_parse(const char *name);
int job_status_parse(const char *name);

struct store;

struct job_row {
	int64_t id, build_id;
	char *name;	 /* the expanded name */
	char *file_name; /* for its log file */
	char **needs;	 /* names of jobs of the same build */
	char **secrets;	 /* names it asks for */
	enum job_status status;
	int attempt;				/* 1, then 2... after a lapsed lease */
	int64_t duration_ms, started, finished; /* ms since the epoch; 0 = not yet */
	char *message;				/* why it did not pass, or NULL */
};

struct build_row {
	int64_t id;
	char *repo, *ref, *commit, *clone_url, *event;
	enum build_status status;
	int trusted;
	int64_t created, started, finished;
	char *error; /* planning failed: why */
	struct job_row *jobs;
	size_t n_jobs;
};

void build_row_clear(struct build_row *b);
void job_row_clear(struct job_row *j);

int store_open(struct store **out, const char *dir, struct kci_err *err);
void store_close(struct store *s);
/*
 * Replaces the store's clock (ms since the epoch; NULL = CLOCK_REALTIME's), so tests can let
 * leases lapse without waiting. Call before the store is shared between threads.
 */
void store_set_clock(struct store *s, int64_t (*now)(void *ctx), void *ctx);

/*
 * Records a delivery id; 1 when it is new, 0 when it was seen before (its
 * build id in *build), so a replay creates nothing.
 */
int store_delivery_once(struct store *s, const char *delivery, int64_t *build, struct kci_err *err);
int store_delivery_build(struct store *s, const char *delivery, int64_t build, struct kci_err *err);

/* A new build with its jobs (status WAITING or QUEUED as their needs say); *id set. */
int store_build_add(struct store *s, const struct build_row *b, int64_t *id, struct kci_err *err);
int store_build_get(struct store *s, int64_t id, struct build_row *out, struct kci_err *err);
/* One job (its row, and its build's id in *build); KCI_NOTFOUND for an unknown id. */
int store_job_get(struct store *s, int64_t id, struct job_row *out, int64_t *build,
		  struct kci_err *err);
/* The newest builds first, at most max (without their jobs' details beyond status). */
int store_builds_list(struct store *s, size_t max, struct build_row **out, size_t *n,
		      struct kci_err *err);
/* Builds of repo+ref still queued or running, other than except. */
int store_builds_active(struct store *s, const char *repo, const char *ref, int64_t except,
			int64_t **ids, size_t *n, struct kci_err *err);

/* ---- leases: jobs handed to agents ---- */

struct lease {
	int64_t id, job_id, build_id, epoch;
	int64_t expires; /* ms since the epoch */
};

int store_agent_register(struct store *s, const char *name, unsigned capacity, int64_t *id,
			 struct kci_err *err);
/*
 * Leases the oldest QUEUED job to agent for ttl_ms: the job becomes RUNNING
 * (attempt unchanged), a new lease row with a fresh epoch. 0 with *got = 0
 * when nothing is queued.
 */
int store_lease_next(struct store *s, int64_t agent, int64_t ttl_ms, struct lease *out, int *got,
		     struct kci_err *err);
/* Extends a live lease whose epoch matches; KCI_INVALID when stale (expired, replaced). */
int store_lease_renew(struct store *s, int64_t lease, int64_t epoch, int64_t ttl_ms,
		      struct kci_err *err);
/*
 * Ends a live lease with the job's result: the job's status and message,
 * dependents become QUEUED or SKIPPED, the build's status follows.
 * KCI_INVALID when the lease is stale: a late report changes nothing.
 */
int store_lease_finish(struct store *s, int64_t lease, int64_t epoch, enum job_status st,
		       int64_t duration_ms, const char *message, struct kci_err *err);
/*
 * Lapsed leases (expires < now): their jobs go back to QUEUED as attempt+1,
 * or ERROR past max_attempts. Returns how many were re-queued.
 */
int store_leases_expire(struct store *s, int64_t now, int max_attempts, struct kci_err *err);
/*
 * Ends a live lease without a result: its agent stopped and handed the job
 * back, which goes back to QUEUED as the same attempt. KCI_INVALID when stale.
 */
int store_lease_release(struct store *s, int64_t lease, int64_t epoch, struct kci_err *err);
/* Whether the lease is live with this epoch (log chunks are accepted only then). */
int store_lease_check(struct store *s, int64_t lease, int64_t epoch, int64_t *job,
		      struct kci_err *err);

/* Cancels a build: its WAITING/QUEUED/RUNNING jobs become CANCELED, its leases end. */
int store_build_cancel(struct store *s, int64_t id, struct kci_err *err);
/* A new build copying id's repo, ref, commit and jobs (status reset); *new_id set. */
int store_build_restart(struct store *s, int64_t id, int64_t *new_id, struct kci_err *err);

/* Counts for /metrics. */
struct store_counts {
	int64_t queued, running, agents;
	int64_t jobs_by_status[J_ERROR + 1];
};
int store_counts(struct store *s, int64_t agent_seen_after, struct store_counts *out,
		 struct kci_err *err);

/*
 * A job's log: data/logs/<build>/<file_name>.log, appended only at its end.
 * store_log_append writes data at offset, which must be the log's current
 * size (a resend of what is there already is accepted and changes nothing);
 * *size gets the new size. KCI_INVALID for a gap.
 */
int store_log_append(struct store *s, int64_t build, const char *file_name, uint64_t offset,
		     const void *data, size_t len, uint64_t *size, struct kci_err *err);
/* The log's path, for reading (malloc'd). */
char *store_log_path(struct store *s, int64_t build, const char *file_name);

/* ---- jfield.c: members of a peer's JSON object, type-checked ---- */

struct json_object;
/* The string member key of o, or NULL when absent or not a string. */
const char *jfield_str(struct json_object *o, const char *key);
/* The integer member key of o, or -1 when absent or not an integer. */
int64_t jfield_int(struct json_object *o, const char *key);

/* ---- client.c: HTTP requests the agent and the status poster make (libcurl) ---- */

struct client_req {
	const char *method; /* "POST" (NULL) or "GET" */
	const char *url;
	const char *auth; /* a whole header line ("Authorization: Bearer ..."), or NULL */
	const char *type; /* the body's Content-Type, or NULL */
	const void *body;
	size_t len;
	long timeout_ms;	   /* the whole request; 0 = 30 s */
	size_t max_answer;	   /* bytes of answer kept, more fails (KCI_PROTO); 0 = 64 KiB */
	const volatile int *abort; /* set: the request stops (KCI_CANCELED) */
	const char *ca_file;	   /* trust these CAs instead of the system's, or NULL */
	/*
	 * Trust exactly this PEM certificate and skip the host name check, or NULL:
	 * for kci serve's own agent on loopback, whose certificate names the public host.
	 */
	const char *ca_pem;
};

struct client_answer {
	long status;
	char *body; /* NUL-terminated, or NULL when empty */
	size_t len;
};

/*
 * One request, no redirects followed, certificates verified. 0 with
 * a->status for any HTTP answer; < 0 when there was none (KCI_TIMEOUT,
 * KCI_CANCELED, KCI_ERROR "URL: why").
 */
int client_request(const struct client_req *r, struct client_answer *a, struct kci_err *err);
void client_answer_clear(struct client_answer *a);
/*
 * KCI_INVALID unless url is http(s)://HOST[:PORT]/... and, when plain http,
 * on loopback or allowed by insecure.
 */
int client_url_check(const char *url, int insecure, struct kci_err *err);
/* Whether url names this machine (localhost, 127.0.0.0/8, [::1]). */
int client_url_loopback(const char *url);

#endif
