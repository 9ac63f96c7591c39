/*
 * kci serve's HTTP: libmicrohttpd, a thread per connection (lease requests
 * wait and live logs stream), bounded bodies, connections and idle time, and
 * the routes of docs/api.md: webhooks, the builds API, the agents' API, the
 * web UI and /metrics. Every answer is built by a route function into a
 * struct answer; this file only moves bytes and headers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "engine/engine.h"
#include "server/core.h"

struct http_server {
	struct MHD_Daemon *d;
	struct server *s;
};

/* One request being received: its body, bounded by its route's limit. */
struct request {
	char *body;
	size_t len, max;
	int too_big;
};

/* The most a route takes as a body. */
static size_t
body_limit(const char *url)
{
	if (strncmp(url, "/hooks/", 7) == 0)
		return HOOK_BODY_MAX;
	if (strncmp(url, "/api/v1/leases/", 15) == 0 && strstr(url, "/log"))
		return LOG_CHUNK_MAX;
	return API_BODY_MAX;
}

static const char *
header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static const char *
query(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* Bearer token check in constant time; NULL expected means the route is off. */
static int
bearer_ok(struct MHD_Connection *c, const char *expected)
{
	const char *h = header(c, "Authorization");
	size_t n, m;
	unsigned char diff = 0;

	if (!expected || !h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	n = strlen(h);
	m = strlen(expected);
	for (size_t i = 0; i < n && i < m; i++)
		diff |= (unsigned char)(h[i] ^ expected[i]);
	return diff == 0 && n == m;
}

static int
parse_id(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v <= 0)
		return -1;
	*out = v;
	return (int)(end - s);
}

/* ---- the builds API and the UI ---- */

static int
find_job(const struct build_row *b, const char *name, size_t len)
{
	for (size_t i = 0; i < b->n_jobs; i++)
		if ((strlen(b->jobs[i].name) == len && !strncmp(b->jobs[i].name, name, len)) ||
		    (strlen(b->jobs[i].file_name) == len &&
		     !strncmp(b->jobs[i].file_name, name, len)))
			return (int)i;
	return -1;
}

static char *
read_log(struct server *s, const struct build_row *b, const struct job_row *j, size_t *len)
{
	char *path = store_log_path(s->store, b->id, j->file_name), *text = NULL;
	struct kci_err err = KCI_ERR_INIT;

	if (!path || kci_read_file(path, 256u << 20, &text, len, &err) < 0) {
		text = kci_xstrdup("");
		*len = 0;
	}
	free(path);
	return text;
}

static int
job_live(const struct job_row *j)
{
	return j->status == J_WAITING || j->status == J_QUEUED || j->status == J_RUNNING;
}

/* /builds/ID[/jobs/NAME[/log|/events]] (API or UI): the build and job it names. */
static int
resolve(struct server *s, const char *rest, struct build_row *b, int *job, const char **suffix,
	struct answer *a)
{
	struct kci_err err = KCI_ERR_INIT;
	int64_t id;
	int n = parse_id(rest, &id);
	const char *p, *end;

	*job = -1;
	*suffix = "";
	if (n < 0) {
		answer_text(a, 404, "no such build");
		return -1;
	}
	p = rest + n;
	if (store_build_get(s->store, id, b, &err) < 0) {
		answer_text(a, err.code == KCI_NOTFOUND ? 404 : 500, "%s", err.msg);
		return -1;
	}
	if (!*p)
		return 0;
	if (strncmp(p, "/jobs/", 6) != 0) {
		*suffix = p;
		return 0;
	}
	p += 6;
	end = p + strlen(p);
	for (const char *sfx = "/log"; sfx; sfx = strcmp(sfx, "/log") == 0 ? "/events" : NULL)
		if ((size_t)(end - p) > strlen(sfx) && !strcmp(end - strlen(sfx), sfx)) {
			*suffix = sfx;
			end -= strlen(sfx);
		}
	if ((*job = find_job(b, p, (size_t)(end - p))) < 0) {
		answer_text(a, 404, "build %lld has no job %.*s", (long long)b->id, (int)(end - p),
			    p);
		return -1;
	}
	return 0;
}

/* Server-Sent Events: a job's log as it grows, then an end event. */
struct tail {
	struct server *s;
	int64_t build;
	char *path, *file_name;
	uint64_t offset; /* the log's bytes sent so far */
	char *out;	 /* formatted, not yet sent */
	size_t out_len, out_off;
	int ended, idle_ms;
};

static void
tail_put(struct tail *t, char *text)
{
	free(t->out);
	t->out = text;
	t->out_len = strlen(text);
	t->out_off = 0;
}

/* 1 when the job is no longer running (or gone), with its status in *st. */
static int
tail_done(struct tail *t, enum job_status *st)
{
	struct kci_err err = KCI_ERR_INIT;
	struct build_row b = { 0 };
	int done = 1;

	*st = J_ERROR;
	if (store_build_get(t->s->store, t->build, &b, &err) == 0)
		for (size_t j = 0; j < b.n_jobs; j++)
			if (!strcmp(b.jobs[j].file_name, t->file_name)) {
				done = !job_live(&b.jobs[j]);
				*st = b.jobs[j].status;
			}
	build_row_clear(&b);
	return done;
}

/*
 * Formats what the log has past offset as one event: while the job runs, only
 * up to a complete character or escape sequence; at the end (final), all of it.
 */
static void
tail_read(struct tail *t, int final)
{
	char buf[32768];
	int fd = open(t->path, O_RDONLY | O_CLOEXEC);
	ssize_t got = fd >= 0 ? pread(fd, buf, sizeof(buf), (off_t)t->offset) : 0;
	size_t n;

	if (fd >= 0)
		close(fd);
	if (got <= 0)
		return;
	n = final ? (size_t)got : ui_ansi_complete(buf, (size_t)got);
	if (!n)
		return;
	tail_put(t, ui_sse_event(buf, n, t->offset + n));
	t->offset += n;
}

static ssize_t
tail_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct tail *t = cls;
	enum job_status st;

	(void)pos;
	for (;;) {
		if (t->out_off < t->out_len) {
			size_t n = t->out_len - t->out_off < max ? t->out_len - t->out_off : max;
			memcpy(buf, t->out + t->out_off, n);
			t->out_off += n;
			return (ssize_t)n;
		}
		if (t->ended || t->s->stopping)
			return MHD_CONTENT_READER_END_OF_STREAM;
		tail_read(t, 0);
		if (t->out_off < t->out_len) {
			t->idle_ms = 0;
			continue;
		}
		/* Idle: is the job over? Its whole log was written before it ended. */
		if (t->idle_ms % 500 == 0 && tail_done(t, &st)) {
			tail_read(t, 1);
			if (t->out_off >= t->out_len) {
				tail_put(t, ui_sse_end(st));
				t->ended = 1;
			}
			continue;
		}
		usleep(50 * 1000);
		/* A comment now and then keeps proxies from closing an idle stream. */
		if ((t->idle_ms += 50) >= 15000) {
			t->idle_ms = 0;
			tail_put(t, kci_xstrdup(UI_SSE_KEEPALIVE));
		}
	}
}

