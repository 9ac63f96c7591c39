/*
 * Unit tests for server/config.c: a full config, the defaults, unknown keys with their place
 * and a hint, required keys, the files it names (missing, empty, not regular) and URLs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fs.h"
#include "server/internal.h"

static char dir[] = "/tmp/kci-config-test.XXXXXX";
static char cfg_path[sizeof(dir) + 32];

static int
setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(cfg_path, sizeof(cfg_path), "%s/server.yml", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(kci_rm_rf(dir, NULL), 0);
	strcpy(dir + strlen(dir) - 6, "XXXXXX");
	return 0;
}

/* Writes text to dir/name. */
static void
put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

/* The files a minimal config names. */
static void
put_tokens(void)
{
	put("agent.token", "agent-secret\n");
	put("widget.hook", "hook-secret\n");
}

/* Writes yaml as the config and loads it; the code, with *cfg set only on success. */
static int
load(const char *yaml, struct config **cfg, struct kci_err *err)
{
	put("server.yml", yaml);
	*cfg = NULL;
	return config_load(cfg_path, cfg, err);
}

/* Loads yaml, which must fail with code; the message is in err. */
static void
load_fails(const char *yaml, int code, struct kci_err *err)
{
	struct config *cfg = NULL;
	int rc = load(yaml, &cfg, err);

	if (rc != code)
		fail_msg("expected %d, got %d: %s", code, rc, err->msg);
	assert_null(cfg);
}

/* Fails the test unless msg contains want. */
static void
assert_has(const char *msg, const char *want)
{
	if (!strstr(msg, want))
		fail_msg("\"%s\" is not in \"%s\"", want, msg);
}

static const char minimal[] = "listen: 127.0.0.1:8080\n"
			      "agent_token_file: agent.token\n"
			      "repos:\n"
			      "  - name: acme/widget\n"
			      "    forge: github\n"
			      "    secret_file: widget.hook\n";

