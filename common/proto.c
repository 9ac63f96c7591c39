/* Frame decoder and control-payload codecs for the host <-> agent protocol. */
#include "common/proto.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strv.h"
#include "common/xalloc.h"

void
kci_decoder_init(struct kci_decoder *d)
{
	d->have = 0;
	d->consumed = 0;
}

static void
drop_consumed(struct kci_decoder *d)
{
	if (!d->consumed)
		return;
	memmove(d->buf, d->buf + d->consumed, d->have - d->consumed);
	d->have -= d->consumed;
	d->consumed = 0;
}

size_t
kci_decoder_space(struct kci_decoder *d, uint8_t **p)
{
	drop_consumed(d);
	*p = d->buf + d->have;
	return sizeof(d->buf) - d->have;
}

void
kci_decoder_commit(struct kci_decoder *d, size_t n)
{
	/* Callers pass what read() returned into kci_decoder_space()'s window. */
	if (n > sizeof(d->buf) - d->have)
		abort();
	d->have += n;
}

int
kci_decoder_next(struct kci_decoder *d, struct kci_frame *out, struct kci_err *err)
{
	const uint8_t *h;
	uint32_t len;

	drop_consumed(d);
	if (d->have < KCI_FRAME_HDR)
		return 0;
	h = d->buf;
	/* untrusted: header fields are checked here, before anything is buffered for them */
	len = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
	if (h[0] == 0 || h[0] > KCI_F_TYPE_MAX)
		return kci_err_set(err, KCI_PROTO, "unknown frame type 0x%02x", h[0]);
	if (len > KCI_FRAME_MAX)
		return kci_err_set(err, KCI_PROTO, "%s frame of %u bytes exceeds the %u-byte limit",
				   kci_frame_name(h[0]), len, KCI_FRAME_MAX);
	if (d->have < KCI_FRAME_HDR + (size_t)len)
		return 0;
	out->type = h[0];
	out->id = (uint16_t)(h[2] << 8 | h[3]);
	out->len = len;
	out->payload = h + KCI_FRAME_HDR;
	if (h[1] != 0)
		return kci_err_set(err, KCI_PROTO, "%s frame has reserved flags 0x%02x set",
				   kci_frame_name(h[0]), h[1]);
	d->consumed = KCI_FRAME_HDR + len;
	return 1;
}

void
kci_frame_header(uint8_t hdr[KCI_FRAME_HDR], uint8_t type, uint16_t id, uint32_t len)
{
	hdr[0] = type;
	hdr[1] = 0;
	hdr[2] = (uint8_t)(id >> 8);
	hdr[3] = (uint8_t)id;
	hdr[4] = (uint8_t)(len >> 24);
	hdr[5] = (uint8_t)(len >> 16);
	hdr[6] = (uint8_t)(len >> 8);
	hdr[7] = (uint8_t)len;
}

const char *
kci_frame_name(uint8_t type)
{
	static const char *const names[] = {
		[KCI_F_HELLO] = "HELLO",	 [KCI_F_RUN] = "RUN",
		[KCI_F_STDIN] = "STDIN",	 [KCI_F_STDOUT] = "STDOUT",
		[KCI_F_STDERR] = "STDERR",	 [KCI_F_EXIT] = "EXIT",
		[KCI_F_RESIZE] = "RESIZE",	 [KCI_F_SIGNAL] = "SIGNAL",
		[KCI_F_SHUTDOWN] = "SHUTDOWN",	 [KCI_F_LOG] = "LOG",
		[KCI_F_HEARTBEAT] = "HEARTBEAT", [KCI_F_FATAL] = "FATAL",
		[KCI_F_READY] = "READY",	 [KCI_F_RESUME] = "RESUME",
	};

	if (type == 0 || type > KCI_F_TYPE_MAX)
		return "unknown";
	return names[type];
}

