/*
 * The server's store in SQLite (data/server.db, WAL): opening it, its schema and versions,
 * the statuses as stored, and the SQL helpers store.c and store_lease.c share. One connection
 * behind a mutex serves every thread; a change of more than one row is one transaction, so a
 * killed server leaves whole changes only.
 */
#include "server/store_db.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fs.h"
#include "common/strv.h"
#include "common/xalloc.h"

#define SCHEMA_VERSION 1
#define LOG_NAME_MAX   200

/* Statuses are stored by name (status.c), so the database does not depend on the enums' order. */

static const char schema_v1[] =
	"CREATE TABLE builds(id INTEGER PRIMARY KEY AUTOINCREMENT, repo TEXT NOT NULL,"
	" ref TEXT NOT NULL, sha TEXT NOT NULL, clone_url TEXT, event TEXT, status TEXT NOT NULL,"
	" trusted INTEGER NOT NULL, created INTEGER NOT NULL, started INTEGER NOT NULL DEFAULT 0,"
	" finished INTEGER NOT NULL DEFAULT 0, error TEXT);"
	"CREATE INDEX builds_ref ON builds(repo, ref, status);"
	"CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" build_id INTEGER NOT NULL REFERENCES builds(id), idx INTEGER NOT NULL,"
	" name TEXT NOT NULL, file_name TEXT NOT NULL, needs TEXT NOT NULL, secrets TEXT NOT NULL,"
	" status TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 1,"
	" epoch INTEGER NOT NULL DEFAULT 0, duration_ms INTEGER NOT NULL DEFAULT 0,"
	" started INTEGER NOT NULL DEFAULT 0, finished INTEGER NOT NULL DEFAULT 0, message TEXT,"
	" UNIQUE(build_id, idx));"
	"CREATE INDEX jobs_status ON jobs(status, build_id, idx);"
	"CREATE TABLE agents(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
	" capacity INTEGER NOT NULL, registered INTEGER NOT NULL, seen INTEGER NOT NULL);"
	"CREATE TABLE leases(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" job_id INTEGER NOT NULL REFERENCES jobs(id),"
	" agent_id INTEGER NOT NULL REFERENCES agents(id), epoch INTEGER NOT NULL,"
	" created INTEGER NOT NULL, expires INTEGER NOT NULL, ended INTEGER);"
	"CREATE INDEX leases_live ON leases(expires) WHERE ended IS NULL;"
	"CREATE INDEX leases_job ON leases(job_id);"
	"CREATE INDEX leases_agent ON leases(agent_id) WHERE ended IS NULL;"
	"CREATE TABLE deliveries(id TEXT PRIMARY KEY, build_id INTEGER REFERENCES builds(id),"
	" created INTEGER NOT NULL);";

/* migrations[v - 1] takes the schema from version v - 1 to v. */
static const char *const migrations[SCHEMA_VERSION] = { schema_v1 };

void
job_row_clear(struct job_row *j)
{
	if (!j)
		return;
	free(j->name);
	free(j->file_name);
	kci_strv_free(j->needs);
	kci_strv_free(j->secrets);
	free(j->message);
	memset(j, 0, sizeof(*j));
}

void
build_row_clear(struct build_row *b)
{
	if (!b)
		return;
	free(b->repo);
	free(b->ref);
	free(b->commit);
	free(b->clone_url);
	free(b->event);
	free(b->error);
	for (size_t i = 0; i < b->n_jobs; i++)
		job_row_clear(&b->jobs[i]);
	free(b->jobs);
	memset(b, 0, sizeof(*b));
}

static int64_t
realtime_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
store_set_clock(struct store *s, int64_t (*now)(void *ctx), void *ctx)
{
	s->clock = now ? now : realtime_ms;
	s->clock_ctx = now ? ctx : NULL;
}

int64_t
store_now(struct store *s)
{
	return s->clock(s->clock_ctx);
}

/* ---- SQL helpers; all called with s->mu held ---- */

int
store_db_fail(struct store *s, struct kci_err *err)
{
	return kci_err_set(err, KCI_ERROR, "%s: %s", s->db_path, sqlite3_errmsg(s->db));
}

/*
 * Prepares sql and binds its parameters as types says, one letter each: 'l' int64_t,
 * 'i' int, 's' const char * (NULL binds NULL).
 */
static int
sql_vprep(struct store *s, sqlite3_stmt **out, struct kci_err *err, const char *sql,
	  const char *types, va_list ap)
{
	sqlite3_stmt *st = NULL;
	const char *text;
	int rc = 0, r = SQLITE_OK;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = store_db_fail(s, err);
		goto out;
	}
	for (int i = 0; types[i] && r == SQLITE_OK; i++) {
		switch (types[i]) {
		case 'l':
			r = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 'i':
			r = sqlite3_bind_int(st, i + 1, va_arg(ap, int));
			break;
		default:
			text = va_arg(ap, const char *);
			r = text ? sqlite3_bind_text(st, i + 1, text, -1, SQLITE_TRANSIENT)
				 : sqlite3_bind_null(st, i + 1);
		}
	}
	if (r != SQLITE_OK) {
		rc = store_db_fail(s, err);
		goto out;
	}
	*out = st;
	st = NULL;