static void
test_config__full_config_is_read(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct config *cfg = NULL;
	const struct repo_conf *r;
	char yaml[4096];

	(void)state;
	put_tokens();
	put("admin.token", "admin-secret\n");
	put("cert.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	put("key.pem", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");
	put("widget.clone", "clone-token\n");
	put("widget.token", "status-token\n");
	put("widget.secrets", "# deploy keys\nAPI_TOKEN=abc\n\nUPLOAD=x=y\r\n");
	put("gadget.hook", "gadget-secret");
	/* Absolute and relative file names alike: relative ones are next to the config. */
	snprintf(yaml, sizeof(yaml),
		 "listen: 127.0.0.1:8080\n"
		 "url: https://ci.example.com/\n"
		 "agent_token_file: %s/agent.token\n"
		 "admin_token_file: admin.token      # optional\n"
		 "tls_cert_file: cert.pem            # optional, with tls_key_file\n"
		 "tls_key_file: key.pem\n"
		 "repos:\n"
		 "  - name: acme/widget\n"
		 "    forge: github                     # github | gitea | gitlab\n"
		 "    secret_file: widget.hook\n"
		 "    clone_url: https://github.com/acme/widget.git\n"
		 "    clone_token_file: widget.clone\n"
		 "    status_token_file: widget.token\n"
		 "    api_url: https://api.github.com/\n"
		 "    secrets_file: widget.secrets\n"
		 "    cancel_superseded: false\n"
		 "  - name: team/sub/gadget\n"
		 "    forge: gitlab\n"
		 "    secret_file: gadget.hook\n",
		 dir);
	if (load(yaml, &cfg, &err) != 0)
		fail_msg("config_load: %s", err.msg);
	assert_string_equal(cfg->listen, "127.0.0.1:8080");
	assert_string_equal(cfg->url, "https://ci.example.com");
	assert_string_equal(cfg->agent_token, "agent-secret");
	assert_string_equal(cfg->admin_token, "admin-secret");
	assert_string_equal(cfg->tls_cert,
			    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
	assert_non_null(strstr(cfg->tls_key, "PRIVATE KEY"));
	assert_int_equal(cfg->n_repos, 2);

	r = config_repo(cfg, "acme/widget", FORGE_GITHUB);
	assert_ptr_equal(r, &cfg->repos[0]);
	assert_string_equal(r->secret, "hook-secret");
	assert_string_equal(r->clone_url, "https://github.com/acme/widget.git");
	assert_string_equal(r->clone_token, "clone-token");
	assert_string_equal(r->status_token, "status-token");
	assert_string_equal(r->api_url, "https://api.github.com");
	assert_int_equal(r->cancel_superseded, 0);
	assert_non_null(r->secrets);
	assert_string_equal(r->secrets[0], "API_TOKEN=abc");
	assert_string_equal(r->secrets[1], "UPLOAD=x=y");
	assert_null(r->secrets[2]);

	r = config_repo(cfg, "team/sub/gadget", FORGE_GITLAB);
	assert_ptr_equal(r, &cfg->repos[1]);
	assert_string_equal(r->secret, "gadget-secret");
	config_free(cfg);
}

static void
test_config__defaults(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct config *cfg = NULL;
	const struct repo_conf *r;

	(void)state;
	put_tokens();
	if (load("listen: 127.0.0.1:8080\n"
		 "agent_token_file: agent.token\n"
		 "repos:\n"
		 "  - {name: acme/widget, forge: github, secret_file: widget.hook}\n"
		 "  - {name: group/project, forge: gitlab, secret_file: widget.hook}\n"
		 "  - name: team/app\n"
		 "    forge: forgejo\n"
		 "    secret_file: widget.hook\n"
		 "    clone_url: https://codeberg.org/team/app.git\n",
		 &cfg, &err) != 0)
		fail_msg("config_load: %s", err.msg);
	assert_string_equal(cfg->url, "http://127.0.0.1:8080");
	assert_null(cfg->admin_token);
	assert_null(cfg->tls_cert);
	assert_null(cfg->tls_key);

	r = &cfg->repos[0];
	assert_int_equal(r->forge, FORGE_GITHUB);
	assert_string_equal(r->clone_url, "https://github.com/acme/widget.git");
	assert_string_equal(r->api_url, "https://api.github.com");
	assert_null(r->clone_token);
	assert_null(r->status_token);
	assert_int_equal(r->cancel_superseded, 1);
	assert_non_null(r->secrets);
	assert_null(r->secrets[0]);

	r = &cfg->repos[1];
	assert_int_equal(r->forge, FORGE_GITLAB);
	assert_string_equal(r->clone_url, "https://gitlab.com/group/project.git");
	assert_string_equal(r->api_url, "https://gitlab.com");

	r = &cfg->repos[2];
	assert_int_equal(r->forge, FORGE_GITEA);
	assert_string_equal(r->clone_url, "https://codeberg.org/team/app.git");
	assert_null(r->api_url);
	config_free(cfg);
}

static void
test_config__unknown_key_has_place_and_hint(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char path[300];

	(void)state;
	put_tokens();
	snprintf(path, sizeof(path), "%s:2:1: unknown key \"listne\" at the top level", cfg_path);
	load_fails("agent_token_file: agent.token\n"
		   "listne: 127.0.0.1:8080\n",
		   KCI_INVALID, &err);
	assert_has(err.msg, path);
	assert_has(err.msg, "(did you mean \"listen\"?)");

	snprintf(path, sizeof(path),
		 "%s:7:5: unknown key \"secret_flie\" in repository \"acme/widget\"", cfg_path);
	load_fails("listen: 127.0.0.1:8080\n"
		   "agent_token_file: agent.token\n"
		   "repos:\n"
		   "  - name: acme/widget\n"
		   "    forge: github\n"
		   "    secret_file: widget.hook\n"
		   "    secret_flie: widget.hook\n",
		   KCI_INVALID, &err);
	assert_has(err.msg, path);
	assert_has(err.msg, "(did you mean \"secret_file\"?)");

	/* Nothing close: no hint. */
	load_fails("listen: 127.0.0.1:8080\nfrobnicate: yes\n", KCI_INVALID, &err);
	assert_has(err.msg, ":2:1: unknown key \"frobnicate\" at the top level");
	assert_null(strstr(err.msg, "did you mean"));
}

static void
test_config__missing_required_keys(void **state)
{
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	put_tokens();
	load_fails("agent_token_file: agent.token\nrepos: []\n", KCI_INVALID, &err);
	assert_has(err.msg, ":1:1: listen is required");
	load_fails("listen: 127.0.0.1:8080\nrepos: []\n", KCI_INVALID, &err);
	assert_has(err.msg, "agent_token_file is required");
	load_fails("listen: 127.0.0.1:8080\nagent_token_file: agent.token\n", KCI_INVALID, &err);
	assert_has(err.msg, "repos is required");
	load_fails("listen: 127.0.0.1:8080\nagent_token_file: agent.token\nrepos: []\n",
		   KCI_INVALID, &err);
	assert_has(err.msg, ":3:8: repos must list the repositories to build, at least one");
	load_fails("listen: 127.0.0.1:8080\n"
		   "agent_token_file: agent.token\n"
		   "repos:\n"
		   "  - forge: github\n"
		   "    secret_file: widget.hook\n",
		   KCI_INVALID, &err);
	assert_has(err.msg, ":4:5: name is required");
	load_fails("listen: 127.0.0.1:8080\n"
		   "agent_token_file: agent.token\n"
		   "repos:\n"
		   "  - name: acme/widget\n"
		   "    secret_file: widget.hook\n",
		   KCI_INVALID, &err);
	assert_has(err.msg, ":4:5: forge is required");
	load_fails("listen: 127.0.0.1:8080\n"
		   "agent_token_file: agent.token\n"
		   "repos:\n"
		   "  - name: acme/widget\n"
		   "    forge: github\n",
		   KCI_INVALID, &err);
	assert_has(err.msg, ":4:5: secret_file is required");
	load_fails("", KCI_INVALID, &err);
	assert_has(err.msg, ":1:1: the config is empty");
	load_fails("- listen\n", KCI_INVALID, &err);
	assert_has(err.msg, "the config must be a mapping");
	load_fails("listen: [127.0.0.1, 8080]\n", KCI_INVALID, &err);
	assert_has(err.msg, ":1:9: listen must be a string");
}

static void
test_config__unreadable_token_file_is_named(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char want[300];

	(void)state;
	put("widget.hook", "x\n");
	snprintf(want, sizeof(want), "%s:2:19: agent_token_file: open %s/agent.token", cfg_path,
		 dir);
	load_fails(minimal, KCI_NOTFOUND, &err);
	assert_has(err.msg, want);

	/* A directory, or a FIFO no one writes to, is refused rather than read or waited on. */
	snprintf(want, sizeof(want), "%s/agent.token", dir);
	assert_int_equal(mkdir(want, 0700), 0);
	load_fails(minimal, KCI_INVALID, &err);
	assert_has(err.msg, "agent.token is not a regular file");
	assert_int_equal(rmdir(want), 0);
	assert_int_equal(mkfifo(want, 0600), 0);
	load_fails(minimal, KCI_INVALID, &err);
	assert_has(err.msg, "agent.token is not a regular file");
}

static void
test_config__empty_token_file_is_named(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char want[300];

	(void)state;
	put_tokens();
	put("widget.hook", "\n");
	snprintf(want, sizeof(want), ":6:18: secret_file %s/widget.hook: the file is empty", dir);
	load_fails(minimal, KCI_INVALID, &err);
	assert_has(err.msg, want);

	put("widget.hook", "");
	load_fails(minimal, KCI_INVALID, &err);
	assert_has(err.msg, want);
}

static void
test_config__one_trailing_newline_trimmed(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct config *cfg = NULL;

	(void)state;
	put_tokens();
	put("agent.token", "tok\r\n");
	if (load(minimal, &cfg, &err) != 0)
		fail_msg("config_load: %s", err.msg);
	assert_string_equal(cfg->agent_token, "tok");
	config_free(cfg);

	put("agent.token", "tok");
	if (load(minimal, &cfg, &err) != 0)
		fail_msg("config_load: %s", err.msg);
	assert_string_equal(cfg->agent_token, "tok");
	config_free(cfg);

	/* A second line would end up in an HTTP header: refused, not trimmed. */
	put("agent.token", "tok\n\n");
	load_fails(minimal, KCI_INVALID, &err);
	assert_has(err.msg, "agent.token: has a control character or a second line");
	put("agent.token", "tok\nen\n");
	load_fails(minimal, KCI_INVALID, &err);
	assert_has(err.msg, "has a control character");
}

static void
test_config__listen_is_host_and_port(void **state)
{
	static const char *const bad[] = { "8080",	 ":8080",	"localhost",
					   "localhost:", "localhost:0", "localhost:65536",
					   "host:080",	 "a b:80",	"::1:8080",
					   "[::1]",	 "[]:80",	"host:80x",
					   "host:123456" };
	static const char *const good[] = { "127.0.0.1:8080", "[::1]:8080", "ci.example.com:443",
					    "0.0.0.0:65535" };
	struct kci_err err = KCI_ERR_INIT;
	struct config *cfg = NULL;
	char yaml[512];

	(void)state;
	put_tokens();
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(yaml, sizeof(yaml), "listen: \"%s\"\n%s", bad[i],
			 strchr(minimal, '\n') + 1);
		load_fails(yaml, KCI_INVALID, &err);
		assert_has(err.msg, ":1:9: listen must be HOST:PORT");
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		snprintf(yaml, sizeof(yaml), "listen: \"%s\"\n%s", good[i],
			 strchr(minimal, '\n') + 1);
		if (load(yaml, &cfg, &err) != 0)
			fail_msg("%s: %s", good[i], err.msg);
		assert_string_equal(cfg->listen, good[i]);
		config_free(cfg);
	}
}

