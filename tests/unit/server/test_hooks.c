/*
 * Unit tests for server/hooks.c: deliveries shaped like the forges' documented examples
 * (trimmed), signed or not, tampered with, and malformed in the ways a body can be.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "server/internal.h"

/*
 * hooks.c must compare signatures with CRYPTO_memcmp: this definition takes the place of
 * libcrypto's in the test binary, counts the calls and compares in constant time itself.
 */
static int memcmp_calls;
static size_t memcmp_len;

int
CRYPTO_memcmp(const void *in_a, const void *in_b, size_t len)
{
	const volatile unsigned char *a = in_a, *b = in_b;
	unsigned char x = 0;

	memcmp_calls++;
	memcmp_len = len;
	for (size_t i = 0; i < len; i++)
		x |= a[i] ^ b[i];
	return x;
}

static const char secret[] = "It's a Secret to Everybody";

/* ---- requests ---- */

struct req {
	struct hook_req r;
	const char *names[8];
	char values[8][160];
	size_t n;
	char *body;
};

static const char *
lookup(void *ctx, const char *name)
{
	struct req *q = ctx;

	for (size_t i = 0; i < q->n; i++) {
		if (strcasecmp(q->names[i], name) == 0)
			return q->values[i];
	}
	return NULL;
}

static void
set_header(struct req *q, const char *name, const char *value)
{
	assert_true(q->n < 8);
	q->names[q->n] = name;
	snprintf(q->values[q->n], sizeof(q->values[0]), "%s", value);
	q->n++;
}

static void
req_init(struct req *q, enum forge f, const char *body)
{
	memset(q, 0, sizeof(*q));
	q->body = strdup(body);
	q->r.forge = f;
	q->r.header = lookup;
	q->r.ctx = q;
	q->r.body = (const uint8_t *)q->body;
	q->r.len = strlen(body);
}

static void
req_free(struct req *q)
{
	free(q->body);
}

