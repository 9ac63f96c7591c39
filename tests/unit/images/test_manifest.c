/* Unit tests for registry document parsing (images/manifest.c). */
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
#include "images/manifest.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"

#define CONFIG_DESC                                                                                \
	"\"config\": {\"mediaType\": \"" MEDIA_OCI_CONFIG "\", \"digest\": \"sha256:" H1           \
	"\", \"size\": 1234}"
#define LAYER(type, hex, size)                                                                     \
	"{\"mediaType\": \"" type "\", \"digest\": \"sha256:" hex "\", \"size\": " #size "}"

static const char oci_manifest[] =
	"{\"schemaVersion\": 2, \"mediaType\": \"" MEDIA_OCI_MANIFEST "\", " CONFIG_DESC
	", \"layers\": [" LAYER("application/vnd.oci.image.layer.v1.tar+gzip", H2, 100) ", " LAYER(
		"application/vnd.oci.image.layer.v1.tar+zstd", H3,
		200) ", " LAYER("application/vnd.oci.image.layer.v1.tar", H1,
				0) "], \"annotations\": {\"a\": \"b\"}}\n";

static const char docker_manifest[] =
	"{\"schemaVersion\": 2, \"mediaType\": \"" MEDIA_DOCKER_MANIFEST "\", \"config\": "
	"{\"mediaType\": \"" MEDIA_DOCKER_CONFIG "\", \"digest\": \"sha256:" H1 "\", \"size\": 7},"
	"\"layers\": [" LAYER("application/vnd.docker.image.rootfs.diff.tar.gzip", H2, 5) "]}";

static int
parse(const char *body, const char *type, struct manifest *m, struct kci_err *err)
{
	return manifest_parse(body, strlen(body), type, m, err);
}

