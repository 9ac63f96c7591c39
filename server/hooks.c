/*
 * Webhooks from GitHub, Gitea/Forgejo and GitLab: the signature checked in constant time
 * before anything else, then the one parser of their bodies, with bounds on every value.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "server/internal.h"

#define JSON_DEPTH	    32	   /* forges' payloads nest about 6 deep */
#define JSON_CONTAINERS_MAX 20000  /* objects and arrays in one body */
#define JSON_VALUES_MAX	    200000 /* values in one body */
#define NAME_MAX_LEN	    255	   /* a repository's full name */
#define REF_MAX_LEN	    255	   /* a ref */
#define WORD_MAX_LEN	    64	   /* an event or an action */
#define DELIVERY_MAX_LEN    128	   /* a delivery id (a UUID is 36) */
#define PR_NUMBER_MAX	    1000000000

static const char zero_commit[] = "0000000000000000000000000000000000000000";

static const char *
header(const struct hook_req *r, const char *name)
{
	return r->header ? r->header(r->ctx, name) : NULL;
}

/* ---- values: every string taken from a body or a header is checked here ---- */

/* Printable ASCII, spaces allowed only when `spaces`; 1..max bytes. */
static int
valid_word(const char *s, size_t max, int spaces)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (s[i] < (spaces ? 0x20 : 0x21) || s[i] >= 0x7f)
			return 0;
	}
	return i > 0 && i <= max;
}

/* A forge's full name ("acme/widget", "group/sub/project"): printable, no spaces. */
static int
valid_repo(const char *s)
{
	return valid_word(s, NAME_MAX_LEN, 0) && strchr(s, '/');
}

/* What git check-ref-format allows, under refs/, at most REF_MAX_LEN bytes. */
static int
valid_ref(const char *s)
{
	size_t i, len = strlen(s);

	if (len > REF_MAX_LEN || strncmp(s, "refs/", 5) != 0 || s[len - 1] == '/' ||
	    s[len - 1] == '.' || strstr(s, "..") || strstr(s, "//") || strstr(s, "@{") ||
	    strstr(s, "/.") || strstr(s, ".lock/") ||
	    (len >= 5 && strcmp(s + len - 5, ".lock") == 0))
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f || strchr("~^:?*[\\", s[i]))
			return 0;
	}
	return 1;
}

/* Exactly 40 hex digits (either case). */
static int
valid_commit(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	}
	return i == 40;
}

static char *
lower_dup(const char *s)
{
	char *out = kci_xstrdup(s);

	for (char *p = out; *p; p++) {
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	}
	return out;
}

/* ---- the body as JSON ---- */

/*
 * Counts objects, arrays and values outside strings: json-c spends hundreds of bytes on an
 * empty object, so a body of "{}," would cost hundreds of times its size, before any
 * signature could be checked (hook_repo_name). Only a filter: json-c still parses everything.
 */
static int
shape_ok(const uint8_t *body, size_t len)
{
	size_t containers = 0, values = 1;
	int in_string = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t ch = body[i];

		if (in_string) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_string = 0;
			continue;
		}
		if (ch == '"')
			in_string = 1;
		else if (ch == '{' || ch == '[')
			containers++;
		else if (ch == ',')
			values++;
	}
	return containers <= JSON_CONTAINERS_MAX && values <= JSON_VALUES_MAX;
}

