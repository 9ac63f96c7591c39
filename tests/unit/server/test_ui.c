/*
 * Unit tests for server/ui.c, ui_text.c, ui_assets.c and status.c: hostile
 * names and logs stay text, colours become spans, pages keep to the CSP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "server/ui.h"

#define HTML(lit) ui_ansi_html(lit, sizeof(lit) - 1)

/* Frees got after comparing it. */
static void
assert_html(char *got, const char *want)
{
	assert_string_equal(got, want);
	free(got);
}

static int
contains(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* ---- log text ---- */

static void
test_ui__ansi_escapes_html(void **state)
{
	(void)state;
	assert_html(HTML("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
	assert_html(HTML("a & b \"c\" 'd'"), "a &amp; b &quot;c&quot; &#39;d&#39;");
	assert_html(HTML("&lt;"), "&amp;lt;");
	assert_html(HTML(""), "");
}

static void
test_ui__ansi_colours_become_spans(void **state)
{
	(void)state;
	assert_html(HTML("\x1b[31mred\x1b[0m plain"), "<span class=\"c31\">red</span> plain");
	assert_html(HTML("\x1b[1;32mok\x1b[m."), "<span class=\"c32 c1\">ok</span>.");
	assert_html(HTML("\x1b[97;41mX"), "<span class=\"c97 c41\">X</span>");
	assert_html(HTML("\x1b[104mY\x1b[49mZ"), "<span class=\"c104\">Y</span>Z");
	assert_html(HTML("\x1b[31ma\x1b[39mb"), "<span class=\"c31\">a</span>b");
	assert_html(HTML("\x1b[1ma\x1b[22mb"), "<span class=\"c1\">a</span>b");
	assert_html(HTML("\x1b[31ma\x1b[1mb"),
		    "<span class=\"c31\">a</span><span class=\"c31 c1\">b</span>");
	/* A change of colour with no text between writes nothing. */
	assert_html(HTML("\x1b[31m\x1b[0mx\x1b[32m"), "x");
	/* "31;" ends in an empty parameter, which is 0: a reset. */
	assert_html(HTML("\x1b[31;mx"), "x");
}

static void
test_ui__ansi_spans_close_at_newlines(void **state)
{
	(void)state;
	assert_html(HTML("\x1b[31ma\nb\x1b[0m\nc\n"),
		    "<span class=\"c31\">a</span>\n<span class=\"c31\">b</span>\nc\n");
	assert_html(HTML("\x1b[33m\n\n"), "\n\n");
}

static void
test_ui__ansi_extended_colours(void **state)
{
	(void)state;
	assert_html(HTML("\x1b[38;5;1ma"), "<span class=\"c31\">a</span>");
	assert_html(HTML("\x1b[38;5;9ma"), "<span class=\"c91\">a</span>");
	assert_html(HTML("\x1b[48;5;4ma"), "<span class=\"c44\">a</span>");
	/* Colours without a class are the default; what follows them still counts. */
	assert_html(HTML("\x1b[31m\x1b[38;5;200ma"), "a");
	assert_html(HTML("\x1b[38;2;255;0;0;1ma"), "<span class=\"c1\">a</span>");
	assert_html(HTML("\x1b[38:5:1ma"), "a");
	assert_html(HTML("\x1b[38;5ma\x1b[38ma"), "aa");
	/* Huge parameters neither overflow nor mean anything. */
	assert_html(HTML("\x1b[99999999999999999999;31ma"), "<span class=\"c31\">a</span>");
}

static void
test_ui__ansi_other_escapes_dropped(void **state)
{
	(void)state;
	assert_html(HTML("a\x1b[2Jb\x1b[Hc\x1b[?25ld\x1b[1;1fe"), "abcde");
	assert_html(HTML("\x1b[>0mx"), "x"); /* private: not SGR */
	/* OSC ended by BEL or ST; a hyperlink keeps its text. */
	assert_html(HTML("\x1b]0;title\x07x"), "x");
	assert_html(HTML("\x1b]8;;http://e.com/\x1b\\link\x1b]8;;\x1b\\"), "link");
	/* DCS, APC; charset selection, ESC 7, ESC =. */
	assert_html(HTML("\x1bPq#0\x1b\\a\x1b_apc\x1b\\b"), "ab");
	assert_html(HTML("\x1b(Ba\x1b"
			 "7b\x1b=c\x1b#8d"),
		    "abcd");
	/* An unterminated string ends at a newline, which stays. */
	assert_html(HTML("\x1b]0;never ends\nnext"), "\nnext");
	/* A string ended by another escape: that one counts. */
	assert_html(HTML("\x1b]0;t\x1b[31mred"), "<span class=\"c31\">red</span>");
	/* A CSI broken by a control: the control is itself. */
	assert_html(HTML("\x1b[12\nx"), "\nx");
	assert_html(HTML("a\x1b\x01"
			 "b"),
		    "a?b");
	/* Incomplete at the end: nothing. */
	assert_html(HTML("a\x1b"), "a");
	assert_html(HTML("a\x1b[31"), "a");
	assert_html(HTML("a\x1b]0;t"), "a");
}

static void
test_ui__ansi_controls_and_utf8(void **state)
{
	(void)state;
	assert_html(HTML("a\r\nb\rc"), "a\nbc");
	assert_html(HTML("\a\b\x7f\x0c\x00|\tx"), "?????|\tx");
	/* C1 controls: raw bytes are invalid UTF-8, encoded ones are controls. */
	assert_html(HTML("\x9b"
			 "2J|\xc2\x9b"
			 "2J|\xc2\x85"),
		    "\xef\xbf\xbd"
		    "2J|?2J|?");
	/* Overlong, surrogate, beyond U+10FFFF, stray continuation, truncated. */
	assert_html(HTML("\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\x80|\xe2\x82"),
		    "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
		    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd|\xef\xbf\xbd");
	assert_html(HTML("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0"),
		    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0");
}

/* The text of html: tags dropped. Caller frees. */
static char *
text_of(const char *html)
{
	char *t = kci_xmalloc(strlen(html) + 1), *o = t;

	for (const char *p = html; *p; p++) {
		if (*p == '<')
			p = strchr(p, '>');
		else
			*o++ = *p;
	}
	*o = '\0';
	return t;
}

static void
test_ui__ansi_complete_holds_back_partial_constructs(void **state)
{
	(void)state;
	assert_int_equal(ui_ansi_complete("abc", 3), 3);
	assert_int_equal(ui_ansi_complete("", 0), 0);
	assert_int_equal(ui_ansi_complete("abc\xe2\x82", 5), 3);
	assert_int_equal(ui_ansi_complete("abc\xe2\x82\xac", 6), 6);
	assert_int_equal(ui_ansi_complete("abc\x1b", 4), 3);
	assert_int_equal(ui_ansi_complete("abc\x1b[3", 6), 3);
	assert_int_equal(ui_ansi_complete("abc\x1b[31m", 8), 8);
	assert_int_equal(ui_ansi_complete("abc\x1b]0;ti", 9), 3);
	assert_int_equal(ui_ansi_complete("abc\x1b]0;ti\x1b", 10), 3);
	/* Invalid is not incomplete: more bytes would not make it valid. */
	assert_int_equal(ui_ansi_complete("abc\xff", 4), 4);
	assert_int_equal(ui_ansi_complete("abc\xe2x", 5), 5);
}

static void
test_ui__ansi_complete_gives_up_on_long_junk(void **state)
{
	size_t len = UI_ANSI_HOLD_MAX + 10;
	char *s = kci_xmalloc(len);

	(void)state;
	memset(s, 'x', len);
	memcpy(s, "\x1b]0;", 4);
	assert_int_equal(ui_ansi_complete(s, len), len);
	free(s);
}

/* Rendered in two pieces at any byte, a log shows the same text as in one. */
static void
test_ui__ansi_chunks_show_what_the_whole_shows(void **state)
{
	static const char log[] = "\x1b[1;31merror:\x1b[0m caf\xc3\xa9 \xe2\x82\xac\r\n"
				  "\x1b]0;title\x07\x1b[32m\xf0\x9f\x98\x80 ok\x1b[m <&>\n";
	size_t len = sizeof(log) - 1;
	char *whole = ui_ansi_html(log, len), *want = text_of(whole);

	(void)state;
	for (size_t at = 0; at <= len; at++) {
		size_t n = ui_ansi_complete(log, at);
		char *a = ui_ansi_html(log, n), *b = ui_ansi_html(log + n, len - n);
		char *ta = text_of(a), *tb = text_of(b);
		char *got = kci_xasprintf("%s%s", ta, tb);

		assert_true(n <= at && at - n <= 16);
		assert_string_equal(got, want);
		free(got), free(ta), free(tb), free(a), free(b);
	}
	free(want);
	free(whole);
}

/* ---- Server-Sent Events ---- */

/* What a browser's EventSource hands to a listener of event `type`. Caller frees. */
static char *
sse_data(const char *msg, const char *type, const char *id)
{
	char *data = kci_xstrdup(""), *line, *copy = kci_xstrdup(msg), *save = NULL;
	int ended = 0;

	assert_null(strchr(msg, '\r'));
	/* One message: it ends with the first blank line, at the very end. */
	assert_non_null(strstr(msg, "\n\n"));
	assert_int_equal(strstr(msg, "\n\n") + 2 - msg, strlen(msg));
	for (line = copy; *line; line = save) {
		char *nl = strchr(line, '\n');

		*nl = '\0';
		save = nl + 1;
		if (!*line) {
			ended = 1;
			break;
		}
		if (!strncmp(line, "data: ", 6)) {
			char *more = kci_xasprintf("%s%s\n", data, line + 6);

			free(data);
			data = more;
		} else if (!strncmp(line, "event: ", 7)) {
			assert_string_equal(line + 7, type);
		} else if (!strncmp(line, "id: ", 4)) {
			assert_non_null(id);
			assert_string_equal(line + 4, id);
		} else {
			fail_msg("unexpected SSE line: %s", line);
		}
	}
	assert_true(ended);
	assert_true(strlen(data) > 0);
	data[strlen(data) - 1] = '\0';
	free(copy);
	return data;
}

static void
test_ui__sse_frames_each_line(void **state)
{
	char *ev, *data, *html;

	(void)state;
	ev = ui_sse_event("a\nb\n", 4, 4);
	assert_string_equal(ev, "id: 4\nevent: log\ndata: a\ndata: b\ndata: \n\n");
	free(ev);
	ev = ui_sse_event("one line", 8, 1234567890123ull);
	assert_string_equal(ev, "id: 1234567890123\nevent: log\ndata: one line\n\n");
	free(ev);

	/* Multi-line, coloured, hostile: the listener gets exactly ui_ansi_html's HTML. */
	static const char log[] = "\x1b[31mred\r\n<script>\x1b[m\n\n\x1b]0;x\x07"
				  "end\r";
	ev = ui_sse_event(log, sizeof(log) - 1, 99);
	html = ui_ansi_html(log, sizeof(log) - 1);
	data = sse_data(ev, "log", "99");
	assert_string_equal(data, html);
	assert_string_equal(data, "<span class=\"c31\">red</span>\n"
				  "<span class=\"c31\">&lt;script&gt;</span>\n\nend");
	free(data), free(html), free(ev);
}

static void
test_ui__sse_end_names_the_status(void **state)
{
	char *ev;

	(void)state;
	ev = ui_sse_end(J_FAILED);
	assert_string_equal(ev, "event: end\ndata: failed\n\n");
	free(ev);
	ev = ui_sse_end(J_PASSED);
	assert_string_equal(ev, "event: end\ndata: passed\n\n");
	free(ev);
	assert_string_equal(UI_SSE_KEEPALIVE, ": keepalive\n\n");
}

/* ---- pages ---- */

#define HOSTILE_REPO "acme/<img src=x onerror=alert(1)>\"'&"
#define HOSTILE_REF  "refs/heads/\"><script>alert(1)</script>"
#define MATRIX_NAME  "test (os=linux, cc=gcc)"
#define EVIL_NAME    "x\"><script>alert(2)</script>/../%2e?#&"

static struct job_row jobs[] = {
	{ .id = 1,
	  .build_id = 7,
	  .name = MATRIX_NAME,
	  .status = J_PASSED,
	  .attempt = 1,
	  .duration_ms = 42000 },
	{ .id = 2,
	  .build_id = 7,
	  .name = EVIL_NAME,
	  .status = J_FAILED,
	  .attempt = 2,
	  .duration_ms = 1500,
	  .message = "<b>boom</b> 'it' \"broke\"\n\x1b[31mred" },
	{ .id = 3, .build_id = 7, .name = "lint", .status = J_RUNNING, .attempt = 1 },
};

static struct build_row hostile = {
	.id = 7,
	.repo = HOSTILE_REPO,
	.ref = HOSTILE_REF,
	.commit = "0123456789abcdef<i>0123456789abcdef012345",
	.event = "push",
	.status = B_FAILED,
	.trusted = 0,
	.created = 1700000000123,
	.started = 1700000001000,
	.finished = 1700000200000,
	.error = "planning: <oops> & more",
	.jobs = jobs,
	.n_jobs = sizeof(jobs) / sizeof(jobs[0]),
};

static int
in_list(const char *word, size_t n, const char *const *list)
{
	for (const char *const *w = list; *w; w++)
		if (strlen(*w) == n && !strncmp(*w, word, n))
			return 1;
	return 0;
}

/*
 * Whether page is made only of the tags and attributes the UI writes, every
 * attribute value double-quoted, text with no raw > " ' and only entities
 * after &, and one script: <script src=/static/kci.js defer>, empty. Any
 * escaping slip shows up as a tag, an attribute or a character out of place.
 */
static void
assert_page_clean(const char *page)
{
	static const char *const tags[] = { "html", "head",   "meta",  "title", "link",	 "script",
					    "body", "header", "main",  "nav",	"h1",	 "h2",
					    "p",    "a",      "span",  "code",	"time",	 "dl",
					    "dt",   "dd",     "table", "thead", "tbody", "tr",
					    "th",   "td",     "pre",   NULL };
	static const char *const attrs[] = { "lang",  "charset",  "name",	 "content", "rel",
					     "href",  "src",	  "defer",	 "class",   "id",
					     "title", "datetime", "data-events", NULL };
	const char *p = page;

	assert_true(!strncmp(p, "<!DOCTYPE html>\n", 16));
	p += 16;
	assert_int_equal(count(page, "<script"), 1);
	assert_true(contains(page, "<script src=\"/static/kci.js\" defer></script>"));
	assert_false(contains(page, "style="));
	assert_false(contains(page, "<style"));
	while (*p) {
		if (*p == '&') {
			size_t n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz#0123456789");

			assert_true(n > 0 && p[1 + n] == ';');
			p += n + 2;
			continue;
		}
		if (*p == '>' || *p == '"' || *p == '\'')
			fail_msg("raw %c in text at: %.40s", *p, p);
		if (*p != '<') {
			p++;
			continue;
		}
		p++;
		if (*p == '/')
			p++;
		size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789");

		if (!in_list(p, n, tags))
			fail_msg("tag not written by the UI at: %.40s", p - 1);
		p += n;
		while (*p != '>') {
			assert_int_equal(*p, ' ');
			p++;
			n = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
			if (!in_list(p, n, attrs))
				fail_msg("attribute not written by the UI at: %.40s", p);
			p += n;
			if (*p == '=') {
				assert_int_equal(p[1], '"');
				p += 2;
				n = strcspn(p, "\"<>'");
				assert_int_equal(p[n], '"');
				p += n + 1;
			}
		}
		p++;
	}
}

static void
test_ui__builds_page_escapes_and_links(void **state)
{
	struct build_row rows[2] = { hostile, hostile };
	char *page;

	(void)state;
	rows[1].id = 8;
	rows[1].status = B_PASSED;
	rows[1].finished = 0;
	page = ui_builds_page(rows, 2);
	assert_page_clean(page);
	assert_true(contains(page, "acme/&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"));
	assert_true(contains(page, "refs/heads/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_true(contains(page, "<a href=\"/builds/7\">#7</a>"));
	assert_true(contains(page, "<a href=\"/builds/8\">#8</a>"));
	assert_true(contains(page, "<span class=\"status st-failed\">failed</span>"));
	assert_true(contains(page, "<span class=\"status st-passed\">passed</span>"));
	assert_true(contains(page, "<tr class=\"row-failed\">"));
	assert_true(contains(page, "<time datetime=\"2023-11-14T22:13:20Z\">"
				   "2023-11-14T22:13:20Z</time>"));
	assert_true(contains(page, "<td>3m19s</td>"));	 /* 199 s */
	assert_true(contains(page, "<td>&mdash;</td>")); /* not finished */
	assert_true(contains(page, "<code title=\"0123456789abcdef&lt;i&gt;"));
	assert_true(contains(page, "\">0123456789</code>"));
	assert_true(contains(page, "<meta charset=\"utf-8\">"));
	assert_true(contains(page, "<link rel=\"stylesheet\" href=\"/static/kci.css\">"));
	assert_true(contains(page, "<title>Builds &middot; kci</title>"));
	free(page);

	page = ui_builds_page(NULL, 0);
	assert_page_clean(page);
	assert_true(contains(page, "No builds yet."));
	free(page);
}

static void
test_ui__build_page_escapes_and_encodes_job_links(void **state)
{
	char *page;

	(void)state;
	page = ui_build_page(&hostile);
	assert_page_clean(page);
	assert_true(contains(page, "<a href=\"/builds/7/jobs/"
				   "test%20%28os%3Dlinux%2C%20cc%3Dgcc%29\">" MATRIX_NAME "</a>"));
	assert_true(contains(
		page, "<a href=\"/builds/7/jobs/"
		      "x%22%3E%3Cscript%3Ealert%282%29%3C%2Fscript%3E%2F..%2F%252e%3F%23%26"
		      "\">x&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;/../%2e?#&amp;</a>"));
	assert_true(contains(page, "<td class=\"message\">&lt;b&gt;boom&lt;/b&gt; &#39;it&#39; "
				   "&quot;broke&quot;\n?[31mred</td>"));
	assert_true(contains(page, "<p class=\"error\">planning: &lt;oops&gt; &amp; more</p>"));
	assert_true(contains(page, "<span id=\"build-status\" class=\"status st-failed\">failed"));
	assert_true(contains(page, "<td>42s</td>"));
	assert_true(contains(page, "<td>1.5s</td>"));
	assert_true(contains(page, "<td>2</td>")); /* attempt */
	assert_true(contains(page, "<span class=\"status st-running\">running</span>"));
	assert_true(contains(page, "withheld"));
	free(page);
}

static void
test_ui__job_page_live_streams_from_what_it_rendered(void **state)
{
	static const char log[] = "step 1\n<script>alert(1)</script>\n\x1b[32mok\x1b[0m\n\xe2\x82";
	char *page, *want;

	(void)state;
	page = ui_job_page(&hostile, &jobs[0], log, sizeof(log) - 1, 1);
	assert_page_clean(page);
	/* The partial character at the end is left for the stream. */
	want = kci_xasprintf(
		"<pre id=\"log\" class=\"log\" data-events=\"/api/v1/builds/7/jobs/"
		"test%%20%%28os%%3Dlinux%%2C%%20cc%%3Dgcc%%29/events?offset=%zu\">\nstep 1\n",
		sizeof(log) - 3);
	assert_true(contains(page, want));
	free(want);
	assert_true(contains(page, "step 1\n&lt;script&gt;alert(1)&lt;/script&gt;\n"
				   "<span class=\"c32\">ok</span>\n</pre>"));
	assert_true(contains(page, "<span id=\"job-status\" class=\"status st-passed\">passed"));
	assert_true(contains(page, "<h1>test (os=linux, cc=gcc)</h1>"));
	assert_true(contains(page, "<a href=\"/builds/7\">Build #7</a>"));
	assert_true(contains(page, "<title>test (os=linux, cc=gcc) &middot; acme/&lt;img"));
	free(page);
}

static void
test_ui__job_page_finished_has_no_stream(void **state)
{
	static const char log[] = "done\n\xe2\x82";
	char *page;

	(void)state;
	page = ui_job_page(&hostile, &jobs[1], log, sizeof(log) - 1, 0);
	assert_page_clean(page);
	assert_false(contains(page, "data-events"));
	assert_true(contains(page, "<pre id=\"log\" class=\"log\">\ndone\n\xef\xbf\xbd</pre>"));
	assert_true(contains(page, "<dt>Message</dt><dd>&lt;b&gt;boom"));
	assert_true(contains(page, "<h1>x&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"));
	free(page);

	page = ui_job_page(&hostile, &jobs[2], NULL, 0, 0);
	assert_page_clean(page);
	assert_true(contains(page, "No output."));
	free(page);
}

static void
test_ui__assets(void **state)
{
	(void)state;
	for (const char *p = ui_css; *p; p++)
		assert_true((unsigned char)*p < 0x80);
	for (const char *p = ui_js; *p; p++)
		assert_true((unsigned char)*p < 0x80);
	assert_true(contains(ui_css, ".c31 {"));
	assert_true(contains(ui_css, ".c107 {"));
	assert_true(contains(ui_css, ".st-failed"));
	assert_true(contains(ui_js, "new EventSource(log.dataset.events)"));
	assert_true(contains(ui_js, "addEventListener(\"end\""));
	assert_true(contains(ui_js, "insertAdjacentHTML"));
	assert_false(contains(ui_js, "innerHTML"));
	assert_false(contains(ui_js, "eval"));
	assert_true(contains(UI_CSP, "script-src 'self';"));
	assert_false(contains(UI_CSP, "unsafe"));
}

static void
test_ui__status_names(void **state)
{
	static const char *const builds[] = { "queued", "running",  "passed",
					      "failed", "canceled", "error" };
	static const char *const jobs_[] = { "waiting", "queued",  "running",  "passed", "failed",
					     "timeout", "skipped", "canceled", "error" };

	(void)state;
	for (int i = B_QUEUED; i <= B_ERROR; i++)
		assert_string_equal(build_status_name((enum build_status)i), builds[i]);
	for (int i = J_WAITING; i <= J_ERROR; i++)
		assert_string_equal(job_status_name((enum job_status)i), jobs_[i]);
	assert_string_equal(build_status_name((enum build_status)(B_ERROR + 1)), "unknown");
	assert_string_equal(job_status_name((enum job_status) - 1), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ui__ansi_escapes_html),
		cmocka_unit_test(test_ui__ansi_colours_become_spans),
		cmocka_unit_test(test_ui__ansi_spans_close_at_newlines),
		cmocka_unit_test(test_ui__ansi_extended_colours),
		cmocka_unit_test(test_ui__ansi_other_escapes_dropped),
		cmocka_unit_test(test_ui__ansi_controls_and_utf8),
		cmocka_unit_test(test_ui__ansi_complete_holds_back_partial_constructs),
		cmocka_unit_test(test_ui__ansi_complete_gives_up_on_long_junk),
		cmocka_unit_test(test_ui__ansi_chunks_show_what_the_whole_shows),
		cmocka_unit_test(test_ui__sse_frames_each_line),
		cmocka_unit_test(test_ui__sse_end_names_the_status),
		cmocka_unit_test(test_ui__builds_page_escapes_and_links),
		cmocka_unit_test(test_ui__build_page_escapes_and_encodes_job_links),
		cmocka_unit_test(test_ui__job_page_live_streams_from_what_it_rendered),
		cmocka_unit_test(test_ui__job_page_finished_has_no_stream),
		cmocka_unit_test(test_ui__assets),
		cmocka_unit_test(test_ui__status_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
