/*
 * Deliveries, builds and their jobs in the server's store: a new build's jobs wait for their
 * needs, a job's end queues or skips its dependents, and the build's status follows its jobs.
 */
#include "server/store_db.h"

#include <json-c/json.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common/strv.h"
#include "common/xalloc.h"

/* ---- needs and secrets, stored as JSON arrays of strings ---- */

static char *
strv_json(char *const *v)
{
	struct json_object *a = json_object_new_array();
	char *text;

	for (size_t i = 0; v && v[i]; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	text = kci_xstrdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
	json_object_put(a);
	return text;
}

/* A NULL-terminated vector (never NULL itself), or NULL when text is not an array of strings. */
static char **
json_strv(const char *text)
{
	struct json_object *a = text ? json_tokener_parse(text) : NULL;
	char **v = kci_xcalloc(1, sizeof(*v));
	size_t n = 0;

	if (!a || !json_object_is_type(a, json_type_array))
		goto fail;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *e = json_object_array_get_idx(a, i);

		if (!json_object_is_type(e, json_type_string))
			goto fail;
		kci_strv_add(&v, &n, json_object_get_string(e));
	}
	json_object_put(a);
	return v;
fail:
	json_object_put(a);
	kci_strv_free(v);
	return NULL;
}

/* ---- deliveries ---- */

int
store_delivery_once(struct store *s, const char *delivery, int64_t *build, struct kci_err *err)
{
	int rc;

	if (!delivery || !delivery[0])
		return kci_err_set(err, KCI_INVALID, "a delivery without an id");
	*build = 0;
	pthread_mutex_lock(&s->mu);
	rc = store_sql_exec(s, err, "INSERT OR IGNORE INTO deliveries(id, created) VALUES(?, ?)",
			    "sl", delivery, store_now(s));
	/* Seen before: the build it made, if it got that far. */
	if (rc == 0 && (rc = store_sql_int(s, build, err,
					   "SELECT IFNULL(build_id, 0) FROM deliveries WHERE id=?",
					   "s", delivery)) > 0)
		rc = 0;
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		kci_err_prefix(err, "delivery %s", delivery);
	return rc;
}

int
store_delivery_build(struct store *s, const char *delivery, int64_t build, struct kci_err *err)
{
	int rc;

	if (!delivery || !delivery[0])
		return kci_err_set(err, KCI_INVALID, "a delivery without an id");
	pthread_mutex_lock(&s->mu);
	rc = store_sql_exec(s, err,
			    "INSERT INTO deliveries(id, build_id, created) VALUES(?, ?, ?)"
			    " ON CONFLICT(id) DO UPDATE SET build_id=excluded.build_id",
			    "sll", delivery, build, store_now(s));
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		return kci_err_prefix(err, "delivery %s: build %lld", delivery, (long long)build);
	return 0;
}

/* ---- builds and jobs ---- */

#define BUILD_COLS                                                                                 \
	"SELECT id, repo, ref, sha, clone_url, event, status, trusted, created, started,"          \
	" finished, error FROM builds"

static int
build_from_row(struct store *s, sqlite3_stmt *st, struct build_row *b, struct kci_err *err)
{
	int status = build_status_parse((const char *)sqlite3_column_text(st, 6));

	b->id = sqlite3_column_int64(st, 0);
	b->repo = store_col_str(st, 1);
	b->ref = store_col_str(st, 2);
	b->commit = store_col_str(st, 3);
	b->clone_url = store_col_str(st, 4);
	b->event = store_col_str(st, 5);
	b->trusted = sqlite3_column_int(st, 7);
	b->created = sqlite3_column_int64(st, 8);
	b->started = sqlite3_column_int64(st, 9);
	b->finished = sqlite3_column_int64(st, 10);
	b->error = store_col_str(st, 11);
	if (status < 0)
		return kci_err_set(err, KCI_ERROR, "%s: build %lld has an unknown status",
				   s->db_path, (long long)b->id);
	b->status = (enum build_status)status;
	return 0;
}

