/*
 * Registry credentials from docker's config.json (inline "auths" entries; a
 * credential helper is named, never run) and the Basic value made of them.
 */
#include "images/creds.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "images/manifest.h"

#define AUTH_CONFIG_MAX (1u << 20)
#define AUTH_FIELD_MAX	4096
#define DOCKER_HUB	"registry-1.docker.io"
#define DOCKER_HUB_KEY	"https://index.docker.io/v1/"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
b64_encode(const unsigned char *in, size_t len)
{
	char *out = kci_xmalloc((len + 2) / 3 * 4 + 1), *o = out;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		*o++ = b64_alphabet[v >> 18 & 63];
		*o++ = b64_alphabet[v >> 12 & 63];
		*o++ = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* Decodes standard base64 (padding optional) into out; -1 on a bad character. */
static int
b64_decode(const char *in, size_t len, char *out, size_t size, size_t *outlen)
{
	unsigned v = 0, bits = 0;
	size_t n = 0;

	while (len > 0 && in[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++) {
		const char *p = in[i] ? strchr(b64_alphabet, in[i]) : NULL;
		if (!p)
			return -1;
		v = (v << 6 | (unsigned)(p - b64_alphabet)) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= size)
				return -1;
			out[n++] = (char)(v >> bits & 0xff);
		}
	}
	out[n] = '\0';
	*outlen = n;
	return 0;
}

char *
auth_basic_value(const struct auth_creds *c)
{
	char *pair = kci_xasprintf("%s:%s", c->username, c->password);
	char *enc = b64_encode((const unsigned char *)pair, strlen(pair));
	char *value = kci_xasprintf("Basic %s", enc);

	explicit_bzero(pair, strlen(pair));
	free(pair);
	free(enc);
	return value;
}

void
auth_creds_clear(struct auth_creds *c)
{
	if (!c)
		return;
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	free(c->username);
	free(c->password);
	c->username = c->password = NULL;
}

char *
auth_config_path(void)
{
	const char *dir = getenv("DOCKER_CONFIG"), *home = getenv("HOME");

	if (dir && *dir)
		return kci_xasprintf("%s/config.json", dir);
	if (home && *home)
		return kci_xasprintf("%s/.docker/config.json", home);
	return NULL;
}

/* Whether a config key names `registry`; docker ignores a key's scheme and path. */
static int
key_matches(const char *key, const char *registry)
{
	char host[256];
	size_t n = 0;

	if (!strncasecmp(key, "https://", 8))
		key += 8;
	else if (!strncasecmp(key, "http://", 7))
		key += 7;
	while (key[n] && key[n] != '/' && n + 1 < sizeof(host)) {
		host[n] = (char)tolower((unsigned char)key[n]);
		n++;
	}
	host[n] = '\0';
	if (!strcmp(registry, DOCKER_HUB))
		return !strcmp(host, "index.docker.io") || !strcmp(host, "docker.io") ||
		       !strcmp(host, DOCKER_HUB);
	return !strcasecmp(host, registry);
}

