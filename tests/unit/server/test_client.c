/*
 * Unit tests for server/client.c's URL rules: an agent speaks plain http only
 * to its own machine unless told otherwise, and takes file:// clones only
 * from a server on its own machine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/internal.h"

static int
check(const char *url, int insecure)
{
	struct kci_err err = KCI_ERR_INIT;

	return client_url_check(url, insecure, &err);
}

static void
test_client__https_anywhere_http_only_on_loopback(void **state)
{
	(void)state;
	assert_int_equal(check("https://ci.example.com", 0), 0);
	assert_int_equal(check("https://ci.example.com:8443/", 0), 0);
	assert_int_equal(check("http://127.0.0.1:8080", 0), 0);
	assert_int_equal(check("http://127.9.9.9:8080", 0), 0);
	assert_int_equal(check("http://localhost:8080", 0), 0);
	assert_int_equal(check("http://[::1]:8080", 0), 0);
	assert_int_equal(check("http://10.0.0.1:8080", 0), KCI_INVALID);
	assert_int_equal(check("http://ci.example.com", 0), KCI_INVALID);
	/* A name that merely starts like loopback is another host. */
	assert_int_equal(check("http://127.0.0.1.evil.example:80", 0), KCI_INVALID);
	assert_int_equal(check("http://10.0.0.1:8080", 1), 0);
}

static void
test_client__only_http_urls(void **state)
{
	(void)state;
	assert_int_equal(check("ftp://ci.example.com", 1), KCI_INVALID);
	assert_int_equal(check("file:///etc/passwd", 1), KCI_INVALID);
	assert_int_equal(check("ci.example.com", 0), KCI_INVALID);
	assert_int_equal(check("", 0), KCI_INVALID);
}

static void
test_client__loopback(void **state)
{
	(void)state;
	assert_true(client_url_loopback("http://127.0.0.1:1"));
	assert_true(client_url_loopback("https://localhost"));
	assert_false(client_url_loopback("https://ci.example.com"));
	assert_false(client_url_loopback("http://127.0.0.1.evil.example"));
	assert_false(client_url_loopback("not a url"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client__https_anywhere_http_only_on_loopback),
		cmocka_unit_test(test_client__only_http_urls),
		cmocka_unit_test(test_client__loopback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