/* Parses a bounded JSON object; the caller json_object_put()s *out. */
static int
parse_object(const uint8_t *p, size_t len, const char *what, struct json_object **out,
	     struct kci_err *err)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;

	if (len > KCI_FRAME_MAX)
		return kci_err_set(err, KCI_PROTO, "%s payload too large", what);
	tok = json_tokener_new_ex(KCI_JSON_DEPTH);
	if (!tok)
		return kci_err_set(err, KCI_ERROR, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, (const char *)p, (int)len);
	jerr = json_tokener_get_error(tok);
	if (obj && jerr == json_tokener_success && json_tokener_get_parse_end(tok) != len) {
		json_object_put(obj);
		json_tokener_free(tok);
		return kci_err_set(err, KCI_PROTO, "%s payload: trailing bytes after JSON", what);
	}
	json_tokener_free(tok);
	if (!obj || jerr != json_tokener_success) {
		json_object_put(obj);
		return kci_err_set(err, KCI_PROTO, "%s payload is not valid JSON: %s", what,
				   jerr == json_tokener_continue ? "truncated"
								 : json_tokener_error_desc(jerr));
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return kci_err_set(err, KCI_PROTO, "%s payload is not a JSON object", what);
	}
	*out = obj;
	return 0;
}

/* Reads an integer field in [min, max]; -1 if absent is allowed when `optional`. */
static int
get_int(struct json_object *obj, const char *key, int min, int max, int optional, int *out,
	const char *what, struct kci_err *err)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(obj, key, &v)) {
		if (optional)
			return 0;
		return kci_err_set(err, KCI_PROTO, "%s: missing \"%s\"", what, key);
	}
	if (!json_object_is_type(v, json_type_int))
		return kci_err_set(err, KCI_PROTO, "%s: \"%s\" is not an integer", what, key);
	n = json_object_get_int64(v);
	if (n < min || n > max)
		return kci_err_set(err, KCI_PROTO, "%s: \"%s\" out of range", what, key);
	*out = (int)n;
	return 0;
}

/* Copies an optional string field into a fixed buffer, truncating safely. */
static int
get_str(struct json_object *obj, const char *key, char *buf, size_t size, const char *what,
	struct kci_err *err)
{
	struct json_object *v;

	buf[0] = '\0';
	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return kci_err_set(err, KCI_PROTO, "%s: \"%s\" is not a string", what, key);
	snprintf(buf, size, "%s", json_object_get_string(v));
	return 0;
}

int
kci_proto_parse_hello(const uint8_t *p, size_t len, struct kci_hello *out, struct kci_err *err)
{
	struct json_object *obj = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_object(p, len, "HELLO", &obj, err)) < 0)
		return rc;
	if ((rc = get_int(obj, "proto", 1, 65535, 0, &out->proto, "HELLO", err)) < 0 ||
	    (rc = get_str(obj, "agent", out->agent, sizeof(out->agent), "HELLO", err)) < 0 ||
	    (rc = get_str(obj, "kernel", out->kernel, sizeof(out->kernel), "HELLO", err)) < 0)
		goto out;
out:
	json_object_put(obj);
	return rc;
}

int
kci_proto_parse_exit(const uint8_t *p, size_t len, struct kci_exit *out, struct kci_err *err)
{
	struct json_object *obj = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	out->code = -1;
	if ((rc = parse_object(p, len, "EXIT", &obj, err)) < 0)
		return rc;
	if ((rc = get_int(obj, "code", 0, 255, 1, &out->code, "EXIT", err)) < 0 ||
	    (rc = get_int(obj, "signal", 1, 64, 1, &out->signal, "EXIT", err)) < 0 ||
	    (rc = get_str(obj, "error", out->error, sizeof(out->error), "EXIT", err)) < 0)
		goto out;
	if ((out->code >= 0) == (out->signal > 0))
		rc = kci_err_set(err, KCI_PROTO,
				 "EXIT: exactly one of \"code\" and \"signal\" required");
out:
	json_object_put(obj);
	return rc;
}

/* Copies a JSON array of strings into a NULL-terminated vector. */
static int
get_strv(struct json_object *obj, const char *key, int required, char ***out, size_t *total,
	 struct kci_err *err)
{
	struct json_object *arr, *v;
	size_t i, n;
	char **vec;

