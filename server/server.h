/*
 * server/: kci serve (webhooks from GitHub, Gitea/Forgejo and GitLab, a queue
 * of builds in SQLite, an HTTP API for agents, commit statuses, a web UI) and
 * kci agent (leases jobs from a server and runs each in a micro-VM through
 * the engine, as kci run does).
 */
#ifndef KCI_SERVER_SERVER_H
#define KCI_SERVER_SERVER_H

#include <stdint.h>

#include "common/err.h"

struct kci_serve_opts {
	const char *config; /* the YAML config (docs/server.md) */
	const char *data;   /* state: server.db, logs/, mirrors/; NULL = $KCI_HOME/server */
	const char *home;   /* KCI_HOME for the local agent's VMs; NULL = kci_home() */
	int local_agent;    /* run jobs here too (default), besides remote agents */
	unsigned local_capacity; /* jobs at once for the local agent; 0 = from the host */
	int stop_fd;	    /* readable = shut down (SIGTERM): agents keep their leases */
	/* One line per delivery and build state change; NULL = stderr. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
};

/* Runs the server until stop_fd is readable. Errors: config, data dir, listening. */
int kci_server_serve(const struct kci_serve_opts *o, struct kci_err *err);

struct kci_agent_opts {
	const char *server;   /* base URL: https://ci.example.com */
	const char *token;    /* the shared agent token */
	const char *name;     /* shown by the server; NULL = the host name */
	unsigned capacity;    /* jobs at once */
	int insecure;	      /* allow plain http to a non-loopback server */
	const char *home;     /* KCI_HOME: store, cache, VMs, mirrors; NULL = kci_home() */
	/* readable = stop taking jobs; running ones finish (or are handed back on a second) */
	int stop_fd;
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
};

/* Runs an agent until stop_fd is readable and its jobs have ended. */
int kci_server_agent(const struct kci_agent_opts *o, struct kci_err *err);

#endif
