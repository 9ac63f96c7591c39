/*
 * Agents and the leases that hand them jobs. A lease is live until it is finished, canceled
 * or lapses; only the live lease whose epoch is the job's current one may renew it, report
 * its result or send its log, so an agent that lost its lease changes nothing.
 */
#include "server/store_db.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "common/xalloc.h"

/* Each registration is a new agent: one that restarts comes back under a new id. */
int
store_agent_register(struct store *s, const char *name, unsigned capacity, int64_t *id,
		     struct kci_err *err)
{
	int64_t now;
	int rc;

	if (!name || !name[0])
		return kci_err_set(err, KCI_INVALID, "an agent without a name");
	pthread_mutex_lock(&s->mu);
	now = store_now(s);
	rc = store_sql_exec(
		s, err, "INSERT INTO agents(name, capacity, registered, seen) VALUES(?, ?, ?, ?)",
		"slll", name, (int64_t)capacity, now, now);
	if (rc >= 0)
		*id = sqlite3_last_insert_rowid(s->db);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		return kci_err_prefix(err, "register agent %s", name);
	return 0;
}

/* Leases the first queued job to agent, or sets *got = 0. */
static int
lease_next_locked(struct store *s, int64_t agent, int64_t ttl_ms, struct lease *l, int *got,
		  struct kci_err *err)
{
	int64_t now = store_now(s), free_slots = 1;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = store_sql_exec(s, err, "UPDATE agents SET seen=? WHERE id=?", "ll", now, agent);
	if (rc == 0)
		rc = kci_err_set(err, KCI_NOTFOUND, "agent %lld is not registered",
				 (long long)agent);
	/* An agent holds at most its capacity (0: no limit) of leases that have not lapsed. */
	if (rc < 0 ||
	    (rc = store_sql_int(s, &free_slots, err,
				"SELECT capacity - (SELECT COUNT(*) FROM leases WHERE agent_id=?"
				" AND ended IS NULL AND expires>=?) FROM agents"
				" WHERE id=? AND capacity>0",
				"lll", agent, now, agent)) < 0 ||
	    free_slots <= 0)
		goto out;
	rc = store_sql_prep(s, &st, err,
			    "SELECT id, build_id FROM jobs WHERE status='queued'"
			    " ORDER BY build_id, idx LIMIT 1",
			    "");
	if (rc < 0 || (rc = store_sql_step(s, st, err)) <= 0)
		goto out;
	l->job_id = sqlite3_column_int64(st, 0);
	l->build_id = sqlite3_column_int64(st, 1);
	l->expires = now + ttl_ms;
	/* The job's epoch counts its leases: only the newest may speak for it. */
	if ((rc = store_sql_exec(s, err,
				 "UPDATE jobs SET status='running', epoch=epoch+1,"
				 " started=CASE WHEN started=0 THEN ? ELSE started END WHERE id=?",
				 "ll", now, l->job_id)) < 0 ||
	    (rc = store_sql_int(s, &l->epoch, err, "SELECT epoch FROM jobs WHERE id=?", "l",
				l->job_id)) < 0 ||
	    (rc = store_sql_exec(s, err,
				 "INSERT INTO leases(job_id, agent_id, epoch, created, expires)"
				 " VALUES(?, ?, ?, ?, ?)",
				 "lllll", l->job_id, agent, l->epoch, now, l->expires)) < 0)
		goto out;
	l->id = sqlite3_last_insert_rowid(s->db);
	if ((rc = store_build_settle(s, l->build_id, now, err)) < 0)
		goto out;
	*got = 1;
out:
	sqlite3_finalize(st);
	return rc < 0 ? rc : 0;
}

/*
 * KCI_NOTFOUND for an agent that never registered. An agent with a capacity gets nothing
 * while it holds that many leases that have not lapsed.
 */
int
store_lease_next(struct store *s, int64_t agent, int64_t ttl_ms, struct lease *out, int *got,
		 struct kci_err *err)
{
	struct lease l = { 0 };
	int rc, leased = 0;

	*got = 0;
	if (ttl_ms <= 0)
		return kci_err_set(err, KCI_INVALID, "a lease for %lld ms", (long long)ttl_ms);
	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN IMMEDIATE", err)) == 0)
		rc = store_tx_end(s, lease_next_locked(s, agent, ttl_ms, &l, &leased, err), err);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		return kci_err_prefix(err, "lease a job");
	if (leased)
		*out = l;
	*got = leased;
	return 0;
}