/* Expects manifest_parse to fail with KCI_INVALID and `needle` in the message. */
static void
check_bad_manifest(const char *body, const char *type, const char *needle)
{
	struct kci_err err = KCI_ERR_INIT;
	struct manifest m;

	if (parse(body, type, &m, &err) != KCI_INVALID)
		fail_msg("accepted: %s", body);
	if (!strstr(err.msg, needle))
		fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void
test_manifest__oci_and_docker(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct manifest m;

	(void)state;
	assert_int_equal(parse(oci_manifest, MEDIA_OCI_MANIFEST, &m, &err), 0);
	assert_string_equal(m.media_type, MEDIA_OCI_MANIFEST);
	assert_string_equal(m.config.digest, "sha256:" H1);
	assert_int_equal(m.config.size, 1234);
	assert_int_equal(m.n_layers, 3);
	assert_int_equal(m.layers[0].codec, LAYER_GZIP);
	assert_int_equal(m.layers[1].codec, LAYER_ZSTD);
	assert_int_equal(m.layers[2].codec, LAYER_TAR);
	assert_int_equal(m.layers[1].size, 200);
	assert_string_equal(m.layers[1].digest, "sha256:" H3);
	manifest_clear(&m);

	/* No Content-Type: the body's own mediaType decides. */
	assert_int_equal(parse(docker_manifest, "", &m, &err), 0);
	assert_string_equal(m.media_type, MEDIA_DOCKER_MANIFEST);
	assert_int_equal(m.n_layers, 1);
	assert_int_equal(m.layers[0].codec, LAYER_GZIP);
	manifest_clear(&m);
	assert_int_equal(parse(docker_manifest, "application/json", &m, &err), 0);
	manifest_clear(&m);
	manifest_clear(NULL);
}

static void
test_manifest__rejects_what_kci_cannot_use(void **state)
{
	char buf[4096];

	(void)state;
	check_bad_manifest(docker_manifest, MEDIA_OCI_MANIFEST, "mediaType says");
	check_bad_manifest(oci_manifest, MEDIA_OCI_INDEX, "mediaType says");
	check_bad_manifest("{\"schemaVersion\": 2, \"manifests\": []}", MEDIA_OCI_INDEX,
			   "expected an image manifest");
	check_bad_manifest("{\"schemaVersion\": 1, \"name\": \"x\", \"fsLayers\": []}", "",
			   "schema 1");
	check_bad_manifest("{\"schemaVersion\": 2, \"mediaType\": "
			   "\"application/vnd.docker.distribution.manifest.v1+prettyjws\"}",
			   "", "schema 1");
	check_bad_manifest("{\"schemaVersion\": 3}", "", "schemaVersion 3");
	check_bad_manifest("{\"mediaType\": \"" MEDIA_OCI_MANIFEST "\"}", "", "schemaVersion");
	snprintf(buf, sizeof(buf), "{\"schemaVersion\": 2, " CONFIG_DESC ", \"layers\": [%s]}",
		 LAYER("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", H2, 1));
	check_bad_manifest(buf, "", "non-distributable");
	snprintf(buf, sizeof(buf), "{\"schemaVersion\": 2, " CONFIG_DESC ", \"layers\": [%s]}",
		 LAYER("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", H2, 1));
	check_bad_manifest(buf, "", "non-distributable");
	snprintf(buf, sizeof(buf), "{\"schemaVersion\": 2, " CONFIG_DESC ", \"layers\": [%s]}",
		 LAYER("application/vnd.oci.image.layer.v1.tar+bzip2", H2, 1));
	check_bad_manifest(buf, "", "not a tar layer kci can unpack");
	snprintf(buf, sizeof(buf),
		 "{\"schemaVersion\": 2, \"config\": {\"mediaType\": "
		 "\"application/vnd.cncf.helm.config.v1+json\", \"digest\": \"sha256:" H1
		 "\", \"size\": 3}, \"layers\": []}");
	check_bad_manifest(buf, "", "not a container image");
	snprintf(buf, sizeof(buf),
		 "{\"schemaVersion\": 2, " CONFIG_DESC ", \"layers\": [], \"manifests\": []}");
	check_bad_manifest(buf, "", "ambiguous");
	check_bad_manifest("{\"schemaVersion\": 2, \"layers\": []}", "", "no config");
	check_bad_manifest("{\"schemaVersion\": 2, " CONFIG_DESC "}", "", "no layers");
}

static void
test_manifest__descriptor_fields_validated(void **state)
{
	char buf[4096];
	const struct {
		const char *layer, *needle;
	} cases[] = {
		{ "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": "
		  "\"sha256:" H2 "\", \"size\": -1}",
		  "outside" },
		{ "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": "
		  "\"sha256:" H2 "\", \"size\": 1.5}",
		  "not an integer" },
		{ "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": "
		  "\"sha256:" H2 "\", \"size\": \"5\"}",
		  "not an integer" },
		{ "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": "
		  "\"sha256:" H2 "\", \"size\": 99999999999999999999}",
		  "outside" },
		{ "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": "
		  "\"sha256:" H2 "\"}",
		  "size is missing" },
		{ "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": "
		  "\"sha512:" H2 H2 "\", \"size\": 1}",
		  "unsupported algorithm" },
		{ "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": "
		  "\"sha256:" H2 "0\", \"size\": 1}",
		  "64 lowercase hex" },
		{ "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": "
		  "\"sha256:../../../../etc/passwd\", \"size\": 1}",
		  "64 lowercase hex" },
		{ "{\"digest\": \"sha256:" H2 "\", \"size\": 1}", "no mediaType" },
		{ "{\"mediaType\": \"no-slash\", \"digest\": \"sha256:" H2 "\", \"size\": 1}",
		  "malformed media type" },
		{ "{\"mediaType\": 5, \"digest\": \"sha256:" H2 "\", \"size\": 1}",
		  "not a string" },
		{ "[]", "not a JSON object" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf),
			 "{\"schemaVersion\": 2, " CONFIG_DESC ", \"layers\": [%s]}",
			 cases[i].layer);
		check_bad_manifest(buf, "", cases[i].needle);
	}
}

static void
test_manifest__bounds(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct manifest m;
	size_t cap = 200 * MANIFEST_LAYERS_MAX + 4096, n;
	char *buf = kci_xmalloc(cap), *deep;

	(void)state;
	n = (size_t)snprintf(buf, cap, "{\"schemaVersion\": 2, " CONFIG_DESC ", \"layers\": [");
	for (int i = 0; i <= MANIFEST_LAYERS_MAX; i++)
		n += (size_t)snprintf(buf + n, cap - n,
				      "%s" LAYER("application/vnd.oci.image.layer.v1.tar", H2, 1),
				      i ? "," : "");
	snprintf(buf + n, cap - n, "]}");
	check_bad_manifest(buf, "", "kci allows 128");
	free(buf);

	/* Too large to even look at. */
	buf = kci_xmalloc(MANIFEST_MAX + 2);
	memset(buf, ' ', MANIFEST_MAX + 1);
	buf[0] = '{';
	buf[MANIFEST_MAX] = '}';
	buf[MANIFEST_MAX + 1] = '\0';
	assert_int_equal(manifest_parse(buf, MANIFEST_MAX + 1, "", &m, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "larger than"));
	free(buf);

	/* Nesting beyond the depth limit is refused by the tokenizer. */
	deep = kci_xmalloc(4096);
	n = (size_t)snprintf(deep, 4096, "{\"schemaVersion\": 2, \"x\": ");
	for (int i = 0; i < 40; i++)
		deep[n++] = '[';
	for (int i = 0; i < 40; i++)
		deep[n++] = ']';
	snprintf(deep + n, 4096 - n, "}");
	check_bad_manifest(deep, "", "not valid JSON");
	free(deep);

	check_bad_manifest("{\"schemaVersion\": 2} {}", "", "JSON");
	check_bad_manifest("{\"schemaVersion\": 2}\n\n x", "", "JSON");
	check_bad_manifest("{\"schemaVersion\": 2", "", "truncated");
	check_bad_manifest("{\"schemaVersion\": 2,}", "", "not valid JSON");
	check_bad_manifest("{\"schemaVersion\": 2, \"mediaType\": \"\xff\xfe\"}", "",
			   "not valid JSON");
	check_bad_manifest("", "", "not valid JSON");
}

