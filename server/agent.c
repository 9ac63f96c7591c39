/*
 * kci agent: registers with a kci serve, long-polls for jobs within its
 * capacity and runs each leased job through the engine exactly as kci run
 * would (the pushed commit staged from a local mirror, a fresh VM, the same
 * caps). While a job runs, a pump thread renews its lease and streams its
 * log in ordered chunks; when it ends, the rest of the log goes first and
 * the result once. A lease the server no longer honours (the build was
 * canceled, the agent stalled past its lease) stops the job's VM: its late
 * updates would be refused anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "server/internal.h"

#define POLL_TIMEOUT_MS	 40000 /* the server answers a lease request within 25 s */
#define BACKOFF_MAX_MS	 30000
#define LOG_SEND_MAX	 (512u << 10)  /* bytes of log per request */
#define LOG_PENDING_MAX	 (80ull << 20) /* unsent log kept while the server is away */
#define LEASE_ANSWER_MAX (1u << 20)

struct job;

struct agent {
	const struct kci_agent_opts *o;
	char *base; /* the server's URL, no trailing slash */
	char *auth; /* "Authorization: Bearer TOKEN" */
	char *name, *home, *mirrors, *work;
	int64_t id;
	unsigned capacity;
	struct kci_kit *kit;
	volatile int draining; /* stop taking jobs */
	volatile int handback; /* stop running ones too, and give them back */
	pthread_mutex_t lock;  /* guards the fields below, and waits */
	pthread_cond_t cond;   /* draining or handback changed */
	pthread_mutex_t stage; /* one mirror fetch and checkout at a time */
	struct job *jobs;      /* running, for a hand-back */
	int unreachable;       /* said already that the server cannot be reached */
	int quit_fd;	       /* the watcher of stop_fd ends */
	pthread_t watcher;
	int watching;
};

struct job {
	struct agent *a;
	int64_t lease, epoch, build, ttl_ms, attempt;
	char *name, *repo, *ref, *commit, *clone_url, *clone_token;
	char **secrets;
	int trusted;
	int cancel_fd; /* the engine's: readable = stop the VM */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Log bytes not yet sent: offsets [base, base + len) of the job's log. */
	char *buf;
	size_t len, cap;
	uint64_t base;
	uint64_t dropped; /* bytes lost while the server was away too long */
	int ended;	  /* the job is over: the log, then the result */
	int lost;	  /* the server no longer holds this lease: report nothing more */
	const char *status;
	char *message;
	int64_t duration_ms, started_ms, boot_ms;
	struct job *next;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void agent_log(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
agent_log(struct agent *a, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (a->o->log)
		a->o->log(a->o->log_ctx, line);
	else
		fprintf(stderr, "kci agent: %s\n", line);
}

/* Waits up to ms, or until draining (or handback when only that matters). */
static void
agent_wait(struct agent *a, int64_t ms, const volatile int *until)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&a->lock);
	while (!*until && pthread_cond_timedwait(&a->cond, &a->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&a->lock);
}

/* The server answered (or did not): say so once per outage, not once per request. */
static void
reachable(struct agent *a, int yes, const char *why, int64_t retry_ms)
{
	pthread_mutex_lock(&a->lock);
	int was = a->unreachable;
	a->unreachable = !yes;
	pthread_mutex_unlock(&a->lock);
	if (yes && was)
		agent_log(a, "reached %s again", a->base);
	else if (!yes && !was)
		agent_log(a, "cannot reach the server: %s; retrying every %llds at most", why,
			  (long long)(retry_ms / 1000));
}

/* POSTs to the server's API; 0 with a->status, or < 0 without an answer. */
static int
api(struct agent *a, const char *path, const char *type, const char *body, size_t len,
    long timeout_ms, size_t max_answer, const volatile int *abort, struct client_answer *ans,
    struct kci_err *err)
{
	char *url = kci_xasprintf("%s%s", a->base, path);
	struct client_req r = { .url = url,
				.auth = a->auth,
				.type = type,
				.body = body,
				.len = len,
				.timeout_ms = timeout_ms,
				.max_answer = max_answer,
				.abort = abort,
				.ca_file = a->o->ca_file,
				.ca_pem = a->o->ca_pem };
	int rc = client_request(&r, ans, err);

