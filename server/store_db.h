/* Private to server/store*.c: the store's one SQLite connection and the helpers they share. */
#ifndef KCI_SERVER_STORE_DB_H
#define KCI_SERVER_STORE_DB_H

#include <pthread.h>
#include <stdint.h>

#include "common/err.h"
#include "server/internal.h"

struct sqlite3;
struct sqlite3_stmt;

struct store {
	struct sqlite3 *db;
	pthread_mutex_t mu; /* held around every use of db, and for a whole transaction */
	char *dir;
	char *db_path;
	int64_t (*clock)(void *ctx);
	void *clock_ctx;
};

/* Now by the store's clock, in ms since the epoch. */
int64_t store_now(struct store *s);

/* A job's log name is one harmless path component: not empty, no '/', no leading '.'. */
int store_log_name_ok(const char *name);

/*
 * The SQL helpers, all called with s->mu held. Parameters are bound as `types` says, one
 * letter each: 'l' int64_t, 'i' int, 's' const char * (NULL binds NULL). Failures are
 * KCI_ERROR with SQLite's message.
 */
int store_db_fail(struct store *s, struct kci_err *err);
int store_sql_prep(struct store *s, struct sqlite3_stmt **out, struct kci_err *err, const char *sql,
		   const char *types, ...);
/* 1 with a row, 0 when done. */
int store_sql_step(struct store *s, struct sqlite3_stmt *st, struct kci_err *err);
/* Runs a statement that returns no rows; returns how many rows it changed. */
int store_sql_exec(struct store *s, struct kci_err *err, const char *sql, const char *types, ...);
/* The first column of the first row in *v: 1, or 0 (*v untouched) without a row. */
int store_sql_int(struct store *s, int64_t *v, struct kci_err *err, const char *sql,
		  const char *types, ...);
/* Column i as a malloc'd string, or NULL for SQL NULL. */
char *store_col_str(struct sqlite3_stmt *st, int i);
/* how: "BEGIN IMMEDIATE" for a change, "BEGIN" for consistent reads. */
int store_tx_begin(struct store *s, const char *how, struct kci_err *err);
/* Commits when rc >= 0, else rolls back; returns rc, or the commit's failure. */
int store_tx_end(struct store *s, int rc, struct kci_err *err);

/*
 * After a job of build id changed: WAITING jobs become QUEUED or SKIPPED as their needs
 * ended, and the build's status follows (store.c). Inside a transaction.
 */
int store_build_settle(struct store *s, int64_t id, int64_t now, struct kci_err *err);

#endif