/* Fills b->jobs of the build b->id, in their pipeline order. */
static int
jobs_load(struct store *s, struct build_row *b, struct kci_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc, status;

	rc = store_sql_prep(s, &st, err,
			    "SELECT id, build_id, name, file_name, needs, secrets, status, attempt,"
			    " duration_ms, started, finished, message FROM jobs WHERE build_id=?"
			    " ORDER BY idx",
			    "l", b->id);
	while (rc >= 0 && (rc = store_sql_step(s, st, err)) == 1) {
		struct job_row *j;

		if (b->n_jobs == cap) {
			cap = cap ? 2 * cap : 8;
			b->jobs = kci_xrealloc(b->jobs, cap * sizeof(*b->jobs));
		}
		j = memset(&b->jobs[b->n_jobs++], 0, sizeof(*j));
		j->id = sqlite3_column_int64(st, 0);
		j->build_id = sqlite3_column_int64(st, 1);
		j->name = store_col_str(st, 2);
		j->file_name = store_col_str(st, 3);
		j->needs = json_strv((const char *)sqlite3_column_text(st, 4));
		j->secrets = json_strv((const char *)sqlite3_column_text(st, 5));
		status = job_status_parse((const char *)sqlite3_column_text(st, 6));
		j->attempt = sqlite3_column_int(st, 7);
		j->duration_ms = sqlite3_column_int64(st, 8);
		j->started = sqlite3_column_int64(st, 9);
		j->finished = sqlite3_column_int64(st, 10);
		j->message = store_col_str(st, 11);
		if (!j->needs || !j->secrets || status < 0)
			rc = kci_err_set(err, KCI_ERROR, "%s: job %lld is unreadable", s->db_path,
					 (long long)j->id);
		else
			j->status = (enum job_status)status;
	}
	sqlite3_finalize(st);
	return rc < 0 ? rc : 0;
}

static int
build_load(struct store *s, int64_t id, struct build_row *out, struct kci_err *err)
{
	struct build_row b = { 0 };
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = store_sql_prep(s, &st, err, BUILD_COLS " WHERE id=?", "l", id)) < 0)
		goto out;
	if ((rc = store_sql_step(s, st, err)) == 0)
		rc = kci_err_set(err, KCI_NOTFOUND, "build %lld does not exist", (long long)id);
	if (rc < 0 || (rc = build_from_row(s, st, &b, err)) < 0 || (rc = jobs_load(s, &b, err)) < 0)
		goto out;
	*out = b;
	memset(&b, 0, sizeof(b));
out:
	sqlite3_finalize(st);
	build_row_clear(&b);
	return rc;
}

int
store_job_get(struct store *s, int64_t id, struct job_row *out, int64_t *build, struct kci_err *err)
{
	struct build_row b = { 0 };
	int64_t build_id = 0;
	int rc;

	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN", err)) == 0) {
		if ((rc = store_sql_int(s, &build_id, err, "SELECT build_id FROM jobs WHERE id=?",
					"l", id)) == 0)
			rc = kci_err_set(err, KCI_NOTFOUND, "job %lld does not exist",
					 (long long)id);
		if (rc > 0)
			rc = build_load(s, build_id, &b, err);
		rc = store_tx_end(s, rc, err);
	}
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; rc == 0 && i < b.n_jobs; i++)
		if (b.jobs[i].id == id) {
			*out = b.jobs[i];
			memset(&b.jobs[i], 0, sizeof(b.jobs[i]));
			*build = build_id;
		}
	build_row_clear(&b);
	return rc;
}