	*out = NULL;
	if (!json_object_object_get_ex(obj, key, &arr)) {
		if (required)
			return kci_err_set(err, KCI_PROTO, "RUN: missing \"%s\"", key);
		*out = kci_xcalloc(1, sizeof(char *));
		return 0;
	}
	if (!json_object_is_type(arr, json_type_array))
		return kci_err_set(err, KCI_PROTO, "RUN: \"%s\" is not an array", key);
	n = json_object_array_length(arr);
	*total += n;
	if (*total > KCI_ARGV_MAX)
		return kci_err_set(err, KCI_PROTO, "RUN: too many argv/env entries");
	if (required && n == 0)
		return kci_err_set(err, KCI_PROTO, "RUN: \"%s\" is empty", key);
	vec = kci_xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_string)) {
			for (size_t j = 0; j < i; j++)
				free(vec[j]);
			free(vec);
			return kci_err_set(err, KCI_PROTO, "RUN: \"%s\"[%zu] is not a string", key,
					   i);
		}
		vec[i] = kci_xstrdup(json_object_get_string(v));
	}
	*out = vec;
	return 0;
}

int
kci_proto_parse_run(const uint8_t *p, size_t len, struct kci_run_req *out, struct kci_err *err)
{
	struct json_object *obj = NULL, *v;
	char cwd[4096], user[256];
	size_t total = 0;
	int rc, rows = 0, cols = 0;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_object(p, len, "RUN", &obj, err)) < 0)
		return rc;
	if ((rc = get_strv(obj, "argv", 1, &out->argv, &total, err)) < 0 ||
	    (rc = get_strv(obj, "env", 0, &out->env, &total, err)) < 0 ||
	    (rc = get_str(obj, "cwd", cwd, sizeof(cwd), "RUN", err)) < 0 ||
	    (rc = get_int(obj, "rows", 0, 65535, 1, &rows, "RUN", err)) < 0 ||
	    (rc = get_int(obj, "cols", 0, 65535, 1, &cols, "RUN", err)) < 0)
		goto out;
	out->cwd = kci_xstrdup(cwd[0] ? cwd : "/");
	if ((rc = get_str(obj, "user", user, sizeof(user), "RUN", err)) < 0)
		goto out;
	out->user = kci_xstrdup(user);
	out->rows = (unsigned)rows;
	out->cols = (unsigned)cols;
	if (json_object_object_get_ex(obj, "tty", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			rc = kci_err_set(err, KCI_PROTO, "RUN: \"tty\" is not a boolean");
			goto out;
		}
		out->tty = json_object_get_boolean(v);
	}
out:
	json_object_put(obj);
	if (rc < 0)
		kci_run_req_clear(out);
	return rc;
}

void
kci_run_req_clear(struct kci_run_req *r)
{
	kci_strv_free(r->argv);
	kci_strv_free(r->env);
	free(r->cwd);
	free(r->user);
	memset(r, 0, sizeof(*r));
}

/* Serialises a JSON object into a malloc'd buffer and drops the object. */
static char *
finish(struct json_object *obj, size_t *len)
{
	size_t n;
	const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &n);
	char *out = kci_xmalloc(n + 1);

	memcpy(out, s, n + 1);
	*len = n;
	json_object_put(obj);
	return out;
}

char *
kci_proto_encode_hello(const struct kci_hello *h, size_t *len)
{
	struct json_object *obj = json_object_new_object();

	json_object_object_add(obj, "proto", json_object_new_int(h->proto));
	json_object_object_add(obj, "agent", json_object_new_string(h->agent));
	json_object_object_add(obj, "kernel", json_object_new_string(h->kernel));
	return finish(obj, len);
}

char *
kci_proto_encode_exit(const struct kci_exit *e, size_t *len)
{
	struct json_object *obj = json_object_new_object();

	if (e->signal > 0)
		json_object_object_add(obj, "signal", json_object_new_int(e->signal));
	else
		json_object_object_add(obj, "code", json_object_new_int(e->code));
	if (e->error[0])
		json_object_object_add(obj, "error", json_object_new_string(e->error));
	return finish(obj, len);
}

static struct json_object *
strv_json(char *const *v)
{
	struct json_object *arr = json_object_new_array();

	for (size_t i = 0; v && v[i]; i++)
		json_object_array_add(arr, json_object_new_string(v[i]));
	return arr;
}