/* Hex HMAC-SHA256 of the request's body under key. */
static void
hmac_hex(const struct req *q, const char *key, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	assert_non_null(HMAC(EVP_sha256(), key, (int)strlen(key), q->r.body, q->r.len, md, &n));
	assert_int_equal(n, 32);
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A GitHub delivery of event with body, signed with key (NULL: unsigned). */
static void
github(struct req *q, const char *event, const char *body, const char *key)
{
	char hex[65], sig[80];

	req_init(q, FORGE_GITHUB, body);
	set_header(q, "X-GitHub-Event", event);
	set_header(q, "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
	set_header(q, "X-GitHub-Hook-ID", "292430182");
	if (key) {
		hmac_hex(q, key, hex);
		snprintf(sig, sizeof(sig), "sha256=%s", hex);
		set_header(q, "X-Hub-Signature-256", sig);
	}
}

/* A Gitea delivery (Forgejo's when forgejo), signed with key. */
static void
gitea(struct req *q, const char *event, const char *body, const char *key, int forgejo)
{
	char hex[65];

	req_init(q, FORGE_GITEA, body);
	hmac_hex(q, key, hex);
	if (forgejo) {
		set_header(q, "X-Forgejo-Event", event);
		set_header(q, "X-Forgejo-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473");
		set_header(q, "X-Forgejo-Signature", hex);
	}
	set_header(q, "X-Gitea-Event", event);
	set_header(q, "X-Gitea-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473");
	set_header(q, "X-Gitea-Signature", hex);
	set_header(q, "X-GitHub-Event", event); /* Gitea's compatibility headers */
}

/* A GitLab delivery with the token (NULL: none). */
static void
gitlab(struct req *q, const char *event, const char *body, const char *token)
{
	req_init(q, FORGE_GITLAB, body);
	set_header(q, "X-Gitlab-Event", event);
	set_header(q, "X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e");
	set_header(q, "X-Gitlab-Instance", "https://gitlab.com");
	if (token)
		set_header(q, "X-Gitlab-Token", token);
}

/* Verifies and parses q with the secret; the code, with *unauthorized and *h set. */
static int
parse(struct req *q, struct hook *h, int *unauthorized, struct kci_err *err)
{
	memset(h, 0, sizeof(*h));
	*unauthorized = -1;
	return hook_verify_parse(&q->r, secret, h, unauthorized, err);
}

/* Parses q, which must succeed. */
static void
parse_ok(struct req *q, struct hook *h)
{
	struct kci_err err = KCI_ERR_INIT;
	int unauthorized;

	if (parse(q, h, &unauthorized, &err) != 0)
		fail_msg("hook_verify_parse: %s", err.msg);
	assert_int_equal(unauthorized, 0);
}

/* Parses q, which must fail as unauthorized (1) or malformed (0); the message contains want. */
static void
parse_fails(struct req *q, int unauthorized, const char *want)
{
	struct kci_err err = KCI_ERR_INIT;
	struct hook h;
	int u;

	if (parse(q, &h, &u, &err) != KCI_INVALID)
		fail_msg("expected KCI_INVALID: %s", err.msg);
	assert_int_equal(u, unauthorized);
	if (!strstr(err.msg, want))
		fail_msg("\"%s\" is not in \"%s\"", want, err.msg);
	assert_null(h.repo);
	assert_null(h.delivery);
}

/* ---- payloads, trimmed from the forges' documented examples ---- */

#define SHA_BEFORE "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
#define SHA_AFTER  "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
#define SHA_TAG	   "8c7f2ab1d3e4f5061728394a5b6c7d8e9f0a1b2c"
#define ZEROS	   "0000000000000000000000000000000000000000"

#define GITHUB_REPO                                                                                \
	"\"repository\":{\"id\":1296269,\"node_id\":\"MDEwOlJlcG9zaXRvcnkxMjk2MjY5\","             \
	"\"name\":\"widget\",\"full_name\":\"acme/widget\",\"private\":false,"                     \
	"\"owner\":{\"login\":\"acme\",\"id\":1,\"type\":\"Organization\"},"                       \
	"\"html_url\":\"https://github.com/acme/widget\","                                         \
	"\"clone_url\":\"https://github.com/acme/widget.git\",\"default_branch\":\"main\"}"

static const char github_push[] =
	"{\"ref\":\"refs/heads/main\",\"before\":\"" SHA_BEFORE "\","
	"\"after\":\"" SHA_AFTER "\"," GITHUB_REPO ","
	"\"pusher\":{\"name\":\"octocat\",\"email\":\"octocat@github.com\"},"
	"\"sender\":{\"login\":\"octocat\",\"id\":583231,\"type\":\"User\"},"
	"\"created\":false,\"deleted\":false,\"forced\":false,\"base_ref\":null,"
	"\"compare\":\"https://github.com/acme/widget/compare/6113728f27ae...0d1a26e67d8f\","
	"\"commits\":[{\"id\":\"" SHA_AFTER "\","
	"\"tree_id\":\"f9d2a07e9488b91af2641b26b9407fe22a451433\",\"distinct\":true,"
	"\"message\":\"Update README.md\",\"timestamp\":\"2024-03-01T12:00:00Z\","
	"\"author\":{\"name\":\"Octo Cat\",\"email\":\"octocat@github.com\","
	"\"username\":\"octocat\"},"
	"\"added\":[],\"removed\":[],\"modified\":[\"README.md\"]}],"
	"\"head_commit\":{\"id\":\"" SHA_AFTER "\",\"message\":\"Update README.md\"}}\n";

static const char github_delete[] =
	"{\"ref\":\"refs/heads/feature\",\"before\":\"" SHA_AFTER "\","
	"\"after\":\"" ZEROS "\"," GITHUB_REPO ","
	"\"created\":false,\"deleted\":true,\"forced\":false,\"base_ref\":null,"
	"\"commits\":[],\"head_commit\":null}";

static const char github_tag[] =
	"{\"ref\":\"refs/tags/v1.0.0\",\"before\":\"" ZEROS "\","
	"\"after\":\"" SHA_TAG "\"," GITHUB_REPO ","
	"\"created\":true,\"deleted\":false,\"forced\":false,"
	"\"base_ref\":\"refs/heads/main\","
	"\"commits\":[],\"head_commit\":{\"id\":\"" SHA_AFTER "\",\"message\":\"Release\"}}";

static const char github_ping[] =
	"{\"zen\":\"Design for failure.\",\"hook_id\":292430182,"
	"\"hook\":{\"type\":\"Repository\",\"id\":292430182,\"name\":\"web\",\"active\":true,"
	"\"events\":[\"push\",\"pull_request\"],\"config\":{\"content_type\":\"json\","
	"\"insecure_ssl\":\"0\",\"url\":\"https://ci.example.com/hooks/github\"}}," GITHUB_REPO ","
	"\"sender\":{\"login\":\"octocat\",\"id\":583231}}";

/* A pull request event's format: action, head sha, head repository (JSON), base sha. */
static const char github_pr_format[] =
	"{\"action\":\"%s\",\"number\":7,"
	"\"pull_request\":{\"url\":\"https://api.github.com/repos/acme/widget/pulls/7\","
	"\"id\":279147437,\"number\":7,\"state\":\"open\",\"title\":\"Fix the widget\","
	"\"user\":{\"login\":\"octocat\"},\"draft\":false,"
	"\"head\":{\"label\":\"octocat:fix\",\"ref\":\"fix\",\"sha\":\"%s\",\"repo\":%s},"
	"\"base\":{\"label\":\"acme:main\",\"ref\":\"main\",\"sha\":\"%s\","
	"\"repo\":{\"id\":1296269,\"full_name\":\"acme/widget\"}}}," GITHUB_REPO
	",\"sender\":{\"login\":\"octocat\"}}";

/* A pull request event (malloc'd): action, the head's repository ("null": a deleted fork). */
static char *
github_pr(const char *action, const char *head_repo)
{
	return kci_xasprintf(github_pr_format, action, SHA_AFTER, head_repo, SHA_BEFORE);
}

static const char gitea_push[] =
	"{\"ref\":\"refs/heads/develop\",\"before\":\"28e1879d029cb852e4844d9c718537df08844e03\","
	"\"after\":\"bffeb74224043ba2feb48d137756c8a9331c449a\","
	"\"compare_url\":\"http://localhost:3000/gitea/webhooks/compare/28e1879d...bffeb742\","
	"\"commits\":[{\"id\":\"bffeb74224043ba2feb48d137756c8a9331c449a\","
	"\"message\":\"Webhooks Yay!\","
	"\"url\":\"http://localhost:3000/gitea/webhooks/commit/"
	"bffeb74224043ba2feb48d137756c8a9331c449a\","
	"\"author\":{\"name\":\"Gitea\",\"email\":\"someone@gitea.io\",\"username\":\"gitea\"},"
	"\"timestamp\":\"2017-03-13T13:52:11-04:00\"}],"
	"\"repository\":{\"id\":140,"
	"\"owner\":{\"id\":1,\"login\":\"gitea\",\"username\":\"gitea\"},"
	"\"name\":\"webhooks\",\"full_name\":\"gitea/webhooks\",\"private\":false,\"fork\":false,"
	"\"html_url\":\"http://localhost:3000/gitea/webhooks\","
	"\"clone_url\":\"http://localhost:3000/gitea/webhooks.git\",\"default_branch\":\"main\"},"
	"\"pusher\":{\"id\":1,\"login\":\"gitea\"},\"sender\":{\"id\":1,\"login\":\"gitea\"}}";

static const char gitea_pr_sync[] =
	"{\"action\":\"synchronized\",\"number\":12,"
	"\"pull_request\":{\"id\":40,\"number\":12,\"state\":\"open\",\"title\":\"Faster hooks\","
	"\"head\":{\"label\":\"fast\",\"ref\":\"fast\",\"sha\":\"" SHA_AFTER "\",\"repo_id\":141,"
	"\"repo\":{\"id\":141,\"full_name\":\"mallory/webhooks\"}},"
	"\"base\":{\"label\":\"main\",\"ref\":\"main\",\"sha\":\"" SHA_BEFORE "\",\"repo_id\":140,"
	"\"repo\":{\"id\":140,\"full_name\":\"gitea/webhooks\"}}},"
	"\"repository\":{\"id\":140,\"name\":\"webhooks\",\"full_name\":\"gitea/webhooks\"},"
	"\"sender\":{\"id\":2,\"login\":\"mallory\"}}";

#define GITLAB_PROJECT                                                                             \
	"\"project_id\":15,"                                                                       \
	"\"project\":{\"id\":15,\"name\":\"Diaspora\",\"description\":\"\","                       \
	"\"web_url\":\"https://gitlab.example.com/mike/diaspora\","                                \
	"\"git_http_url\":\"https://gitlab.example.com/mike/diaspora.git\","                       \
	"\"namespace\":\"Mike\",\"visibility_level\":0,"                                           \
	"\"path_with_namespace\":\"mike/diaspora\",\"default_branch\":\"master\"}"

static const char gitlab_push[] =
	"{\"object_kind\":\"push\",\"event_name\":\"push\","
	"\"before\":\"95790bf891e76fee5e1747ab589903a6a1f80f22\","
	"\"after\":\"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\",\"ref\":\"refs/heads/master\","
	"\"ref_protected\":true,\"checkout_sha\":\"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\","
	"\"user_id\":4,\"user_name\":\"John Smith\",\"user_username\":\"jsmith\"," GITLAB_PROJECT
	","
	"\"commits\":[{\"id\":\"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\","
	"\"message\":\"fixed readme\",\"title\":\"fixed readme\","
	"\"timestamp\":\"2012-01-03T23:36:29+02:00\","
	"\"author\":{\"name\":\"GitLab dev user\",\"email\":\"[REDACTED]\"},"
	"\"added\":[\"CHANGELOG\"],\"modified\":[\"app/controller/application.rb\"],"
	"\"removed\":[]}],\"total_commits_count\":1,"
	"\"repository\":{\"name\":\"Diaspora\",\"url\":\"git@example.com:mike/diaspora.git\"}}";

static const char gitlab_tag[] =
	"{\"object_kind\":\"tag_push\",\"event_name\":\"tag_push\","
	"\"before\":\"" ZEROS "\",\"after\":\"82b3d5ae55f7080f1e6022629cdb57bfae7cccc7\","
	"\"ref\":\"refs/tags/v1.0.0\",\"ref_protected\":true,"
	"\"checkout_sha\":\"5937ac0a7beb003549fc5fd26fc247adbce4a52e\",\"user_id\":1,"
	"\"user_name\":\"John Smith\"," GITLAB_PROJECT ",\"commits\":[],\"total_commits_count\":0}";

static const char gitlab_delete[] =
	"{\"object_kind\":\"push\",\"event_name\":\"push\","
	"\"before\":\"95790bf891e76fee5e1747ab589903a6a1f80f22\",\"after\":\"" ZEROS "\","
	"\"ref\":\"refs/heads/old\",\"checkout_sha\":null,\"user_id\":4," GITLAB_PROJECT ","
	"\"commits\":[],\"total_commits_count\":0}";

/* ---- GitHub ---- */

static void
test_hooks__github_push_with_good_signature(void **state)
{
	struct req q;
	struct hook h;

	(void)state;
	github(&q, "push", github_push, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PUSH);
	assert_string_equal(h.delivery, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
	assert_string_equal(h.repo, "acme/widget");
	assert_string_equal(h.ref, "refs/heads/main");
	assert_string_equal(h.commit, SHA_AFTER);
	assert_int_equal(h.trusted, 1);
	assert_null(h.ignored);
	hook_clear(&h);
	assert_null(h.repo);
	req_free(&q);
}

static void
test_hooks__github_missing_or_wrong_signature_is_unauthorized(void **state)
{
	struct req q;

	(void)state;
	github(&q, "push", github_push, NULL);
	parse_fails(&q, 1, "signature: X-Hub-Signature-256 is missing");
	req_free(&q);

	github(&q, "push", github_push, "another secret");
	parse_fails(&q, 1, "signature: X-Hub-Signature-256 does not match the body");
	req_free(&q);

	/* The old SHA-1 header alone, a bare hex digest, a short one, a non-hex one. */
	github(&q, "push", github_push, NULL);
	set_header(&q, "X-Hub-Signature", "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6");
	parse_fails(&q, 1, "signature: X-Hub-Signature-256 is missing");
	req_free(&q);
	github(&q, "push", github_push, NULL);
	set_header(&q, "X-Hub-Signature-256",
		   "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
	parse_fails(&q, 1, "signature: X-Hub-Signature-256 is not sha256=<64 hex digits>");
	req_free(&q);
	github(&q, "push", github_push, NULL);
	set_header(&q, "X-Hub-Signature-256", "sha256=757107ea0eb2509f");
	parse_fails(&q, 1, "is not sha256=<64 hex digits>");
	req_free(&q);
	github(&q, "push", github_push, NULL);
	set_header(&q, "X-Hub-Signature-256",
		   "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g");
	parse_fails(&q, 1, "is not sha256=<64 hex digits>");
	req_free(&q);
}

static void
test_hooks__body_tampered_after_signing_is_unauthorized(void **state)
{
	struct req q;
	char *at;

	(void)state;
	github(&q, "push", github_push, secret);
	at = strstr(q.body, "refs/heads/main");
	memcpy(at, "refs/heads/mail", 15);
	parse_fails(&q, 1, "does not match the body");
	req_free(&q);

	/* A byte cut off the end (the trailing newline) is a change too. */
	github(&q, "push", github_push, secret);
	q.r.len--;
	parse_fails(&q, 1, "does not match the body");
	req_free(&q);

	gitea(&q, "push", gitea_push, secret, 0);
	q.body[strlen(q.body) - 2] = 'X';
	parse_fails(&q, 1, "signature: X-Gitea-Signature does not match the body");
	req_free(&q);
}

static void
test_hooks__signatures_compared_in_constant_time(void **state)
{
	struct req q;
	struct hook h;
	int before;

	(void)state;
	before = memcmp_calls;
	github(&q, "push", github_push, secret);
	parse_ok(&q, &h);
	assert_int_equal(memcmp_calls, before + 1);
	assert_int_equal(memcmp_len, 32);
	hook_clear(&h);
	req_free(&q);

	before = memcmp_calls;
	github(&q, "push", github_push, "wrong");
	parse_fails(&q, 1, "does not match");
	assert_int_equal(memcmp_calls, before + 1);
	req_free(&q);

	before = memcmp_calls;
	gitea(&q, "push", gitea_push, secret, 1);
	parse_ok(&q, &h);
	assert_int_equal(memcmp_calls, before + 1);
	assert_int_equal(memcmp_len, 32);
	hook_clear(&h);
	req_free(&q);

	/* GitLab's token: hashed, then compared, whatever its length. */
	before = memcmp_calls;
	gitlab(&q, "Push Hook", gitlab_push, "x");
	parse_fails(&q, 1, "X-Gitlab-Token is not the webhook's secret");
	assert_int_equal(memcmp_calls, before + 1);
	assert_int_equal(memcmp_len, 32);
	req_free(&q);
}

static void
test_hooks__github_branch_deletion_is_ignored(void **state)
{
	struct req q;
	struct hook h;
	char *body;

	(void)state;
	github(&q, "push", github_delete, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_IGNORED);
	assert_string_equal(h.ignored, "branch deletion");
	assert_string_equal(h.ref, "refs/heads/feature");
	assert_null(h.commit);
	hook_clear(&h);
	req_free(&q);

	/* A zero `after` without "deleted" is a deletion too. */
	body = strdup(github_delete);
	memcpy(strstr(body, "\"deleted\":true"), "\"deleted\":null", 14);
	github(&q, "push", body, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_IGNORED);
	assert_string_equal(h.ignored, "branch deletion");
	hook_clear(&h);
	req_free(&q);
	free(body);
}

static void
test_hooks__github_annotated_tag_builds_its_commit(void **state)
{
	struct req q;
	struct hook h;

	(void)state;
	github(&q, "push", github_tag, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PUSH);
	assert_string_equal(h.ref, "refs/tags/v1.0.0");
	assert_string_equal(h.commit, SHA_AFTER); /* head_commit.id, not the tag object */
	hook_clear(&h);
	req_free(&q);
}

static void
test_hooks__github_ping_and_other_events(void **state)
{
	struct req q;
	struct hook h;

	(void)state;
	github(&q, "ping", github_ping, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PING);
	assert_string_equal(h.repo, "acme/widget");
	assert_null(h.commit);
	hook_clear(&h);
	req_free(&q);

	github(&q, "issues", github_ping, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_IGNORED);
	assert_string_equal(h.ignored, "event issues");
	hook_clear(&h);
	req_free(&q);

	/* Signed but without an event: malformed, not unauthorized. */
	req_init(&q, FORGE_GITHUB, github_ping);
	{
		char hex[65], sig[80];
		hmac_hex(&q, secret, hex);
		snprintf(sig, sizeof(sig), "sha256=%s", hex);
		set_header(&q, "X-Hub-Signature-256", sig);
	}
	parse_fails(&q, 0, "X-GitHub-Event is missing");
	req_free(&q);

	github(&q, "push\x01", github_push, secret);
	parse_fails(&q, 0, "X-GitHub-Event is not an event name");
	req_free(&q);
}

static void
test_hooks__github_pull_requests(void **state)
{
	struct req q;
	struct hook h;
	char *body;

	(void)state;
	body = github_pr("opened", "{\"id\":1296269,\"full_name\":\"acme/widget\"}");
	github(&q, "pull_request", body, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PULL_REQUEST);
	assert_string_equal(h.ref, "refs/pull/7/head");
	assert_string_equal(h.commit, SHA_AFTER);
	assert_int_equal(h.trusted, 1);
	hook_clear(&h);
	req_free(&q);
	free(body);

	/* From a fork: built, without secrets. */
	body = github_pr("synchronize", "{\"id\":9,\"full_name\":\"mallory/widget\"}");
	github(&q, "pull_request", body, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PULL_REQUEST);
	assert_int_equal(h.trusted, 0);
	hook_clear(&h);
	req_free(&q);
	free(body);

	/* The fork was deleted since: no head.repo, untrusted too. */
	body = github_pr("reopened", "null");
	github(&q, "pull_request", body, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PULL_REQUEST);
	assert_int_equal(h.trusted, 0);
	hook_clear(&h);
	req_free(&q);
	free(body);

	body = github_pr("closed", "{\"full_name\":\"acme/widget\"}");
	github(&q, "pull_request", body, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_IGNORED);
	assert_string_equal(h.ignored, "pull request closed");
	hook_clear(&h);
	req_free(&q);
	free(body);
}

/* ---- Gitea and Forgejo ---- */

static void
test_hooks__gitea_and_forgejo_push(void **state)
{
	struct req q;
	struct hook h;

	(void)state;
	gitea(&q, "push", gitea_push, secret, 0);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PUSH);
	assert_string_equal(h.delivery, "f6266f16-1bf3-46a5-9ea4-602e06ead473");
	assert_string_equal(h.repo, "gitea/webhooks");
	assert_string_equal(h.ref, "refs/heads/develop");
	assert_string_equal(h.commit, "bffeb74224043ba2feb48d137756c8a9331c449a");
	hook_clear(&h);
	req_free(&q);

	gitea(&q, "push", gitea_push, secret, 1);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PUSH);
	hook_clear(&h);
	req_free(&q);

	/* Gitea's signature is bare hex: GitHub's "sha256=" form is not it. */
	gitea(&q, "push", gitea_push, secret, 0);
	{
		char hex[65];
		snprintf(hex, sizeof(hex), "%s", lookup(&q, "X-Gitea-Signature"));
		snprintf(q.values[2], sizeof(q.values[2]), "sha256=%s", hex);
	}
	parse_fails(&q, 1, "X-Gitea-Signature is not <64 hex digits>");
	req_free(&q);

	req_init(&q, FORGE_GITEA, gitea_push);
	set_header(&q, "X-Gitea-Event", "push");
	parse_fails(&q, 1, "signature: X-Gitea-Signature is missing");
	req_free(&q);
}

static void
test_hooks__gitea_pull_request_from_a_fork(void **state)
{
	struct req q;
	struct hook h;

	(void)state;
	gitea(&q, "pull_request", gitea_pr_sync, secret, 0);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PULL_REQUEST);
	assert_string_equal(h.ref, "refs/pull/12/head");
	assert_string_equal(h.commit, SHA_AFTER);
	assert_int_equal(h.trusted, 0);
	hook_clear(&h);
	req_free(&q);

	gitea(&q, "issues", gitea_push, secret, 1);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_IGNORED);
	assert_string_equal(h.ignored, "event issues");
	hook_clear(&h);
	req_free(&q);
}

