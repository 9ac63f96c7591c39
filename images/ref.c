/* Image references and registry addresses: parsing, normalisation, origins of URLs. */
#include "images/images.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"

#include "images/http.h"
#include "images/manifest.h"
#include "images/registry.h"

#define DOCKER_HUB   "registry-1.docker.io"
#define REF_TEXT_MAX 512

static int
is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * One repository path component: [a-z0-9]+ joined by separators, where a
 * separator is ".", "_", "__" or a run of "-". Returns NULL or what is wrong.
 */
static const char *
component_check(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return "has an empty path component";
	for (;;) {
		if (i == len || !is_alnum_lower(s[i]))
			break;
		while (i < len && is_alnum_lower(s[i]))
			i++;
		if (i == len)
			return NULL;
		if (s[i] == '.' || (s[i] == '_' && (i + 1 == len || s[i + 1] != '_')))
			i++;
		else if (s[i] == '_')
			i += 2;
		else if (s[i] == '-')
			while (i < len && s[i] == '-')
				i++;
		else
			break;
	}
	for (size_t j = 0; j < len; j++)
		if (s[j] >= 'A' && s[j] <= 'Z')
			return "must be lowercase";
	if (i < len && !strchr("._-", s[i]))
		return "may contain only a-z, 0-9, '.', '_' and '-'";
	return "has a separator ('.', '_', '-') at the start or end of a component, or doubled";
}

/* DNS labels joined by '.': alphanumerics with inner '-' (IPv4 addresses fit this too). */
static int
host_label_ok(const char *s, size_t len)
{
	size_t start = 0;

	if (len == 0)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			if (!isalnum((unsigned char)s[i]) && s[i] != '-')
				return 0;
			continue;
		}
		if (i == start || s[start] == '-' || s[i - 1] == '-')
			return 0;
		start = i + 1;
	}
	return 1;
}

/* host[:port] where host is a DNS name, an IPv4 address or a bracketed IPv6 address. */
static const char *
domain_check(const char *s, size_t len)
{
	size_t host_len, i;
	const char *colon;

	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		char addr[64];
		struct in6_addr a6;
		if (!close || (size_t)(close - s) - 1 >= sizeof(addr))
			return "has a malformed IPv6 address";
		memcpy(addr, s + 1, (size_t)(close - s) - 1);
		addr[close - s - 1] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1)
			return "has a malformed IPv6 address";
		host_len = (size_t)(close - s) + 1;
		if (host_len != len && s[host_len] != ':')
			return "has a malformed registry host";
	} else {
		colon = memchr(s, ':', len);
		host_len = colon ? (size_t)(colon - s) : len;
		if (!host_label_ok(s, host_len))
			return "has a malformed registry host";
	}
	if (host_len < len) {
		unsigned port = 0;
		if (host_len + 1 == len || len - host_len - 1 > 5)
			return "has a malformed registry port";
		for (i = host_len + 1; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return "has a malformed registry port";
			port = port * 10 + (unsigned)(s[i] - '0');
		}
		if (port == 0 || port > 65535)
			return "has a registry port outside 1-65535";
	}
	return NULL;
}

/* tag := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
int
tag_is_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return 0;
	return 1;
}

/*
 * Docker's rule for whether the first path element names a registry: it
 * does if it has a '.' or a ':', is "localhost", or has uppercase letters.
 */