static const char index_doc[] =
	"{\"schemaVersion\": 2, \"mediaType\": \"" MEDIA_OCI_INDEX "\", \"manifests\": ["
	"{\"mediaType\": \"" MEDIA_OCI_MANIFEST "\", \"digest\": \"sha256:" H1 "\", \"size\": 500, "
	"\"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\", \"variant\": \"v8\"}},"
	"{\"mediaType\": \"" MEDIA_OCI_MANIFEST "\", \"digest\": \"sha256:" H3 "\", \"size\": 600, "
	"\"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\", \"variant\": \"v3\"}},"
	"{\"mediaType\": \"" MEDIA_OCI_MANIFEST "\", \"digest\": \"sha256:" H2 "\", \"size\": 700, "
	"\"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"}},"
	"{\"mediaType\": \"" MEDIA_OCI_MANIFEST "\", \"digest\": \"sha256:" H3 "\", \"size\": 800, "
	"\"platform\": {\"os\": \"unknown\", \"architecture\": \"unknown\"}}"
	"]}";

static void
test_manifest__index_selects_linux_amd64(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct descriptor d;

	(void)state;
	assert_int_equal(manifest_index_select(index_doc, strlen(index_doc), MEDIA_OCI_INDEX,
					       "linux", "amd64", "sha256:" H1, &d, &err),
			 0);
	assert_string_equal(d.digest, "sha256:" H2);
	assert_int_equal(d.size, 700);
	assert_string_equal(d.media_type, MEDIA_OCI_MANIFEST);
	/* Served as a Docker list but the body says OCI index: refused. */
	assert_int_equal(manifest_index_select(index_doc, strlen(index_doc), MEDIA_DOCKER_LIST,
					       "linux", "amd64", "sha256:" H1, &d, &err),
			 KCI_INVALID);
}

static void
test_manifest__index_without_platform_lists_the_others(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct descriptor d;
	const char list[] =
		"{\"schemaVersion\": 2, \"mediaType\": \"" MEDIA_DOCKER_LIST "\", \"manifests\": ["
		"{\"mediaType\": \"" MEDIA_DOCKER_MANIFEST "\", \"digest\": \"sha256:" H1 "\", "
		"\"size\": 5, \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\"}},"
		"{\"mediaType\": \"" MEDIA_DOCKER_MANIFEST "\", \"digest\": \"sha256:" H2 "\", "
		"\"size\": 5, \"platform\": {\"os\": \"linux\", \"architecture\": \"arm\", "
		"\"variant\": \"v7\"}},"
		"{\"mediaType\": \"" MEDIA_DOCKER_MANIFEST "\", \"digest\": \"sha256:" H3 "\", "
		"\"size\": 5, \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\"}},"
		"{\"mediaType\": \"" MEDIA_DOCKER_MANIFEST "\", \"digest\": \"sha256:" H3 "\", "
		"\"size\": 5, \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\", "
		"\"variant\": \"v3\"}}]}";
	const char empty[] = "{\"schemaVersion\": 2, \"manifests\": []}";

	(void)state;
	assert_int_equal(manifest_index_select(list, strlen(list), "", "linux", "amd64",
					       "sha256:" H1, &d, &err),
			 KCI_NOTFOUND);
	assert_string_equal(err.msg, "no linux/amd64 image in index sha256:" H1
				     ": available: linux/arm64, linux/arm/v7, linux/amd64/v3");
	assert_int_equal(manifest_index_select(empty, strlen(empty), "", "linux", "amd64",
					       "sha256:" H1, &d, &err),
			 KCI_NOTFOUND);
	assert_non_null(strstr(err.msg, "available: none"));
}

