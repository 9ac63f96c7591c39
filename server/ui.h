/* Private to server/: the web UI's pages, log rendering and Server-Sent Events, as strings. */
#ifndef KCI_SERVER_UI_H
#define KCI_SERVER_UI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "server/internal.h"

/*
 * The Content-Security-Policy every UI response carries: no inline script or
 * style anywhere, so text that escaped escaping still could not run.
 */
#define UI_CSP                                                                                     \
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "            \
	"img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* The static assets (NUL-terminated, ASCII) and where the pages link them from. */
#define UI_CSS_PATH "/static/kci.css" /* text/css; charset=utf-8 */
#define UI_JS_PATH  "/static/kci.js"  /* text/javascript; charset=utf-8 */
extern const char ui_css[];
extern const char ui_js[];

/*
 * The pages: complete HTML5 documents (text/html; charset=utf-8) that work
 * without JavaScript, every string from a forge or a guest escaped; caller
 * frees. The build list is at "/", a build at /builds/ID, a job at
 * /builds/ID/jobs/NAME with NAME percent-encoded as a path segment.
 */
char *ui_builds_page(const struct build_row *builds, size_t n);
char *ui_build_page(const struct build_row *b);
/*
 * A job's page with log[0, len) rendered. When live, the log element carries
 * data-events="/api/v1/builds/ID/jobs/NAME/events?offset=N" for kci.js, where
 * N is what was rendered: len, less a trailing incomplete UTF-8 character or
 * escape sequence (ui_ansi_complete), which the stream then sends whole.
 */
char *ui_job_page(const struct build_row *b, const struct job_row *j, const char *log, size_t len,
		  int live);

/*
 * Log text as HTML for inside a <pre>: &<>"' escaped, SGR colours (30-37,
 * 90-97, 40-47, 100-107, bold, 38/48;5;0-15) as <span class="c31 c1">, other
 * escape sequences (CSI, OSC, DCS...) dropped, carriage returns dropped, other
 * control characters (C0, DEL, C1) and invalid UTF-8 shown as '?' and U+FFFD.
 * Spans close at each newline and at the end. Caller frees.
 */
char *ui_ansi_html(const char *text, size_t len);

/* A trailing incomplete construct longer than this is not held back: it is junk. */
#define UI_ANSI_HOLD_MAX 4096
/*
 * How much of text[0, len) to render now while more log may follow: len less
 * a trailing incomplete UTF-8 character or escape sequence (at most
 * UI_ANSI_HOLD_MAX bytes), so that a chunk boundary inside one shows no junk.
 */
size_t ui_ansi_complete(const char *text, size_t len);

/*
 * One Server-Sent Events message with log text rendered by ui_ansi_html:
 * "id: NEXT\nevent: log\ndata: LINE\n...\n\n", where NEXT is the log offset
 * just after text. A browser that reconnects sends NEXT back as the
 * Last-Event-ID header, which the stream must prefer to its ?offset=.
 * While the job runs, pass only ui_ansi_complete(text, len) bytes. Caller frees.
 */
char *ui_sse_event(const char *text, size_t len, uint64_t next);
/* The last message of a stream: "event: end\ndata: STATUS\n\n" (the job's status name). */
char *ui_sse_end(enum job_status s);
/* An SSE comment, for keeping an idle stream open through proxies. */
#define UI_SSE_KEEPALIVE ": keepalive\n\n"

/* ---- shared by ui*.c ---- */

/* s (len bytes) as HTML text or a double-quoted attribute's value; controls but \t \n as '?'. */
void ui_put_text(FILE *f, const char *s, size_t len);
/* s as one percent-encoded URL path segment: all but A-Z a-z 0-9 - . _ ~ encoded. */
void ui_put_segment(FILE *f, const char *s);
/* A stream into memory; ui_mem_close returns what was written (caller frees). */
FILE *ui_mem_open(char **buf, size_t *size);
char *ui_mem_close(FILE *f, char **buf);

#endif
