/* Unit tests for the server's store (server/store*.c): jobs and needs, builds, leases, logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/fs.h"
#include "common/strv.h"
#include "common/xalloc.h"
#include "server/internal.h"

#define T0  1700000000000LL /* the fake clock's start, ms since the epoch */
#define TTL 30000

struct fx {
	char dir[64];
	struct store *s;
	int64_t now;
};

static int64_t
fake_clock(void *ctx)
{
	return *(int64_t *)ctx;
}

static void
fx_open(struct fx *f)
{
	struct kci_err err = KCI_ERR_INIT;
	char path[96];

	snprintf(path, sizeof(path), "%s/data", f->dir);
	assert_int_equal(store_open(&f->s, path, &err), 0);
	store_set_clock(f->s, fake_clock, &f->now);
}

static int
setup(void **state)
{
	struct fx *f = kci_xcalloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/kci-server-store.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->now = T0;
	fx_open(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rc;

	store_close(f->s);
	rc = kci_rm_rf(f->dir, NULL);
	free(f);
	return rc;
}

/*
 * A build of acme/widget from a spec of jobs "name[:need,need];...", e.g. "a;b:a": a, and
 * b needing a. Each job asks for the secret TOKEN.
 */
static int64_t
add_build(struct fx *f, const char *spec)
{
	struct kci_err err = KCI_ERR_INIT;
	struct build_row b = { 0 };
	char *copy = kci_xstrdup(spec), *save = NULL, *tok;
	int64_t id = 0;
	size_t cap = 0;

	b.repo = "acme/widget";
	b.ref = "refs/heads/main";
	b.commit = "0123456789abcdef0123456789abcdef01234567";
	b.clone_url = "https://forge.example/acme/widget.git";
	b.event = "push";
	b.trusted = 1;
	for (tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		struct job_row *j;
		char *needs = strchr(tok, ':'), *s2 = NULL, *n;
		size_t nn = 0, ns = 0;

		b.jobs = kci_xrealloc(b.jobs, ++cap * sizeof(*b.jobs));
		j = memset(&b.jobs[b.n_jobs++], 0, sizeof(*j));
		if (needs)
			*needs++ = '\0';
		j->name = kci_xstrdup(tok);
		j->file_name = kci_xstrdup(tok);
		for (n = needs ? strtok_r(needs, ",", &s2) : NULL; n; n = strtok_r(NULL, ",", &s2))
			kci_strv_add(&j->needs, &nn, n);
		kci_strv_add(&j->secrets, &ns, "TOKEN");
	}
	assert_int_equal(store_build_add(f->s, &b, &id, &err), 0);
	assert_true(id > 0);
	b.repo = b.ref = b.commit = b.clone_url = b.event = NULL;
	build_row_clear(&b);
	free(copy);
	return id;
}

static void
get_build(struct fx *f, int64_t id, struct build_row *b)
{
	struct kci_err err = KCI_ERR_INIT;

	assert_int_equal(store_build_get(f->s, id, b, &err), 0);
}

static const struct job_row *
job_of(const struct build_row *b, const char *name)
{
	for (size_t i = 0; i < b->n_jobs; i++)
		if (strcmp(b->jobs[i].name, name) == 0)
			return &b->jobs[i];
	fail_msg("no job %s", name);
	return NULL;
}

/* The status of build id's job name, and of the build. */
static enum job_status
job_status(struct fx *f, int64_t id, const char *name)
{
	struct build_row b = { 0 };
	enum job_status st;

	get_build(f, id, &b);
	st = job_of(&b, name)->status;
	build_row_clear(&b);
	return st;
}

static enum build_status
build_status(struct fx *f, int64_t id)
{
	struct build_row b = { 0 };
	enum build_status st;

	get_build(f, id, &b);
	st = b.status;
	build_row_clear(&b);
	return st;
}

static int64_t
add_agent(struct fx *f, unsigned capacity)
{
	struct kci_err err = KCI_ERR_INIT;
	int64_t id = 0;

	assert_int_equal(store_agent_register(f->s, "runner-1", capacity, &id, &err), 0);
	return id;
}

static struct lease
lease_one(struct fx *f, int64_t agent)
{
	struct kci_err err = KCI_ERR_INIT;
	struct lease l = { 0 };
	int got = 0;

	assert_int_equal(store_lease_next(f->s, agent, TTL, &l, &got, &err), 0);
	assert_int_equal(got, 1);
	return l;
}

static void
finish(struct fx *f, const struct lease *l, enum job_status st, const char *message)
{
	struct kci_err err = KCI_ERR_INIT;

	assert_int_equal(store_lease_finish(f->s, l->id, l->epoch, st, 1234, message, &err), 0);
}

static int
nothing_queued(struct fx *f, int64_t agent)
{
	struct kci_err err = KCI_ERR_INIT;
	struct lease l = { 0 };
	int got = -1;

	assert_int_equal(store_lease_next(f->s, agent, TTL, &l, &got, &err), 0);
	return got == 0;
}

static void
test_store__status_names(void **state)
{
	(void)state;
	assert_string_equal(build_status_name(B_QUEUED), "queued");
	assert_string_equal(build_status_name(B_ERROR), "error");
	assert_string_equal(job_status_name(J_WAITING), "waiting");
	assert_string_equal(job_status_name(J_TIMEOUT), "timeout");
	assert_string_equal(job_status_name(J_ERROR), "error");
	assert_string_equal(job_status_name((enum job_status)99), "unknown");
}

static void
test_store__open_makes_wal_db_and_refuses_newer_schema(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct store *s2 = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	char path[128];

	snprintf(path, sizeof(path), "%s/data", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/data/logs", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));

	snprintf(path, sizeof(path), "%s/data/server.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	snprintf(path, sizeof(path), "%s/data", f->dir);
	assert_int_equal(store_open(&s2, path, &err), KCI_INVALID);
	assert_null(s2);
	assert_non_null(strstr(err.msg, "schema version 99"));
}

static void
test_store__new_jobs_queue_or_wait_for_needs(void **state)
{
	struct fx *f = *state;
	struct build_row b = { 0 };
	int64_t id = add_build(f, "a;b:a;c;d:b,c");

	get_build(f, id, &b);
	assert_int_equal(b.id, id);
	assert_string_equal(b.repo, "acme/widget");
	assert_string_equal(b.ref, "refs/heads/main");
	assert_string_equal(b.commit, "0123456789abcdef0123456789abcdef01234567");
	assert_string_equal(b.clone_url, "https://forge.example/acme/widget.git");
	assert_string_equal(b.event, "push");
	assert_int_equal(b.trusted, 1);
	assert_int_equal(b.status, B_QUEUED);
	assert_int_equal(b.created, T0);
	assert_int_equal(b.started, 0);
	assert_null(b.error);
	assert_int_equal(b.n_jobs, 4);
	assert_string_equal(b.jobs[0].name, "a");
	assert_string_equal(b.jobs[3].name, "d");
	assert_int_equal(job_of(&b, "a")->status, J_QUEUED);
	assert_int_equal(job_of(&b, "b")->status, J_WAITING);
	assert_int_equal(job_of(&b, "c")->status, J_QUEUED);
	assert_int_equal(job_of(&b, "d")->status, J_WAITING);
	assert_string_equal(job_of(&b, "d")->needs[0], "b");
	assert_string_equal(job_of(&b, "d")->needs[1], "c");
	assert_null(job_of(&b, "d")->needs[2]);
	assert_null(job_of(&b, "a")->needs[0]);
	assert_string_equal(job_of(&b, "a")->secrets[0], "TOKEN");
	assert_string_equal(job_of(&b, "a")->file_name, "a");
	assert_int_equal(job_of(&b, "a")->attempt, 1);
	assert_int_equal(job_of(&b, "a")->build_id, id);
	assert_null(job_of(&b, "a")->message);
	build_row_clear(&b);
}

static void
test_store__bad_jobs_are_refused(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct job_row jobs[2] = { 0 };
	char *need_b[] = { "b", NULL }, *need_a[] = { "a", NULL }, *need_x[] = { "x", NULL };
	struct build_row b = { .repo = "r", .ref = "refs/heads/x", .commit = "c", .jobs = jobs };
	struct build_row *list = NULL;
	size_t n = 1;
	int64_t id = 0;

	jobs[0] = (struct job_row){ .name = "a", .file_name = "a", .needs = need_x };
	b.n_jobs = 1;
	assert_int_equal(store_build_add(f->s, &b, &id, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "needs x"));
	jobs[0].needs = need_a;
	assert_int_equal(store_build_add(f->s, &b, &id, &err), KCI_INVALID);

	jobs[0].needs = need_b;
	jobs[1] = (struct job_row){ .name = "b", .file_name = "b", .needs = need_a };
	b.n_jobs = 2;
	assert_int_equal(store_build_add(f->s, &b, &id, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "cycle"));

	jobs[0].needs = NULL;
	jobs[1].name = "a";
	assert_int_equal(store_build_add(f->s, &b, &id, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "twice"));

	jobs[1].name = "b";
	for (int i = 0; i < 4; i++) {
		const char *bad[] = { "../x", ".x", "a/b", "" };

		jobs[1].file_name = (char *)bad[i];
		assert_int_equal(store_build_add(f->s, &b, &id, &err), KCI_INVALID);
	}
	jobs[1].file_name = "b";
	b.commit = NULL;
	assert_int_equal(store_build_add(f->s, &b, &id, &err), KCI_INVALID);

	assert_int_equal(store_builds_list(f->s, 10, &list, &n, &err), 0);
	assert_int_equal(n, 0);
	free(list);
}

static void
test_store__failed_planning_is_an_error_build(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct job_row job = { .name = "a", .file_name = "a" };
	struct build_row b = { .repo = "r",
			       .ref = "refs/heads/x",
			       .commit = "c",
			       .error = "kci.yaml:3:1: unknown key",
			       .jobs = &job,
			       .n_jobs = 1 };
	struct build_row got = { 0 };
	int64_t id = 0, again = 0;

	assert_int_equal(store_build_add(f->s, &b, &id, &err), 0);
	get_build(f, id, &got);
	assert_int_equal(got.status, B_ERROR);
	assert_string_equal(got.error, "kci.yaml:3:1: unknown key");
	assert_int_equal(got.n_jobs, 0);
	assert_int_equal(got.finished, T0);
	build_row_clear(&got);
	assert_true(nothing_queued(f, add_agent(f, 0)));
	assert_int_equal(store_build_restart(f->s, id, &again, &err), KCI_INVALID);
}

static void
test_store__build_without_jobs_passes(void **state)
{
	struct fx *f = *state;
	int64_t id = add_build(f, "");

	assert_int_equal(build_status(f, id), B_PASSED);
}

static void
test_store__lease_next_is_fifo_by_build_then_job(void **state)
{
	struct fx *f = *state;
	int64_t b1 = add_build(f, "a;b:a;c"), b2 = add_build(f, "d"), agent = add_agent(f, 0);
	struct build_row b = { 0 };
	struct lease l;

	f->now = T0 + 10;
	l = lease_one(f, agent);
	assert_int_equal(l.build_id, b1);
	assert_int_equal(l.expires, T0 + 10 + TTL);
	assert_true(l.id > 0);
	assert_true(l.epoch > 0);
	get_build(f, b1, &b);
	assert_int_equal(l.job_id, job_of(&b, "a")->id);
	assert_int_equal(job_of(&b, "a")->status, J_RUNNING);
	assert_int_equal(job_of(&b, "a")->started, T0 + 10);
	assert_int_equal(job_of(&b, "a")->attempt, 1);
	assert_int_equal(b.status, B_RUNNING);
	assert_int_equal(b.started, T0 + 10);
	build_row_clear(&b);

	l = lease_one(f, agent); /* b waits for a: c is next */
	get_build(f, b1, &b);
	assert_int_equal(l.job_id, job_of(&b, "c")->id);
	build_row_clear(&b);
	l = lease_one(f, agent);
	assert_int_equal(l.build_id, b2);
	assert_int_equal(build_status(f, b2), B_RUNNING);
	assert_true(nothing_queued(f, agent));
}

static void
test_store__agents_are_known_and_held_to_capacity(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct lease l = { 0 };
	int64_t agent, any;
	int got = -1;

	add_build(f, "a;b;c");
	assert_int_equal(store_lease_next(f->s, 999, TTL, &l, &got, &err), KCI_NOTFOUND);
	assert_int_equal(got, 0);
	assert_int_equal(store_agent_register(f->s, "", 1, &agent, &err), KCI_INVALID);
	agent = add_agent(f, 1);
	l = lease_one(f, agent);
	assert_true(nothing_queued(f, agent));
	finish(f, &l, J_PASSED, NULL);
	l = lease_one(f, agent);
	any = add_agent(f, 0); /* no limit */
	lease_one(f, any);
}

static void
test_store__passed_needs_queue_their_dependents(void **state)
{
	struct fx *f = *state;
	int64_t id = add_build(f, "a;b;c:a,b"), agent = add_agent(f, 0);
	struct build_row b = { 0 };
	struct lease la = lease_one(f, agent), lb = lease_one(f, agent), lc;

	f->now = T0 + 5000;
	finish(f, &la, J_PASSED, NULL);
	assert_int_equal(job_status(f, id, "c"), J_WAITING);
	assert_int_equal(build_status(f, id), B_RUNNING);
	finish(f, &lb, J_PASSED, NULL);
	assert_int_equal(job_status(f, id, "c"), J_QUEUED);
	assert_int_equal(build_status(f, id), B_RUNNING);
	lc = lease_one(f, agent);
	f->now = T0 + 9000;
	finish(f, &lc, J_PASSED, "ok");

	get_build(f, id, &b);
	assert_int_equal(b.status, B_PASSED);
	assert_int_equal(b.started, T0);
	assert_int_equal(b.finished, T0 + 9000);
	assert_int_equal(job_of(&b, "a")->finished, T0 + 5000);
	assert_int_equal(job_of(&b, "a")->duration_ms, 1234);
	assert_string_equal(job_of(&b, "c")->message, "ok");
	build_row_clear(&b);
}

static void
test_store__failed_needs_skip_dependents_transitively(void **state)
{
	struct fx *f = *state;
	int64_t id = add_build(f, "a;b:a;c:b;d;e:d"), agent = add_agent(f, 0);
	struct lease la = lease_one(f, agent), ld = lease_one(f, agent);
	struct build_row b = { 0 };

	finish(f, &la, J_FAILED, "exit status 1");
	get_build(f, id, &b);
	assert_int_equal(job_of(&b, "a")->status, J_FAILED);
	assert_string_equal(job_of(&b, "a")->message, "exit status 1");
	assert_int_equal(job_of(&b, "b")->status, J_SKIPPED);
	assert_string_equal(job_of(&b, "b")->message, "needs a, which did not pass");
	assert_int_equal(job_of(&b, "c")->status, J_SKIPPED);
	assert_string_equal(job_of(&b, "c")->message, "needs b, which was skipped");
	assert_int_equal(job_of(&b, "e")->status, J_WAITING);
	assert_int_equal(b.status, B_RUNNING); /* d is still running */
	build_row_clear(&b);

	finish(f, &ld, J_CANCELED, NULL);
	get_build(f, id, &b);
	assert_int_equal(job_of(&b, "e")->status, J_SKIPPED);
	assert_string_equal(job_of(&b, "e")->message, "needs d, which was canceled");
	assert_int_equal(b.status, B_FAILED);
	assert_int_equal(b.finished, T0);
	build_row_clear(&b);
	assert_true(nothing_queued(f, agent));
}

static void
test_store__timeout_fails_the_build(void **state)
{
	struct fx *f = *state;
	int64_t id = add_build(f, "a;b:a"), agent = add_agent(f, 0);
	struct lease l = lease_one(f, agent);
	struct build_row b = { 0 };

	finish(f, &l, J_TIMEOUT, "timed out after 10m");
	get_build(f, id, &b);
	assert_string_equal(job_of(&b, "b")->message, "needs a, which did not pass");
	assert_int_equal(b.status, B_FAILED);
	build_row_clear(&b);
}

static void
test_store__renew_extends_and_stale_leases_are_refused(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	int64_t id = add_build(f, "a"), agent = add_agent(f, 0), job = 0;
	struct lease l = lease_one(f, agent);
	char want[64];

	f->now = T0 + TTL - 1;
	assert_int_equal(store_lease_renew(f->s, l.id, l.epoch, TTL, &err), 0);
	f->now = T0 + 2 * TTL - 1; /* past the first expiry, at the renewed one: inclusive */
	assert_int_equal(store_lease_check(f->s, l.id, l.epoch, &job, &err), 0);
	assert_int_equal(job, l.job_id);

	assert_int_equal(store_lease_check(f->s, l.id, l.epoch + 1, &job, &err), KCI_INVALID);
	snprintf(want, sizeof(want), "lease %lld is stale", (long long)l.id);
	assert_string_equal(err.msg, want);
	assert_int_equal(store_lease_renew(f->s, l.id + 100, l.epoch, TTL, &err), KCI_INVALID);
	assert_int_equal(store_lease_renew(f->s, l.id, l.epoch, 0, &err), KCI_INVALID);

	f->now = T0 + 2 * TTL;
	assert_int_equal(store_lease_check(f->s, l.id, l.epoch, &job, &err), KCI_INVALID);
	assert_int_equal(store_lease_renew(f->s, l.id, l.epoch, TTL, &err), KCI_INVALID);
	assert_int_equal(store_lease_finish(f->s, l.id, l.epoch, J_PASSED, 1, NULL, &err),
			 KCI_INVALID);
	assert_int_equal(job_status(f, id, "a"), J_RUNNING); /* until the expiry sweep */
}

static void
test_store__finish_is_once_and_only_with_an_end_status(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	int64_t id = add_build(f, "a"), agent = add_agent(f, 0);
	struct lease l = lease_one(f, agent);

	assert_int_equal(store_lease_finish(f->s, l.id, l.epoch, J_QUEUED, 1, NULL, &err),
			 KCI_INVALID);
	assert_int_equal(store_lease_finish(f->s, l.id, l.epoch, J_SKIPPED, 1, NULL, &err),
			 KCI_INVALID);
	finish(f, &l, J_PASSED, NULL);
	assert_int_equal(store_lease_finish(f->s, l.id, l.epoch, J_FAILED, 1, "late", &err),
			 KCI_INVALID);
	assert_int_equal(job_status(f, id, "a"), J_PASSED);
	assert_int_equal(build_status(f, id), B_PASSED);
}

static void
test_store__lapsed_lease_requeues_then_errors(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	int64_t id = add_build(f, "a;b:a"), agent = add_agent(f, 0);
	struct lease l1 = lease_one(f, agent), l2;
	struct build_row b = { 0 };

	assert_int_equal(store_leases_expire(f->s, T0 + TTL, 2, &err), 0); /* not yet lapsed */
	assert_int_equal(job_status(f, id, "a"), J_RUNNING);
	assert_int_equal(store_leases_expire(f->s, T0 + TTL + 1, 2, &err), 1);
	get_build(f, id, &b);
	assert_int_equal(job_of(&b, "a")->status, J_QUEUED);
	assert_int_equal(job_of(&b, "a")->attempt, 2);
	assert_int_equal(b.status, B_RUNNING); /* a build that started stays started */
	build_row_clear(&b);
	assert_int_equal(store_leases_expire(f->s, T0 + TTL + 1, 2, &err), 0);

	f->now = T0 + TTL + 2;
	/* The first agent comes back too late: its lease is gone even before a new one. */
	assert_int_equal(store_lease_renew(f->s, l1.id, l1.epoch, TTL, &err), KCI_INVALID);
	l2 = lease_one(f, agent);
	assert_int_equal(l2.job_id, l1.job_id);
	assert_true(l2.id != l1.id);
	assert_true(l2.epoch > l1.epoch);
	assert_int_equal(store_lease_finish(f->s, l1.id, l1.epoch, J_PASSED, 1, NULL, &err),
			 KCI_INVALID);
	assert_int_equal(job_status(f, id, "a"), J_RUNNING);

	assert_int_equal(store_leases_expire(f->s, l2.expires + 1, 2, &err), 0);
	get_build(f, id, &b);
	assert_int_equal(job_of(&b, "a")->status, J_ERROR);
	assert_string_equal(job_of(&b, "a")->message, "its agent stopped answering (2 attempts)");
	assert_int_equal(job_of(&b, "a")->finished, l2.expires + 1);
	assert_int_equal(job_of(&b, "b")->status, J_SKIPPED);
	assert_string_equal(job_of(&b, "b")->message, "needs a, which did not pass");
	assert_int_equal(b.status, B_FAILED);
	build_row_clear(&b);
	assert_int_equal(store_lease_check(f->s, l2.id, l2.epoch, &id, &err), KCI_INVALID);
}

static void
test_store__one_attempt_errors_at_once(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	int64_t id = add_build(f, "a"), agent = add_agent(f, 0);
	struct build_row b = { 0 };

	lease_one(f, agent);
	assert_int_equal(store_leases_expire(f->s, T0 + TTL + 1, 1, &err), 0);
	get_build(f, id, &b);
	assert_int_equal(b.jobs[0].status, J_ERROR);
	assert_string_equal(b.jobs[0].message, "its agent stopped answering (1 attempts)");
	assert_int_equal(b.status, B_FAILED);
	build_row_clear(&b);
}

static void
test_store__cancel_ends_jobs_and_leases(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	int64_t id = add_build(f, "a;b:a;c"), agent = add_agent(f, 0), job;
	struct lease l;
	struct build_row b = { 0 };

	f->now = T0 + 100;
	l = lease_one(f, agent);
	f->now = T0 + 400;
	assert_int_equal(store_build_cancel(f->s, id, &err), 0);
	get_build(f, id, &b);
	assert_int_equal(b.status, B_CANCELED);
	assert_int_equal(b.finished, T0 + 400);
	for (size_t i = 0; i < b.n_jobs; i++)
		assert_int_equal(b.jobs[i].status, J_CANCELED);
	assert_int_equal(job_of(&b, "a")->duration_ms, 300);
	build_row_clear(&b);

	assert_int_equal(store_lease_renew(f->s, l.id, l.epoch, TTL, &err), KCI_INVALID);
	assert_int_equal(store_lease_check(f->s, l.id, l.epoch, &job, &err), KCI_INVALID);
	assert_int_equal(store_lease_finish(f->s, l.id, l.epoch, J_PASSED, 1, NULL, &err),
			 KCI_INVALID);
	assert_true(nothing_queued(f, agent));
	assert_int_equal(store_leases_expire(f->s, T0 + 10 * TTL, 3, &err), 0);
	assert_int_equal(build_status(f, id), B_CANCELED);
	assert_int_equal(job_status(f, id, "a"), J_CANCELED);
}

static void
test_store__cancel_leaves_finished_builds(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	int64_t id = add_build(f, "a"), agent = add_agent(f, 0);
	struct lease l = lease_one(f, agent);

	finish(f, &l, J_FAILED, NULL);
	assert_int_equal(store_build_cancel(f->s, id, &err), 0);
	assert_int_equal(build_status(f, id), B_FAILED);
	assert_int_equal(job_status(f, id, "a"), J_FAILED);
	assert_int_equal(store_build_cancel(f->s, id + 1, &err), KCI_NOTFOUND);
}

static void
test_store__restart_copies_the_build_with_jobs_reset(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	int64_t id = add_build(f, "a;b:a"), agent = add_agent(f, 0), again = 0;
	struct lease l = lease_one(f, agent);
	struct build_row old = { 0 }, b = { 0 };

	finish(f, &l, J_FAILED, "exit status 2");
	f->now = T0 + 777;
	assert_int_equal(store_build_restart(f->s, id, &again, &err), 0);
	assert_true(again > id);
	get_build(f, id, &old);
	get_build(f, again, &b);
	assert_int_equal(old.status, B_FAILED);
	assert_string_equal(b.repo, old.repo);
	assert_string_equal(b.ref, old.ref);
	assert_string_equal(b.commit, old.commit);
	assert_string_equal(b.clone_url, old.clone_url);
	assert_string_equal(b.event, old.event);
	assert_int_equal(b.trusted, old.trusted);
	assert_int_equal(b.status, B_QUEUED);
	assert_int_equal(b.created, T0 + 777);
	assert_int_equal(b.started, 0);
	assert_int_equal(b.finished, 0);
	assert_int_equal(b.n_jobs, 2);
	assert_int_equal(job_of(&b, "a")->status, J_QUEUED);
	assert_int_equal(job_of(&b, "a")->attempt, 1);
	assert_int_equal(job_of(&b, "a")->started, 0);
	assert_null(job_of(&b, "a")->message);
	assert_true(job_of(&b, "a")->id != job_of(&old, "a")->id);
	assert_int_equal(job_of(&b, "b")->status, J_WAITING);
	assert_string_equal(job_of(&b, "b")->needs[0], "a");
	assert_string_equal(job_of(&b, "b")->secrets[0], "TOKEN");
	build_row_clear(&old);
	build_row_clear(&b);
	l = lease_one(f, agent);
	assert_int_equal(l.build_id, again);
	assert_int_equal(store_build_restart(f->s, again + 5, &id, &err), KCI_NOTFOUND);
}

static void
test_store__deliveries_are_seen_once(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	int64_t build = -1, id = add_build(f, "a");

	assert_int_equal(store_delivery_once(f->s, "d-1", &build, &err), 1);
	assert_int_equal(build, 0);
	assert_int_equal(store_delivery_once(f->s, "d-1", &build, &err), 0);
	assert_int_equal(build, 0); /* seen, but no build recorded yet */
	assert_int_equal(store_delivery_build(f->s, "d-1", id, &err), 0);
	assert_int_equal(store_delivery_once(f->s, "d-1", &build, &err), 0);
	assert_int_equal(build, id);
	assert_int_equal(store_delivery_once(f->s, "d-2", &build, &err), 1);
	assert_int_equal(build, 0);
	assert_int_equal(store_delivery_once(f->s, NULL, &build, &err), KCI_INVALID);
	assert_int_equal(store_delivery_build(f->s, "d-3", id, &err), 0);
	assert_int_equal(store_delivery_once(f->s, "d-3", &build, &err), 0);
	assert_int_equal(build, id);
}

static void
test_store__list_newest_first_and_active_builds(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	int64_t b1 = add_build(f, "a"), b2 = add_build(f, "a"), b3 = add_build(f, "a;b");
	struct build_row *list = NULL;
	int64_t *ids = NULL;
	size_t n = 0;

	assert_int_equal(store_builds_list(f->s, 2, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].id, b3);
	assert_int_equal(list[1].id, b2);
	assert_int_equal(list[0].n_jobs, 2);
	assert_int_equal(list[0].jobs[1].status, J_QUEUED);
	for (size_t i = 0; i < n; i++)
		build_row_clear(&list[i]);
	free(list);

	assert_int_equal(store_build_cancel(f->s, b2, &err), 0);
	assert_int_equal(
		store_builds_active(f->s, "acme/widget", "refs/heads/main", b3, &ids, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], b1);
	free(ids);
	ids = NULL;
	assert_int_equal(
		store_builds_active(f->s, "acme/widget", "refs/heads/other", 0, &ids, &n, &err), 0);
	assert_int_equal(n, 0);
	free(ids);
}

static void
test_store__counts(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	struct store_counts c;
	int64_t agent;
	struct lease l;

	add_build(f, "a;b;c:a;d");
	agent = add_agent(f, 0);
	f->now = T0 + 1000;
	l = lease_one(f, agent); /* the agent is seen again */
	finish(f, &l, J_FAILED, NULL);
	lease_one(f, agent);
	add_agent(f, 0);
	assert_int_equal(store_counts(f->s, T0 + 500, &c, &err), 0);
	assert_int_equal(c.queued, 1);
	assert_int_equal(c.running, 1);
	assert_int_equal(c.agents, 2);
	assert_int_equal(c.jobs_by_status[J_FAILED], 1);
	assert_int_equal(c.jobs_by_status[J_SKIPPED], 1);
	assert_int_equal(c.jobs_by_status[J_QUEUED], 1);
	assert_int_equal(c.jobs_by_status[J_RUNNING], 1);
	assert_int_equal(c.jobs_by_status[J_PASSED], 0);
	assert_int_equal(store_counts(f->s, T0 + 1001, &c, &err), 0);
	assert_int_equal(c.agents, 0);
}

static void
read_log(struct fx *f, int64_t build, const char *name, char *buf, size_t size)
{
	char *path = store_log_path(f->s, build, name);
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, size - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	free(path);
}

static void
test_store__log_appends_accepts_resends_refuses_gaps(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	uint64_t size = 0;
	char buf[64], *path;
	struct stat sb;

	assert_int_equal(store_log_append(f->s, 7, "test_go", 0, "hello ", 6, &size, &err), 0);
	assert_int_equal(size, 6);
	assert_int_equal(store_log_append(f->s, 7, "test_go", 6, "world", 5, &size, &err), 0);
	assert_int_equal(size, 11);
	assert_int_equal(store_log_append(f->s, 7, "test_go", 0, "HELLO ", 6, &size, &err), 0);
	assert_int_equal(size, 11);
	assert_int_equal(store_log_append(f->s, 7, "test_go", 6, "world", 5, &size, &err), 0);
	assert_int_equal(size, 11);
	assert_int_equal(store_log_append(f->s, 7, "test_go", 12, "x", 1, &size, &err),
			 KCI_INVALID);
	assert_non_null(strstr(err.msg, "gap"));
	assert_int_equal(store_log_append(f->s, 7, "test_go", 6, "world!!", 7, &size, &err), 0);
	assert_int_equal(size, 13);
	read_log(f, 7, "test_go", buf, sizeof(buf));
	assert_string_equal(buf, "hello world!!");

	path = store_log_path(f->s, 7, "test_go");
	assert_non_null(strstr(path, "/data/logs/7/test_go.log"));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	free(path);

	assert_int_equal(store_log_append(f->s, 7, "other", 0, "", 0, &size, &err), 0);
	assert_int_equal(size, 0);
	for (int i = 0; i < 4; i++) {
		const char *bad[] = { "../x", ".hidden", "a/b", "" };

		assert_int_equal(store_log_append(f->s, 7, bad[i], 0, "x", 1, &size, &err),
				 KCI_INVALID);
		assert_null(store_log_path(f->s, 7, bad[i]));
	}
	assert_int_equal(store_log_append(f->s, 0, "x", 0, "x", 1, &size, &err), KCI_INVALID);
}

struct appender {
	struct store *s;
	int id;
};

/* Appends 200 chunks to one shared log, each at the size the last append left. */
static void *
append_many(void *arg)
{
	struct appender *a = arg;
	struct kci_err err = KCI_ERR_INIT;
	uint64_t size = 0;
	char chunk[8];

	snprintf(chunk, sizeof(chunk), "<%d>", a->id);
	/* When another thread got there first, the chunk counts as a resend and size moves on
	 * to the log's end: each call either writes or learns of a newer chunk. */
	for (int i = 0; i < 200; i++)
		if (store_log_append(a->s, 1, "shared", size, chunk, 3, &size, &err) < 0 ||
		    size % 3 != 0)
			return "append failed";
	return NULL;
}

static void
test_store__concurrent_log_appends_stay_whole(void **state)
{
	struct fx *f = *state;
	struct appender a[4];
	pthread_t t[4];
	char *path, *text = NULL;
	size_t len = 0;
	void *ret;

	for (int i = 0; i < 4; i++) {
		a[i] = (struct appender){ f->s, i };
		assert_int_equal(pthread_create(&t[i], NULL, append_many, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
	path = store_log_path(f->s, 1, "shared");
	assert_int_equal(kci_read_file(path, 1 << 20, &text, &len, NULL), 0);
	assert_int_equal(len % 3, 0);
	assert_true(len >= 200 * 3);
	for (size_t i = 0; i < len; i += 3)
		assert_true(text[i] == '<' && text[i + 2] == '>');
	free(text);
	free(path);
}

struct leaser {
	struct store *s;
	int64_t agent;
	int64_t jobs[64];
	int n;
};

static void *
lease_all(void *arg)
{
	struct leaser *l = arg;
	struct kci_err err = KCI_ERR_INIT;
	struct lease got_lease;
	int got = 1;

	while (got && l->n < 64) {
		if (store_lease_next(l->s, l->agent, TTL, &got_lease, &got, &err) < 0)
			return "lease failed";
		if (got)
			l->jobs[l->n++] = got_lease.job_id;
	}
	return NULL;
}

static void
test_store__concurrent_leases_hand_each_job_once(void **state)
{
	struct fx *f = *state;
	struct leaser l[4];
	pthread_t t[4];
	int64_t seen[64];
	int n = 0;
	void *ret;

	for (int i = 0; i < 4; i++)
		add_build(f, "a;b;c;d;e");
	for (int i = 0; i < 4; i++) {
		l[i] = (struct leaser){ .s = f->s, .agent = add_agent(f, 0) };
		assert_int_equal(pthread_create(&t[i], NULL, lease_all, &l[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
		for (int k = 0; k < l[i].n; k++) {
			for (int m = 0; m < n; m++)
				assert_true(seen[m] != l[i].jobs[k]);
			seen[n++] = l[i].jobs[k];
		}
	}
	assert_int_equal(n, 20);
}

static void
test_store__state_survives_a_restart(void **state)
{
	struct fx *f = *state;
	struct kci_err err = KCI_ERR_INIT;
	int64_t b1 = add_build(f, "a;b"), b2 = add_build(f, "c"), agent = add_agent(f, 0), got;
	struct lease la = lease_one(f, agent), lb;
	struct build_row b = { 0 };
	uint64_t size;
	char buf[32];

	lb = lease_one(f, agent);
	assert_int_equal(store_delivery_once(f->s, "d-1", &got, &err), 1);
	assert_int_equal(store_delivery_build(f->s, "d-1", b1, &err), 0);
	assert_int_equal(store_log_append(f->s, b1, "a", 0, "step 1\n", 7, &size, &err), 0);
	finish(f, &lb, J_PASSED, NULL);
	store_close(f->s);

	/* The server comes back a minute later; the agent holding a's lease did not. */
	f->now = T0 + 60000;
	fx_open(f);
	get_build(f, b1, &b);
	assert_int_equal(b.status, B_RUNNING);
	assert_int_equal(job_of(&b, "a")->status, J_RUNNING);
	assert_int_equal(job_of(&b, "b")->status, J_PASSED);
	build_row_clear(&b);
	get_build(f, b2, &b);
	assert_int_equal(b.status, B_QUEUED);
	assert_int_equal(job_of(&b, "c")->status, J_QUEUED);
	build_row_clear(&b);
	assert_int_equal(store_delivery_once(f->s, "d-1", &got, &err), 0);
	assert_int_equal(got, b1);
	read_log(f, b1, "a", buf, sizeof(buf));
	assert_string_equal(buf, "step 1\n");

	assert_int_equal(store_leases_expire(f->s, f->now, 3, &err), 1);
	get_build(f, b1, &b);
	assert_int_equal(job_of(&b, "a")->status, J_QUEUED);
	assert_int_equal(job_of(&b, "a")->attempt, 2);
	build_row_clear(&b);
	assert_int_equal(store_lease_check(f->s, la.id, la.epoch, &got, &err), KCI_INVALID);
	la = lease_one(f, agent);
	assert_int_equal(la.build_id, b1);
	finish(f, &la, J_PASSED, NULL);
	assert_int_equal(build_status(f, b1), B_PASSED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(test_store__##name, setup, teardown)
		T(status_names),
		T(open_makes_wal_db_and_refuses_newer_schema),
		T(new_jobs_queue_or_wait_for_needs),
		T(bad_jobs_are_refused),
		T(failed_planning_is_an_error_build),
		T(build_without_jobs_passes),
		T(lease_next_is_fifo_by_build_then_job),
		T(agents_are_known_and_held_to_capacity),
		T(passed_needs_queue_their_dependents),
		T(failed_needs_skip_dependents_transitively),
		T(timeout_fails_the_build),
		T(renew_extends_and_stale_leases_are_refused),
		T(finish_is_once_and_only_with_an_end_status),
		T(lapsed_lease_requeues_then_errors),
		T(one_attempt_errors_at_once),
		T(cancel_ends_jobs_and_leases),
		T(cancel_leaves_finished_builds),
		T(restart_copies_the_build_with_jobs_reset),
		T(deliveries_are_seen_once),
		T(list_newest_first_and_active_builds),
		T(counts),
		T(log_appends_accepts_resends_refuses_gaps),
		T(concurrent_log_appends_stay_whole),
		T(concurrent_leases_hand_each_job_once),
		T(state_survives_a_restart),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