static void
test_manifest__index_malformed(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct descriptor d;
	const char *bad[] = {
		"{\"schemaVersion\": 2}",
		"{\"schemaVersion\": 2, \"manifests\": {}}",
		"{\"schemaVersion\": 2, \"manifests\": [], \"layers\": []}",
		"{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": \"" MEDIA_OCI_MANIFEST
		"\", \"digest\": \"sha256:" H1 "\", \"size\": 5, \"platform\": []}]}",
		"{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": \"" MEDIA_OCI_MANIFEST
		"\", \"digest\": \"md5:abc\", \"size\": 5}]}",
		"{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": \"" MEDIA_OCI_MANIFEST
		"\", \"digest\": \"sha256:" H1 "\", \"size\": 99999999}]}",
		"{\"schemaVersion\": 2, \"mediaType\": \"" MEDIA_OCI_MANIFEST
		"\", \"manifests\": []}",
		NULL,
	};

	(void)state;
	for (int i = 0; bad[i]; i++)
		if (manifest_index_select(bad[i], strlen(bad[i]), "", "linux", "amd64",
					  "sha256:" H1, &d, &err) != KCI_INVALID)
			fail_msg("accepted: %s", bad[i]);
}

static void
test_manifest__media_type_helpers(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(manifest_kind_of(MEDIA_OCI_MANIFEST), MANIFEST_IMAGE);
	assert_int_equal(manifest_kind_of(MEDIA_DOCKER_MANIFEST), MANIFEST_IMAGE);
	assert_int_equal(manifest_kind_of(MEDIA_OCI_INDEX), MANIFEST_INDEX);
	assert_int_equal(manifest_kind_of(MEDIA_DOCKER_LIST), MANIFEST_INDEX);
	assert_int_equal(manifest_kind_of("application/json"), MANIFEST_UNKNOWN);
	manifest_body_media_type(docker_manifest, strlen(docker_manifest), out, sizeof(out));
	assert_string_equal(out, MEDIA_DOCKER_MANIFEST);
	manifest_body_media_type("not json", 8, out, sizeof(out));
	assert_string_equal(out, "");
	manifest_body_media_type("{\"mediaType\": \"bad type\"}", 25, out, sizeof(out));
	assert_string_equal(out, "");
}

static const char config_doc[] =
	"{\"architecture\": \"amd64\", \"os\": \"linux\", \"created\": \"2024-01-01T00:00:00Z\","
	"\"config\": {\"Env\": [\"PATH=/usr/bin:/bin\", \"EMPTY=\"], \"Entrypoint\": [\"/bin/sh\", "
	"\"-c\"], \"Cmd\": [\"echo hi\"], \"WorkingDir\": \"/work\", \"User\": \"1000:1000\", "
	"\"Labels\": {\"a\": \"b\"}, \"ExposedPorts\": {\"80/tcp\": {}}},"
	"\"rootfs\": {\"type\": \"layers\", \"diff_ids\": [\"sha256:" H1 "\", \"sha256:" H2 "\"]},"
	"\"history\": [{\"created_by\": \"x\"}]}";

static void
test_manifest__image_config(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_image_config c;
	const char minimal[] = "{\"architecture\": \"amd64\", \"os\": \"linux\", \"rootfs\": "
			       "{\"type\": \"layers\", \"diff_ids\": []}}";
	const char nulls[] = "{\"architecture\": \"amd64\", \"os\": \"linux\", \"config\": "
			     "{\"Env\": null, \"Cmd\": null, \"Entrypoint\": [], \"WorkingDir\": "
			     "\"\"}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}";

	(void)state;
	assert_int_equal(image_config_parse(config_doc, strlen(config_doc), &c, &err), 0);
	assert_string_equal(c.os, "linux");
	assert_string_equal(c.architecture, "amd64");
	assert_string_equal(c.env[0], "PATH=/usr/bin:/bin");
	assert_string_equal(c.env[1], "EMPTY=");
	assert_null(c.env[2]);
	assert_string_equal(c.entrypoint[1], "-c");
	assert_null(c.entrypoint[2]);
	assert_string_equal(c.cmd[0], "echo hi");
	assert_string_equal(c.working_dir, "/work");
	assert_string_equal(c.user, "1000:1000");
	assert_string_equal(c.diff_ids[1], "sha256:" H2);
	assert_null(c.diff_ids[2]);
	kci_images_config_clear(&c);
	kci_images_config_clear(&c);

	assert_int_equal(image_config_parse(minimal, strlen(minimal), &c, &err), 0);
	assert_non_null(c.env);
	assert_null(c.env[0]);
	assert_null(c.cmd);
	assert_null(c.entrypoint);
	assert_null(c.working_dir);
	assert_null(c.diff_ids[0]);
	kci_images_config_clear(&c);

	assert_int_equal(image_config_parse(nulls, strlen(nulls), &c, &err), 0);
	assert_null(c.cmd);
	assert_non_null(c.entrypoint);
	assert_null(c.entrypoint[0]);
	assert_null(c.working_dir);
	kci_images_config_clear(&c);
}

