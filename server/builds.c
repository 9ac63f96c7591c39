/*
 * Builds from webhooks: a delivery is verified before anything is done with
 * it, a replayed delivery creates nothing, and a push becomes a build whose
 * jobs are the pipeline of the pushed commit, read from the server's clone of
 * the repository. A newer push to the same ref cancels the older build.
 */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/strv.h"
#include "common/xalloc.h"
#include "engine/engine.h"
#include "jobs/jobs.h"
#include "server/core.h"

void
answer_set(struct answer *a, unsigned status, const char *type, char *body)
{
	free(a->body);
	a->status = status;
	a->type = type;
	a->body = body;
	a->len = body ? strlen(body) : 0;
}

void
answer_text(struct answer *a, unsigned status, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	answer_set(a, status, "text/plain; charset=utf-8",
		   text ? kci_xasprintf("%s\n", text) : NULL);
	free(text);
}

/* "2026-11-29T19:54:36Z" */
static void
iso_time(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!ms || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "%s", "");
}

static json_object *
build_object(const struct build_row *b, int with_jobs)
{
	json_object *o = json_object_new_object(), *jobs;
	char created[32], finished[32];

	iso_time(b->created, created, sizeof(created));
	iso_time(b->finished, finished, sizeof(finished));
	json_object_object_add(o, "id", json_object_new_int64(b->id));
	json_object_object_add(o, "repo", json_object_new_string(b->repo));
	json_object_object_add(o, "ref", json_object_new_string(b->ref));
	json_object_object_add(o, "commit", json_object_new_string(b->commit));
	json_object_object_add(o, "status", json_object_new_string(build_status_name(b->status)));
	json_object_object_add(o, "created", json_object_new_string(created));
	json_object_object_add(o, "finished",
			       finished[0] ? json_object_new_string(finished) : NULL);
	json_object_object_add(o, "trusted", json_object_new_boolean(b->trusted));
	if (b->error)
		json_object_object_add(o, "error", json_object_new_string(b->error));
	jobs = json_object_new_array();
	for (size_t i = 0; i < b->n_jobs; i++) {
		const struct job_row *j = &b->jobs[i];
		json_object *jo = json_object_new_object();

		json_object_object_add(jo, "name", json_object_new_string(j->name));
		json_object_object_add(jo, "status",
				       json_object_new_string(job_status_name(j->status)));
		json_object_object_add(jo, "duration_ms", json_object_new_int64(j->duration_ms));
		json_object_object_add(jo, "attempt", json_object_new_int(j->attempt));
		if (with_jobs && j->message)
			json_object_object_add(jo, "message", json_object_new_string(j->message));
		json_object_array_add(jobs, jo);
	}
	json_object_object_add(o, "jobs", jobs);
	return o;
}

static char *
json_string(json_object *o)
{
	char *s = kci_xstrdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

char *
builds_json(const struct build_row *b)
{
	return json_string(build_object(b, 1));
}

char *
builds_list_json(const struct build_row *b, size_t n)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, build_object(&b[i], 0));
	return json_string(arr);
}

/* The jobs of the pipeline at the pushed commit; on failure *why says why (the build errors). */
static void
plan(struct server *s, const struct repo_conf *rc, const struct hook *h, struct build_row *b,
     char **why)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_plan *p = NULL;
	char *mirror = kci_engine_mirror_dir(s->mirrors, rc->clone_url), *text = NULL, *shown;
	size_t len;

	shown = kci_xasprintf("%s@%.12s:" KCI_PIPELINE_FILE, rc->name, h->commit);
	if (kci_engine_mirror_sync(rc->clone_url, rc->clone_token, mirror, h->ref, h->commit,
				   &err) < 0 ||
	    kci_engine_mirror_read(mirror, h->commit, KCI_PIPELINE_FILE, KCI_PLAN_FILE_MAX, &text,
				   &len, &err) < 0 ||
	    kci_plan_parse(text, len, shown, &p, &err) < 0) {
		*why = kci_xstrdup(err.msg);
		goto out;
	}
	b->jobs = kci_xcalloc(p->n_jobs ? p->n_jobs : 1, sizeof(*b->jobs));
	for (size_t i = 0; i < p->n_jobs; i++) {
		struct job_row *j = &b->jobs[b->n_jobs++];
		size_t n = 0;

		j->name = kci_xstrdup(p->jobs[i].name);
		j->file_name = kci_xstrdup(p->jobs[i].file_name);
		for (size_t k = 0; p->jobs[i].needs && p->jobs[i].needs[k]; k++)
			kci_strv_add(&j->needs, &n, p->jobs[i].needs[k]);
		n = 0;
		for (size_t k = 0; p->jobs[i].secrets && p->jobs[i].secrets[k]; k++)
			kci_strv_add(&j->secrets, &n, p->jobs[i].secrets[k]);
	}
out:
	kci_plan_free(p);
	free(text);
	free(shown);
	free(mirror);
}