static void
tail_free(void *cls)
{
	struct tail *t = cls;

	free(t->path);
	free(t->file_name);
	free(t->out);
	free(t);
}

/* The stream resumes where the browser's last event ended (Last-Event-ID), else at ?offset=. */
static struct MHD_Response *
events_response(struct server *s, struct MHD_Connection *c, const struct build_row *b,
		const struct job_row *j)
{
	const char *from = header(c, "Last-Event-ID");
	struct tail *t = kci_xcalloc(1, sizeof(*t));
	struct MHD_Response *r;

	if (!from)
		from = query(c, "offset");
	t->s = s;
	t->build = b->id;
	t->path = store_log_path(s->store, b->id, j->file_name);
	t->file_name = kci_xstrdup(j->file_name);
	t->offset = from ? strtoull(from, NULL, 10) : 0;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, tail_reader, t, tail_free);
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	return r;
}

static void
route_api_builds(struct server *s, struct MHD_Connection *c, const char *method, const char *rest,
		 struct answer *a, struct MHD_Response **stream)
{
	struct kci_err err = KCI_ERR_INIT;
	struct build_row b = { 0 }, *list = NULL;
	const char *suffix;
	size_t n = 0, len;
	int job;

	if (!*rest) {
		if (store_builds_list(s->store, BUILDS_LISTED_MAX, &list, &n, &err) < 0) {
			answer_text(a, 500, "%s", err.msg);
			return;
		}
		answer_set(a, 200, "application/json", builds_list_json(list, n));
		for (size_t i = 0; i < n; i++)
			build_row_clear(&list[i]);
		free(list);
		return;
	}
	if (resolve(s, rest, &b, &job, &suffix, a) < 0)
		goto out;
	if (!strcmp(method, "POST") &&
	    (!strcmp(suffix, "/cancel") || !strcmp(suffix, "/restart"))) {
		int64_t id = b.id;
		if (!bearer_ok(c, s->cfg->admin_token)) {
			answer_text(a, s->cfg->admin_token ? 401 : 403,
				    "cancel and restart need the admin token (admin_token_file)");
		} else if (!strcmp(suffix, "/cancel")) {
			if (store_build_cancel(s->store, b.id, &err) < 0)
				answer_text(a, 409, "%s", err.msg);
			else
				answer_text(a, 200, "build %lld canceled", (long long)id);
			server_log(s, "build %lld canceled by the API", (long long)id);
			builds_report(s, id);
		} else if (store_build_restart(s->store, b.id, &id, &err) < 0) {
			answer_text(a, 409, "%s", err.msg);
		} else {
			server_log(s, "build %lld restarts build %lld", (long long)id,
				   (long long)b.id);
			answer_set(a, 201, "application/json",
				   kci_xasprintf("{\"build\":%lld}", (long long)id));
			builds_report(s, id);
			server_kick(s);
		}
		goto out;
	}
	if (strcmp(method, "GET") != 0) {
		answer_text(a, 405, "use GET");
		a->allow = "GET";
		goto out;
	}
	if (job < 0 && !*suffix)
		answer_set(a, 200, "application/json", builds_json(&b));
	else if (job >= 0 && !strcmp(suffix, "/log"))
		answer_set(a, 200, "text/plain; charset=utf-8",
			   read_log(s, &b, &b.jobs[job], &len));
	else if (job >= 0 && !strcmp(suffix, "/events"))
		*stream = events_response(s, c, &b, &b.jobs[job]);
	else
		answer_text(a, 404, "no such resource");
out:
	build_row_clear(&b);
}

