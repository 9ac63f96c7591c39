/*
 * The host <-> agent protocol: length-prefixed binary frames over one
 * virtio-serial port. See docs/protocol.md for the wire format. Both ends
 * use this codec; the host treats every frame from the guest as hostile.
 */
#ifndef KCI_COMMON_PROTO_H
#define KCI_COMMON_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define KCI_PROTO_VERSION 2
#define KCI_PORT_NAME	  "org.kci.agent.0"
#define KCI_FRAME_HDR	  8
#define KCI_FRAME_MAX	  65536u /* payload bytes; larger frames are a protocol error */
#define KCI_ARGV_MAX	  4096	 /* argv + env entries in one RUN */
#define KCI_JSON_DEPTH	  8	 /* nesting allowed in control payloads */

/*
 * The agent's first line on the serial console, "kci-agent: " KCI_BOOT_STARTED:
 * the host takes it for the sign that the guest kernel booted and ran /init.
 */
#define KCI_BOOT_STARTED "boot: started"

enum kci_frame_type {
	KCI_F_HELLO = 0x01,	/* agent->host, JSON */
	KCI_F_RUN = 0x02,	/* host->agent, JSON */
	KCI_F_STDIN = 0x03,	/* host->agent, raw bytes; empty = EOF */
	KCI_F_STDOUT = 0x04,	/* agent->host, raw bytes */
	KCI_F_STDERR = 0x05,	/* agent->host, raw bytes */
	KCI_F_EXIT = 0x06,	/* agent->host, JSON */
	KCI_F_RESIZE = 0x07,	/* host->agent, 4 bytes: rows, cols (u16 BE) */
	KCI_F_SIGNAL = 0x08,	/* host->agent, 1 byte: signal number */
	KCI_F_SHUTDOWN = 0x09,	/* host->agent, empty */
	KCI_F_LOG = 0x0a,	/* agent->host, UTF-8 text line */
	KCI_F_HEARTBEAT = 0x0b, /* agent->host, empty */
	KCI_F_FATAL = 0x0c,	/* agent->host, UTF-8 text: the guest cannot go on */
	KCI_F_READY = 0x0d,	/* agent->host, empty: booted, waiting for RESUME */
	KCI_F_RESUME = 0x0e,	/* host->agent, JSON: this job's identity, then serve */
	KCI_F_TYPE_MAX = KCI_F_RESUME,
};

/* A decoded frame. `payload` points into the decoder and is valid until the next call. */
struct kci_frame {
	uint8_t type;
	uint16_t id;
	uint32_t len;
	const uint8_t *payload;
};

/*
 * Streaming decoder with a fixed buffer: memory use never depends on what
 * the peer sends. Usage: kci_decoder_space() -> read into it ->
 * kci_decoder_commit() -> kci_decoder_next() until it returns 0.
 */
struct kci_decoder {
	size_t have;	 /* bytes buffered */
	size_t consumed; /* bytes of the last returned frame, dropped on the next call */
	uint8_t buf[KCI_FRAME_HDR + KCI_FRAME_MAX];
};

void kci_decoder_init(struct kci_decoder *d);
/* Returns how many bytes can be written at *p (always > 0 between frames). */
size_t kci_decoder_space(struct kci_decoder *d, uint8_t **p);
void kci_decoder_commit(struct kci_decoder *d, size_t n);
/* 1: *out holds a frame; 0: need more bytes; KCI_PROTO: malformed stream (sticky). */
int kci_decoder_next(struct kci_decoder *d, struct kci_frame *out, struct kci_err *err);

/* Writes the 8-byte header for a frame. `len` must be <= KCI_FRAME_MAX. */
void kci_frame_header(uint8_t hdr[KCI_FRAME_HDR], uint8_t type, uint16_t id, uint32_t len);
/* Human name of a frame type, for messages ("STDOUT", "unknown"). */
const char *kci_frame_name(uint8_t type);

/* HELLO: what the agent says first. */
struct kci_hello {
	int proto;
	char agent[64];
	char kernel[128];
};

/* EXIT: how a process ended. Exactly one of code >= 0 or signal > 0. */
struct kci_exit {
	int code;
	int signal;
	char error[256]; /* set when the command could not be started */
};

/*
 * RESUME: what makes a guest this job's, sent once after READY: to a guest
 * that just booted, or to one restored from a VM template (its siblings were
 * restored from the same saved RAM, so nothing random in it is theirs alone).
 */
#define KCI_RESUME_ENTROPY 64
struct kci_resume {
	int64_t time_ns;		     /* the host's wall clock, ns since the epoch */
	uint8_t entropy[KCI_RESUME_ENTROPY]; /* credited to the guest kernel's pool */
	char hostname[64];		     /* [a-z0-9-], 1-63 characters */
	char machine_id[33];		     /* 32 lowercase hex digits */
};

/* RUN: what the host asks the agent to run. Owned strings; free with kci_run_req_clear(). */
struct kci_run_req {
	char **argv; /* NULL-terminated */
	char **env;  /* NULL-terminated, "K=V" */
	char *cwd;
	char *user; /* image USER ("name", "uid", "uid:gid"...); NULL or "" = root */
	int tty;
	unsigned rows, cols;
};

/*
 * Control payload codecs. Parsers validate every field and bound every
 * string; encoders return a malloc'd buffer the caller frees.
 */
int kci_proto_parse_hello(const uint8_t *p, size_t len, struct kci_hello *out, struct kci_err *err);
int kci_proto_parse_exit(const uint8_t *p, size_t len, struct kci_exit *out, struct kci_err *err);
int kci_proto_parse_run(const uint8_t *p, size_t len, struct kci_run_req *out, struct kci_err *err);
void kci_run_req_clear(struct kci_run_req *r);
char *kci_proto_encode_hello(const struct kci_hello *h, size_t *len);
char *kci_proto_encode_exit(const struct kci_exit *e, size_t *len);
char *kci_proto_encode_run(const struct kci_run_req *r, size_t *len);
int kci_proto_parse_resume(const uint8_t *p, size_t len, struct kci_resume *out,
			   struct kci_err *err);
char *kci_proto_encode_resume(const struct kci_resume *r, size_t *len);
/* Validates a RESIZE payload into rows/cols. */
int kci_proto_parse_resize(const uint8_t *p, size_t len, unsigned *rows, unsigned *cols,
			   struct kci_err *err);
void kci_proto_encode_resize(uint8_t out[4], unsigned rows, unsigned cols);

#endif