static const char *
str_member(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	if (json_object_get_string_len(v) > AUTH_FIELD_MAX ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return NULL;
	return json_object_get_string(v);
}

/* 1 and *out filled if the auths entry holds credentials, 0 if it holds none. */
static int
entry_creds(struct json_object *entry, const char *key, struct auth_creds *out, struct kci_err *err)
{
	const char *auth = str_member(entry, "auth"), *user, *pass;
	char decoded[AUTH_FIELD_MAX], *colon;
	size_t n;

	if (!json_object_is_type(entry, json_type_object))
		return 0;
	if (auth && *auth) {
		if (b64_decode(auth, strlen(auth), decoded, sizeof(decoded), &n) < 0 ||
		    strlen(decoded) != n || !(colon = strchr(decoded, ':')))
			return kci_err_set(err, KCI_INVALID,
					   "auths[\"%s\"].auth is not base64 of user:password",
					   key);
		*colon = '\0';
		out->username = kci_xstrdup(decoded);
		out->password = kci_xstrdup(colon + 1);
		explicit_bzero(decoded, sizeof(decoded));
		return 1;
	}
	user = str_member(entry, "username");
	pass = str_member(entry, "password");
	if (user && *user && pass) {
		out->username = kci_xstrdup(user);
		out->password = kci_xstrdup(pass);
		return 1;
	}
	if (str_member(entry, "identitytoken"))
		return kci_err_set(err, KCI_INVALID,
				   "auths[\"%s\"] holds an identity token, which kci does not "
				   "support; put user:password (or an access token as the "
				   "password) in \"auth\"",
				   key);
	return 0;
}

/* The exact key first (as docker writes it), then any key naming the same host. */
static int
find_inline(struct json_object *auths, const char *registry, struct auth_creds *out,
	    struct kci_err *err)
{
	const char *exact = strcmp(registry, DOCKER_HUB) ? registry : DOCKER_HUB_KEY;
	struct json_object *entry;
	int rc;

	if (json_object_object_get_ex(auths, exact, &entry) &&
	    (rc = entry_creds(entry, exact, out, err)) != 0)
		return rc;
	json_object_object_foreach(auths, key, val)
	{
		if (strcmp(key, exact) != 0 && key_matches(key, registry) &&
		    (rc = entry_creds(val, key, out, err)) != 0)
			return rc;
	}
	return 0;
}

/* The helper that would hold credentials for registry, or NULL. */
static const char *
find_helper(struct json_object *root, const char *registry)
{
	struct json_object *helpers;
	const char *store;

	if (json_object_object_get_ex(root, "credHelpers", &helpers) &&
	    json_object_is_type(helpers, json_type_object)) {
		json_object_object_foreach(helpers, key, val)
		{
			if (key_matches(key, registry) &&
			    json_object_is_type(val, json_type_string) &&
			    json_object_get_string_len(val) > 0)
				return json_object_get_string(val);
		}
	}
	store = str_member(root, "credsStore");
	return store && *store ? store : NULL;
}

int
auth_config_parse(const char *json, size_t len, const char *registry, struct auth_creds *out,
		  struct kci_err *err)
{
	struct json_object *root = NULL, *auths = NULL;
	struct auth_creds c = { 0 };
	const char *helper;
	char shown[64];
	int rc;

	if ((rc = image_json_parse(json, len, AUTH_CONFIG_MAX, "docker config", &root, err)) < 0)
		return rc;
	if (json_object_object_get_ex(root, "auths", &auths) && auths &&
	    !json_object_is_type(auths, json_type_object)) {
		rc = kci_err_set(err, KCI_INVALID, "docker config: \"auths\" is not an object");
		goto out;
	}
	if (auths && (rc = find_inline(auths, registry, &c, err)) != 0) {
		if (rc == 1) {
			*out = c;
			c.username = c.password = NULL;
			rc = 0;
		}
		goto out;
	}
	if ((helper = find_helper(root, registry))) {
		text_clean(shown, sizeof(shown), helper, strlen(helper));
		rc = kci_err_set(
			err, KCI_INVALID,
			"%s uses the credential helper docker-credential-%s, which kci "
			"does not run; put the credentials in \"auths\" as {\"%s\": "
			"{\"auth\": \"<base64 of user:password>\"}}, or point DOCKER_CONFIG "
			"at a directory whose config.json has them",
			registry, shown, strcmp(registry, DOCKER_HUB) ? registry : DOCKER_HUB_KEY);
		goto out;
	}
	rc = kci_err_set(err, KCI_NOTFOUND, "no credentials for %s", registry);
out:
	auth_creds_clear(&c);
	json_object_put(root);
	return rc;
}

int
auth_lookup(const char *path, const char *registry, struct auth_creds *out, struct kci_err *err)
{
	char *text = NULL;
	size_t len;
	int rc;

	if ((rc = kci_read_file(path, AUTH_CONFIG_MAX, &text, &len, err)) < 0)
		return rc;
	rc = auth_config_parse(text, len, registry, out, err);
	explicit_bzero(text, len);
	free(text);
	if (rc < 0 && rc != KCI_NOTFOUND)
		return kci_err_prefix(err, "%s", path);
	return rc;
}