static void
route_ui(struct server *s, const char *url, struct answer *a)
{
	struct kci_err err = KCI_ERR_INIT;
	struct build_row b = { 0 }, *list = NULL;
	const char *suffix;
	size_t n = 0, len;
	int job;

	if (!strcmp(url, "/")) {
		if (store_builds_list(s->store, BUILDS_LISTED_MAX, &list, &n, &err) < 0) {
			answer_text(a, 500, "%s", err.msg);
			return;
		}
		answer_set(a, 200, "text/html; charset=utf-8", ui_builds_page(list, n));
		for (size_t i = 0; i < n; i++)
			build_row_clear(&list[i]);
		free(list);
		return;
	}
	if (resolve(s, url + strlen("/builds/"), &b, &job, &suffix, a) < 0)
		return;
	if (job < 0 && !*suffix) {
		answer_set(a, 200, "text/html; charset=utf-8", ui_build_page(&b));
	} else if (job >= 0 && !*suffix) {
		char *log = read_log(s, &b, &b.jobs[job], &len);
		answer_set(a, 200, "text/html; charset=utf-8",
			   ui_job_page(&b, &b.jobs[job], log, len, job_live(&b.jobs[job])));
		free(log);
	} else {
		answer_text(a, 404, "no such page");
	}
	build_row_clear(&b);
}

/* ---- the agents' API ---- */