/* The body as a JSON object (*out, json_object_put()); KCI_INVALID when it is anything else. */
static int
body_parse(const struct hook_req *r, struct json_object **out, struct kci_err *err)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	/* untrusted: len <= HOOK_BODY_MAX, checked here before the tokenizer sees a byte */
	if (r->len > HOOK_BODY_MAX)
		return kci_err_set(err, KCI_INVALID, "body larger than %u bytes", HOOK_BODY_MAX);
	if (r->len == 0)
		return kci_err_set(err, KCI_INVALID, "empty body");
	if (memchr(r->body, '\0', r->len))
		return kci_err_set(err, KCI_INVALID, "body contains a NUL byte");
	if (r->len >= 8 && memcmp(r->body, "payload=", 8) == 0)
		return kci_err_set(err, KCI_INVALID,
				   "body is form-encoded: set the webhook's "
				   "content type to application/json");
	if (!shape_ok(r->body, r->len))
		return kci_err_set(err, KCI_INVALID, "body has more values than a webhook sends");
	tok = json_tokener_new_ex(JSON_DEPTH);
	if (!tok)
		return kci_err_set(err, KCI_ERROR, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, (const char *)r->body, (int)r->len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!obj || jerr != json_tokener_success) {
		json_object_put(obj);
		return kci_err_set(err, KCI_INVALID, "body is not JSON: %s",
				   jerr == json_tokener_continue ? "truncated"
								 : json_tokener_error_desc(jerr));
	}
	while (end < r->len && strchr(" \t\r\n", r->body[end]))
		end++;
	if (end != r->len || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return kci_err_set(err, KCI_INVALID, "body is not one JSON object");
	}
	*out = obj;
	return 0;
}

/*
 * The member at a dotted path ("pull_request.head.sha"): NULL when a step is missing, null
 * or no object. *present tells a JSON null (1) from a missing member (0) for the last step.
 */
static struct json_object *
jget(struct json_object *o, const char *path, int *present)
{
	char key[64];

	if (present)
		*present = 0;
	while (o && json_object_is_type(o, json_type_object)) {
		size_t n = strcspn(path, ".");
		struct json_object *v = NULL;

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		if (!json_object_object_get_ex(o, key, &v))
			return NULL;
		if (!path[n]) {
			if (present)
				*present = 1;
			return v;
		}
		o = v;
		path += n + 1;
	}
	return NULL;
}

/*
 * The string at path, borrowed from o, checked by valid (NULL: any NUL-free string). Absent
 * or null is KCI_INVALID when required, else *out = NULL.
 */
static int
jstr(struct json_object *o, const char *path, int required, int (*valid)(const char *),
     const char **out, struct kci_err *err)
{
	struct json_object *v = jget(o, path, NULL);
	const char *s;

	*out = NULL;
	if (!v) {
		if (required)
			return kci_err_set(err, KCI_INVALID, "%s is missing", path);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return kci_err_set(err, KCI_INVALID, "%s is not a string", path);
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v) || (valid && !valid(s)))
		return kci_err_set(err, KCI_INVALID, "%s is not a valid value", path);
	*out = s;
	return 0;
}

/* The repository a body is about: its full name as the forge gives it (borrowed). */
static int
body_repo(enum forge f, struct json_object *root, const char **out, struct kci_err *err)
{
	return jstr(root,
		    f == FORGE_GITLAB ? "project.path_with_namespace" : "repository.full_name", 1,
		    valid_repo, out, err);
}

int
hook_repo_name(const struct hook_req *r, char **repo, struct kci_err *err)
{
	struct json_object *root = NULL;
	const char *name;
	int rc;

	if ((rc = body_parse(r, &root, err)) < 0 ||
	    (rc = body_repo(r->forge, root, &name, err)) < 0)
		goto out;
	*repo = kci_xstrdup(name);
out:
	json_object_put(root);
	return rc;
}

/* ---- signatures ---- */

static int
unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * GitHub's "sha256=<hex>" (prefix "sha256=") and Gitea's and Forgejo's bare hex: the
 * HMAC-SHA256 of the raw body under the secret, compared in constant time.
 */
static int
verify_hmac(const struct hook_req *r, const char *secret, const char *name, const char *prefix,
	    struct kci_err *err)
{
	const char *sig = header(r, name);
	unsigned char want[EVP_MAX_MD_SIZE], got[32];
	unsigned int want_len = 0;
	size_t plen = strlen(prefix);