/* ---- GitLab ---- */

static void
test_hooks__gitlab_push_and_tags(void **state)
{
	struct req q;
	struct hook h;

	(void)state;
	gitlab(&q, "Push Hook", gitlab_push, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PUSH);
	assert_string_equal(h.delivery, "13792a34-cac6-4fda-95a8-c58e00a3954e");
	assert_string_equal(h.repo, "mike/diaspora");
	assert_string_equal(h.ref, "refs/heads/master");
	assert_string_equal(h.commit, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
	hook_clear(&h);
	req_free(&q);

	/* An annotated tag: checkout_sha is its commit, `after` the tag object. */
	gitlab(&q, "Tag Push Hook", gitlab_tag, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_PUSH);
	assert_string_equal(h.ref, "refs/tags/v1.0.0");
	assert_string_equal(h.commit, "5937ac0a7beb003549fc5fd26fc247adbce4a52e");
	hook_clear(&h);
	req_free(&q);

	gitlab(&q, "Push Hook", gitlab_delete, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_IGNORED);
	assert_string_equal(h.ignored, "branch deletion");
	hook_clear(&h);
	req_free(&q);

	gitlab(&q, "Merge Request Hook", gitlab_push, secret);
	parse_ok(&q, &h);
	assert_int_equal(h.kind, HOOK_IGNORED);
	assert_string_equal(h.ignored, "event Merge Request Hook");
	hook_clear(&h);
	req_free(&q);

	/* No event UUID: the Idempotency-Key. */
	req_init(&q, FORGE_GITLAB, gitlab_push);
	set_header(&q, "X-Gitlab-Event", "Push Hook");
	set_header(&q, "X-Gitlab-Token", secret);
	set_header(&q, "Idempotency-Key", "0b1f6d5e-3c2a-4e8f-9a7b-1c2d3e4f5a6b");
	parse_ok(&q, &h);
	assert_string_equal(h.delivery, "0b1f6d5e-3c2a-4e8f-9a7b-1c2d3e4f5a6b");
	hook_clear(&h);
	req_free(&q);
}

static void
test_hooks__gitlab_token_missing_or_wrong_is_unauthorized(void **state)
{
	struct req q;

	(void)state;
	gitlab(&q, "Push Hook", gitlab_push, NULL);
	parse_fails(&q, 1, "signature: X-Gitlab-Token is missing");
	req_free(&q);
	gitlab(&q, "Push Hook", gitlab_push, "It's a Secret to Everybod");
	parse_fails(&q, 1, "signature: X-Gitlab-Token is not the webhook's secret");
	req_free(&q);
	gitlab(&q, "Push Hook", gitlab_push, "It's a Secret to Everybody!");
	parse_fails(&q, 1, "signature: X-Gitlab-Token is not the webhook's secret");
	req_free(&q);
}

/* ---- malformed bodies: signed, so they are 400s, never 401s ---- */

static void
test_hooks__malformed_json_is_invalid(void **state)
{
	static const char *const bodies[] = {
		"{\"ref\":\"refs/heads/main\"",		     /* truncated */
		"{\"ref\":\"refs/heads/main\",}",	     /* trailing comma (strict) */
		"{\"ref\":'refs/heads/main'}",		     /* single quotes */
		"[{\"ref\":\"refs/heads/main\"}]",	     /* no object */
		"{\"ref\":\"refs/heads/main\"} {}",	     /* two documents */
		"\"refs/heads/main\"",			     /* a string */
		"{\"ref\":\"\xff\xfe\"}",		     /* not UTF-8 */
		"payload=%7B%22ref%22%3A%22refs%2Fheads%22", /* form-encoded */
	};
	struct req q;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(*bodies); i++) {
		github(&q, "push", bodies[i], secret);
		parse_fails(&q, 0, "body");
		req_free(&q);
	}
	github(&q, "push", "", secret);
	parse_fails(&q, 0, "empty body");
	req_free(&q);
}