out:
	sqlite3_finalize(st);
	return rc;
}

int
store_sql_prep(struct store *s, sqlite3_stmt **out, struct kci_err *err, const char *sql,
	       const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = sql_vprep(s, out, err, sql, types, ap);
	va_end(ap);
	return rc;
}

int
store_sql_step(struct store *s, sqlite3_stmt *st, struct kci_err *err)
{
	int r = sqlite3_step(st);

	if (r == SQLITE_ROW)
		return 1;
	if (r == SQLITE_DONE)
		return 0;
	return store_db_fail(s, err);
}

int
store_sql_exec(struct store *s, struct kci_err *err, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = sql_vprep(s, &st, err, sql, types, ap);
	va_end(ap);
	if (rc == 0 && (rc = store_sql_step(s, st, err)) >= 0)
		rc = sqlite3_changes(s->db);
	sqlite3_finalize(st);
	return rc;
}

int
store_sql_int(struct store *s, int64_t *v, struct kci_err *err, const char *sql, const char *types,
	      ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = sql_vprep(s, &st, err, sql, types, ap);
	va_end(ap);
	if (rc == 0 && (rc = store_sql_step(s, st, err)) == 1)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc;
}

char *
store_col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? kci_xstrdup((const char *)t) : NULL;
}

int
store_tx_begin(struct store *s, const char *how, struct kci_err *err)
{
	return sqlite3_exec(s->db, how, NULL, NULL, NULL) == SQLITE_OK ? 0 : store_db_fail(s, err);
}

int
store_tx_end(struct store *s, int rc, struct kci_err *err)
{
	if (rc >= 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = store_db_fail(s, err);
	if (rc < 0 && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* ---- open and close ---- */

static int
schema_migrate(struct store *s, struct kci_err *err)
{
	int64_t version = 0;
	int rc;

	if ((rc = store_sql_int(s, &version, err, "PRAGMA user_version", "")) < 0)
		return rc;
	if (version > SCHEMA_VERSION)
		return kci_err_set(err, KCI_INVALID,
				   "%s: schema version %lld is newer than this kci's (%d)",
				   s->db_path, (long long)version, SCHEMA_VERSION);
	for (; version < SCHEMA_VERSION; version++) {
		char pragma[64];

		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%lld",
			 (long long)version + 1);
		if ((rc = store_tx_begin(s, "BEGIN IMMEDIATE", err)) < 0)
			return rc;
		if (sqlite3_exec(s->db, migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, pragma, NULL, NULL, NULL) != SQLITE_OK)
			rc = store_db_fail(s, err);
		if ((rc = store_tx_end(s, rc, err)) < 0)
			return rc;
	}
	return 0;
}

int
store_open(struct store **out, const char *dir, struct kci_err *err)
{
	struct store *s = kci_xcalloc(1, sizeof(*s));
	char *logs = NULL;
	int rc;

	pthread_mutex_init(&s->mu, NULL);
	s->dir = kci_xstrdup(dir);
	s->db_path = kci_xasprintf("%s/server.db", dir);
	s->clock = realtime_ms;
	logs = kci_xasprintf("%s/logs", dir);
	if ((rc = kci_mkdir_p(dir, 0700, err)) < 0 || (rc = kci_mkdir_p(logs, 0700, err)) < 0)
		goto fail;
	if (sqlite3_open_v2(s->db_path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		rc = s->db ? store_db_fail(s, err)
			   : kci_err_set(err, KCI_ERROR, "%s: cannot open", s->db_path);
		goto fail;
	}
	/* Set before journal_mode, which already needs the lock another process may hold. */
	sqlite3_busy_timeout(s->db, 5000);
	if (sqlite3_exec(s->db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 " PRAGMA foreign_keys=ON;",
			 NULL, NULL, NULL) != SQLITE_OK) {
		rc = store_db_fail(s, err);
		goto fail;
	}
	if ((rc = schema_migrate(s, err)) < 0)
		goto fail;
	*out = s;
	s = NULL;
	goto out;
fail:
	kci_err_prefix(err, "open the server's store");
out:
	store_close(s);
	free(logs);
	return rc;
}

void
store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close_v2(s->db);
	pthread_mutex_destroy(&s->mu);
	free(s->dir);
	free(s->db_path);
	free(s);
}

int
store_log_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n > 0 && n <= LOG_NAME_MAX && name[0] != '.' && !strchr(name, '/');
}