/* The lease's job and build when it is live, its epoch the job's current one, and not lapsed. */
static int
lease_live(struct store *s, int64_t lease, int64_t epoch, int64_t now, int64_t *job, int64_t *build,
	   struct kci_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = store_sql_prep(s, &st, err,
			    "SELECT l.job_id, j.build_id FROM leases l JOIN jobs j ON j.id=l.job_id"
			    " WHERE l.id=? AND l.epoch=? AND l.ended IS NULL AND l.expires>=?"
			    " AND j.status='running' AND j.epoch=l.epoch",
			    "lll", lease, epoch, now);
	if (rc == 0 && (rc = store_sql_step(s, st, err)) == 0)
		rc = kci_err_set(err, KCI_INVALID, "lease %lld is stale", (long long)lease);
	if (rc > 0) {
		*job = sqlite3_column_int64(st, 0);
		*build = sqlite3_column_int64(st, 1);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

static int
lease_renew_locked(struct store *s, int64_t lease, int64_t epoch, int64_t ttl_ms,
		   struct kci_err *err)
{
	int64_t now = store_now(s), job, build;
	int rc;

	if ((rc = lease_live(s, lease, epoch, now, &job, &build, err)) < 0 ||
	    (rc = store_sql_exec(s, err, "UPDATE leases SET expires=? WHERE id=?", "ll",
				 now + ttl_ms, lease)) < 0 ||
	    (rc = store_sql_exec(s, err,
				 "UPDATE agents SET seen=?"
				 " WHERE id=(SELECT agent_id FROM leases WHERE id=?)",
				 "ll", now, lease)) < 0)
		return rc;
	return 0;
}

int
store_lease_renew(struct store *s, int64_t lease, int64_t epoch, int64_t ttl_ms,
		  struct kci_err *err)
{
	int rc;

	if (ttl_ms <= 0)
		return kci_err_set(err, KCI_INVALID, "a lease for %lld ms", (long long)ttl_ms);
	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN IMMEDIATE", err)) == 0)
		rc = store_tx_end(s, lease_renew_locked(s, lease, epoch, ttl_ms, err), err);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int
lease_finish_locked(struct store *s, int64_t lease, int64_t epoch, enum job_status st,
		    int64_t duration_ms, const char *message, struct kci_err *err)
{
	int64_t now = store_now(s), job, build;
	int rc;

	if ((rc = lease_live(s, lease, epoch, now, &job, &build, err)) < 0 ||
	    (rc = store_sql_exec(s, err, "UPDATE leases SET ended=? WHERE id=?", "ll", now,
				 lease)) < 0 ||
	    (rc = store_sql_exec(s, err,
				 "UPDATE agents SET seen=?"
				 " WHERE id=(SELECT agent_id FROM leases WHERE id=?)",
				 "ll", now, lease)) < 0 ||
	    (rc = store_sql_exec(s, err,
				 "UPDATE jobs SET status=?, message=?, duration_ms=?, finished=?"
				 " WHERE id=?",
				 "sslll", job_status_name(st), message, duration_ms, now, job)) < 0)
		return rc;
	return store_build_settle(s, build, now, err);
}

int
store_lease_finish(struct store *s, int64_t lease, int64_t epoch, enum job_status st,
		   int64_t duration_ms, const char *message, struct kci_err *err)
{
	int rc;

	if (st != J_PASSED && st != J_FAILED && st != J_TIMEOUT && st != J_CANCELED &&
	    st != J_ERROR)
		return kci_err_set(err, KCI_INVALID, "lease %lld: a job cannot end %s",
				   (long long)lease, job_status_name(st));
	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN IMMEDIATE", err)) == 0)
		rc = store_tx_end(s,
				  lease_finish_locked(s, lease, epoch, st,
						      duration_ms < 0 ? 0 : duration_ms, message,
						      err),
				  err);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int
lease_release_locked(struct store *s, int64_t lease, int64_t epoch, struct kci_err *err)
{
	int64_t now = store_now(s), job, build;
	int rc;

	if ((rc = lease_live(s, lease, epoch, now, &job, &build, err)) < 0 ||
	    (rc = store_sql_exec(s, err, "UPDATE leases SET ended=? WHERE id=?", "ll", now,
				 lease)) < 0 ||
	    (rc = store_sql_exec(s, err, "UPDATE jobs SET status='queued' WHERE id=?", "l", job)) <
		    0)
		return rc;
	return store_build_settle(s, build, now, err);
}

int
store_lease_release(struct store *s, int64_t lease, int64_t epoch, struct kci_err *err)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN IMMEDIATE", err)) == 0)
		rc = store_tx_end(s, lease_release_locked(s, lease, epoch, err), err);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
store_lease_check(struct store *s, int64_t lease, int64_t epoch, int64_t *job, struct kci_err *err)
{
	int64_t build;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = lease_live(s, lease, epoch, store_now(s), job, &build, err);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

struct lapsed {
	int64_t lease, job, build, attempt;
	int current; /* the job is RUNNING under this lease */
};

static int
leases_lapsed(struct store *s, int64_t now, struct lapsed **out, size_t *n, struct kci_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = store_sql_prep(s, &st, err,
			    "SELECT l.id, l.job_id, j.build_id, j.attempt,"
			    " j.status='running' AND j.epoch=l.epoch"
			    " FROM leases l JOIN jobs j ON j.id=l.job_id"
			    " WHERE l.ended IS NULL AND l.expires<? ORDER BY l.id",
			    "l", now);
	while (rc >= 0 && (rc = store_sql_step(s, st, err)) == 1) {
		struct lapsed *l;

		*out = kci_xrealloc(*out, (*n + 1) * sizeof(**out));
		l = &(*out)[(*n)++];
		l->lease = sqlite3_column_int64(st, 0);
		l->job = sqlite3_column_int64(st, 1);
		l->build = sqlite3_column_int64(st, 2);
		l->attempt = sqlite3_column_int64(st, 3);
		l->current = sqlite3_column_int(st, 4);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc < 0 ? rc : 0;
}

static int
leases_expire_locked(struct store *s, int64_t now, int max_attempts, struct kci_err *err)
{
	struct lapsed *v = NULL;
	char *why = NULL;
	size_t n = 0;
	int rc, requeued = 0;

	if ((rc = leases_lapsed(s, now, &v, &n, err)) < 0)
		goto out;
	for (size_t i = 0; i < n && rc >= 0; i++) {
		rc = store_sql_exec(s, err, "UPDATE leases SET ended=? WHERE id=?", "ll", now,
				    v[i].lease);
		if (rc < 0 || !v[i].current)
			continue;
		if (v[i].attempt < max_attempts) {
			rc = store_sql_exec(s, err,
					    "UPDATE jobs SET status='queued', attempt=attempt+1"
					    " WHERE id=?",
					    "l", v[i].job);
			requeued++;
		} else {
			free(why);
			why = kci_xasprintf("its agent stopped answering (%lld attempts)",
					    (long long)v[i].attempt);
			rc = store_sql_exec(s, err,
					    "UPDATE jobs SET status='error', message=?, finished=?,"
					    " duration_ms=?-started WHERE id=?",
					    "slll", why, now, now, v[i].job);
		}
		if (rc >= 0)
			rc = store_build_settle(s, v[i].build, now, err);
	}
out:
	free(why);
	free(v);
	return rc < 0 ? rc : requeued;
}

int
store_leases_expire(struct store *s, int64_t now, int max_attempts, struct kci_err *err)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN IMMEDIATE", err)) == 0)
		rc = store_tx_end(
			s, leases_expire_locked(s, now, max_attempts < 1 ? 1 : max_attempts, err),
			err);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		kci_err_prefix(err, "expire leases");
	return rc;
}

static int
counts_locked(struct store *s, int64_t agent_seen_after, struct store_counts *c,
	      struct kci_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = store_sql_int(s, &c->agents, err, "SELECT COUNT(*) FROM agents WHERE seen>=?", "l",
			   agent_seen_after);
	if (rc >= 0)
		rc = store_sql_prep(s, &st, err,
				    "SELECT status, COUNT(*) FROM jobs GROUP BY status", "");
	while (rc >= 0 && (rc = store_sql_step(s, st, err)) == 1) {
		int js = job_status_parse((const char *)sqlite3_column_text(st, 0));

		if (js >= 0)
			c->jobs_by_status[js] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	c->queued = c->jobs_by_status[J_QUEUED];
	c->running = c->jobs_by_status[J_RUNNING];
	return rc < 0 ? rc : 0;
}

int
store_counts(struct store *s, int64_t agent_seen_after, struct store_counts *out,
	     struct kci_err *err)
{
	struct store_counts c = { 0 };
	int rc;

	pthread_mutex_lock(&s->mu);
	if ((rc = store_tx_begin(s, "BEGIN", err)) == 0)
		rc = store_tx_end(s, counts_locked(s, agent_seen_after, &c, err), err);
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		return kci_err_prefix(err, "count jobs");
	*out = c;
	return 0;
}