/* github_push with `from` replaced by `to` (once), signed. */
static void
github_edited(struct req *q, const char *from, const char *to)
{
	const char *at = strstr(github_push, from);
	char *body;

	assert_non_null(at);
	body = kci_xasprintf("%.*s%s%s", (int)(at - github_push), github_push, to,
			     at + strlen(from));
	github(q, "push", body, secret);
	free(body);
}

static void
test_hooks__wrong_types_are_invalid(void **state)
{
	struct req q;

	(void)state;
	github_edited(&q, "\"ref\":\"refs/heads/main\"", "\"ref\":42");
	parse_fails(&q, 0, "ref is not a string");
	req_free(&q);
	github_edited(&q, "\"ref\":\"refs/heads/main\",", "");
	parse_fails(&q, 0, "ref is missing");
	req_free(&q);
	github_edited(&q, "\"after\":\"" SHA_AFTER "\"", "\"after\":[\"" SHA_AFTER "\"]");
	parse_fails(&q, 0, "after is not a string");
	req_free(&q);
	github_edited(&q, "\"deleted\":false", "\"deleted\":\"false\"");
	parse_fails(&q, 0, "deleted is not a boolean");
	req_free(&q);
	github_edited(&q, "\"full_name\":\"acme/widget\"", "\"full_name\":{\"a\":1}");
	parse_fails(&q, 0, "repository.full_name is not a string");
	req_free(&q);
	github_edited(&q, "\"repository\":{", "\"repositories\":{");
	parse_fails(&q, 0, "repository.full_name is missing");
	req_free(&q);
}