	free(url);
	return rc;
}

/* ---- the job's log and lease, kept by its pump thread ---- */

static void
job_append(struct job *j, const char *line, size_t len)
{
	pthread_mutex_lock(&j->lock);
	if (j->lost || j->len + len + 1 > LOG_PENDING_MAX) {
		j->dropped += j->lost ? 0 : len + 1;
		pthread_mutex_unlock(&j->lock);
		return;
	}
	if (j->len + len + 1 > j->cap) {
		j->cap = (j->len + len + 1) * 2;
		j->buf = kci_xrealloc(j->buf, j->cap);
	}
	memcpy(j->buf + j->len, line, len);
	j->buf[j->len + len] = '\n';
	j->len += len + 1;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

static void job_note(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* kci's own line in the job's log, as the engine writes its notes. */
static void
job_note(struct job *j, const char *fmt, ...)
{
	char *text, *line;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	if (!text)
		return;
	line = kci_xasprintf("kci: %s", text);
	job_append(j, line, strlen(line));
	free(line);
	free(text);
}

static void
on_event(void *ctx, const struct kci_event *ev)
{
	struct job *j = ctx;
	char *line = kci_engine_log_line(ev);

	if (line) {
		job_append(j, line, strlen(line));
		free(line);
	}
	if (ev->kind == KCI_EV_JOB_START) {
		j->started_ms = ev->time_ms;
	} else if (ev->kind == KCI_EV_STEP_START && ev->step == 0 && !j->boot_ms) {
		j->boot_ms = ev->time_ms - j->started_ms;
	} else if (ev->kind == KCI_EV_JOB_END) {
		j->status = kci_engine_job_state_name(ev->state);
		j->duration_ms = ev->duration_ms;
		free(j->message);
		j->message = ev->text ? kci_xstrndup(ev->text, ev->len) : NULL;
	}
}

/* The lease is gone: stop the VM, report nothing more. Called with j->lock held. */
static void
job_lose(struct job *j, const char *why)
{
	uint64_t one = 1;

	if (j->lost)
		return;
	j->lost = 1;
	(void)!write(j->cancel_fd, &one, sizeof(one));
	if (!j->a->handback)
		agent_log(j->a, "build %lld job %s: %s; its VM is stopped", (long long)j->build,
			  j->name, why);
}

/* Sends the oldest unsent log bytes. Called with j->lock held; drops it meanwhile. */
static void
send_log(struct job *j, int64_t *last_ok)
{
	struct kci_err err = KCI_ERR_INIT;
	struct client_answer ans;
	size_t n = j->len < LOG_SEND_MAX ? j->len : LOG_SEND_MAX;
	uint64_t base = j->base;
	char *chunk = kci_xmalloc(n), path[128];
	int rc;

	memcpy(chunk, j->buf, n);
	snprintf(path, sizeof(path), "/api/v1/leases/%lld/log?epoch=%lld&offset=%llu",
		 (long long)j->lease, (long long)j->epoch, (unsigned long long)base);
	pthread_mutex_unlock(&j->lock);
	rc = api(j->a, path, "application/octet-stream", chunk, n, j->ttl_ms / 4, 0, NULL, &ans,
		 &err);
	free(chunk);
	pthread_mutex_lock(&j->lock);
	if (rc < 0) {
		reachable(j->a, 0, err.msg, BACKOFF_MAX_MS);
	} else if (ans.status == 200) {
		json_object *o = json_tokener_parse(ans.body ? ans.body : "");
		json_object *v;
		int64_t size = o && json_object_object_get_ex(o, "size", &v)
				       ? json_object_get_int64(v)
				       : -1;
		json_object_put(o);
		reachable(j->a, 1, NULL, 0);
		*last_ok = mono_ms();
		if (size == (int64_t)(base + n)) {
			memmove(j->buf, j->buf + n, j->len - n);
			j->len -= n;
			j->base += n;
		} else {
			job_lose(j, "the server's copy of the log does not match what was sent");
		}
	} else if (ans.status == 409 || ans.status == 404) {
		job_lose(j, "the server refused its log (the lease ended)");
	} else {
		reachable(j->a, 0, "the log was answered with an HTTP error", BACKOFF_MAX_MS);
	}
	client_answer_clear(&ans);
}

/* Renews the lease. Called with j->lock held; drops it meanwhile. */
static void
heartbeat(struct job *j, int64_t *last_ok)
{
	struct kci_err err = KCI_ERR_INIT;
	struct client_answer ans;
	char path[128];
	int rc;

	snprintf(path, sizeof(path), "/api/v1/leases/%lld/heartbeat?epoch=%lld",
		 (long long)j->lease, (long long)j->epoch);
	pthread_mutex_unlock(&j->lock);
	rc = api(j->a, path, NULL, NULL, 0, j->ttl_ms / 4, 0, NULL, &ans, &err);
	pthread_mutex_lock(&j->lock);
	if (rc == 0 && ans.status == 200) {
		reachable(j->a, 1, NULL, 0);
		*last_ok = mono_ms();
	} else if (rc == 0 && (ans.status == 409 || ans.status == 404)) {
		job_lose(j, "the server ended its lease (the build was canceled, or the agent "
			    "was too slow to renew it)");
	} else {
		reachable(j->a, 0, rc < 0 ? err.msg : "a heartbeat was answered with an error",
			  BACKOFF_MAX_MS);
		/* Asked and not answered for a whole lease: the server has moved on. */
		if (mono_ms() - *last_ok > j->ttl_ms)
			job_lose(j, "the server could not be reached for longer than its lease");
	}
	client_answer_clear(&ans);
}

/* Reports the result once; KCI_INVALID when the server refused it. Drops j->lock meanwhile. */
static int
finish(struct job *j, int64_t *last_ok)
{
	struct kci_err err = KCI_ERR_INIT;
	struct client_answer ans;
	json_object *o = json_object_new_object();
	char path[96];
	int rc;

	json_object_object_add(o, "epoch", json_object_new_int64(j->epoch));
	json_object_object_add(o, "status", json_object_new_string(j->status));
	json_object_object_add(o, "duration_ms", json_object_new_int64(j->duration_ms));
	json_object_object_add(o, "boot_ms", json_object_new_int64(j->boot_ms));
	if (j->message)
		json_object_object_add(o, "message", json_object_new_string(j->message));
	const char *body = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	snprintf(path, sizeof(path), "/api/v1/leases/%lld/finish", (long long)j->lease);
	pthread_mutex_unlock(&j->lock);
	rc = api(j->a, path, "application/json", body, strlen(body), j->ttl_ms / 4, 0, NULL, &ans,
		 &err);
	json_object_put(o);
	pthread_mutex_lock(&j->lock);
	if (rc < 0) {
		reachable(j->a, 0, err.msg, BACKOFF_MAX_MS);
		return 1;
	}
	if (ans.status == 200) {
		*last_ok = mono_ms();
		client_answer_clear(&ans);
		return 0;
	}
	rc = ans.status == 409 || ans.status == 404 ? KCI_INVALID : 1;
	client_answer_clear(&ans);
	return rc;
}

/* Gives the lease back so the job runs again at once (elsewhere, or here later). */
static void
release(struct job *j)
{
	struct kci_err err = KCI_ERR_INIT;
	struct client_answer ans;
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/leases/%lld/release?epoch=%lld", (long long)j->lease,
		 (long long)j->epoch);
	if (api(j->a, path, NULL, NULL, 0, 10000, 0, NULL, &ans, &err) == 0 && ans.status == 200)
		agent_log(j->a, "build %lld job %s: handed back to the server", (long long)j->build,
			  j->name);
	else
		agent_log(j->a,
			  "build %lld job %s: could not hand it back; it runs again when its "
			  "lease lapses",
			  (long long)j->build, j->name);
	client_answer_clear(&ans);
}

static int
handed_back(const struct job *j)
{
	return j->a->handback && j->status && !strcmp(j->status, "canceled");
}

/*
 * The job's pump: heartbeats every ttl/4, the log as soon as there is some
 * (what piles up during a request goes in the next), then the result.
 */
static void *
pump_main(void *arg)
{
	struct job *j = arg;
	int64_t last_ok = mono_ms(), next_hb = last_ok + j->ttl_ms / 4, retry_at = 0;

	pthread_mutex_lock(&j->lock);
	for (;;) {
		int64_t now = mono_ms();

		/* A job stopped by a hand-back is not reported: it runs again. */
		if (j->lost || (j->ended && handed_back(j)))
			break;
		if (now >= next_hb) {
			heartbeat(j, &last_ok);
			next_hb = mono_ms() + j->ttl_ms / 4;
			continue;
		}
		if (j->len && now >= retry_at) {
			int64_t before = last_ok;
			send_log(j, &last_ok);
			retry_at = last_ok == before ? mono_ms() + 1000 : 0;
			continue;
		}
		if (j->ended && !j->len && now >= retry_at) {
			if (j->dropped) {
				agent_log(j->a,
					  "build %lld job %s: %llu bytes of its log were dropped "
					  "while the server was away",
					  (long long)j->build, j->name,
					  (unsigned long long)j->dropped);
				j->dropped = 0;
			}
			int rc = finish(j, &last_ok);
			if (rc == 0)
				break;
			if (rc < 0) {
				j->lost = 1;
				agent_log(j->a,
					  "build %lld job %s: the server refused its result "
					  "(its lease had ended)",
					  (long long)j->build, j->name);
				break;
			}
			retry_at = mono_ms() + 1000;
		}
		int64_t wake = next_hb;
		if ((j->len || j->ended) && retry_at && retry_at < wake)
			wake = retry_at;
		struct timespec ts;
		int64_t in = wake - mono_ms();
		if (in <= 0)
			continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += in / 1000;
		ts.tv_nsec += (in % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&j->cond, &j->lock, &ts);
	}
	int hand = j->ended && handed_back(j) && !j->lost;
	pthread_mutex_unlock(&j->lock);
	if (hand)
		release(j);
	return NULL;
}

/* ---- one leased job ---- */

static void
job_free(struct job *j)
{
	if (!j)
		return;
	free(j->name);
	free(j->repo);
	free(j->ref);
	free(j->commit);
	free(j->clone_url);
	free(j->clone_token);
	kci_strv_free(j->secrets);
	free(j->buf);
	free(j->message);
	if (j->cancel_fd >= 0)
		close(j->cancel_fd);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

static int
is_commit(const char *s)
{
	if (!s || strlen(s) != 40)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

/* The lease the server handed over, checked field by field. */
static struct job *
job_parse(struct agent *a, const char *text, struct kci_err *err)
{
	json_object *o = json_tokener_parse(text ? text : ""), *v;
	struct job *j = kci_xcalloc(1, sizeof(*j));
	size_t n = 0;

	j->a = a;
	j->cancel_fd = -1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	if (!o || (j->lease = jfield_int(o, "lease")) < 0 ||
	    (j->epoch = jfield_int(o, "epoch")) < 0 || (j->build = jfield_int(o, "build")) < 0 ||
	    (j->ttl_ms = jfield_int(o, "ttl_ms")) < 1000 || !jfield_str(o, "job") ||
	    !jfield_str(o, "repo") || !jfield_str(o, "ref") ||
	    !is_commit(jfield_str(o, "commit")) || !jfield_str(o, "clone_url")) {
		kci_err_set(err, KCI_PROTO,
			    "the server's lease is not what kci agent expects "
			    "(is the server a newer kci?)");
		json_object_put(o);
		job_free(j);
		return NULL;
	}
	j->attempt = jfield_int(o, "attempt");
	j->base = jfield_int(o, "log_offset") > 0 ? (uint64_t)jfield_int(o, "log_offset") : 0;
	j->trusted = json_object_object_get_ex(o, "trusted", &v) && json_object_get_boolean(v);
	j->name = kci_xstrdup(jfield_str(o, "job"));
	j->repo = kci_xstrdup(jfield_str(o, "repo"));
	j->ref = kci_xstrdup(jfield_str(o, "ref"));
	j->commit = kci_xstrdup(jfield_str(o, "commit"));
	j->clone_url = kci_xstrdup(jfield_str(o, "clone_url"));
	if (jfield_str(o, "clone_token"))
		j->clone_token = kci_xstrdup(jfield_str(o, "clone_token"));
	if (json_object_object_get_ex(o, "secrets", &v) && json_object_is_type(v, json_type_array))
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *s = json_object_array_get_idx(v, i);
			if (json_object_is_type(s, json_type_string))
				kci_strv_add(&j->secrets, &n, json_object_get_string(s));
		}
	json_object_put(o);
	/*
	 * A local path is only taken from a server on this machine: a remote server
	 * does not choose what this host reads. The job is reported as an error.
	 */
	if (strncmp(j->clone_url, "https://", 8) &&
	    (strncmp(j->clone_url, "file://", 7) || !client_url_loopback(a->base))) {
		j->status = "error";
		j->message = kci_xasprintf("the server asked this agent for a clone of %.200s; "
					   "agents clone https:// URLs (file:// only from a "
					   "server on the same machine)",
					   j->clone_url);
	}
	return j;
}

/*
 * Stages the job's commit and runs it. The result (or why it could not run)
 * goes into j for the pump; nothing here talks to the server.
 */
static void
job_run(struct job *j)
{
	struct agent *a = j->a;
	struct kci_err err = KCI_ERR_INIT;
	struct kci_project *p = NULL;
	struct kci_secrets *sec = kci_engine_secrets_new();
	char *mirror = kci_engine_mirror_dir(a->mirrors, j->clone_url);
	char *out = kci_xasprintf("%s/lease.tmp-%d-XXXXXX", a->work, (int)getpid());
	char **granted = NULL;
	enum kci_job_state *states = NULL;
	int *selected = NULL, rc = 0;
	const struct kci_plan *plan;
	size_t idx = 0;

	job_note(j, "build %lld of %s at %.12s (%s), attempt %lld, on agent %s",
		 (long long)j->build, j->repo, j->commit, j->ref, (long long)j->attempt, a->name);
	pthread_mutex_lock(&a->stage);
	rc = kci_engine_mirror_sync(j->clone_url, j->clone_token, mirror, j->ref, j->commit, &err);
	if (rc == 0) {
		struct kci_project_opts po = { .dir = mirror,
					       .commit = j->commit,
					       .home = a->home };
		rc = kci_engine_project_open(&p, &po, &err);
	}
	pthread_mutex_unlock(&a->stage);
	if (rc < 0)
		goto fail;
	plan = kci_engine_project_plan(p);
	while (idx < plan->n_jobs && strcmp(plan->jobs[idx].name, j->name))
		idx++;
	if (idx == plan->n_jobs) {
		rc = kci_err_set(&err, KCI_NOTFOUND, "the pipeline at %.12s has no job '%s'",
				 j->commit, j->name);
		goto fail;
	}
	selected = kci_xcalloc(plan->n_jobs, sizeof(*selected));
	states = kci_xcalloc(plan->n_jobs, sizeof(*states));
	selected[idx] = 1;
	for (size_t i = 0; j->secrets && j->secrets[i] && rc == 0; i++)
		rc = kci_engine_secrets_add(sec, j->secrets[i], &err);
	if (rc == 0 && (rc = kci_engine_secrets_for(sec, plan, selected, &granted, &err)) < 0 &&
	    !j->trusted)
		kci_err_prefix(&err, "builds of pull requests from forks get no secrets");
	if (rc < 0)
		goto fail;
	if (a->handback) {
		j->status = "canceled"; /* handed back before it started */
		goto out;
	}
	if (!mkdtemp(out)) {
		rc = kci_err_sys(&err, errno, "create %s", out);
		goto fail;
	}
	struct kci_engine_opts eo = {
		.kit = a->kit,
		.out_dir = out,
		.max_jobs = 1,
		.default_timeout_ms = a->o->default_timeout_ms,
		.output_limit = a->o->output_limit,
		.secrets = granted,
		.registries = a->o->registries,
		.console_fd = -1,
		/* A fork's VMs never share a template with trusted builds'. */
		.template_scope = j->trusted ? NULL : "untrusted",
		.cancel_fd = j->cancel_fd,
		.needs_met = 1,
		.event = on_event,
		.ctx = j
	};
	rc = kci_engine_project_run(p, selected, &eo, states, &err);
	kci_rm_rf(out, NULL);
	if (rc < 0)
		goto fail;
	if (!j->status) {
		j->status = kci_engine_job_state_name(states[idx]);
		j->message = kci_xstrdup("the job ended without a result");
	}
	goto out;
fail:
	job_note(j, "%s", err.msg);
	j->status = "error";
	free(j->message);
	j->message = kci_xstrdup(err.msg);
out:
	kci_engine_project_free(p);
	kci_engine_secrets_free(sec);
	kci_strv_free(granted);
	free(selected);
	free(states);
	free(mirror);
	free(out);
}

static void
run_lease(struct agent *a, struct job *j)
{
	pthread_t pump;
	int pumping;

	j->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_lock(&a->lock);
	j->next = a->jobs;
	a->jobs = j;
	pthread_mutex_unlock(&a->lock);
	agent_log(a, "build %lld job %s: running (%s at %.12s, attempt %lld)", (long long)j->build,
		  j->name, j->repo, j->commit, (long long)j->attempt);
	pumping = pthread_create(&pump, NULL, pump_main, j) == 0;
	if (j->cancel_fd < 0 || !pumping) {
		j->status = "error";
		free(j->message);
		j->message = kci_xstrdup("the agent could not start the job (out of resources)");
	} else if (j->status) {
		job_note(j, "%s", j->message); /* refused before it started */
	} else {
		job_run(j);
	}
	pthread_mutex_lock(&j->lock);
	j->ended = 1;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
	if (pumping)
		pthread_join(pump, NULL);
	if (!j->lost && !handed_back(j))
		agent_log(a, "build %lld job %s: %s", (long long)j->build, j->name, j->status);
	pthread_mutex_lock(&a->lock);
	for (struct job **pp = &a->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	pthread_mutex_unlock(&a->lock);
}

/* ---- slots: each asks for a job, runs it, asks again ---- */

static void *
slot_main(void *arg)
{
	struct agent *a = arg;
	int64_t backoff = 1000;
	char path[64];

	snprintf(path, sizeof(path), "/api/v1/agents/%lld/lease", (long long)a->id);
	while (!a->draining) {
		struct kci_err err = KCI_ERR_INIT;
		struct client_answer ans;
		struct job *j;

		if (api(a, path, NULL, NULL, 0, POLL_TIMEOUT_MS, LEASE_ANSWER_MAX, &a->draining,
			&ans, &err) < 0) {
			if (err.code == KCI_CANCELED)
				break;
			reachable(a, 0, err.msg, BACKOFF_MAX_MS);
		} else if (ans.status == 204) {
			reachable(a, 1, NULL, 0);
			backoff = 1000;
			continue;
		} else if (ans.status != 200) {
			agent_log(a, "the server answered a lease request with HTTP %ld: %.200s",
				  ans.status, ans.body ? ans.body : "");
		} else if (!(j = job_parse(a, ans.body, &err))) {
			agent_log(a, "%s", err.msg);
		} else {
			reachable(a, 1, NULL, 0);
			client_answer_clear(&ans);
			backoff = 1000;
			run_lease(a, j);
			job_free(j);
			continue;
		}
		client_answer_clear(&ans);
		agent_wait(a, backoff, &a->draining);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

/* Registers; retries while the server cannot be reached. KCI_CANCELED when stopped. */
static int
agent_register(struct agent *a, struct kci_err *err)
{
	json_object *o = json_object_new_object();
	int64_t backoff = 1000;
	int rc = KCI_CANCELED;

	json_object_object_add(o, "name", json_object_new_string(a->name));
	json_object_object_add(o, "capacity", json_object_new_int64(a->capacity));
	const char *body = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	while (!a->draining) {
		struct client_answer ans;
		struct kci_err e = KCI_ERR_INIT;
		json_object *r, *v;

		if (api(a, "/api/v1/agents", "application/json", body, strlen(body), 30000, 0,
			&a->draining, &ans, &e) < 0) {
			if (e.code == KCI_CANCELED)
				break;
			reachable(a, 0, e.msg, BACKOFF_MAX_MS);
			agent_wait(a, backoff, &a->draining);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		r = ans.status == 201 ? json_tokener_parse(ans.body ? ans.body : "") : NULL;
		if (r && json_object_object_get_ex(r, "agent", &v) &&
		    json_object_is_type(v, json_type_int)) {
			a->id = json_object_get_int64(v);
			rc = 0;
		} else if (ans.status == 401) {
			rc = kci_err_set(err, KCI_INVALID, "%s refused the agent token", a->base);
		} else {
			rc = kci_err_set(err, KCI_PROTO,
					 "%s answered the registration with HTTP %ld", a->base,
					 ans.status);
		}
		json_object_put(r);
		client_answer_clear(&ans);
		break;
	}
	json_object_put(o);
	if (rc == KCI_CANCELED)
		kci_err_set(err, KCI_CANCELED, "stopped before the server could be reached");
	return rc;
}

/* Stop requests: the first drains, the second hands the running jobs back. */
static void
on_stop(struct agent *a, unsigned requests)
{
	uint64_t one = 1;

	pthread_mutex_lock(&a->lock);
	if (requests >= 1 && !a->draining) {
		a->draining = 1;
		requests--;
		agent_log(a, "stopping: no new jobs%s",
			  a->jobs ? "; running ones finish (stop "
				    "again to hand them back)"
				  : "");
	}
	if (requests >= 1 && !a->handback) {
		a->handback = 1;
		agent_log(a, "handing the running jobs back to the server");
		for (struct job *j = a->jobs; j; j = j->next)
			(void)!write(j->cancel_fd, &one, sizeof(one));
	}
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

/* A thread turns bytes on stop_fd into stop requests while the agent registers and runs. */
static void *
watch_main(void *arg)
{
	struct agent *a = arg;
	struct pollfd pf[2] = { { a->o->stop_fd, POLLIN, 0 }, { a->quit_fd, POLLIN, 0 } };

	for (;;) {
		char buf[16];
		ssize_t n;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (pf[1].revents)
			return NULL;
		if (!pf[0].revents)
			continue;
		n = read(pf[0].fd, buf, sizeof(buf));
		if (n > 0) {
			on_stop(a, (unsigned)n);
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			pf[0].fd = -1; /* closed: no more requests can come */
		}
	}
}

static int
watch_start(struct agent *a)
{
	if ((a->quit_fd = eventfd(0, EFD_CLOEXEC)) < 0)
		return KCI_ERROR;
	if (pthread_create(&a->watcher, NULL, watch_main, a) != 0) {
		errno = EAGAIN;
		return KCI_ERROR;
	}
	a->watching = 1;
	return 0;
}

static void
watch_stop(struct agent *a)
{
	uint64_t one = 1;

	if (a->watching) {
		(void)!write(a->quit_fd, &one, sizeof(one));
		pthread_join(a->watcher, NULL);
		a->watching = 0;
	}
}

static void
agent_free(struct agent *a)
{
	kci_engine_kit_free(a->kit);
	free(a->base);
	free(a->auth);
	free(a->name);
	free(a->home);
	free(a->mirrors);
	free(a->work);
	if (a->quit_fd >= 0)
		close(a->quit_fd);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->stage);
}

int
kci_server_agent(const struct kci_agent_opts *o, struct kci_err *err)
{
	struct agent a = { .o = o, .quit_fd = -1 };
	struct kci_kit_opts ko = { .kernel = o->kernel, .accel = o->accel, .cold = o->cold };
	pthread_t *slots = NULL;
	unsigned started = 0;
	char host[256];
	int rc;

	pthread_mutex_init(&a.lock, NULL);
	pthread_cond_init(&a.cond, NULL);
	pthread_mutex_init(&a.stage, NULL);
	if (!o->server || !o->token || !o->token[0]) {
		rc = kci_err_set(err, KCI_INVALID, "an agent needs a server URL and a token");
		goto out;
	}
	if ((rc = client_url_check(o->server, o->insecure, err)) < 0)
		goto out;
	a.base = kci_xstrdup(o->server);
	while (a.base[0] && a.base[strlen(a.base) - 1] == '/')
		a.base[strlen(a.base) - 1] = '\0';
	a.auth = kci_xasprintf("Authorization: Bearer %s", o->token);
	if (o->name)
		a.name = kci_xstrdup(o->name);
	else
		a.name = kci_xstrdup(gethostname(host, sizeof(host)) == 0 ? host : "agent");
	a.capacity = o->capacity ? o->capacity : kci_engine_default_jobs();
	if (o->home)
		a.home = kci_xstrdup(o->home);
	else if ((rc = kci_home(&a.home, err)) < 0)
		goto out;
	a.mirrors = kci_xasprintf("%s/mirrors", a.home);
	a.work = kci_xasprintf("%s/agent", a.home);
	ko.home = a.home;
	if ((rc = kci_mkdir_p(a.work, 0700, err)) < 0)
		goto out;
	kci_sweep_orphans(a.work);
	/* The kit first: a host that cannot boot VMs should not take jobs. */
	if ((rc = kci_engine_kit_new(&a.kit, &ko, err)) < 0)
		goto out;
	if ((rc = watch_start(&a)) < 0) {
		kci_err_sys(err, errno, "cannot watch for stop requests");
		goto out;
	}
	if ((rc = agent_register(&a, err)) == 0) {
		agent_log(&a, "registered with %s as agent %lld (%s), %u job%s at once", a.base,
			  (long long)a.id, a.name, a.capacity, a.capacity == 1 ? "" : "s");
		slots = kci_xcalloc(a.capacity, sizeof(*slots));
		for (started = 0; started < a.capacity; started++)
			if (pthread_create(&slots[started], NULL, slot_main, &a) != 0)
				break;
		for (unsigned i = 0; i < started; i++)
			pthread_join(slots[i], NULL);
		agent_log(&a, "stopped");
	} else if (rc == KCI_CANCELED) {
		rc = 0; /* stopped while the server was away: nothing was taken */
	}
	watch_stop(&a);
out:
	free(slots);
	agent_free(&a);
	return rc;
}
