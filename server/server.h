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
#include "engine/engine.h"

struct kci_agent_opts {
	const char *server;  /* base URL: https://ci.example.com */
	const char *token;   /* the shared agent token */
	const char *name;    /* shown by the server; NULL = the host name */
	unsigned capacity;   /* jobs at once; 0 = kci_engine_default_jobs() */
	int insecure;	     /* allow plain http to a non-loopback server */
	const char *ca_file; /* --ca-file: the CAs that sign the server's certificate, or NULL */
	const char *ca_pem;  /* kci serve's own agent: trust exactly its server's certificate */
	const char *home;    /* KCI_HOME: store, cache, VMs, mirrors; NULL = kci_home() */
	const char *kernel;  /* guest kernel override, or NULL */
	enum kci_accel accel;
	int cold; /* never start VMs from templates (--cold) */
	/* What the jobs may use, as kci run's flags say it (--registry, --timeout, ...). */
	struct kci_registry_policy registries;
	int64_t default_timeout_ms; /* 0 = KCI_ENGINE_JOB_TIMEOUT_MS */
	uint64_t output_limit;	    /* 0 = KCI_ENGINE_OUTPUT_LIMIT */
	/*
	 * Each byte read from stop_fd is a stop request: the first stops taking
	 * jobs (running ones finish and are reported), the second hands the
	 * running jobs back to the server at once (their VMs are stopped).
	 */
	int stop_fd;
	/* One line per job and per trouble reaching the server; NULL = stderr. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
};

/* Runs an agent until stopped (stop_fd) and its jobs have ended or been handed back. */
int kci_server_agent(const struct kci_agent_opts *o, struct kci_err *err);

struct kci_serve_opts {
	const char *config; /* the YAML config (docs/server.md) */
	const char *data;   /* state: server.db, logs/, mirrors/; NULL = $KCI_HOME/server */
	/*
	 * The agent that runs jobs on this machine too, or NULL (--no-local-agent).
	 * Its server, token and stop_fd are the server's own.
	 */
	const struct kci_agent_opts *local;
	int stop_fd; /* readable = shut down: the local agent hands its jobs back */
	/* One line per delivery and build state change; NULL = stderr. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
};

/* Runs the server until stop_fd is readable. Errors: config, data dir, listening. */
int kci_server_serve(const struct kci_serve_opts *o, struct kci_err *err);

#endif