static void
test_hooks__bad_values_are_invalid(void **state)
{
	char big[600];
	struct req q;

	(void)state;
	/* Commits: exactly 40 hex digits. */
	github_edited(&q, SHA_AFTER "\",\"repository", SHA_AFTER "0\",\"repository");
	parse_fails(&q, 0, "after is not a valid value");
	req_free(&q);
	github_edited(&q, SHA_AFTER "\",\"repository",
		      "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1g\",\"repository");
	parse_fails(&q, 0, "after is not a valid value");
	req_free(&q);
	/* Refs: under refs/, printable, no "..", at most 255 bytes. */
	github_edited(&q, "refs/heads/main", "main");
	parse_fails(&q, 0, "ref is not a valid value");
	req_free(&q);
	github_edited(&q, "refs/heads/main", "refs/heads/../../etc");
	parse_fails(&q, 0, "ref is not a valid value");
	req_free(&q);
	github_edited(&q, "refs/heads/main", "refs/heads/ma\\u0001in");
	parse_fails(&q, 0, "ref is not a valid value");
	req_free(&q);
	github_edited(&q, "refs/heads/main", "refs/heads/ma in");
	parse_fails(&q, 0, "ref is not a valid value");
	req_free(&q);
	snprintf(big, sizeof(big), "refs/heads/%0300d", 7);
	github_edited(&q, "refs/heads/main", big);
	parse_fails(&q, 0, "ref is not a valid value");
	req_free(&q);
	/* Repository names: printable, at most 255 bytes, no NUL. */
	snprintf(big, sizeof(big), "acme/%0300d", 7);
	github_edited(&q, "\"full_name\":\"acme/widget\"", "\"full_name\":\"acme/widget\\u0000x\"");
	parse_fails(&q, 0, "repository.full_name is not a valid value");
	req_free(&q);
	github_edited(&q, "acme/widget\"", "acme/\\nwidget\"");
	parse_fails(&q, 0, "repository.full_name is not a valid value");
	req_free(&q);
	{
		char from[] = "\"full_name\":\"acme/widget\"", to[700];
		snprintf(to, sizeof(to), "\"full_name\":\"%s\"", big);
		github_edited(&q, from, to);
		parse_fails(&q, 0, "repository.full_name is not a valid value");
		req_free(&q);
	}
	/* A pull request number out of range. */
	{
		char *body = github_pr("opened", "{\"full_name\":\"acme/widget\"}");
		memcpy(strstr(body, "\"number\":7"), "\"number\":0", 10);
		github(&q, "pull_request", body, secret);
		parse_fails(&q, 0, "number 0 is out of range");
		req_free(&q);
		free(body);
	}
}