static int
job_index(const struct build_row *b, const char *name)
{
	for (size_t i = 0; i < b->n_jobs; i++)
		if (strcmp(b->jobs[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Names present and unique, safe log names, needs that name other jobs, and no cycle. */
static int
jobs_check(const struct build_row *b, struct kci_err *err)
{
	unsigned char *done = kci_xcalloc(b->n_jobs + 1, 1);
	size_t n_done = 0, i;
	int rc = 0, progress = 1;

	for (i = 0; i < b->n_jobs && rc == 0; i++) {
		const struct job_row *j = &b->jobs[i];

		if (!j->name || !j->name[0] || !store_log_name_ok(j->file_name)) {
			rc = kci_err_set(err, KCI_INVALID,
					 "job %zu: a name and a log name are needed", i);
			break;
		}
		for (size_t k = 0; k < i && rc == 0; k++)
			if (strcmp(b->jobs[k].name, j->name) == 0 ||
			    strcmp(b->jobs[k].file_name, j->file_name) == 0)
				rc = kci_err_set(err, KCI_INVALID, "job %s: named twice", j->name);
		for (size_t k = 0; j->needs && j->needs[k] && rc == 0; k++)
			if (job_index(b, j->needs[k]) < 0 || strcmp(j->needs[k], j->name) == 0)
				rc = kci_err_set(err, KCI_INVALID,
						 "job %s: needs %s, not another job", j->name,
						 j->needs[k]);
	}
	/* Mark jobs whose needs are all marked until nothing changes: the rest form a cycle. */
	while (rc == 0 && progress) {
		progress = 0;
		for (i = 0; i < b->n_jobs; i++) {
			size_t k = 0;

			while (!done[i] && b->jobs[i].needs && b->jobs[i].needs[k] &&
			       done[job_index(b, b->jobs[i].needs[k])])
				k++;
			if (!done[i] && !(b->jobs[i].needs && b->jobs[i].needs[k])) {
				done[i] = 1;
				n_done++;
				progress = 1;
			}
		}
	}
	for (i = 0; rc == 0 && n_done < b->n_jobs && i < b->n_jobs; i++)
		if (!done[i])
			rc = kci_err_set(err, KCI_INVALID, "job %s: its needs form a cycle",
					 b->jobs[i].name);
	free(done);
	return rc;
}

static int
job_active(enum job_status st)
{
	return st == J_WAITING || st == J_QUEUED || st == J_RUNNING;
}

/*
 * WAITING jobs whose needs all passed become QUEUED; those with a need that ended
 * otherwise become SKIPPED, and so on down the chain until nothing changes.
 */
static void
jobs_resolve(struct build_row *b, int64_t now)
{
	static const char *const why[] = { [J_FAILED] = "did not pass",
					   [J_TIMEOUT] = "did not pass",
					   [J_ERROR] = "did not pass",
					   [J_SKIPPED] = "was skipped",
					   [J_CANCELED] = "was canceled" };
	int changed = 1;

	while (changed) {
		changed = 0;
		for (size_t i = 0; i < b->n_jobs; i++) {
			struct job_row *j = &b->jobs[i];
			int ready = 1;

			for (size_t k = 0; j->status == J_WAITING && j->needs && j->needs[k]; k++) {
				int n = job_index(b, j->needs[k]);
				enum job_status ns = n < 0 ? J_ERROR : b->jobs[n].status;

				if (job_active(ns)) {
					ready = 0;
				} else if (ns != J_PASSED) {
					j->status = J_SKIPPED;
					j->message = kci_xasprintf("needs %s, which %s",
								   j->needs[k], why[ns]);
					j->finished = now;
					changed = 1;
				}
			}
			if (j->status == J_WAITING && ready) {
				j->status = J_QUEUED;
				changed = 1;
			}
		}
	}
}

/* RUNNING once any job has left WAITING/QUEUED; PASSED or FAILED once none is active. */
static enum build_status
build_status_of(const struct build_row *b)
{
	int active = 0, left = b->started != 0, passed = 1;

	for (size_t i = 0; i < b->n_jobs; i++) {
		enum job_status st = b->jobs[i].status;

		active |= job_active(st);
		left |= st != J_WAITING && st != J_QUEUED;
		passed &= st == J_PASSED;
	}
	if (active)
		return left ? B_RUNNING : B_QUEUED;
	return passed ? B_PASSED : B_FAILED;
}

int
store_build_settle(struct store *s, int64_t id, int64_t now, struct kci_err *err)
{
	struct build_row b = { 0 };
	enum job_status *was = NULL;
	enum build_status st;
	int64_t started;
	int rc;

	if ((rc = build_load(s, id, &b, err)) < 0 ||
	    (b.status != B_QUEUED && b.status != B_RUNNING))
		goto out;
	was = kci_xcalloc(b.n_jobs + 1, sizeof(*was));
	for (size_t i = 0; i < b.n_jobs; i++)
		was[i] = b.jobs[i].status;
	jobs_resolve(&b, now);
	for (size_t i = 0; i < b.n_jobs && rc >= 0; i++)
		if (b.jobs[i].status != was[i])
			rc = store_sql_exec(
				s, err,
				"UPDATE jobs SET status=?, message=?, finished=? WHERE id=?",
				"ssll", job_status_name(b.jobs[i].status), b.jobs[i].message,
				b.jobs[i].finished, b.jobs[i].id);
	st = build_status_of(&b);
	started = b.started || st == B_QUEUED ? b.started : now;
	if (rc >= 0 && (st != b.status || started != b.started))
		rc = store_sql_exec(s, err,
				    "UPDATE builds SET status=?, started=?, finished=? WHERE id=?",
				    "slll", build_status_name(st), started,
				    st == B_PASSED || st == B_FAILED ? now : (int64_t)0, id);
out:
	free(was);
	build_row_clear(&b);
	return rc < 0 ? rc : 0;
}

/* Inserts b (its jobs' names, log names, needs and secrets; statuses anew) as a new build. */
static int
build_insert(struct store *s, const struct build_row *b, int64_t now, int64_t *id,
	     struct kci_err *err)
{
	int rc = 0;

	if (!b->repo || !b->ref || !b->commit)
		return kci_err_set(err, KCI_INVALID, "a build needs a repository, ref and commit");
	if (!b->error && (rc = jobs_check(b, err)) < 0)
		return rc;
	rc = store_sql_exec(s, err,
			    "INSERT INTO builds(repo, ref, sha, clone_url, event, status, trusted,"
			    " created, finished, error) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			    "ssssssills", b->repo, b->ref, b->commit, b->clone_url, b->event,
			    build_status_name(b->error ? B_ERROR : B_QUEUED), b->trusted ? 1 : 0,
			    now, b->error ? now : (int64_t)0, b->error);
	if (rc < 0)
		return rc;
	*id = sqlite3_last_insert_rowid(s->db);
	/* A build whose planning failed has no jobs to run. */
	for (size_t i = 0; !b->error && i < b->n_jobs && rc >= 0; i++) {
		const struct job_row *j = &b->jobs[i];
		int waits = j->needs && j->needs[0];
		char *needs = strv_json(j->needs), *secrets = strv_json(j->secrets);

		rc = store_sql_exec(
			s, err,
			"INSERT INTO jobs(build_id, idx, name, file_name, needs, secrets, status)"
			" VALUES(?, ?, ?, ?, ?, ?, ?)",
			"lisssss", *id, (int)i, j->name, j->file_name, needs, secrets,
			job_status_name(waits ? J_WAITING : J_QUEUED));
		free(needs);
		free(secrets);
	}
	if (rc >= 0 && !b->error)
		rc = store_build_settle(s, *id, now, err);
	return rc < 0 ? rc : 0;
}

/* A build with error set is stored as ERROR without jobs; KCI_INVALID for bad jobs or needs. */
int
store_build_add(struct store *s, const struct build_row *b, int64_t *id, struct kci_err *err)
{
	int64_t nid = 0;
	int rc;

	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN IMMEDIATE", err)) == 0)
		rc = store_tx_end(s, build_insert(s, b, store_now(s), &nid, err), err);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		return kci_err_prefix(err, "add a build of %s %s", b->repo ? b->repo : "?",
				      b->ref ? b->ref : "?");
	*id = nid;
	return 0;
}

int
store_build_get(struct store *s, int64_t id, struct build_row *out, struct kci_err *err)
{
	struct build_row b = { 0 };
	int rc;

	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN", err)) == 0)
		rc = store_tx_end(s, build_load(s, id, &b, err), err);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0) {
		build_row_clear(&b);
		return rc;
	}
	*out = b;
	return 0;
}

static int
builds_list_locked(struct store *s, size_t max, struct build_row **out, size_t *n,
		   struct kci_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	rc = store_sql_prep(s, &st, err, BUILD_COLS " ORDER BY id DESC LIMIT ?", "l",
			    (int64_t)(max > INT64_MAX ? INT64_MAX : max));
	while (rc >= 0 && (rc = store_sql_step(s, st, err)) == 1) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			*out = kci_xrealloc(*out, cap * sizeof(**out));
		}
		memset(&(*out)[*n], 0, sizeof(**out));
		rc = build_from_row(s, st, &(*out)[(*n)++], err);
	}
	for (size_t i = 0; rc >= 0 && i < *n; i++)
		rc = jobs_load(s, &(*out)[i], err);
	sqlite3_finalize(st);
	return rc < 0 ? rc : 0;
}

/* Caller frees each row with build_row_clear() and the array with free(). */
int
store_builds_list(struct store *s, size_t max, struct build_row **out, size_t *n,
		  struct kci_err *err)
{
	struct build_row *v = NULL;
	size_t nv = 0;
	int rc;

	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN", err)) == 0)
		rc = store_tx_end(s, builds_list_locked(s, max, &v, &nv, err), err);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0) {
		for (size_t i = 0; i < nv; i++)
			build_row_clear(&v[i]);
		free(v);
		return rc;
	}
	*out = v;
	*n = nv;
	return 0;
}