static void
test_manifest__image_config_invalid(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_image_config c;
	const struct {
		const char *doc, *needle;
	} cases[] = {
		{ "{\"os\": \"linux\", \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
		  "architecture" },
		{ "{\"os\": \"linux\", \"architecture\": \"amd64\"}", "rootfs" },
		{ "{\"os\": \"linux\", \"architecture\": \"amd64\", \"rootfs\": {\"type\": \"x\", "
		  "\"diff_ids\": []}}",
		  "rootfs type" },
		{ "{\"os\": \"linux\", \"architecture\": \"amd64\", \"rootfs\": {\"type\": "
		  "\"layers\", \"diff_ids\": [\"sha256:abc\"]}}",
		  "64 lowercase hex" },
		{ "{\"os\": \"linux\", \"architecture\": \"amd64\", \"rootfs\": {\"type\": "
		  "\"layers\", \"diff_ids\": [5]}}",
		  "diff_id" },
		{ "{\"os\": \"linux\", \"architecture\": \"amd64\", \"config\": {\"Env\": "
		  "[\"NOEQUALS\"]}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
		  "KEY=VALUE" },
		{ "{\"os\": \"linux\", \"architecture\": \"amd64\", \"config\": {\"Cmd\": "
		  "[\"a\\u0000b\"]}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
		  "NUL" },
		{ "{\"os\": \"linux\", \"architecture\": \"amd64\", \"config\": {\"Cmd\": \"sh\"}, "
		  "\"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
		  "not an array" },
		{ "{\"os\": \"linux\", \"architecture\": \"amd64\", \"config\": {\"Cmd\": [1]}, "
		  "\"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
		  "not a string" },
		{ "{\"os\": \"linux\", \"architecture\": \"amd64\", \"config\": 7, "
		  "\"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
		  "not an object" },
		{ "{\"os\": \"linux\", \"architecture\": \"amd64\", \"config\": {\"User\": "
		  "[\"root\"]}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
		  "User is not a string" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&c, 0, sizeof(c));
		if (image_config_parse(cases[i].doc, strlen(cases[i].doc), &c, &err) != KCI_INVALID)
			fail_msg("accepted: %s", cases[i].doc);
		if (!strstr(err.msg, cases[i].needle))
			fail_msg("message '%s' lacks '%s'", err.msg, cases[i].needle);
		/* Nothing is handed out on failure. */
		assert_null(c.env);
		assert_null(c.os);
	}
}

static void
test_manifest__error_bodies_and_text(void **state)
{
	char out[256];
	const char body[] =
		"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest "
		"unknown\",\"detail\":{}},{\"code\":\"X\",\"message\":\"\\u001b[31mred\"}]}";

	(void)state;
	registry_errors_text(body, strlen(body), out, sizeof(out));
	assert_string_equal(out, "MANIFEST_UNKNOWN: manifest unknown; X: ?[31mred");
	registry_errors_text("<html>", 6, out, sizeof(out));
	assert_string_equal(out, "");
	registry_errors_text("{\"errors\": 5}", 13, out, sizeof(out));
	assert_string_equal(out, "");
	text_clean(out, 8, "abcdefghijkl", 12);
	assert_string_equal(out, "abcd...");
	text_clean(out, sizeof(out), "a\nb\0c", 5);
	assert_string_equal(out, "a?b?c");
	assert_true(digest_is_valid("sha256:" H1));
	assert_false(digest_is_valid("sha256:" H1 "1"));
	assert_false(digest_is_valid("sha256:"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest__oci_and_docker),
		cmocka_unit_test(test_manifest__rejects_what_kci_cannot_use),
		cmocka_unit_test(test_manifest__descriptor_fields_validated),
		cmocka_unit_test(test_manifest__bounds),
		cmocka_unit_test(test_manifest__index_selects_linux_amd64),
		cmocka_unit_test(test_manifest__index_without_platform_lists_the_others),
		cmocka_unit_test(test_manifest__index_malformed),
		cmocka_unit_test(test_manifest__media_type_helpers),
		cmocka_unit_test(test_manifest__image_config),
		cmocka_unit_test(test_manifest__image_config_invalid),
		cmocka_unit_test(test_manifest__error_bodies_and_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
