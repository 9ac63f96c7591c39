/* Unit tests for image references (images/ref.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "images/images.h"
#include "images/http.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Parses s and checks the canonical form. */
static void
check_ref(const char *s, const char *registry, const char *repo, const char *tag,
	  const char *digest)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_image_ref r;

	if (kci_images_ref_parse(s, &r, &err) != 0)
		fail_msg("%s: %s", s, err.msg);
	assert_string_equal(r.registry, registry);
	assert_string_equal(r.repo, repo);
	assert_string_equal(r.tag, tag);
	assert_string_equal(r.digest, digest);
}

/* Expects KCI_INVALID with `needle` in the message. */
static void
check_bad(const char *s, const char *needle)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_image_ref r;

	if (kci_images_ref_parse(s, &r, &err) != KCI_INVALID)
		fail_msg("'%s' was accepted", s);
	if (!strstr(err.msg, needle))
		fail_msg("'%s': message '%s' lacks '%s'", s, err.msg, needle);
}

static void
test_ref__docker_hub_normalised(void **state)
{
	(void)state;
	check_ref("alpine", "registry-1.docker.io", "library/alpine", "latest", "");
	check_ref("alpine:3.19", "registry-1.docker.io", "library/alpine", "3.19", "");
	check_ref("docker.io/x/y", "registry-1.docker.io", "x/y", "latest", "");
	check_ref("docker.io/alpine", "registry-1.docker.io", "library/alpine", "latest", "");
	check_ref("index.docker.io/library/debian:bookworm", "registry-1.docker.io",
		  "library/debian", "bookworm", "");
	check_ref("registry-1.docker.io/team/tool:v1", "registry-1.docker.io", "team/tool", "v1",
		  "");
	check_ref("team/tool", "registry-1.docker.io", "team/tool", "latest", "");
}

static void
test_ref__other_registries(void **state)
{
	(void)state;
	check_ref("ghcr.io/org/img@sha256:" HEX64, "ghcr.io", "org/img", "", "sha256:" HEX64);
	check_ref("127.0.0.1:5000/team/builder:1", "127.0.0.1:5000", "team/builder", "1", "");
	check_ref("localhost:5000/x", "localhost:5000", "x", "latest", "");
	check_ref("localhost/x", "localhost", "x", "latest", "");
	check_ref("Registry.Example.COM/a/b/c:T_1.x-y", "registry.example.com", "a/b/c", "T_1.x-y",
		  "");
	check_ref("[::1]:5000/x:2", "[::1]:5000", "x", "2", "");
	check_ref("quay.io/a.b/c__d/e---f:latest", "quay.io", "a.b/c__d/e---f", "latest", "");
}

static void
test_ref__tag_and_digest_both_kept(void **state)
{
	char buf[512];
	struct kci_image_ref r;
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	check_ref("ghcr.io/o/i:1.2@sha256:" HEX64, "ghcr.io", "o/i", "1.2", "sha256:" HEX64);
	assert_int_equal(kci_images_ref_parse("ghcr.io/o/i:1.2@sha256:" HEX64, &r, &err), 0);
	kci_images_ref_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "ghcr.io/o/i:1.2@sha256:" HEX64);
	assert_int_equal(kci_images_ref_parse("alpine", &r, &err), 0);
	kci_images_ref_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "registry-1.docker.io/library/alpine:latest");
	assert_int_equal(kci_images_ref_parse("localhost:5000/x@sha256:" HEX64, &r, &err), 0);
	kci_images_ref_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "localhost:5000/x@sha256:" HEX64);
}

