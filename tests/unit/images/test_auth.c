/* Unit tests for auth parsing: WWW-Authenticate challenges and token responses (images/auth.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "images/auth.h"

static int
challenge(const char *value, struct auth_challenge *c)
{
	struct kci_err err = KCI_ERR_INIT;

	return auth_challenge_parse(value, strlen(value), c, &err);
}

static void
test_auth__challenge_bearer_and_basic(void **state)
{
	struct auth_challenge c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(
		challenge("Bearer realm=\"https://auth.docker.io/token\",service="
			  "\"registry.docker.io\",scope=\"repository:library/alpine:pull\"",
			  &c),
		0);
	assert_int_equal(c.scheme, AUTH_BEARER);
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:library/alpine:pull");

	memset(&c, 0, sizeof(c));
	assert_int_equal(challenge("Basic realm=\"Registry Realm\"", &c), 0);
	assert_int_equal(c.scheme, AUTH_BASIC);
	assert_string_equal(c.realm, "Registry Realm");

	/* Bearer is preferred to Basic, in one header or across two. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(challenge("Basic realm=\"b\", Bearer realm=\"https://a/t\",service=s", &c),
			 0);
	assert_int_equal(c.scheme, AUTH_BEARER);
	assert_string_equal(c.realm, "https://a/t");
	assert_string_equal(c.service, "s");
	assert_int_equal(challenge("Basic realm=\"later\"", &c), 0);
	assert_int_equal(c.scheme, AUTH_BEARER);
	assert_string_equal(c.realm, "https://a/t");
}

static void
test_auth__challenge_syntax_variants(void **state)
{
	struct auth_challenge c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(
		challenge("bearer REALM = \"https://a/t?x=\\\"1,2\\\"\" ,  service = "
			  "\"s, t\",error=\"insufficient_scope\",scope=\"repository:a:pull "
			  "repository:b:pull\"",
			  &c),
		0);
	assert_int_equal(c.scheme, AUTH_BEARER);
	assert_string_equal(c.realm, "https://a/t?x=\"1,2\"");
	assert_string_equal(c.service, "s, t");
	assert_string_equal(c.error, "insufficient_scope");
	assert_string_equal(c.scope, "repository:a:pull repository:b:pull");

	/* token68 and unknown schemes are skipped; the first of a parameter wins. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(challenge("Negotiate abc/+==, Digest realm=\"d\", nonce=\"n\", Basic "
				   "realm=\"first\", realm=\"second\"",
				   &c),
			 0);
	assert_int_equal(c.scheme, AUTH_BASIC);
	assert_string_equal(c.realm, "first");

	memset(&c, 0, sizeof(c));
	assert_int_equal(challenge("Digest realm=\"x\"", &c), 0);
	assert_int_equal(c.scheme, AUTH_NONE);
	assert_int_equal(challenge("", &c), 0);
	assert_int_equal(challenge(" , ,", &c), 0);
	assert_int_equal(challenge("Basic", &c), 0);
	assert_int_equal(c.scheme, AUTH_BASIC);
	assert_string_equal(c.realm, "");
}

static void
test_auth__challenge_malformed(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct auth_challenge c;
	char big[3000];
	const char *bad[] = {
		"Bearer realm=\"unterminated",
		"Bearer realm=",
		"Bearer realm=\"x\" service=\"y\"",
		"=x",
		"\"Bearer\" realm=x",
		"Bearer realm=\"a\\",
		"Bearer realm=\"a\x01\"",
		"Bearer realm=x=y",
		"Bearer a b c",
		"Bearer@ realm=x",
		NULL,
	};

	(void)state;
	for (int i = 0; bad[i]; i++) {
		memset(&c, 0, sizeof(c));
		if (auth_challenge_parse(bad[i], strlen(bad[i]), &c, &err) != KCI_PROTO)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(c.scheme, AUTH_NONE);
	}
	snprintf(big, sizeof(big), "Bearer realm=\"%2000d\"", 1);
	assert_int_equal(auth_challenge_parse(big, strlen(big), &c, &err), KCI_PROTO);
	assert_non_null(strstr(err.msg, "overlong"));
	/* An overlong parameter kci does not use is fine. */
	snprintf(big, sizeof(big), "Bearer realm=\"r\", other=\"%2000d\"", 1);
	assert_int_equal(auth_challenge_parse(big, strlen(big), &c, &err), 0);
	/* Length-bounded: bytes after len are not read. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(auth_challenge_parse("Basic realm=\"abc\"XXXX", 17, &c, &err), 0);
	assert_string_equal(c.realm, "abc");
}

static void
test_auth__token_responses(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char *token = NULL, *big;
	long expires = 0;
	const char *bad[] = {
		"{}",
		"{\"token\": 5}",
		"{\"token\": \"\"}",
		"{\"token\": \"a b\"}",
		"{\"token\": \"a\\r\\nX-Evil: 1\"}",
		"{\"token\": \"caf\\u00e9\"}",
		"{\"token\": \"a\\u0000b\"}",
		"not json",
		"[\"token\"]",
		NULL,
	};

	(void)state;
	assert_int_equal(auth_token_parse("{\"token\": \"abc.def-_~+/=\", \"expires_in\": 300}", 45,
					  &token, &expires, &err),
			 0);
	assert_string_equal(token, "abc.def-_~+/=");
	assert_int_equal(expires, 300);
	free(token);
	assert_int_equal(auth_token_parse("{\"access_token\": \"x\"}", 21, &token, &expires, &err),
			 0);
	assert_string_equal(token, "x");
	assert_int_equal(expires, 60);
	free(token);
	assert_int_equal(
		auth_token_parse("{\"token\": \"\", \"access_token\": \"y\", \"expires_in\": "
				 "99999999}",
				 strlen("{\"token\": \"\", \"access_token\": \"y\", "
					"\"expires_in\": 99999999}"),
				 &token, &expires, &err),
		0);
	assert_string_equal(token, "y");
	assert_int_equal(expires, 86400);
	free(token);
	for (int i = 0; bad[i]; i++)
		if (auth_token_parse(bad[i], strlen(bad[i]), &token, &expires, &err) != KCI_PROTO)
			fail_msg("accepted: %s", bad[i]);
	big = kci_xmalloc(AUTH_TOKEN_MAX + 64);
	memcpy(big, "{\"token\": \"", 11);
	memset(big + 11, 'a', AUTH_TOKEN_MAX + 1);
	memcpy(big + 11 + AUTH_TOKEN_MAX + 1, "\"}", 3);
	assert_int_equal(auth_token_parse(big, strlen(big), &token, &expires, &err), KCI_PROTO);
	assert_non_null(strstr(err.msg, "longer than"));
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth__challenge_bearer_and_basic),
		cmocka_unit_test(test_auth__challenge_syntax_variants),
		cmocka_unit_test(test_auth__challenge_malformed),
		cmocka_unit_test(test_auth__token_responses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