/* A minimal config whose one repository has these extra lines (indented already). */
static void
repo_yaml(char *buf, size_t size, const char *forge, const char *extra)
{
	snprintf(buf, size,
		 "listen: 127.0.0.1:8080\n"
		 "agent_token_file: agent.token\n"
		 "repos:\n"
		 "  - name: acme/widget\n"
		 "    forge: %s\n"
		 "    secret_file: widget.hook\n"
		 "%s",
		 forge, extra);
}

static void
test_config__forges_and_their_urls(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char yaml[1024];

	(void)state;
	put_tokens();
	put("widget.token", "status\n");
	repo_yaml(yaml, sizeof(yaml), "githb", "");
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, ":5:12: unknown forge \"githb\" (did you mean \"github\"?)");
	repo_yaml(yaml, sizeof(yaml), "gitea", "");
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, ":4:5: clone_url is needed for gitea");
	repo_yaml(yaml, sizeof(yaml), "gitea",
		  "    clone_url: https://git.example.com/acme/widget.git\n"
		  "    status_token_file: widget.token\n");
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, "api_url is needed for gitea when status_token_file is set");
	/* GitHub Enterprise: the name on github.com may be somebody else's repository. */
	repo_yaml(yaml, sizeof(yaml), "github", "    api_url: https://ghe.example.com/api/v3\n");
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, ":7:14: clone_url is needed when api_url names another host");
	repo_yaml(yaml, sizeof(yaml), "github",
		  "    clone_url: http://github.com/acme/widget.git\n");
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, "clone_url must start with https:// or file:///");
	repo_yaml(yaml, sizeof(yaml), "github",
		  "    clone_url: https://me:pw@github.com/acme/widget.git\n");
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, "clone_url must not hold credentials");
	repo_yaml(yaml, sizeof(yaml), "gitea",
		  "    clone_url: https://git.example.com/acme/widget.git\n"
		  "    api_url: http://git.example.com\n");
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, "api_url must start with https:// (http:// only to localhost)");
	repo_yaml(yaml, sizeof(yaml), "github", "    cancel_superseded: maybe\n");
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, ":7:24: cancel_superseded must be true or false");
}