static void
test_ref__invalid_references(void **state)
{
	char long_tag[200];

	(void)state;
	check_bad("", "empty");
	check_bad("Alpine", "lowercase");
	check_bad("example.com/Team/x", "lowercase");
	check_bad("a//b", "empty path component");
	check_bad("a/", "empty path component");
	check_bad("-a", "separator");
	check_bad("a..b", "separator");
	check_bad("a___b", "separator");
	check_bad("a-_b", "separator");
	check_bad("a b", "space");
	check_bad("a\tb", "control");
	check_bad("x:", "tag");
	check_bad("x:-1", "tag");
	check_bad("x:.1", "tag");
	check_bad("x:a/b", "port");
	memset(long_tag, 'a', sizeof(long_tag));
	memcpy(long_tag, "x:", 2);
	long_tag[sizeof(long_tag) - 1] = '\0';
	check_bad(long_tag, "128");
	check_bad("x@sha256:abc", "64 lowercase hex");
	check_bad("x@sha256:" HEX64 "00", "64 lowercase hex");
	check_bad("x@SHA256:" HEX64, "unsupported algorithm");
	check_bad("x@sha512:" HEX64 HEX64, "unsupported algorithm");
	check_bad("x@" HEX64, "no algorithm");
	check_bad("x@sha256:" HEX64 "@sha256:" HEX64, "more than one '@'");
	check_bad("x@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		  "64 lowercase hex");
	check_bad("exa_mple.com/x", "registry host");
	check_bad("-example.com/x", "registry host");
	check_bad("example..com/x", "registry host");
	check_bad("example.com:/x", "port");
	check_bad("example.com:0/x", "port");
	check_bad("example.com:65536/x", "port");
	check_bad("example.com:12a/x", "port");
	check_bad("[::1/x", "IPv6");
	check_bad("[zz::1]:5000/x", "IPv6");
	check_bad("caf\xc3\xa9", "non-ASCII");
}

static void
test_ref__loopback(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_image_ref r;
	const char *yes[] = { "127.0.0.1:5000/x",
			      "127.1.2.3/x",
			      "localhost:5000/x",
			      "localhost/x",
			      "[::1]:5000/x",
			      "LOCALHOST:80/x",
			      NULL };
	const char *no[] = { "alpine",
			     "ghcr.io/x",
			     "128.0.0.1:5000/x",
			     "10.0.0.1/x",
			     "127.0.0.1.example.com/x",
			     "localhost.example.com/x",
			     "[::2]:5000/x",
			     NULL };

	(void)state;
	for (int i = 0; yes[i]; i++) {
		assert_int_equal(kci_images_ref_parse(yes[i], &r, &err), 0);
		if (!kci_images_ref_is_loopback(&r))
			fail_msg("%s should be loopback", yes[i]);
	}
	for (int i = 0; no[i]; i++) {
		assert_int_equal(kci_images_ref_parse(no[i], &r, &err), 0);
		if (kci_images_ref_is_loopback(&r))
			fail_msg("%s should not be loopback", no[i]);
	}
	assert_true(host_is_loopback("[::ffff:127.0.0.1]"));
	assert_false(host_is_loopback("0x7f.0.0.1"));
	assert_false(host_is_loopback(""));
}

static void
test_ref__url_origins(void **state)
{
	char origin[256], *url;
	int https, loopback;

	(void)state;
	assert_int_equal(url_origin("https://Registry.Example.com/v2/x", origin, sizeof(origin),
				    &https, &loopback),
			 0);
	assert_string_equal(origin, "https://registry.example.com:443");
	assert_true(https);
	assert_false(loopback);
	assert_int_equal(
		url_origin("http://127.0.0.1:5000/v2/", origin, sizeof(origin), &https, &loopback),
		0);
	assert_string_equal(origin, "http://127.0.0.1:5000");
	assert_false(https);
	assert_true(loopback);
	assert_int_equal(
		url_origin("file:///etc/passwd", origin, sizeof(origin), &https, &loopback), -1);
	assert_int_equal(url_origin("ftp://x/y", origin, sizeof(origin), &https, &loopback), -1);
	url = url_resolve("https://r.example/v2/a/blobs/sha256:x", "/store/abc?sig=1");
	assert_string_equal(url, "https://r.example/store/abc?sig=1");
	free(url);
	url = url_resolve("https://r.example/v2/a/blobs/x", "https://cdn.example/b");
	assert_string_equal(url, "https://cdn.example/b");
	free(url);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref__docker_hub_normalised),
		cmocka_unit_test(test_ref__other_registries),
		cmocka_unit_test(test_ref__tag_and_digest_both_kept),
		cmocka_unit_test(test_ref__invalid_references),
		cmocka_unit_test(test_ref__loopback),
		cmocka_unit_test(test_ref__url_origins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