static void
test_hooks__uppercase_commit_is_lowered(void **state)
{
	struct req q;
	struct hook h;

	(void)state;
	github_edited(&q, "\"after\":\"" SHA_AFTER "\"",
		      "\"after\":\"0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C\"");
	parse_ok(&q, &h);
	assert_string_equal(h.commit, SHA_AFTER);
	hook_clear(&h);
	req_free(&q);
}

static void
test_hooks__oversized_and_hostile_bodies(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	size_t n = HOOK_BODY_MAX + 1;
	char *body = malloc(n + 1), *repo = NULL;
	struct req q;

	(void)state;
	/* Larger than HOOK_BODY_MAX: refused before anything, even signature checks. */
	memset(body, ' ', n);
	body[0] = '{';
	body[n - 1] = '}';
	body[n] = '\0';
	github(&q, "push", body, secret);
	parse_fails(&q, 0, "body larger than");
	assert_int_equal(hook_repo_name(&q.r, &repo, &err), KCI_INVALID);
	req_free(&q);

	/* Nested deeper than a webhook ever is. */
	memcpy(body, "{\"a\":", 5);
	memset(body + 5, '[', 95);
	memset(body + 100, ']', 95);
	memcpy(body + 195, "}", 2);
	github(&q, "push", body, secret);
	parse_fails(&q, 0, "body is not JSON");
	req_free(&q);

	/* Many small objects: refused before json-c spends hundreds of bytes on each. */
	memcpy(body, "{\"a\":[", 6);
	for (n = 6; n < 6 + 3 * 30000; n += 3)
		memcpy(body + n, "{},", 3);
	memcpy(body + n - 1, "]}", 3);
	req_init(&q, FORGE_GITHUB, body);
	assert_int_equal(hook_repo_name(&q.r, &repo, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "more values than a webhook sends"));
	req_free(&q);
	free(body);
}