	if (!sig || !*sig)
		return kci_err_set(err, KCI_INVALID,
				   "signature: %s is missing (is the webhook's "
				   "secret set?)",
				   name);
	if (strncmp(sig, prefix, plen) != 0 || strlen(sig + plen) != 2 * sizeof(got))
		return kci_err_set(err, KCI_INVALID, "signature: %s is not %s<64 hex digits>", name,
				   prefix);
	for (size_t i = 0; i < sizeof(got); i++) {
		int hi = unhex(sig[plen + 2 * i]), lo = unhex(sig[plen + 2 * i + 1]);
		if (hi < 0 || lo < 0)
			return kci_err_set(err, KCI_INVALID,
					   "signature: %s is not %s<64 hex digits>", name, prefix);
		got[i] = (unsigned char)(hi << 4 | lo);
	}
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), r->len ? r->body : (const uint8_t *)"",
		  r->len, want, &want_len) ||
	    want_len != sizeof(got))
		return kci_err_set(err, KCI_ERROR, "signature: HMAC-SHA256 failed");
	if (CRYPTO_memcmp(want, got, sizeof(got)) != 0)
		return kci_err_set(err, KCI_INVALID,
				   "signature: %s does not match the body (is the "
				   "webhook's secret the one in secret_file?)",
				   name);
	return 0;
}

/*
 * GitLab sends the secret itself. Both sides are hashed first so the comparison takes the
 * same time whatever the lengths and contents.
 */
static int
verify_token(const struct hook_req *r, const char *secret, struct kci_err *err)
{
	const char *token = header(r, "X-Gitlab-Token");
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned int alen = 0, blen = 0;

	if (!token || !*token)
		return kci_err_set(err, KCI_INVALID,
				   "signature: X-Gitlab-Token is missing (is the "
				   "webhook's secret token set?)");
	if (!EVP_Digest(token, strlen(token), a, &alen, EVP_sha256(), NULL) ||
	    !EVP_Digest(secret, strlen(secret), b, &blen, EVP_sha256(), NULL) || alen != blen)
		return kci_err_set(err, KCI_ERROR, "signature: SHA-256 failed");
	if (CRYPTO_memcmp(a, b, alen) != 0)
		return kci_err_set(err, KCI_INVALID,
				   "signature: X-Gitlab-Token is not the "
				   "webhook's secret in secret_file");
	return 0;
}

static int
verify(const struct hook_req *r, const char *secret, struct kci_err *err)
{
	if (!secret || !*secret)
		return kci_err_set(err, KCI_INVALID, "signature: no secret to check it with");
	switch (r->forge) {
	case FORGE_GITHUB:
		return verify_hmac(r, secret, "X-Hub-Signature-256", "sha256=", err);
	case FORGE_GITEA:
		/* Forgejo sends both; a Gitea only its own. */
		if (header(r, "X-Forgejo-Signature"))
			return verify_hmac(r, secret, "X-Forgejo-Signature", "", err);
		return verify_hmac(r, secret, "X-Gitea-Signature", "", err);
	case FORGE_GITLAB:
		return verify_token(r, secret, err);
	}
	return kci_err_set(err, KCI_INVALID, "signature: unknown forge");
}

/* ---- events ---- */

