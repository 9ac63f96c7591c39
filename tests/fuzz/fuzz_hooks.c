/*
 * Fuzz target: webhook bodies (server/hooks.c). The first byte picks the forge (bits 0-1:
 * GitHub, Gitea, GitLab, GitHub), its event (bits 2-3, from the lists below), Forgejo's
 * headers instead of Gitea's (bit 4) and a wrong signature (bit 7); the rest is the body,
 * signed with a fixed secret so the parser behind the signature is reached. Checks what a caller
 * relies on: a parsed push has a valid ref and a 40-hex commit, a failure leaves nothing allocated
 * and is unauthorized only for a bad signature. Built with libFuzzer (KCI_FUZZ=ON) or replay.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "server/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "fuzz-secret";

/* Each forge's events: the ones parsed, and one that is ignored. */
static const char *const github_events[] = { "push", "pull_request", "ping", "issues" };
static const char *const gitea_events[] = { "push", "pull_request", "create", "push" };
static const char *const gitlab_events[] = { "Push Hook", "Tag Push Hook", "Merge Request Hook",
					     "Push Hook" };

struct headers {
	const char *names[4];
	const char *values[4];
};

static const char *
lookup(void *ctx, const char *name)
{
	struct headers *h = ctx;

	for (int i = 0; i < 4; i++) {
		if (h->names[i] && strcasecmp(h->names[i], name) == 0)
			return h->values[i];
	}
	return NULL;
}

static int
is_hex40(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return i == 40;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kci_err err = KCI_ERR_INIT;
	struct headers hd = { { NULL }, { NULL } };
	struct hook_req r = { .header = lookup, .ctx = &hd };
	struct hook h = { 0 };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	char hex[65], sig[80];
	char *repo = NULL;
	int unauthorized = -1, rc, ev, forgejo, bad_sig;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	r.forge = (enum forge)((sel & 3) % 3);
	ev = (sel >> 2) & 3;
	forgejo = (sel >> 4) & 1;
	bad_sig = (sel >> 7) & 1;
	r.body = data + 1;
	r.len = size - 1;

	HMAC(EVP_sha256(), bad_sig ? "not-the-secret" : secret,
	     (int)strlen(bad_sig ? "not-the-secret" : secret), r.len ? r.body : (const uint8_t *)"",
	     r.len, md, &md_len);
	for (unsigned i = 0; i < md_len && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	switch (r.forge) {
	case FORGE_GITHUB:
		snprintf(sig, sizeof(sig), "sha256=%s", hex);
		hd.names[0] = "X-GitHub-Event";
		hd.values[0] = github_events[ev];
		hd.names[1] = "X-Hub-Signature-256";
		hd.values[1] = sig;
		hd.names[2] = "X-GitHub-Delivery";
		hd.values[2] = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
		break;
	case FORGE_GITEA:
		hd.names[0] = forgejo ? "X-Forgejo-Event" : "X-Gitea-Event";
		hd.values[0] = gitea_events[ev];
		hd.names[1] = forgejo ? "X-Forgejo-Signature" : "X-Gitea-Signature";
		hd.values[1] = hex;
		break;
	case FORGE_GITLAB:
		hd.names[0] = "X-Gitlab-Event";
		hd.values[0] = gitlab_events[ev];
		hd.names[1] = "X-Gitlab-Token";
		hd.values[1] = bad_sig ? "not-the-secret" : secret;
		hd.names[2] = "Idempotency-Key";
		hd.values[2] = "0b1f6d5e-3c2a-4e8f-9a7b-1c2d3e4f5a6b";
		break;
	}

	if (hook_repo_name(&r, &repo, &err) == 0) {
		if (!repo || !strchr(repo, '/'))
			abort();
		free(repo);
	}

	rc = hook_verify_parse(&r, secret, &h, &unauthorized, &err);
	if (unauthorized != 0 && unauthorized != 1)
		abort();
	if (rc < 0) {
		/* A wrong signature is always caught; nothing is left behind on failure. */
		if (h.repo || h.ref || h.commit || h.delivery || h.ignored)
			abort();
		if (unauthorized && strncmp(err.msg, "signature", 9) != 0)
			abort();
		return 0;
	}
	if (bad_sig || unauthorized || !h.repo)
		abort();
	switch (h.kind) {
	case HOOK_PUSH:
	case HOOK_PULL_REQUEST:
		if (!h.ref || strncmp(h.ref, "refs/", 5) != 0 || strlen(h.ref) > 255 || !h.commit ||
		    !is_hex40(h.commit) || h.ignored)
			abort();
		if (h.kind == HOOK_PUSH && !h.trusted)
			abort();
		break;
	case HOOK_IGNORED:
		if (!h.ignored || h.commit)
			abort();
		break;
	case HOOK_PING:
		if (h.commit || h.ignored)
			abort();
		break;
	}
	hook_clear(&h);
	return 0;
}
