/* Unit tests for the blob store (images/store.c): verification, atomicity, refs, sweep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/digest.h"
#include "common/fs.h"
#include "images/store.h"

static char dir[] = "/tmp/kci-store-test.XXXXXX";

static void
digest_of(const char *text, char out[72])
{
	struct kci_sha256 *h = kci_sha256_new();
	char hex[65];

	kci_sha256_update(h, text, strlen(text));
	kci_sha256_hex(h, hex);
	snprintf(out, 72, "sha256:%s", hex);
}

/* Number of directory entries in the blob dir (temp files included). */
static int
blob_files(void)
{
	char cmd[256];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s/store/blobs/sha256 | wc -l", dir);
	f = popen(cmd, "r");
	if (f && fscanf(f, "%d", &n) != 1)
		n = -1;
	if (f)
		pclose(f);
	return n;
}

static int
setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/kci-store-test.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	return kci_rm_rf(dir, NULL);
}

static struct kci_store *
open_store(void)
{
	struct kci_store *s = NULL;
	struct kci_err err = KCI_ERR_INIT;
	char path[128];

	snprintf(path, sizeof(path), "%s/store", dir);
	assert_int_equal(store_new(&s, path, &err), 0);
	return s;
}

static void
test_store__verified_put_and_read(void **state)
{
	struct kci_store *s = open_store();
	struct kci_err err = KCI_ERR_INIT;
	char d[72], *buf = NULL;
	size_t len;

	(void)state;
	digest_of("hello", d);
	assert_int_equal(store_put_bytes(s, "hello", 5, d, &err), 0);
	assert_true(store_has_blob(s, d, 5));
	assert_false(store_has_blob(s, d, 6));
	assert_int_equal(store_read_blob(s, d, 100, &buf, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "hello", 5);
	free(buf);
	store_free(s);
}

static void
test_store__mismatch_leaves_nothing(void **state)
{
	struct kci_store *s = open_store();
	struct kci_err err = KCI_ERR_INIT;
	char d[72];

	(void)state;
	digest_of("expected", d);
	assert_int_equal(store_put_bytes(s, "tampered", 8, d, &err), KCI_DIGEST);
	assert_non_null(strstr(err.msg, "digest mismatch"));
	assert_non_null(strstr(err.msg, d));
	assert_false(store_has_blob(s, d, -1));
	assert_int_equal(blob_files(), 0);
	assert_int_equal(store_put_bytes(s, "x", 1, "sha256:../../etc", &err), KCI_INVALID);
	store_free(s);
}

static void
test_store__refs_roundtrip(void **state)
{
	struct kci_store *s = open_store();
	struct kci_err err = KCI_ERR_INIT;
	struct store_ref *refs = NULL;
	size_t n = 0;
	char a[72], b[72];

	(void)state;
	digest_of("a", a);
	digest_of("b", b);
	assert_int_equal(
		store_ref_set(s, "r/x:1", "application/vnd.oci.image.manifest.v1+json", a, 1, &err),
		0);
	assert_int_equal(
		store_ref_set(s, "r/y:1", "application/vnd.oci.image.manifest.v1+json", a, 1, &err),
		0);
	assert_int_equal(
		store_ref_set(s, "r/x:1", "application/vnd.oci.image.manifest.v1+json", b, 1, &err),
		0);
	assert_int_equal(store_refs(s, &refs, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(refs[0].name, "r/x:1");
	assert_string_equal(refs[0].digest, b);
	assert_true(refs[0].created > 0);
	store_refs_free(refs, n);
	assert_int_equal(store_ref_remove(s, "r/x:1", &err), 0);
	assert_int_equal(store_ref_remove(s, "r/x:1", &err), KCI_NOTFOUND);
	assert_int_equal(store_refs(s, &refs, &n, &err), 0);
	assert_int_equal(n, 1);
	store_refs_free(refs, n);
	store_free(s);
}

static void
test_store__sweep_and_verify(void **state)
{
	struct kci_store *s = open_store();
	struct kci_err err = KCI_ERR_INIT;
	struct store_writer w = { .fd = -1 };
	char a[72], b[72], path[256];
	char *keep[] = { a, NULL };
	uint64_t freed = 0;
	size_t checked, bad;

	(void)state;
	digest_of("keep me", a);
	digest_of("drop me", b);
	assert_int_equal(store_put_bytes(s, "keep me", 7, a, &err), 0);
	assert_int_equal(store_put_bytes(s, "drop me", 7, b, &err), 0);
	/* An abandoned temp file, as a killed pull leaves it. */
	assert_int_equal(store_writer_begin(s, &w, &err), 0);
	assert_int_equal(write(w.fd, "partial", 7), 7);
	close(w.fd);
	free(w.tmp_path);
	assert_int_equal(blob_files(), 3);
	assert_int_equal(store_sweep(s, keep, &freed, &err), 0);
	assert_int_equal(blob_files(), 1);
	assert_true(store_has_blob(s, a, 7));
	assert_int_equal(store_verify(s, &checked, &bad, NULL, NULL, &err), 0);
	assert_int_equal(checked, 1);
	assert_int_equal(bad, 0);
	/* Corrupt the kept blob on disk: verify must notice. */
	snprintf(path, sizeof(path), "%s/store/blobs/sha256/%s", dir, a + 7);
	chmod(path, 0644);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("rotten", f);
	fclose(f);
	assert_int_equal(store_verify(s, &checked, &bad, NULL, NULL, &err), 0);
	assert_int_equal(bad, 1);
	/* Removed, so the next pull fetches it again instead of trusting its size. */
	assert_false(store_has_blob(s, a, -1));
	store_free(s);
}

/* A pid that no process has now: a child's, once it has been reaped. */
static pid_t
dead_pid(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void
touch_blob_file(const char *name)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/store/blobs/sha256/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs("partial", f);
	fclose(f);
}

static void
test_store__sweep_orphans_spares_live_writers(void **state)
{
	struct kci_store *s = open_store();
	struct kci_err err = KCI_ERR_INIT;
	struct store_writer w = { .fd = -1 };
	char a[72], name[128], path[256];

	(void)state;
	digest_of("a blob", a);
	assert_int_equal(store_put_bytes(s, "a blob", 6, a, &err), 0);
	/* A pull of ours in progress, and the leftovers of a killed one. */
	assert_int_equal(store_writer_begin(s, &w, &err), 0);
	snprintf(name, sizeof(name), ".blob.tmp-%d-AbCdEf", (int)dead_pid());
	touch_blob_file(name);
	snprintf(name, sizeof(name), "%s.tmp-%d-AbCdEf", a + 7, (int)dead_pid());
	touch_blob_file(name);
	assert_int_equal(blob_files(), 4);
	store_sweep_orphans(s);
	assert_int_equal(blob_files(), 2);
	assert_true(store_has_blob(s, a, 6));
	assert_int_equal(access(w.tmp_path, F_OK), 0);
	/* A killed kci's index.json temp goes too. */
	snprintf(path, sizeof(path), "%s/store/index.json.tmp-%d-AbCdEf", dir, (int)dead_pid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	store_sweep_orphans(s);
	assert_int_not_equal(access(path, F_OK), 0);
	store_writer_abort(&w);
	store_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store__verified_put_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store__mismatch_leaves_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_store__refs_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store__sweep_and_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store__sweep_orphans_spares_live_writers,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