static void ignore(struct hook *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
ignore(struct hook *h, const char *fmt, ...)
{
	va_list ap;
	char buf[160];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	h->kind = HOOK_IGNORED;
	h->ignored = kci_xstrdup(buf);
}

static const char *
deletion(const char *ref)
{
	if (strncmp(ref, "refs/heads/", 11) == 0)
		return "branch deletion";
	if (strncmp(ref, "refs/tags/", 10) == 0)
		return "tag deletion";
	return "ref deletion";
}

/*
 * A push (GitHub, Gitea, Forgejo): ref and after. A tag's `after` is the tag object when the
 * tag is annotated, so a tag builds head_commit.id, the commit it points to, when present.
 */
static int
push_github(struct json_object *root, struct hook *h, struct kci_err *err)
{
	struct json_object *deleted = jget(root, "deleted", NULL);
	const char *ref, *after, *head = NULL;
	int rc;

	if ((rc = jstr(root, "ref", 1, valid_ref, &ref, err)) < 0)
		return rc;
	h->ref = kci_xstrdup(ref);
	if (deleted && !json_object_is_type(deleted, json_type_boolean))
		return kci_err_set(err, KCI_INVALID, "deleted is not a boolean");
	if (deleted && json_object_get_boolean(deleted)) {
		ignore(h, "%s", deletion(ref));
		return 0;
	}
	if ((rc = jstr(root, "after", 1, valid_commit, &after, err)) < 0)
		return rc;
	if (strcmp(after, zero_commit) == 0) {
		ignore(h, "%s", deletion(ref));
		return 0;
	}
	if (strncmp(ref, "refs/tags/", 10) == 0 &&
	    (rc = jstr(root, "head_commit.id", 0, valid_commit, &head, err)) < 0)
		return rc;
	h->kind = HOOK_PUSH;
	h->commit = lower_dup(head ? head : after);
	h->trusted = 1;
	return 0;
}

/* GitLab's Push Hook and Tag Push Hook: checkout_sha is the commit, null when deleted. */
static int
push_gitlab(struct json_object *root, struct hook *h, struct kci_err *err)
{
	const char *ref, *after, *sha;
	int present, rc;

	if ((rc = jstr(root, "ref", 1, valid_ref, &ref, err)) < 0)
		return rc;
	h->ref = kci_xstrdup(ref);
	if ((rc = jstr(root, "after", 0, valid_commit, &after, err)) < 0 ||
	    (rc = jstr(root, "checkout_sha", 0, valid_commit, &sha, err)) < 0)
		return rc;
	jget(root, "checkout_sha", &present);
	if ((present && !sha) || (after && strcmp(after, zero_commit) == 0)) {
		ignore(h, "%s", deletion(ref));
		return 0;
	}
	if (!sha && !after)
		return kci_err_set(err, KCI_INVALID, "checkout_sha is missing");
	h->kind = HOOK_PUSH;
	h->commit = lower_dup(sha ? sha : after);
	h->trusted = 1;
	return 0;
}

static int
valid_action(const char *s)
{
	return valid_word(s, WORD_MAX_LEN, 0);
}

/*
 * A pull request (GitHub, Gitea, Forgejo) builds its head as refs/pull/N/head when opened,
 * reopened or pushed to (`sync`: GitHub's "synchronize", Gitea's "synchronized"). Only a
 * head in the base repository itself is trusted: a fork's code gets no secrets.
 */
static int
pull_request(struct json_object *root, const char *repo, const char *sync, struct hook *h,
	     struct kci_err *err)
{
	struct json_object *num = jget(root, "number", NULL);
	const char *action, *sha, *head_repo, *base_repo;
	int64_t n;
	int rc;

	if ((rc = jstr(root, "action", 1, valid_action, &action, err)) < 0)
		return rc;
	if (strcmp(action, "opened") != 0 && strcmp(action, "reopened") != 0 &&
	    strcmp(action, sync) != 0) {
		ignore(h, "pull request %s", action);
		return 0;
	}
	if (!num)
		num = jget(root, "pull_request.number", NULL);
	if (!num || !json_object_is_type(num, json_type_int))
		return kci_err_set(err, KCI_INVALID, "number is missing or not an integer");
	n = json_object_get_int64(num);
	if (n < 1 || n > PR_NUMBER_MAX)
		return kci_err_set(err, KCI_INVALID, "number %lld is out of range", (long long)n);
	if ((rc = jstr(root, "pull_request.head.sha", 1, valid_commit, &sha, err)) < 0 ||
	    (rc = jstr(root, "pull_request.head.repo.full_name", 0, valid_repo, &head_repo, err)) <
		    0 ||
	    (rc = jstr(root, "pull_request.base.repo.full_name", 1, valid_repo, &base_repo, err)) <
		    0)
		return rc;
	h->kind = HOOK_PULL_REQUEST;
	h->ref = kci_xasprintf("refs/pull/%lld/head", (long long)n);
	h->commit = lower_dup(sha);
	/* A deleted fork has no head.repo: untrusted too. */
	h->trusted = head_repo && strcmp(head_repo, base_repo) == 0 && strcmp(base_repo, repo) == 0;
	return 0;
}

/* The event header's value, checked; KCI_INVALID when missing or not a short word. */
static int
event_of(const struct hook_req *r, const char *a, const char *b, const char **out,
	 struct kci_err *err)
{
	const char *ev = header(r, a);

	if (!ev && b)
		ev = header(r, b);
	if (!ev)
		return kci_err_set(err, KCI_INVALID, "%s is missing", a);
	if (!valid_word(ev, WORD_MAX_LEN, 1))
		return kci_err_set(err, KCI_INVALID, "%s is not an event name", a);
	*out = ev;
	return 0;
}

/* The delivery id, when the forge sent one: a short printable word. */
static int
delivery_of(const struct hook_req *r, const char *a, const char *b, struct hook *h,
	    struct kci_err *err)
{
	const char *id = header(r, a);

	if (!id && b)
		id = header(r, b);
	if (!id || !*id)
		return 0;
	if (!valid_word(id, DELIVERY_MAX_LEN, 0))
		return kci_err_set(err, KCI_INVALID, "%s is not a delivery id", a);
	h->delivery = kci_xstrdup(id);
	return 0;
}

static int
event_github(const struct hook_req *r, struct json_object *root, struct hook *h,
	     struct kci_err *err)
{
	const char *ev;
	int rc;

	if ((rc = event_of(r, "X-GitHub-Event", NULL, &ev, err)) < 0 ||
	    (rc = delivery_of(r, "X-GitHub-Delivery", NULL, h, err)) < 0)
		return rc;
	if (!strcmp(ev, "ping")) {
		h->kind = HOOK_PING;
		return 0;
	}
	if (!strcmp(ev, "push"))
		return push_github(root, h, err);
	if (!strcmp(ev, "pull_request"))
		return pull_request(root, h->repo, "synchronize", h, err);
	ignore(h, "event %s", ev);
	return 0;
}

static int
event_gitea(const struct hook_req *r, struct json_object *root, struct hook *h, struct kci_err *err)
{
	const char *ev;
	int rc;

	if ((rc = event_of(r, "X-Forgejo-Event", "X-Gitea-Event", &ev, err)) < 0 ||
	    (rc = delivery_of(r, "X-Forgejo-Delivery", "X-Gitea-Delivery", h, err)) < 0)
		return rc;
	if (!strcmp(ev, "push"))
		return push_github(root, h, err);
	if (!strcmp(ev, "pull_request"))
		return pull_request(root, h->repo, "synchronized", h, err);
	ignore(h, "event %s", ev);
	return 0;
}

static int
event_gitlab(const struct hook_req *r, struct json_object *root, struct hook *h,
	     struct kci_err *err)
{
	const char *ev;
	int rc;

	if ((rc = event_of(r, "X-Gitlab-Event", NULL, &ev, err)) < 0 ||
	    (rc = delivery_of(r, "X-Gitlab-Event-UUID", "Idempotency-Key", h, err)) < 0)
		return rc;
	if (!strcmp(ev, "Push Hook") || !strcmp(ev, "Tag Push Hook"))
		return push_gitlab(root, h, err);
	ignore(h, "event %s", ev);
	return 0;
}

int
hook_verify_parse(const struct hook_req *r, const char *secret, struct hook *out, int *unauthorized,
		  struct kci_err *err)
{
	struct json_object *root = NULL;
	struct hook h = { 0 };
	const char *repo;
	int rc;

	*unauthorized = 0;
	if (r->len > HOOK_BODY_MAX) {
		rc = kci_err_set(err, KCI_INVALID, "body larger than %u bytes", HOOK_BODY_MAX);
		goto out;
	}
	if ((rc = verify(r, secret, err)) < 0) {
		*unauthorized = rc == KCI_INVALID;
		goto out;
	}
	if ((rc = body_parse(r, &root, err)) < 0 ||
	    (rc = body_repo(r->forge, root, &repo, err)) < 0)
		goto out;
	h.repo = kci_xstrdup(repo);
	switch (r->forge) {
	case FORGE_GITHUB:
		rc = event_github(r, root, &h, err);
		break;
	case FORGE_GITEA:
		rc = event_gitea(r, root, &h, err);
		break;
	case FORGE_GITLAB:
		rc = event_gitlab(r, root, &h, err);
		break;
	}
	if (rc == 0) {
		*out = h;
		memset(&h, 0, sizeof(h));
	}
out:
	hook_clear(&h);
	json_object_put(root);
	return rc;
}

void
hook_clear(struct hook *h)
{
	if (!h)
		return;
	free(h->delivery);
	free(h->repo);
	free(h->ref);
	free(h->commit);
	free(h->ignored);
	memset(h, 0, sizeof(*h));
}