void
builds_report(struct server *s, int64_t id)
{
	struct kci_err err = KCI_ERR_INIT;
	struct build_row b = { 0 };

	if (store_build_get(s->store, id, &b, &err) < 0)
		return;
	if (b.status != B_QUEUED && b.status != B_RUNNING)
		server_log(s, "build %lld %s: %s %s at %.12s", (long long)b.id,
			   build_status_name(b.status), b.repo, b.ref, b.commit);
	statusq_push(s->statusq, &b);
	build_row_clear(&b);
}

/* The other builds of this ref still queued or running end: the newer push replaces them. */
static void
cancel_superseded(struct server *s, const struct repo_conf *rc, const struct hook *h, int64_t id)
{
	struct kci_err err = KCI_ERR_INIT;
	int64_t *ids = NULL;
	size_t n = 0;

	if (!rc->cancel_superseded ||
	    store_builds_active(s->store, h->repo, h->ref, id, &ids, &n, &err) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (ids[i] > id || store_build_cancel(s->store, ids[i], &err) < 0)
			continue;
		server_log(s, "build %lld canceled: superseded by build %lld", (long long)ids[i],
			   (long long)id);
		builds_report(s, ids[i]);
	}
	free(ids);
}

void
count_delivery(struct server *s, enum delivery_result result)
{
	pthread_mutex_lock(&s->lock);
	metrics_delivery(&s->metrics, result);
	pthread_mutex_unlock(&s->lock);
}

void
builds_hook(struct server *s, const struct hook_req *r, struct answer *a)
{
	static const char *const forges[] = { "github", "gitea", "gitlab" };
	struct kci_err err = KCI_ERR_INIT;
	struct build_row b = { 0 };
	struct hook h = { 0 };
	const struct repo_conf *rc;
	char *name = NULL, *why = NULL;
	int64_t id = 0;
	int unauthorized = 0, fresh = 1;

	if (hook_repo_name(r, &name, &err) < 0) {
		count_delivery(s, DELIVERY_MALFORMED);
		answer_text(a, 400, "%s", err.msg);
		goto out;
	}
	if (!(rc = config_repo(s->cfg, name, r->forge))) {
		count_delivery(s, DELIVERY_UNKNOWN_REPO);
		answer_text(a, 404, "no %s repository %s is configured", forges[r->forge], name);
		goto out;
	}
	if (hook_verify_parse(r, rc->secret, &h, &unauthorized, &err) < 0) {
		count_delivery(s, unauthorized ? DELIVERY_UNAUTHORIZED : DELIVERY_MALFORMED);
		server_log(s, "delivery for %s refused: %s", rc->name, err.msg);
		answer_text(a, unauthorized ? 401 : 400, "%s", err.msg);
		goto out;
	}
	if (h.kind == HOOK_PING) {
		count_delivery(s, DELIVERY_ACCEPTED);
		answer_text(a, 200, "pong");
		goto out;
	}
	if (h.kind == HOOK_IGNORED) {
		count_delivery(s, DELIVERY_IGNORED);
		server_log(s, "delivery for %s ignored: %s", rc->name, h.ignored);
		answer_text(a, 200, "ignored: %s", h.ignored);
		goto out;
	}
	if (h.delivery && (fresh = store_delivery_once(s->store, h.delivery, &id, &err)) < 0) {
		answer_text(a, 500, "%s", err.msg);
		goto out;
	}
	/* Seen, but its build was never made (the server died in between): make it now. */
	if (!fresh && id == 0)
		fresh = 1;
	if (!fresh) {
		count_delivery(s, DELIVERY_DUPLICATE);
		answer_set(a, 200, "application/json",
			   kci_xasprintf("{\"build\":%lld,\"duplicate\":true}", (long long)id));
		goto out;
	}
	b.repo = kci_xstrdup(rc->name);
	b.ref = kci_xstrdup(h.ref);
	b.commit = kci_xstrdup(h.commit);
	b.clone_url = kci_xstrdup(rc->clone_url);
	b.event = kci_xstrdup(h.kind == HOOK_PULL_REQUEST ? "pull_request" : "push");
	b.trusted = h.trusted;
	plan(s, rc, &h, &b, &why);
	b.error = why;
	why = NULL;
	if (store_build_add(s->store, &b, &id, &err) < 0) {
		answer_text(a, 500, "%s", err.msg);
		goto out;
	}
	if (h.delivery)
		(void)store_delivery_build(s->store, h.delivery, id, &err);
	count_delivery(s, DELIVERY_ACCEPTED);
	server_log(s, "build %lld: %s %s at %.12s, %zu jobs%s%s", (long long)id, rc->name, h.ref,
		   h.commit, b.n_jobs, b.error ? ", planning failed: " : "",
		   b.error ? b.error : "");
	cancel_superseded(s, rc, &h, id);
	builds_report(s, id);
	server_kick(s);
	answer_set(a, 201, "application/json", kci_xasprintf("{\"build\":%lld}", (long long)id));
out:
	build_row_clear(&b);
	hook_clear(&h);
	free(name);
	free(why);
}