char *
kci_proto_encode_run(const struct kci_run_req *r, size_t *len)
{
	struct json_object *obj = json_object_new_object();

	json_object_object_add(obj, "argv", strv_json(r->argv));
	json_object_object_add(obj, "env", strv_json(r->env));
	json_object_object_add(obj, "cwd", json_object_new_string(r->cwd ? r->cwd : "/"));
	if (r->user && r->user[0])
		json_object_object_add(obj, "user", json_object_new_string(r->user));
	json_object_object_add(obj, "tty", json_object_new_boolean(r->tty));
	json_object_object_add(obj, "rows", json_object_new_int((int)r->rows));
	json_object_object_add(obj, "cols", json_object_new_int((int)r->cols));
	return finish(obj, len);
}

int
kci_proto_parse_resize(const uint8_t *p, size_t len, unsigned *rows, unsigned *cols,
		       struct kci_err *err)
{
	if (len != 4)
		return kci_err_set(err, KCI_PROTO, "RESIZE payload must be 4 bytes, got %zu", len);
	*rows = (unsigned)(p[0] << 8 | p[1]);
	*cols = (unsigned)(p[2] << 8 | p[3]);
	return 0;
}

void
kci_proto_encode_resize(uint8_t out[4], unsigned rows, unsigned cols)
{
	out[0] = (uint8_t)(rows >> 8);
	out[1] = (uint8_t)rows;
	out[2] = (uint8_t)(cols >> 8);
	out[3] = (uint8_t)cols;
}

/* Decodes exactly n bytes of lowercase hex; -1 on anything else. */
static int
unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < 2 * n; i++) {
		int v = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
			: s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
						     : -1;
		if (v < 0)
			return -1;
		out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
	}
	return 0;
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

int
kci_proto_parse_resume(const uint8_t *p, size_t len, struct kci_resume *out, struct kci_err *err)
{
	char entropy[2 * KCI_RESUME_ENTROPY + 2];
	uint8_t id[16];
	struct json_object *obj = NULL, *v;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_object(p, len, "RESUME", &obj, err)) < 0)
		return rc;
	if (!json_object_object_get_ex(obj, "time_ns", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (out->time_ns = json_object_get_int64(v)) < 0) {
		rc = kci_err_set(err, KCI_PROTO, "RESUME: \"time_ns\" missing or not a time");
		goto out;
	}
	if ((rc = get_str(obj, "entropy", entropy, sizeof(entropy), "RESUME", err)) < 0 ||
	    (rc = get_str(obj, "hostname", out->hostname, sizeof(out->hostname), "RESUME", err)) <
		    0 ||
	    (rc = get_str(obj, "machine_id", out->machine_id, sizeof(out->machine_id), "RESUME",
			  err)) < 0)
		goto out;
	if (unhex(entropy, out->entropy, KCI_RESUME_ENTROPY) < 0) {
		rc = kci_err_set(err, KCI_PROTO, "RESUME: \"entropy\" is not %d bytes of hex",
				 KCI_RESUME_ENTROPY);
		goto out;
	}
	if (unhex(out->machine_id, id, sizeof(id)) < 0) {
		rc = kci_err_set(err, KCI_PROTO, "RESUME: \"machine_id\" is not 32 hex digits");
		goto out;
	}
	size_t n = strlen(out->hostname);
	if (n == 0 || n > 63 ||
	    strspn(out->hostname, "abcdefghijklmnopqrstuvwxyz0123456789-") != n) {
		rc = kci_err_set(err, KCI_PROTO, "RESUME: \"hostname\" is not a host name");
		goto out;
	}
out:
	json_object_put(obj);
	return rc;
}

char *
kci_proto_encode_resume(const struct kci_resume *r, size_t *len)
{
	struct json_object *obj = json_object_new_object();
	char entropy[2 * KCI_RESUME_ENTROPY + 1];

	hex(r->entropy, KCI_RESUME_ENTROPY, entropy);
	json_object_object_add(obj, "time_ns", json_object_new_int64(r->time_ns));
	json_object_object_add(obj, "entropy", json_object_new_string(entropy));
	json_object_object_add(obj, "hostname", json_object_new_string(r->hostname));
	json_object_object_add(obj, "machine_id", json_object_new_string(r->machine_id));
	return finish(obj, len);
}