static void
test_config__local_urls(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct config *cfg = NULL;
	char yaml[1024];

	(void)state;
	put_tokens();
	put("widget.token", "status\n");
	repo_yaml(yaml, sizeof(yaml), "gitea",
		  "    clone_url: file:///srv/git/widget.git\n"
		  "    api_url: http://localhost:3000/\n"
		  "    status_token_file: widget.token\n");
	if (load(yaml, &cfg, &err) != 0)
		fail_msg("config_load: %s", err.msg);
	assert_string_equal(cfg->repos[0].clone_url, "file:///srv/git/widget.git");
	assert_string_equal(cfg->repos[0].api_url, "http://localhost:3000");
	assert_string_equal(cfg->repos[0].status_token, "status");
	config_free(cfg);
}

static void
test_config__repository_names(void **state)
{
	static const char *const bad[] = { "widget",	     "/widget",	       "acme/",
					   "acme//widget",   "acme/../widget", "acme/wid get",
					   "acme/wid\\\\get" };
	struct kci_err err = KCI_ERR_INIT;
	char yaml[1024];

	(void)state;
	put_tokens();
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(yaml, sizeof(yaml),
			 "listen: 127.0.0.1:8080\n"
			 "agent_token_file: agent.token\n"
			 "repos:\n"
			 "  - name: \"%s\"\n"
			 "    forge: github\n"
			 "    secret_file: widget.hook\n",
			 bad[i]);
		load_fails(yaml, KCI_INVALID, &err);
		assert_has(err.msg, ":4:11: name must be the forge's OWNER/REPO");
	}
	load_fails("listen: 127.0.0.1:8080\n"
		   "agent_token_file: agent.token\n"
		   "repos:\n"
		   "  - {name: acme/widget, forge: github, secret_file: widget.hook}\n"
		   "  - {name: acme/widget, forge: github, secret_file: widget.hook}\n",
		   KCI_INVALID, &err);
	assert_has(err.msg, ":5:12: repository \"acme/widget\" is listed twice (first at line 4)");
}

