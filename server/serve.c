/*
 * kci serve: the config, the store, the HTTP server, a clock that re-queues
 * the jobs of agents that stopped answering, the commit-status poster, and
 * (unless --no-local-agent) an agent in this process that runs jobs here.
 * A server killed with SIGKILL loses nothing: everything it knows is in
 * SQLite, and on the next start lapsed leases are re-queued.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "server/core.h"

/* The clock: lapsed leases go back to the queue (their agents stopped answering). */
static void *
clock_main(void *arg)
{
	struct server *s = arg;

	while (!s->stopping) {
		struct kci_err err = KCI_ERR_INIT;
		int n = store_leases_expire(s->store, server_now_ms(), LEASE_ATTEMPTS, &err);

		if (n > 0) {
			server_log(s, "%d job%s re-queued: their agents stopped answering", n,
				   n == 1 ? "" : "s");
			server_kick(s);
		}
		for (int i = 0; i < 10 && !s->stopping; i++)
			usleep(100 * 1000);
	}
	return NULL;
}

/* The local agent: the same client as a remote one, on this server's loopback address. */
struct local_agent {
	struct kci_agent_opts o;
	char *url;
	pthread_t thread;
	int started;
	int stop[2];
};

static void *
local_agent_main(void *arg)
{
	struct local_agent *la = arg;
	struct kci_err err = KCI_ERR_INIT;

	if (kci_server_agent(&la->o, &err) < 0) {
		char line[KCI_ERR_MAX + 32];
		snprintf(line, sizeof(line), "the local agent stopped: %s", err.msg);
		if (la->o.log)
			la->o.log(la->o.log_ctx, line);
		else
			fprintf(stderr, "kci serve: %s\n", line);
	}
	return NULL;
}

static int
local_agent_start(struct local_agent *la, struct server *s, const struct kci_serve_opts *o,
		  struct kci_err *err)
{
	const char *colon = strrchr(s->cfg->listen, ':');
	const char *host = s->cfg->listen;
	size_t hlen = colon ? (size_t)(colon - host) : 0;

	la->stop[0] = la->stop[1] = -1;
	if (pipe2(la->stop, O_CLOEXEC) < 0)
		return kci_err_sys(err, errno, "pipe");
	/* An unspecified listen address is reachable on loopback. */
	if (!strncmp(host, "0.0.0.0", hlen) || !strncmp(host, "[::]", hlen))
		la->url = kci_xasprintf("%s://127.0.0.1%s", s->cfg->tls_cert ? "https" : "http",
					colon);
	else
		la->url = kci_xasprintf("%s://%s", s->cfg->tls_cert ? "https" : "http",
					s->cfg->listen);
	la->o = *o->local;
	la->o.server = la->url;
	la->o.token = s->cfg->agent_token;
	if (!la->o.name)
		la->o.name = "local";
	la->o.insecure = 1;
	la->o.ca_pem = s->cfg->tls_cert; /* its own certificate, on loopback */
	la->o.stop_fd = la->stop[0];
	if (pthread_create(&la->thread, NULL, local_agent_main, la) != 0)
		return kci_err_set(err, KCI_ERROR, "cannot start the local agent");
	la->started = 1;
	return 0;
}

static void
local_agent_stop(struct local_agent *la)
{
	if (la->started) {
		/* Twice: no new jobs, and the running ones go back to the queue at once. */
		(void)!write(la->stop[1], "xx", 2);
		pthread_join(la->thread, NULL);
	}
	for (int i = 0; i < 2; i++)
		if (la->stop[i] >= 0)
			close(la->stop[i]);
	free(la->url);
}

int
kci_server_serve(const struct kci_serve_opts *o, struct kci_err *err)
{
	struct server s = { .log = o->log, .log_ctx = o->log_ctx };
	struct local_agent la = { .stop = { -1, -1 } };
	struct http_server *http = NULL;
	pthread_t clock;
	int clock_started = 0, rc;
	char *home = NULL;

	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.work, NULL);
	if ((rc = config_load(o->config, &s.cfg, err)) < 0)
		goto out;
	if (o->data) {
		s.data = kci_xstrdup(o->data);
	} else {
		if ((rc = kci_home(&home, err)) < 0)
			goto out;
		s.data = kci_xasprintf("%s/server", home);
	}
	s.mirrors = kci_xasprintf("%s/mirrors", s.data);
	if ((rc = kci_mkdir_p(s.data, 0700, err)) < 0 ||
	    (rc = store_open(&s.store, s.data, err)) < 0)
		goto out;
	/* Whatever was leased before a crash and has lapsed since runs again. */
	(void)store_leases_expire(s.store, server_now_ms(), LEASE_ATTEMPTS, err);
	if ((rc = statusq_start(&s.statusq, &s, err)) < 0 || (rc = http_start(&http, &s, err)) < 0)
		goto out;
	if (pthread_create(&clock, NULL, clock_main, &s) != 0) {
		rc = kci_err_set(err, KCI_ERROR, "cannot start the lease clock");
		goto out;
	}
	clock_started = 1;
	server_log(&s, "listening on %s, %zu repositories, data in %s", s.cfg->listen,
		   s.cfg->n_repos, s.data);
	if (o->local && (rc = local_agent_start(&la, &s, o, err)) < 0)
		goto out;
	struct pollfd p = { .fd = o->stop_fd, .events = POLLIN };
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	server_log(&s, "stopping");
	rc = 0;
out:
	s.stopping = 1;
	server_kick(&s);
	/* The local agent first: it ends its jobs and reports them while the API still answers. */
	local_agent_stop(&la);
	http_stop(http);
	if (clock_started)
		pthread_join(clock, NULL);
	statusq_stop(s.statusq);
	store_close(s.store);
	config_free(s.cfg);
	free(s.data);
	free(s.mirrors);
	free(home);
	pthread_cond_destroy(&s.work);
	pthread_mutex_destroy(&s.lock);
	return rc;
}
