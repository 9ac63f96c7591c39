/* Unit tests for engine/logbuf.c: output lines, secret masking, file names of jobs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "engine/internal.h"

struct lines {
	char *all; /* every emitted line, each followed by '\n' */
	size_t n;
};

static void
collect(void *ctx, const char *line, size_t len)
{
	struct lines *l = ctx;
	size_t old = l->all ? strlen(l->all) : 0;

	assert_int_equal(strlen(line), len);
	l->all = kci_xrealloc(l->all, old + len + 2);
	memcpy(l->all + old, line, len);
	l->all[old + len] = '\n';
	l->all[old + len + 1] = '\0';
	l->n++;
}

static void
feed_all(struct masker *m, const char *text, size_t chunk, struct lines *out)
{
	struct logbuf *b = kci_xcalloc(1, sizeof(*b));
	size_t len = strlen(text);

	for (size_t i = 0; i < len; i += chunk)
		logbuf_feed(b, m, text + i, len - i < chunk ? len - i : chunk, collect, out);
	logbuf_flush(b, m, collect, out);
	logbuf_free(b);
	free(b);
}

static void
test_lines_split_and_crlf(void **state)
{
	char *secrets[] = { NULL };
	struct lines out = { 0 };
	struct masker m;

	(void)state;
	mask_init(&m, secrets);
	feed_all(&m, "one\r\ntwo\n\nlast-without-newline", 3, &out);
	assert_string_equal(out.all, "one\ntwo\n\nlast-without-newline\n");
	assert_int_equal(out.n, 4);
	mask_free(&m);
	free(out.all);
}

/* A secret fed one byte at a time, and inside other text, never leaves whole or in part. */
static void
test_mask_across_chunks(void **state)
{
	char *secrets[] = { "TOKEN=s3cr3t-value", "EMPTY=", NULL };
	struct lines out = { 0 };
	struct masker m;

	(void)state;
	mask_init(&m, secrets);
	feed_all(&m, "the token is s3cr3t-value.\ns3cr3t-values3cr3t-value\n", 1, &out);
	assert_string_equal(out.all, "the token is ***.\n******\n");
	assert_null(strstr(out.all, "s3cr3t"));
	mask_free(&m);
	free(out.all);
}

/* A secret that contains another is masked whole (longest first). */
static void
test_mask_longest_first(void **state)
{
	char *secrets[] = { "A=abc", "B=xxabcxx", NULL };
	struct masker m;
	size_t len;
	char *s;

	(void)state;
	mask_init(&m, secrets);
	s = mask_str(&m, "1 xxabcxx 2 abc", 15, &len);
	assert_string_equal(s, "1 *** 2 ***");
	assert_int_equal(len, strlen(s));
	free(s);
	mask_free(&m);
}

/* Each line of a multi-line secret is masked where output splits it into lines. */
static void
test_mask_multiline_secret(void **state)
{
	char *secrets[] = { "KEY=-----BEGIN-----\nmiddle-line-of-key\n-----END-----", NULL };
	struct lines out = { 0 };
	struct masker m;

	(void)state;
	mask_init(&m, secrets);
	feed_all(&m, "-----BEGIN-----\nmiddle-line-of-key\n-----END-----\n", 7, &out);
	assert_string_equal(out.all, "***\n***\n***\n");
	mask_free(&m);
	free(out.all);
}

/* A line longer than the buffer leaves in pieces, and no secret is cut by a piece boundary. */
static void
test_long_line_keeps_secrets_whole(void **state)
{
	char *secrets[] = { "T=0123456789abcdef", NULL };
	size_t n = LOG_LINE_MAX * 3;
	char *text = kci_xmalloc(n + 2);
	struct lines out = { 0 };
	struct masker m;

	(void)state;
	/* The secret repeated back to back, at every possible offset against a piece cut. */
	for (size_t i = 0; i < n; i++)
		text[i] = "0123456789abcdef"[i % 16];
	text[n] = '\n';
	text[n + 1] = '\0';
	for (size_t shift = 0; shift < 16; shift += 5) {
		mask_init(&m, secrets);
		feed_all(&m, text + shift, 4096, &out);
		assert_true(out.n >= 3);
		assert_null(strstr(out.all, "0123456789abcdef"));
		/* Whatever is not a mask is a fragment shorter than the secret at either end. */
		for (char *p = out.all; *p; p++)
			assert_true(*p == '*' || *p == '\n' || strchr("0123456789abcdef", *p));
		mask_free(&m);
		free(out.all);
		out.all = NULL;
		out.n = 0;
	}
	free(text);
}

/* A secret longer than a log line (a base64 kubeconfig) is masked whole at any offset. */
static void
test_secret_longer_than_a_line(void **state)
{
	size_t slen = 6000, n = slen * 4;
	char *secret = kci_xmalloc(slen + 3), *text = kci_xmalloc(n + 2);
	char *secrets[] = { secret, NULL };
	struct lines out = { 0 };
	struct masker m;

	(void)state;
	memcpy(secret, "K=", 2);
	for (size_t i = 0; i < slen; i++)
		secret[2 + i] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i * 7 %
											   64];
	secret[2 + slen] = '\0';
	for (size_t prefix = 0; prefix < n - slen; prefix += 4999) {
		memset(text, '.', n);
		memcpy(text + prefix, secret + 2, slen);
		text[n] = '\n';
		text[n + 1] = '\0';
		mask_init(&m, secrets);
		feed_all(&m, text, 1000, &out);
		assert_non_null(strstr(out.all, "***"));
		/* No run of the secret's characters longer than a handful survives. */
		for (size_t i = 0, run = 0; out.all[i]; i++) {
			run = strchr(".*\n", out.all[i]) ? 0 : run + 1;
			assert_true(run < 16);
		}
		mask_free(&m);
		free(out.all);
		out.all = NULL;
		out.n = 0;
	}
	free(secret);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_split_and_crlf),
		cmocka_unit_test(test_mask_across_chunks),
		cmocka_unit_test(test_mask_longest_first),
		cmocka_unit_test(test_mask_multiline_secret),
		cmocka_unit_test(test_long_line_keeps_secrets_whole),
		cmocka_unit_test(test_secret_longer_than_a_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