static void
test_config__secrets_file(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct config *cfg = NULL;
	char yaml[1024], want[300];

	(void)state;
	put_tokens();
	put("widget.secrets", "A=1\n# comment\n\nB=2\nA=3\n");
	repo_yaml(yaml, sizeof(yaml), "github", "    secrets_file: widget.secrets\n");
	if (load(yaml, &cfg, &err) != 0)
		fail_msg("config_load: %s", err.msg);
	assert_string_equal(cfg->repos[0].secrets[0], "A=3");
	assert_string_equal(cfg->repos[0].secrets[1], "B=2");
	assert_null(cfg->repos[0].secrets[2]);
	config_free(cfg);

	put("widget.secrets", "A=1\n\nnot a pair\n");
	snprintf(want, sizeof(want), "secrets_file %s/widget.secrets: line 3 is not NAME=VALUE",
		 dir);
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, want);
	put("widget.secrets", "=1\n");
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, "line 1 is not NAME=VALUE");
}

static void
test_config__tls_needs_both_files(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char yaml[1024];

	(void)state;
	put_tokens();
	put("cert.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	put("key.pem", "not a key\n");
	snprintf(yaml, sizeof(yaml), "tls_cert_file: cert.pem\n%s", minimal);
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, ":1:16: tls_cert_file and tls_key_file go together");
	snprintf(yaml, sizeof(yaml), "tls_cert_file: cert.pem\ntls_key_file: key.pem\n%s", minimal);
	load_fails(yaml, KCI_INVALID, &err);
	assert_has(err.msg, "key.pem: not a PEM file");
}

static void
test_config__repo_lookup_by_name_and_forge(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct config *cfg = NULL;

	(void)state;
	put_tokens();
	if (load("listen: 127.0.0.1:8080\n"
		 "agent_token_file: agent.token\n"
		 "repos:\n"
		 "  - {name: acme/widget, forge: github, secret_file: widget.hook}\n"
		 "  - {name: acme/widget, forge: gitlab, secret_file: widget.hook}\n",
		 &cfg, &err) != 0)
		fail_msg("config_load: %s", err.msg);
	assert_ptr_equal(config_repo(cfg, "acme/widget", FORGE_GITHUB), &cfg->repos[0]);
	assert_ptr_equal(config_repo(cfg, "acme/widget", FORGE_GITLAB), &cfg->repos[1]);
	assert_null(config_repo(cfg, "acme/widget", FORGE_GITEA));
	assert_null(config_repo(cfg, "Acme/Widget", FORGE_GITHUB));
	assert_null(config_repo(cfg, "acme/widget2", FORGE_GITHUB));
	assert_null(config_repo(cfg, NULL, FORGE_GITHUB));
	config_free(cfg);
	assert_null(config_repo(NULL, "acme/widget", FORGE_GITHUB));
}

static void
test_config__yaml_errors_have_places(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	char want[300];

	(void)state;
	snprintf(want, sizeof(want), "%s:2:1: duplicate key \"listen\"", cfg_path);
	load_fails("listen: a:1\nlisten: b:2\n", KCI_INVALID, &err);
	assert_has(err.msg, want);
	load_fails("listen: &x a:1\n", KCI_INVALID, &err);
	assert_has(err.msg, "anchors and aliases are not supported");
	load_fails("listen: [\n", KCI_INVALID, &err);
	assert_has(err.msg, cfg_path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config__full_config_is_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config__defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config__unknown_key_has_place_and_hint, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__missing_required_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__unreadable_token_file_is_named, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__empty_token_file_is_named, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__one_trailing_newline_trimmed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__listen_is_host_and_port, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__forges_and_their_urls, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__local_urls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config__repository_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config__secrets_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config__tls_needs_both_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config__repo_lookup_by_name_and_forge, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__yaml_errors_have_places, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
