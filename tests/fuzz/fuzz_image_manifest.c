/*
 * Fuzz target: everything images/ parses from a registry. The first byte
 * picks the parser (manifest, index, image config, WWW-Authenticate, token
 * response, error body, docker config, media type sniffing, reference); the
 * rest is its input. Built with libFuzzer (KCI_FUZZ=ON) or linked with
 * replay.c so ctest replays the corpus on every build.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "images/auth.h"
#include "images/creds.h"
#include "images/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
parse_manifest(const char *p, size_t n, const char *media_type)
{
	struct kci_err err = KCI_ERR_INIT;
	struct manifest m;

	if (manifest_parse(p, n, media_type, &m, &err) == 0) {
		/* What the parser vouches for, callers rely on. */
		if (m.n_layers > MANIFEST_LAYERS_MAX || !digest_is_valid(m.config.digest))
			abort();
		for (size_t i = 0; i < m.n_layers; i++)
			if (!digest_is_valid(m.layers[i].digest) || m.layers[i].size < 0 ||
			    m.layers[i].codec == LAYER_NONE)
				abort();
		manifest_clear(&m);
	}
}

static void
parse_config(const char *p, size_t n)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_image_config c;

	if (image_config_parse(p, n, &c, &err) == 0) {
		if (!c.env || !c.diff_ids || !c.os || !c.architecture)
			abort();
		for (size_t i = 0; c.diff_ids[i]; i++)
			if (!digest_is_valid(c.diff_ids[i]))
				abort();
		kci_images_config_clear(&c);
	}
}

static void
parse_auth(unsigned which, const char *p, size_t n)
{
	struct kci_err err = KCI_ERR_INIT;
	struct auth_challenge ch = { 0 };
	struct auth_creds creds = { 0 };
	char *token = NULL;
	long expires = 0;

	switch (which) {
	case 0:
		(void)auth_challenge_parse(p, n, &ch, &err);
		if (strnlen(ch.realm, sizeof(ch.realm)) == sizeof(ch.realm))
			abort();
		break;
	case 1:
		if (auth_token_parse(p, n, &token, &expires, &err) == 0 &&
		    (strlen(token) > AUTH_TOKEN_MAX || expires <= 0 || strpbrk(token, " \r\n")))
			abort();
		free(token);
		break;
	default:
		if (auth_config_parse(p, n, "registry-1.docker.io", &creds, &err) == 0)
			auth_creds_clear(&creds);
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_image_ref ref;
	struct descriptor d;
	char text[512], *p, *s;
	size_t n;

	if (size == 0)
		return 0;
	/* An exact-size copy, so reading past the end is caught by ASan. */
	n = size - 1;
	p = malloc(n ? n : 1);
	if (!p)
		return 0;
	memcpy(p, data + 1, n);
	switch (data[0] % 10) {
	case 0:
		parse_manifest(p, n, "");
		break;
	case 1:
		parse_manifest(p, n, MEDIA_DOCKER_MANIFEST);
		break;
	case 2:
		(void)manifest_index_select(p, n, "", "linux", "amd64", "sha256:x", &d, &err);
		break;
	case 3:
		parse_config(p, n);
		break;
	case 4:
	case 5:
	case 6:
		parse_auth((unsigned)data[0] % 10 - 4, p, n);
		break;
	case 7:
		registry_errors_text(p, n, text, sizeof(text));
		break;
	case 8:
		manifest_body_media_type(p, n, text, sizeof(text));
		break;
	default:
		s = strndup(p, n);
		if (s && kci_images_ref_parse(s, &ref, &err) == 0) {
			kci_images_ref_format(&ref, text, sizeof(text));
			if (strlen(text) >= sizeof(text) - 1)
				abort();
		}
		free(s);
		break;
	}
	free(p);
	return 0;
}
