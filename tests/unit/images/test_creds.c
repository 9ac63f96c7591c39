/* Unit tests for registry credentials from docker's config.json (images/creds.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "images/creds.h"

#define HUB "registry-1.docker.io"

/* base64("user:pa:ss") */
#define USER_PASS_B64 "dXNlcjpwYTpzcw=="

static int
lookup(const char *json, const char *registry, struct auth_creds *c, struct kci_err *err)
{
	memset(c, 0, sizeof(*c));
	return auth_config_parse(json, strlen(json), registry, c, err);
}

static void
check_creds(const char *json, const char *registry, const char *user, const char *pass)
{
	struct kci_err err = KCI_ERR_INIT;
	struct auth_creds c;

	if (lookup(json, registry, &c, &err) != 0)
		fail_msg("%s in %s: %s", registry, json, err.msg);
	assert_string_equal(c.username, user);
	assert_string_equal(c.password, pass);
	auth_creds_clear(&c);
	assert_null(c.username);
}

static void
check_fails(const char *json, const char *registry, int code, const char *needle)
{
	struct kci_err err = KCI_ERR_INIT;
	struct auth_creds c;

	if (lookup(json, registry, &c, &err) != code)
		fail_msg("%s in %s: expected %d, got '%s'", registry, json, code, err.msg);
	if (!strstr(err.msg, needle))
		fail_msg("message '%s' lacks '%s'", err.msg, needle);
	assert_null(c.username);
}

static void
test_creds__inline_credentials(void **state)
{
	(void)state;
	check_creds("{\"auths\": {\"127.0.0.1:5000\": {\"auth\": \"" USER_PASS_B64 "\"}}}",
		    "127.0.0.1:5000", "user", "pa:ss");
	check_creds("{\"auths\": {\"127.0.0.1:5000\": {\"username\": \"u\", \"password\": "
		    "\"p\"}}}",
		    "127.0.0.1:5000", "u", "p");
	/* Docker Hub under its historical key, or under any of its host names. */
	check_creds("{\"auths\": {\"https://index.docker.io/v1/\": {\"auth\": \"" USER_PASS_B64
		    "\"}}}",
		    HUB, "user", "pa:ss");
	check_creds("{\"auths\": {\"docker.io\": {\"auth\": \"" USER_PASS_B64 "\"}}}", HUB, "user",
		    "pa:ss");
	/* Keys with a scheme and a path name their host. */
	check_creds("{\"auths\": {\"https://Reg.Example:5000/v2/\": {\"auth\": \"" USER_PASS_B64
		    "\"}}}",
		    "reg.example:5000", "user", "pa:ss");
	/* The exact key wins over a looser match listed first. */
	check_creds("{\"auths\": {\"https://ghcr.io\": {\"username\": \"loose\", \"password\": "
		    "\"1\"}, \"ghcr.io\": {\"username\": \"exact\", \"password\": \"2\"}}}",
		    "ghcr.io", "exact", "2");
	/* base64 without padding, as some tools write it */
	check_creds("{\"auths\": {\"r.example\": {\"auth\": \"dTpw\"}}}", "r.example", "u", "p");
	/* A credential helper does not matter when the credentials are inline. */
	check_creds("{\"credsStore\": \"desktop\", \"auths\": {\"127.0.0.1:5000\": {\"auth\": "
		    "\"" USER_PASS_B64 "\"}}}",
		    "127.0.0.1:5000", "user", "pa:ss");
}

static void
test_creds__absent_or_helper_only(void **state)
{
	(void)state;
	check_fails("{}", "127.0.0.1:5000", KCI_NOTFOUND, "no credentials for 127.0.0.1:5000");
	check_fails("{\"auths\": {\"127.0.0.1:5001\": {\"auth\": \"" USER_PASS_B64 "\"}}}",
		    "127.0.0.1:5000", KCI_NOTFOUND, "no credentials");
	check_fails("{\"auths\": {\"127.0.0.1:5000\": {}}}", "127.0.0.1:5000", KCI_NOTFOUND,
		    "no credentials");
	check_fails("{\"auths\": {\"ghcr.io\": {}}, \"credHelpers\": {\"ghcr.io\": \"gh\"}}",
		    "ghcr.io", KCI_INVALID, "credential helper docker-credential-gh, which kci");
	check_fails("{\"auths\": {\"https://index.docker.io/v1/\": {}}, \"credsStore\": "
		    "\"desktop\"}",
		    HUB, KCI_INVALID, "\"https://index.docker.io/v1/\": {\"auth\"");
	check_fails("{\"credHelpers\": {\"other.io\": \"x\"}}", "ghcr.io", KCI_NOTFOUND,
		    "no credentials");
	check_fails("{\"auths\": {\"r.example\": {\"identitytoken\": \"abc\"}}}", "r.example",
		    KCI_INVALID, "identity token");
}

static void
test_creds__malformed_config(void **state)
{
	(void)state;
	check_fails("{\"auths\": ", "r.example", KCI_INVALID, "docker config is not valid JSON");
	check_fails("[]", "r.example", KCI_INVALID, "not a JSON object");
	check_fails("{\"auths\": []}", "r.example", KCI_INVALID, "\"auths\" is not an object");
	check_fails("{\"auths\": {\"r.example\": {\"auth\": \"!!!\"}}}", "r.example", KCI_INVALID,
		    "not base64");
	/* base64("nocolon") */
	check_fails("{\"auths\": {\"r.example\": {\"auth\": \"bm9jb2xvbg==\"}}}", "r.example",
		    KCI_INVALID, "user:password");
}

static void
test_creds__config_file_and_path(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct auth_creds c = { 0 };
	char dir[] = "/tmp/kci-test-auth-XXXXXX", path[256], *p;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	setenv("DOCKER_CONFIG", dir, 1);
	p = auth_config_path();
	assert_string_equal(p, path);
	free(p);
	assert_int_equal(auth_lookup(path, "127.0.0.1:5000", &c, &err), KCI_NOTFOUND);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"auths\": {\"127.0.0.1:5000\": {\"auth\": \"" USER_PASS_B64 "\"}}}", f);
	fclose(f);
	assert_int_equal(auth_lookup(path, "127.0.0.1:5000", &c, &err), 0);
	assert_string_equal(c.password, "pa:ss");
	auth_creds_clear(&c);
	f = fopen(path, "w");
	fputs("{\"auths\": 5}", f);
	fclose(f);
	assert_int_equal(auth_lookup(path, "127.0.0.1:5000", &c, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, path));
	unlink(path);
	rmdir(dir);
	unsetenv("DOCKER_CONFIG");
	setenv("HOME", "/home/someone", 1);
	p = auth_config_path();
	assert_string_equal(p, "/home/someone/.docker/config.json");
	free(p);
}

static void
test_creds__basic_value(void **state)
{
	struct auth_creds c = { "user", "pass" };
	char *v = auth_basic_value(&c);

	(void)state;
	assert_string_equal(v, "Basic dXNlcjpwYXNz");
	free(v);
	c.password = "p";
	v = auth_basic_value(&c);
	assert_string_equal(v, "Basic dXNlcjpw");
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_creds__inline_credentials),
		cmocka_unit_test(test_creds__absent_or_helper_only),
		cmocka_unit_test(test_creds__malformed_config),
		cmocka_unit_test(test_creds__config_file_and_path),
		cmocka_unit_test(test_creds__basic_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
