/*
 * Commit statuses: a build's state, posted to its forge (GitHub, Gitea,
 * GitLab) with a link to its page. A thread of its own posts them, retrying
 * with backoff, so a slow or failing forge never holds a build up; a newer
 * state of a build replaces an older one not yet posted.
 */
#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "server/core.h"

#define STATUS_ATTEMPTS 5

struct item {
	int64_t build;
	char *url, *auth, *body; /* what to POST, and the auth header */
	struct item *next;
};

struct statusq {
	struct server *s;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct item *head;
	int stop;
	pthread_t thread;
};

static void
item_free(struct item *it)
{
	if (!it)
		return;
	free(it->url);
	free(it->auth);
	free(it->body);
	free(it);
}

/* The forge's word for a build's state. */
static const char *
state_word(enum forge f, enum build_status st)
{
	switch (st) {
	case B_QUEUED:
		return "pending";
	case B_RUNNING:
		return f == FORGE_GITLAB ? "running" : "pending";
	case B_PASSED:
		return "success";
	case B_FAILED:
		return f == FORGE_GITLAB ? "failed" : "failure";
	case B_CANCELED:
		return f == FORGE_GITLAB ? "canceled" : "error";
	case B_ERROR:
		return f == FORGE_GITLAB ? "failed" : "error";
	}
	return "error";
}

static char *
escape_path(const char *s)
{
	CURL *h = curl_easy_init();
	char *e = h ? curl_easy_escape(h, s, 0) : NULL, *out = kci_xstrdup(e ? e : s);

	curl_free(e);
	if (h)
		curl_easy_cleanup(h);
	return out;
}

static struct item *
make_item(struct server *s, const struct build_row *b)
{
	const struct repo_conf *rc = NULL;
	struct item *it;
	json_object *o;
	char desc[128], *target;

	for (size_t i = 0; i < s->cfg->n_repos; i++)
		if (!strcmp(s->cfg->repos[i].name, b->repo))
			rc = &s->cfg->repos[i];
	if (!rc || !rc->status_token || !rc->api_url)
		return NULL;
	it = kci_xcalloc(1, sizeof(*it));
	it->build = b->id;
	snprintf(desc, sizeof(desc), "kci build %lld: %s", (long long)b->id,
		 build_status_name(b->status));
	target = kci_xasprintf("%s/builds/%lld", s->cfg->url ? s->cfg->url : "", (long long)b->id);
	o = json_object_new_object();
	json_object_object_add(o, "state",
			       json_object_new_string(state_word(rc->forge, b->status)));
	json_object_object_add(o, "target_url", json_object_new_string(target));
	json_object_object_add(o, "description", json_object_new_string(desc));
	json_object_object_add(o, rc->forge == FORGE_GITLAB ? "name" : "context",
			       json_object_new_string("kci"));
	it->body = kci_xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	free(target);
	switch (rc->forge) {
	case FORGE_GITHUB:
		it->url = kci_xasprintf("%s/repos/%s/statuses/%s", rc->api_url, b->repo, b->commit);
		it->auth = kci_xasprintf("Authorization: Bearer %s", rc->status_token);
		break;
	case FORGE_GITEA:
		it->url = kci_xasprintf("%s/api/v1/repos/%s/statuses/%s", rc->api_url, b->repo,
					b->commit);
		it->auth = kci_xasprintf("Authorization: token %s", rc->status_token);
		break;
	case FORGE_GITLAB: {
		char *project = escape_path(b->repo);
		it->url = kci_xasprintf("%s/api/v4/projects/%s/statuses/%s", rc->api_url, project,
					b->commit);
		it->auth = kci_xasprintf("PRIVATE-TOKEN: %s", rc->status_token);
		free(project);
		break;
	}
	}
	return it;
}

void
statusq_push(struct statusq *q, const struct build_row *b)
{
	struct item *it;

	if (!q || !(it = make_item(q->s, b)))
		return;
	pthread_mutex_lock(&q->lock);
	/* A newer state of the same build replaces one not posted yet. */
	for (struct item **pp = &q->head; *pp;) {
		if ((*pp)->build == it->build) {
			struct item *old = *pp;
			*pp = old->next;
			item_free(old);
		} else {
			pp = &(*pp)->next;
		}
	}
	struct item **tail = &q->head;
	while (*tail)
		tail = &(*tail)->next;
	*tail = it;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static size_t
discard(char *p, size_t size, size_t n, void *ctx)
{
	(void)p;
	(void)ctx;
	return size * n;
}

/* One POST; the HTTP status, or 0 when the request did not complete. */
static long
post(const struct item *it)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	long status = 0;

	if (!h)
		return 0;
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	hdrs = curl_slist_append(hdrs, "User-Agent: kci");
	hdrs = curl_slist_append(hdrs, it->auth);
	curl_easy_setopt(h, CURLOPT_URL, it->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, it->body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return status;
}

static void *
poster(void *arg)
{
	struct statusq *q = arg;

	for (;;) {
		pthread_mutex_lock(&q->lock);
		while (!q->head && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		struct item *it = q->head;
		if (it)
			q->head = it->next;
		int stop = q->stop;
		pthread_mutex_unlock(&q->lock);
		if (!it)
			return NULL;
		long status = 0;
		for (int attempt = 1; attempt <= STATUS_ATTEMPTS && !stop; attempt++) {
			status = post(it);
			/* 4xx other than 429 will not get better by asking again. */
			if ((status >= 200 && status < 300) ||
			    (status >= 400 && status < 500 && status != 429))
				break;
			for (int i = 0; i < (1 << attempt) * 5 && !q->stop; i++)
				usleep(100 * 1000);
		}
		if (status < 200 || status >= 300)
			server_log(q->s, "commit status for build %lld: %s answered %ld",
				   (long long)it->build, it->url, status);
		item_free(it);
		if (stop)
			return NULL;
	}
}

int
statusq_start(struct statusq **out, struct server *s, struct kci_err *err)
{
	struct statusq *q = kci_xcalloc(1, sizeof(*q));

	q->s = s;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	if (pthread_create(&q->thread, NULL, poster, q) != 0) {
		free(q);
		return kci_err_set(err, KCI_ERROR, "cannot start the status poster");
	}
	*out = q;
	return 0;
}

void
statusq_stop(struct statusq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = 1;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	while (q->head) {
		struct item *it = q->head;
		q->head = it->next;
		item_free(it);
	}
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
