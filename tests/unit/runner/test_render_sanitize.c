/*
 * Unit tests for runner/render.c's sanitizer, which every hostile byte passes
 * before it reaches a terminal: kci_put_sanitized and kci_plain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "runner/cli.h"

#include "render_fixture.h"

/* s (len bytes) through kci_put_sanitized, as a new string. */
static char *
sanitized(const char *s, size_t len)
{
	struct sink out;
	char *copy;

	sink_open(&out);
	kci_put_sanitized(out.f, s, len);
	copy = kci_xstrdup(sink_text(&out));
	sink_close(&out);
	return copy;
}

#define S(lit) sanitized(lit, sizeof(lit) - 1)

static void
assert_sanitized(char *got, const char *want)
{
	assert_string_equal(got, want);
	free(got);
}

static void
test_render__sanitize_controls_become_question_marks(void **state)
{
	(void)state;
	assert_sanitized(S("tab\tkept"), "tab\tkept");
	assert_sanitized(S("nul\0bell\a cr\r lf\n esc\x1b del\x7f"), "nul?bell? cr? lf? esc? del?");
	/* C1 raw (after ASCII, or first) and UTF-8 encoded: one '?' each. */
	assert_sanitized(S("\x9b"
			   "2J a\x9b"
			   "2J b\xc2\x9b"
			   "2J c\xc2\x85"),
			 "?2J a?2J b?2J c?");
	/* UTF-8 text, continuation bytes in 0x80-0x9f included, is text. */
	assert_sanitized(S("caf\xc3\xa9 \xc3\x9b \xc2\xa0 \xe2\x9b\x94 \xf0\x9f\x98\x80"),
			 "caf\xc3\xa9 \xc3\x9b \xc2\xa0 \xe2\x9b\x94 \xf0\x9f\x98\x80");
}

/* A raw C1 byte is a control wherever it stands outside a UTF-8 character. */
static void
test_render__sanitize_raw_c1_after_a_utf8_character(void **state)
{
	(void)state;
	assert_sanitized(S("caf\xc3\xa9\x9b"
			   "2J"),
			 "caf\xc3\xa9?2J");
	assert_sanitized(S("\xe2\x9b\x94\x9b"
			   "2J"),
			 "\xe2\x9b\x94?2J");
	assert_sanitized(S("\xff\x9b"
			   "2J"),
			 "\xff?2J");
	assert_sanitized(S("\xc3\xa9\x80\x9b"), "\xc3\xa9??");
}

static void
test_render__sanitize_keeps_colour_only(void **state)
{
	(void)state;
	assert_sanitized(S("\x1b[1;31mred\x1b[0m \x1b[m \x1b[38;5;196mx"),
			 "\x1b[1;31mred\x1b[0m \x1b[m \x1b[38;5;196mx");
	/* Any other escape is neutralised: its ESC becomes '?', the rest is plain text. */
	assert_sanitized(S("\x1b[2J\x1b[H\x1b[?1049h\x1b]0;title\a\x1b"
			   "c"),
			 "?[2J?[H?[?1049h?]0;title??c");
	/* Cut short at the end of the line: no colour, so not kept. */
	assert_sanitized(S("end\x1b["), "end?[");
	assert_sanitized(S("end\x1b[31"), "end?[31");
	assert_sanitized(S("end\x1b"), "end?");
}

static void
test_render__plain_neutralises_colour_too(void **state)
{
	char *s;

	(void)state;
	s = kci_plain("job\x1b[31m\t\xc2\x9b"
		      "caf\xc3\xa9");
	assert_string_equal(s, "job?[31m??caf\xc3\xa9");
	free(s);
	s = kci_plain("");
	assert_string_equal(s, "");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render__sanitize_controls_become_question_marks),
		cmocka_unit_test(test_render__sanitize_raw_c1_after_a_utf8_character),
		cmocka_unit_test(test_render__sanitize_keeps_colour_only),
		cmocka_unit_test(test_render__plain_neutralises_colour_too),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