static json_object *
parse_json(const struct request *r)
{
	struct json_tokener *tok = json_tokener_new_ex(8);
	json_object *o = r->len ? json_tokener_parse_ex(tok, r->body, (int)r->len) : NULL;

	if (o && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static void
agent_register(struct server *s, const struct request *r, struct answer *a)
{
	struct kci_err err = KCI_ERR_INIT;
	json_object *o = parse_json(r);
	const char *name = o ? jfield_str(o, "name") : NULL;
	int64_t cap = o ? jfield_int(o, "capacity") : -1, id;

	if (!name || strlen(name) > 128 || cap < 1 || cap > 256) {
		answer_text(a, 400, "register with {\"name\": ..., \"capacity\": 1..256}");
	} else if (store_agent_register(s->store, name, (unsigned)cap, &id, &err) < 0) {
		answer_text(a, 500, "%s", err.msg);
	} else {
		server_log(s, "agent %lld (%s) registered, capacity %lld", (long long)id, name,
			   (long long)cap);
		answer_set(a, 201, "application/json",
			   kci_xasprintf("{\"agent\":%lld}", (long long)id));
	}
	json_object_put(o);
}

/* The lease as the agent needs it: where the code is, which job, its granted secrets. */
static char *
lease_json(struct server *s, const struct lease *l)
{
	struct kci_err err = KCI_ERR_INIT;
	struct build_row b = { 0 };
	const struct repo_conf *rc;
	json_object *o, *secrets;
	const struct job_row *j = NULL;

	if (store_build_get(s->store, l->build_id, &b, &err) < 0)
		return NULL;
	for (size_t i = 0; i < b.n_jobs; i++)
		if (b.jobs[i].id == l->job_id)
			j = &b.jobs[i];
	rc = NULL;
	for (size_t i = 0; i < s->cfg->n_repos; i++)
		if (!strcmp(s->cfg->repos[i].name, b.repo))
			rc = &s->cfg->repos[i];
	if (!j || !rc) {
		build_row_clear(&b);
		return NULL;
	}
	o = json_object_new_object();
	json_object_object_add(o, "lease", json_object_new_int64(l->id));
	json_object_object_add(o, "epoch", json_object_new_int64(l->epoch));
	json_object_object_add(o, "ttl_ms", json_object_new_int64(s->cfg->lease_ttl_ms));
	json_object_object_add(o, "build", json_object_new_int64(b.id));
	json_object_object_add(o, "job", json_object_new_string(j->name));
	json_object_object_add(o, "attempt", json_object_new_int(j->attempt));
	json_object_object_add(o, "repo", json_object_new_string(b.repo));
	json_object_object_add(o, "ref", json_object_new_string(b.ref));
	json_object_object_add(o, "commit", json_object_new_string(b.commit));
	json_object_object_add(o, "clone_url", json_object_new_string(b.clone_url));
	json_object_object_add(o, "trusted", json_object_new_boolean(b.trusted));
	/* A new attempt's log goes on after what earlier attempts wrote. */
	char *path = store_log_path(s->store, b.id, j->file_name);
	struct stat st;
	json_object_object_add(
		o, "log_offset",
		json_object_new_int64(path && stat(path, &st) == 0 ? st.st_size : 0));
	free(path);
	if (rc->clone_token)
		json_object_object_add(o, "clone_token", json_object_new_string(rc->clone_token));
	/* Only the secrets this job names, and none for a fork's pull request. */
	secrets = json_object_new_array();
	for (size_t k = 0; b.trusted && j->secrets && j->secrets[k]; k++) {
		size_t n = strlen(j->secrets[k]);
		for (size_t g = 0; rc->secrets && rc->secrets[g]; g++)
			if (!strncmp(rc->secrets[g], j->secrets[k], n) && rc->secrets[g][n] == '=')
				json_object_array_add(secrets,
						      json_object_new_string(rc->secrets[g]));
	}
	json_object_object_add(o, "secrets", secrets);
	build_row_clear(&b);
	char *text = kci_xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

/* Long poll: a job within LEASE_POLL_MS, or 204. */
static void
agent_lease(struct server *s, int64_t agent, struct answer *a)
{
	struct kci_err err = KCI_ERR_INIT;
	struct lease l;
	int64_t deadline = server_now_ms() + LEASE_POLL_MS;
	int got = 0;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		if (store_lease_next(s->store, agent, s->cfg->lease_ttl_ms, &l, &got, &err) < 0) {
			pthread_mutex_unlock(&s->lock);
			answer_text(a, 500, "%s", err.msg);
			return;
		}
		if (got || server_now_ms() >= deadline)
			break;
		struct timespec ts;
		int64_t wake = server_now_ms() + 1000;
		ts.tv_sec = wake / 1000;
		ts.tv_nsec = (wake % 1000) * 1000000;
		pthread_cond_timedwait(&s->work, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	if (!got) {
		answer_set(a, 204, "text/plain", NULL);
		return;
	}
	char *body = lease_json(s, &l);
	if (!body) {
		(void)store_lease_finish(s->store, l.id, l.epoch, J_ERROR, 0,
					 "the server could not describe the job", &err);
		answer_set(a, 204, "text/plain", NULL);
		return;
	}
	server_log(s, "build %lld: a job leased to agent %lld (lease %lld)", (long long)l.build_id,
		   (long long)agent, (long long)l.id);
	builds_report(s, l.build_id);
	answer_set(a, 200, "application/json", body);
}

/* A result an agent may report: how a job ended. */
static int
status_from(const char *name)
{
	int st = job_status_parse(name);

	return st == J_PASSED || st == J_FAILED || st == J_TIMEOUT || st == J_CANCELED ||
			       st == J_ERROR
		       ? st
		       : -1;
}

static void
lease_route(struct server *s, struct MHD_Connection *c, int64_t lease, const char *what,
	    const struct request *r, struct answer *a)
{
	struct kci_err err = KCI_ERR_INIT;
	const char *e = query(c, "epoch");
	int64_t epoch = e ? strtoll(e, NULL, 10) : -1, job;

	if (!strcmp(what, "/heartbeat")) {
		if (store_lease_renew(s->store, lease, epoch, s->cfg->lease_ttl_ms, &err) < 0)
			answer_text(a, 409, "%s", err.msg);
		else
			answer_text(a, 200, "ok");
		return;
	}
	if (!strcmp(what, "/log")) {
		struct job_row j = { 0 };
		const char *off = query(c, "offset");
		uint64_t size = 0;
		int64_t build = 0;

		/* Only the live lease's holder writes the job's log, and only in order. */
		if (!off)
			answer_text(a, 400, "offset= is missing");
		else if (store_lease_check(s->store, lease, epoch, &job, &err) < 0 ||
			 store_job_get(s->store, job, &j, &build, &err) < 0)
			answer_text(a, 409, "%s", err.msg);
		else if (store_log_append(s->store, build, j.file_name, strtoull(off, NULL, 10),
					  r->body, r->len, &size, &err) < 0)
			answer_text(a, 409, "%s", err.msg);
		else
			answer_set(a, 200, "application/json",
				   kci_xasprintf("{\"size\":%llu}", (unsigned long long)size));
		job_row_clear(&j);
		return;
	}
	if (!strcmp(what, "/finish")) {
		json_object *o = parse_json(r);
		int st = o ? status_from(jfield_str(o, "status")) : -1;
		int64_t ep = o ? jfield_int(o, "epoch") : -1,
			ms = o ? jfield_int(o, "duration_ms") : -1;
		int64_t boot = o ? jfield_int(o, "boot_ms") : -1;
		struct job_row j = { 0 };
		int64_t build = 0;

		if (st < 0 || ep < 0) {
			answer_text(a, 400, "finish with {\"epoch\", \"status\", \"duration_ms\"}");
		} else if (store_lease_check(s->store, lease, ep, &job, &err) < 0 ||
			   store_job_get(s->store, job, &j, &build, &err) < 0 ||
			   store_lease_finish(s->store, lease, ep, (enum job_status)st,
					      ms < 0 ? 0 : ms, jfield_str(o, "message"),
					      &err) < 0) {
			answer_text(a, 409, "%s", err.msg);
		} else {
			if (boot > 0) {
				pthread_mutex_lock(&s->lock);
				metrics_observe_boot(&s->metrics, (double)boot / 1000);
				pthread_mutex_unlock(&s->lock);
			}
			server_log(s, "build %lld: job %s %s", (long long)build, j.name,
				   job_status_name((enum job_status)st));
			answer_text(a, 200, "ok");
			builds_report(s, build);
			server_kick(s);
		}
		job_row_clear(&j);
		json_object_put(o);
		return;
	}
	if (!strcmp(what, "/release")) {
		if (store_lease_check(s->store, lease, epoch, &job, &err) < 0 ||
		    store_lease_release(s->store, lease, epoch, &err) < 0) {
			answer_text(a, 409, "%s", err.msg);
		} else {
			struct job_row j = { 0 };
			int64_t build = 0;
			if (store_job_get(s->store, job, &j, &build, &err) == 0)
				server_log(
					s,
					"build %lld: job %s handed back by its agent; queued again",
					(long long)build, j.name);
			job_row_clear(&j);
			answer_text(a, 200, "ok");
			server_kick(s);
		}
		return;
	}
	answer_text(a, 404, "no such lease action");
}

static void
route_agents(struct server *s, struct MHD_Connection *c, const char *url, const struct request *r,
	     struct answer *a)
{
	int64_t id;
	int n;

	if (!bearer_ok(c, s->cfg->agent_token)) {
		answer_text(a, 401, "agents authenticate with the agent token");
		return;
	}
	if (!strcmp(url, "/api/v1/agents")) {
		agent_register(s, r, a);
		return;
	}
	if (!strncmp(url, "/api/v1/agents/", 15) && (n = parse_id(url + 15, &id)) > 0 &&
	    !strcmp(url + 15 + n, "/lease")) {
		agent_lease(s, id, a);
		return;
	}
	if (!strncmp(url, "/api/v1/leases/", 15) && (n = parse_id(url + 15, &id)) > 0) {
		lease_route(s, c, id, url + 15 + n, r, a);
		return;
	}
	answer_text(a, 404, "no such agent resource");
}

/* ---- dispatch ---- */

static const char *
hook_header(void *ctx, const char *name)
{
	return header(ctx, name);
}

static void
route(struct server *s, struct MHD_Connection *c, const char *url, const char *method,
      const struct request *r, struct answer *a, struct MHD_Response **stream)
{
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");

	if (r->too_big) {
		answer_text(a, 413, "the body is larger than %zu bytes", r->max);
		if (!strncmp(url, "/hooks/", 7))
			count_delivery(s, DELIVERY_TOO_LARGE);
		return;
	}
	if (!strncmp(url, "/hooks/", 7)) {
		struct hook_req hr = { .header = hook_header,
				       .ctx = c,
				       .body = (const uint8_t *)r->body,
				       .len = r->len };
		if (!post) {
			answer_text(a, 405, "webhooks are POSTed");
			a->allow = "POST";
		} else if (!strcmp(url + 7, "github")) {
			hr.forge = FORGE_GITHUB;
			builds_hook(s, &hr, a);
		} else if (!strcmp(url + 7, "gitea")) {
			hr.forge = FORGE_GITEA;
			builds_hook(s, &hr, a);
		} else if (!strcmp(url + 7, "gitlab")) {
			hr.forge = FORGE_GITLAB;
			builds_hook(s, &hr, a);
		} else {
			answer_text(a, 404,
				    "webhooks go to /hooks/github, /hooks/gitea or /hooks/gitlab");
		}
		return;
	}
	if (!strncmp(url, "/api/v1/agents", 14) || !strncmp(url, "/api/v1/leases/", 15)) {
		if (!post) {
			answer_text(a, 405, "the agents' API takes POST");
			a->allow = "POST";
		} else {
			route_agents(s, c, url, r, a);
		}
		return;
	}
	if (!strcmp(url, "/api/v1/builds") || !strncmp(url, "/api/v1/builds/", 15)) {
		route_api_builds(s, c, method, url[14] ? url + 15 : "", a, stream);
		return;
	}
	if (!get) {
		answer_text(a, 405, "use GET");
		a->allow = "GET";
		return;
	}
	if (!strcmp(url, "/static/kci.css"))
		answer_set(a, 200, "text/css; charset=utf-8", kci_xstrdup(ui_css));
	else if (!strcmp(url, "/static/kci.js"))
		answer_set(a, 200, "text/javascript; charset=utf-8", kci_xstrdup(ui_js));
	else if (!strcmp(url, "/metrics"))
		answer_set(a, 200, "text/plain; version=0.0.4; charset=utf-8", server_metrics(s));
	else if (!strcmp(url, "/") || !strncmp(url, "/builds/", 8))
		route_ui(s, url, a);
	else
		answer_text(a, 404, "no such page");
}

static void
secure_headers(struct MHD_Response *r, const char *type)
{
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Content-Security-Policy", UI_CSP);
	if (type)
		MHD_add_response_header(r, "Content-Type", type);
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct http_server *h = cls;
	struct request *r = *con_cls;
	struct answer a = { .status = 500 };
	struct MHD_Response *resp = NULL;
	enum MHD_Result ret;

	(void)version;
	if (!r) {
		r = kci_xcalloc(1, sizeof(*r));
		r->max = body_limit(url);
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		/* Past the limit the rest is read and dropped; the answer is 413. */
		if (!r->too_big && r->len + *upload_size > r->max)
			r->too_big = 1;
		if (!r->too_big) {
			r->body = kci_xrealloc(r->body, r->len + *upload_size + 1);
			memcpy(r->body + r->len, upload, *upload_size);
			r->len += *upload_size;
			r->body[r->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	route(h->s, c, url, method, r, &a, &resp);
	if (!resp) {
		resp = MHD_create_response_from_buffer(a.len, a.body ? a.body : (char *)"",
						       a.body ? MHD_RESPMEM_MUST_FREE
							      : MHD_RESPMEM_PERSISTENT);
		a.body = NULL;
		secure_headers(resp, a.type);
		if (a.allow)
			MHD_add_response_header(resp, "Allow", a.allow);
	} else {
		secure_headers(resp, NULL);
		a.status = 200;
	}
	ret = MHD_queue_response(c, a.status, resp);
	MHD_destroy_response(resp);
	free(a.body);
	return ret;
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	struct request *r = *con_cls;

	(void)cls;
	(void)c;
	(void)t;
	if (r) {
		free(r->body);
		free(r);
	}
	*con_cls = NULL;
}

/* "host:port" → a sockaddr (IPv4 or IPv6 literal, or localhost). */
static int
listen_addr(const char *listen, struct sockaddr_storage *ss, struct kci_err *err)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	unsigned long port;
	char *end;

	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return kci_err_set(err, KCI_INVALID, "listen %s: expected HOST:PORT", listen);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (*end || !port || port > 65535)
		return kci_err_set(err, KCI_INVALID, "listen %s: bad port", listen);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char *h = host;
	if (h[0] == '[') {
		h++;
		h[strcspn(h, "]")] = '\0';
	}
	if (inet_pton(AF_INET, h, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
	} else {
		return kci_err_set(err, KCI_INVALID, "listen %s: the host must be an IP address",
				   listen);
	}
	return 0;
}

int
http_start(struct http_server **out, struct server *s, struct kci_err *err)
{
	struct http_server *h = kci_xcalloc(1, sizeof(*h));
	struct sockaddr_storage ss;
	unsigned flags =
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	int rc;

	if ((rc = listen_addr(s->cfg->listen, &ss, err)) < 0) {
		free(h);
		return rc;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (s->cfg->tls_cert)
		flags |= MHD_USE_TLS;
	h->s = s;
	/* Bounded: connections at all and per address, memory per connection, idle time. */
	if (s->cfg->tls_cert)
		h->d = MHD_start_daemon(
			flags, 0, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR, &ss,
			MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64u,
			MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
			(size_t)(128 << 10), MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			MHD_OPTION_HTTPS_MEM_CERT, s->cfg->tls_cert, MHD_OPTION_HTTPS_MEM_KEY,
			s->cfg->tls_key, MHD_OPTION_END);
	else
		h->d = MHD_start_daemon(
			flags, 0, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR, &ss,
			MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64u,
			MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
			(size_t)(128 << 10), MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			MHD_OPTION_END);
	if (!h->d) {
		free(h);
		return kci_err_set(err, KCI_ERROR, "cannot listen on %s (in use? a TLS problem?)",
				   s->cfg->listen);
	}
	*out = h;
	return 0;
}

void
http_stop(struct http_server *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