/* *ids is malloc'd (NULL when *n is 0); caller frees. */
int
store_builds_active(struct store *s, const char *repo, const char *ref, int64_t except,
		    int64_t **ids, size_t *n, struct kci_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t *v = NULL;
	size_t nv = 0;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = store_sql_prep(s, &st, err,
			    "SELECT id FROM builds WHERE repo=? AND ref=? AND id<>?"
			    " AND status IN ('queued', 'running') ORDER BY id",
			    "ssl", repo, ref, except);
	while (rc >= 0 && (rc = store_sql_step(s, st, err)) == 1) {
		v = kci_xrealloc(v, (nv + 1) * sizeof(*v));
		v[nv++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*ids = v;
	*n = nv;
	return 0;
}

static int
build_cancel_locked(struct store *s, int64_t id, int64_t now, struct kci_err *err)
{
	int64_t one;
	int rc;

	if ((rc = store_sql_int(s, &one, err, "SELECT 1 FROM builds WHERE id=?", "l", id)) == 0)
		return kci_err_set(err, KCI_NOTFOUND, "build %lld does not exist", (long long)id);
	if (rc < 0 ||
	    (rc = store_sql_exec(s, err,
				 "UPDATE leases SET ended=? WHERE ended IS NULL"
				 " AND job_id IN (SELECT id FROM jobs WHERE build_id=?)",
				 "ll", now, id)) < 0 ||
	    (rc = store_sql_exec(s, err,
				 "UPDATE jobs SET status='canceled', finished=?,"
				 " duration_ms=CASE WHEN status='running' THEN ?-started ELSE 0 END"
				 " WHERE build_id=? AND status IN ('waiting', 'queued', 'running')",
				 "lll", now, now, id)) < 0)
		return rc;
	/* A finished build stays as it ended. */
	rc = store_sql_exec(s, err,
			    "UPDATE builds SET status='canceled', finished=?"
			    " WHERE id=? AND status IN ('queued', 'running')",
			    "ll", now, id);
	return rc < 0 ? rc : 0;
}

/* A build that has finished already is left as it ended; KCI_NOTFOUND for an unknown id. */
int
store_build_cancel(struct store *s, int64_t id, struct kci_err *err)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN IMMEDIATE", err)) == 0)
		rc = store_tx_end(s, build_cancel_locked(s, id, store_now(s), err), err);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		kci_err_prefix(err, "cancel build %lld", (long long)id);
	return rc;
}

static int
build_restart_locked(struct store *s, int64_t id, int64_t *new_id, struct kci_err *err)
{
	struct build_row b = { 0 };
	int rc;

	if ((rc = build_load(s, id, &b, err)) < 0)
		goto out;
	if (b.error) {
		rc = kci_err_set(err, KCI_INVALID, "build %lld has no jobs: %s", (long long)id,
				 b.error);
		goto out;
	}
	rc = build_insert(s, &b, store_now(s), new_id, err);
out:
	build_row_clear(&b);
	return rc;
}

/* KCI_NOTFOUND for an unknown id, KCI_INVALID for a build whose planning failed (no jobs). */
int
store_build_restart(struct store *s, int64_t id, int64_t *new_id, struct kci_err *err)
{
	int64_t nid = 0;
	int rc;

	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN IMMEDIATE", err)) == 0)
		rc = store_tx_end(s, build_restart_locked(s, id, &nid, err), err);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		return kci_err_prefix(err, "restart build %lld", (long long)id);
	*new_id = nid;
	return 0;
}