static void
test_hooks__repo_name_before_verification(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct req q;
	char *repo = NULL;

	(void)state;
	github(&q, "push", github_push, NULL);
	assert_int_equal(hook_repo_name(&q.r, &repo, &err), 0);
	assert_string_equal(repo, "acme/widget");
	free(repo);
	req_free(&q);

	gitea(&q, "push", gitea_push, secret, 0);
	assert_int_equal(hook_repo_name(&q.r, &repo, &err), 0);
	assert_string_equal(repo, "gitea/webhooks");
	free(repo);
	req_free(&q);

	gitlab(&q, "Push Hook", gitlab_push, NULL);
	assert_int_equal(hook_repo_name(&q.r, &repo, &err), 0);
	assert_string_equal(repo, "mike/diaspora");
	free(repo);
	req_free(&q);

	/* GitHub's name is not where GitLab keeps it. */
	req_init(&q, FORGE_GITLAB, github_push);
	repo = NULL;
	assert_int_equal(hook_repo_name(&q.r, &repo, &err), KCI_INVALID);
	assert_null(repo);
	assert_non_null(strstr(err.msg, "project.path_with_namespace is missing"));
	req_free(&q);

	req_init(&q, FORGE_GITHUB, "{\"repository\":");
	assert_int_equal(hook_repo_name(&q.r, &repo, &err), KCI_INVALID);
	assert_null(repo);
	req_free(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hooks__github_push_with_good_signature),
		cmocka_unit_test(test_hooks__github_missing_or_wrong_signature_is_unauthorized),
		cmocka_unit_test(test_hooks__body_tampered_after_signing_is_unauthorized),
		cmocka_unit_test(test_hooks__signatures_compared_in_constant_time),
		cmocka_unit_test(test_hooks__github_branch_deletion_is_ignored),
		cmocka_unit_test(test_hooks__github_annotated_tag_builds_its_commit),
		cmocka_unit_test(test_hooks__github_ping_and_other_events),
		cmocka_unit_test(test_hooks__github_pull_requests),
		cmocka_unit_test(test_hooks__gitea_and_forgejo_push),
		cmocka_unit_test(test_hooks__gitea_pull_request_from_a_fork),
		cmocka_unit_test(test_hooks__gitlab_push_and_tags),
		cmocka_unit_test(test_hooks__gitlab_token_missing_or_wrong_is_unauthorized),
		cmocka_unit_test(test_hooks__malformed_json_is_invalid),
		cmocka_unit_test(test_hooks__wrong_types_are_invalid),
		cmocka_unit_test(test_hooks__bad_values_are_invalid),
		cmocka_unit_test(test_hooks__uppercase_commit_is_lowered),
		cmocka_unit_test(test_hooks__oversized_and_hostile_bodies),
		cmocka_unit_test(test_hooks__repo_name_before_verification),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