static int
names_registry(const char *s, size_t len)
{
	if (memchr(s, '.', len) || memchr(s, ':', len) || (len == 9 && !memcmp(s, "localhost", 9)))
		return 1;
	for (size_t i = 0; i < len; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return 1;
	return 0;
}

static int
ref_set_registry(struct kci_image_ref *r, const char *s, size_t len, const char *text,
		 struct kci_err *err)
{
	const char *why = domain_check(s, len);

	if (why)
		return kci_err_set(err, KCI_INVALID, "invalid image reference '%s': %s", text, why);
	if (len >= sizeof(r->registry))
		return kci_err_set(err, KCI_INVALID,
				   "invalid image reference '%s': registry name "
				   "is too long",
				   text);
	for (size_t i = 0; i < len; i++)
		r->registry[i] = (char)tolower((unsigned char)s[i]);
	r->registry[len] = '\0';
	if (!strcmp(r->registry, "docker.io") || !strcmp(r->registry, "index.docker.io"))
		snprintf(r->registry, sizeof(r->registry), "%s", DOCKER_HUB);
	return 0;
}

static int
ref_set_repo(struct kci_image_ref *r, const char *s, size_t len, const char *text,
	     struct kci_err *err)
{
	const char *p = s, *end = s + len, *why, *slash;
	int hub_short = !strcmp(r->registry, DOCKER_HUB) && !memchr(s, '/', len);
	int n;

	for (; p <= end; p = slash + 1) {
		slash = memchr(p, '/', (size_t)(end - p));
		if (!slash)
			slash = end;
		if ((why = component_check(p, (size_t)(slash - p))))
			return kci_err_set(err, KCI_INVALID,
					   "invalid image reference '%s': repository name %s", text,
					   why);
	}
	/* Docker Hub's official images live under library/. */
	n = snprintf(r->repo, sizeof(r->repo), "%s%.*s", hub_short ? "library/" : "", (int)len, s);
	if (n < 0 || (size_t)n >= sizeof(r->repo))
		return kci_err_set(err, KCI_INVALID,
				   "invalid image reference '%s': repository name is too long",
				   text);
	return 0;
}

/* Splits "name[:tag]" into name and tag; the tag's ':' comes after the last '/'. */
static int
ref_split_tag(struct kci_image_ref *r, const char *name, size_t *name_len, const char *text,
	      struct kci_err *err)
{
	const char *slash = memrchr(name, '/', *name_len);
	const char *colon = memrchr(name, ':', *name_len);

	if (!colon || (slash && colon < slash))
		return 0;
	if ((size_t)(name + *name_len - colon - 1) >= sizeof(r->tag))
		return kci_err_set(err, KCI_INVALID,
				   "invalid image reference '%s': tag is longer "
				   "than 128 characters",
				   text);
	memcpy(r->tag, colon + 1, (size_t)(name + *name_len - colon - 1));
	r->tag[name + *name_len - colon - 1] = '\0';
	if (!tag_is_valid(r->tag))
		return kci_err_set(err, KCI_INVALID,
				   "invalid image reference '%s': tag '%s' must be 1-128 of "
				   "A-Za-z0-9_.- and not start with '.' or '-'",
				   text, r->tag);
	*name_len = (size_t)(colon - name);
	return 0;
}

static int
ref_split_digest(struct kci_image_ref *r, const char *s, size_t *name_len, const char *text,
		 struct kci_err *err)
{
	const char *at = strchr(s, '@');
	int rc;

	*name_len = strlen(s);
	if (!at)
		return 0;
	if (strchr(at + 1, '@'))
		return kci_err_set(err, KCI_INVALID,
				   "invalid image reference '%s': more than one '@'", text);
	if ((rc = digest_check(at + 1, "the", err)) < 0)
		return kci_err_prefix(err, "invalid image reference '%s'", text);
	snprintf(r->digest, sizeof(r->digest), "%s", at + 1);
	*name_len = (size_t)(at - s);
	return 0;
}

int
kci_images_ref_parse(const char *s, struct kci_image_ref *out, struct kci_err *err)
{
	struct kci_image_ref r;
	const char *slash, *path;
	size_t len, name_len;
	int rc;

	memset(&r, 0, sizeof(r));
	if (!s || !*s)
		return kci_err_set(err, KCI_INVALID, "empty image reference");
	len = strlen(s);
	if (len > REF_TEXT_MAX)
		return kci_err_set(err, KCI_INVALID, "image reference is longer than %d characters",
				   REF_TEXT_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return kci_err_set(err, KCI_INVALID,
					   "invalid image reference: contains a space, control or "
					   "non-ASCII character");
	if ((rc = ref_split_digest(&r, s, &name_len, s, err)) < 0 ||
	    (rc = ref_split_tag(&r, s, &name_len, s, err)) < 0)
		return rc;
	slash = memchr(s, '/', name_len);
	if (slash && names_registry(s, (size_t)(slash - s))) {
		if ((rc = ref_set_registry(&r, s, (size_t)(slash - s), s, err)) < 0)
			return rc;
		path = slash + 1;
	} else {
		snprintf(r.registry, sizeof(r.registry), "%s", DOCKER_HUB);
		path = s;
	}
	if ((rc = ref_set_repo(&r, path, name_len - (size_t)(path - s), s, err)) < 0)
		return rc;
	/* Docker's limit; it also keeps the canonical text within 512 bytes. */
	if (strlen(r.registry) + 1 + strlen(r.repo) > 255)
		return kci_err_set(
			err, KCI_INVALID,
			"invalid image reference '%s': name is longer than 255 characters", s);
	if (!r.tag[0] && !r.digest[0])
		snprintf(r.tag, sizeof(r.tag), "latest");
	*out = r;
	return 0;
}

void
kci_images_ref_format(const struct kci_image_ref *r, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s%s%s%s%s", r->registry, r->repo, r->tag[0] ? ":" : "", r->tag,
		 r->digest[0] ? "@" : "", r->digest);
}

int
host_is_loopback(const char *host)
{
	char addr[64];
	struct in_addr a4;
	struct in6_addr a6;
	size_t n = strlen(host);

	if (!strcasecmp(host, "localhost"))
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(addr)) {
		memcpy(addr, host + 1, n - 2);
		addr[n - 2] = '\0';
		host = addr;
	}
	if (inet_pton(AF_INET6, host, &a6) != 1)
		return 0;
	if (IN6_IS_ADDR_LOOPBACK(&a6))
		return 1;
	return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

/* "docker.io" and its aliases name Docker Hub's registry; the rest, lowercased. */
static void
registry_name(const char *in, char *out, size_t size)
{
	if (!strcasecmp(in, "docker.io") || !strcasecmp(in, "index.docker.io"))
		in = DOCKER_HUB;
	snprintf(out, size, "%s", in);
	for (char *c = out; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
}

static int
listed(char *const *list, const char *registry)
{
	char name[256];

	for (size_t i = 0; list && list[i]; i++) {
		registry_name(list[i], name, sizeof(name));
		if (strcmp(name, registry) == 0)
			return 1;
	}
	return 0;
}

int
kci_images_policy_check(const struct kci_registry_policy *policy, const char *ref, int *plain_http,
			struct kci_err *err)
{
	struct kci_image_ref r;
	char name[256];
	int rc;

	*plain_http = 0;
	if (!policy)
		return 0;
	if ((rc = kci_images_ref_parse(ref, &r, err)) < 0)
		return rc;
	registry_name(r.registry, name, sizeof(name));
	if (listed(policy->registries, name))
		return 0;
	if (listed(policy->insecure, name)) {
		*plain_http = 1;
		return 0;
	}
	if (!strcmp(name, DOCKER_HUB))
		snprintf(name, sizeof(name), "docker.io");
	return kci_err_set(err, KCI_INVALID,
			   "image %s: the registry %s is not one you allowed for pipelines (kci "
			   "run --registry %s to pull from it over HTTPS with your credentials, "
			   "--insecure-registry %s over plain HTTP)",
			   ref, name, name, name);
}

int
kci_images_ref_is_loopback(const struct kci_image_ref *r)
{
	char host[sizeof(r->registry)];
	const char *end;

	/* The port follows the last ':' unless the host is a bracketed IPv6 address. */
	if (r->registry[0] == '[')
		end = strchr(r->registry, ']') ? strchr(r->registry, ']') + 1 : NULL;
	else
		end = strchr(r->registry, ':');
	snprintf(host, sizeof(host), "%.*s",
		 end ? (int)(end - r->registry) : (int)strlen(r->registry), r->registry);
	return host_is_loopback(host);
}

/* Splits a URL into "scheme://host:port" (port made explicit); -1 unless http(s). */
int
url_origin(const char *url, char *out, size_t size, int *https, int *loopback)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = -1;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    (!strcasecmp(scheme, "https") || !strcasecmp(scheme, "http"))) {
		snprintf(out, size, "%s://%s:%s", scheme, host, port);
		for (char *c = out; *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
		*https = !strcasecmp(scheme, "https");
		*loopback = host_is_loopback(host);
		rc = 0;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* A Location resolved against the URL that sent it (malloc'd), or NULL. */
char *
url_resolve(const char *base, const char *location)
{
	CURLU *u = curl_url();
	char *url = NULL, *out = NULL;

	if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, location, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &url, 0) == CURLUE_OK)
		out = kci_xstrdup(url);
	curl_free(url);
	curl_url_cleanup(u);
	return out;
}
