/* Untrusted text as HTML for the web UI: escaping, log colours, URL segments, SSE framing. */
#include "server/ui.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

FILE *
ui_mem_open(char **buf, size_t *size)
{
	FILE *f = open_memstream(buf, size);

	/* Out of memory: abort, as kci_xmalloc does. */
	if (!f)
		abort();
	return f;
}

char *
ui_mem_close(FILE *f, char **buf)
{
	char *s;

	if (fclose(f) != 0)
		abort();
	s = *buf;
	*buf = NULL;
	return s;
}

/* SGR state: fg 0 (default), 30-37 or 90-97; bg 0, 40-47 or 100-107. */
struct sgr {
	int fg, bg, bold;
};

struct render {
	FILE *out; /* NULL: scan only */
	int ansi;  /* interpret escape sequences (a log), or show ESC as '?' (a name) */
	struct sgr cur;
	struct sgr open; /* what the open span says */
	int span;	 /* a span is open */
};

enum esc { ESC_INCOMPLETE, ESC_SGR, ESC_OTHER };

/*
 * The UTF-8 character at s: its length (1-4) with its code point in *cp, 0 when
 * invalid (overlong, surrogate, beyond U+10FFFF, a stray byte), -1 when s ends
 * inside it.
 */
static int
utf8_char(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	uint32_t v, min;
	int n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (int k = 1; k < n; k++) {
		if ((size_t)k >= len)
			return -1;
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[k] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

static int
sgr_equal(const struct sgr *a, const struct sgr *b)
{
	return a->fg == b->fg && a->bg == b->bg && a->bold == b->bold;
}

static void
span_close(struct render *r)
{
	if (r->span)
		fputs("</span>", r->out);
	r->span = 0;
}

/* Before a visible character: the span that says the current colours, opened lazily. */
static void
span_sync(struct render *r)
{
	static const struct sgr plain = { 0, 0, 0 };
	const char *sep = "";

	if (r->span && sgr_equal(&r->open, &r->cur))
		return;
	span_close(r);
	if (sgr_equal(&r->cur, &plain))
		return;
	fputs("<span class=\"", r->out);
	if (r->cur.fg) {
		fprintf(r->out, "c%d", r->cur.fg);
		sep = " ";
	}
	if (r->cur.bg) {
		fprintf(r->out, "%sc%d", sep, r->cur.bg);
		sep = " ";
	}
	if (r->cur.bold)
		fprintf(r->out, "%sc1", sep);
	fputs("\">", r->out);
	r->open = r->cur;
	r->span = 1;
}

static void
put_visible(struct render *r, const char *s, size_t n)
{
	if (!r->out)
		return;
	span_sync(r);
	fwrite(s, 1, n, r->out);
}

static void
put_ascii(struct render *r, unsigned char c)
{
	switch (c) {
	case '&':
		put_visible(r, "&amp;", 5);
		break;
	case '<':
		put_visible(r, "&lt;", 4);
		break;
	case '>':
		put_visible(r, "&gt;", 4);
		break;
	case '"':
		put_visible(r, "&quot;", 6);
		break;
	case '\'':
		put_visible(r, "&#39;", 5);
		break;
	default:
		put_visible(r, (const char *)&c, 1);
	}
}

/* 38;5;N and 48;5;N for N < 16 as the plain colours they are; *k is past what was used. */
static int
sgr_extended(const int *p, size_t n, size_t *k, int base)
{
	if (*k + 1 < n && p[*k] == 5) {
		int c = p[*k + 1];

		*k += 2;
		if (c < 0 || c >= 16)
			return 0; /* 256 colours: no class for them, shown in the default colour */
		return c < 8 ? base + c : base + 60 + c - 8;
	}
	if (*k < n && p[*k] == 2)
		*k += 4; /* r;g;b: the default colour too */
	else
		*k = n; /* malformed: the rest means nothing */
	return 0;
}

/* Applies "ESC [ params m": params are digits, ';' and ':' (sub-parameters, ignored). */
static void
sgr_apply(struct sgr *st, const unsigned char *s, size_t len)
{
	int p[32];
	size_t n = 0, k;

	for (size_t i = 0; i <= len && n < sizeof(p) / sizeof(p[0]);) {
		int v = 0, sub = 0;

		for (; i < len && s[i] != ';'; i++) {
			if (s[i] == ':')
				sub = 1;
			else if (v < 10000)
				v = v * 10 + (s[i] - '0');
		}
		i++;
		/* A parameter with sub-parameters (4:3, 38:5:1) is one this renderer ignores. */
		p[n++] = sub ? -1 : v;
	}
	for (k = 0; k < n;) {
		int v = p[k++];

		if (v == 0) {
			st->fg = st->bg = st->bold = 0;
		} else if (v == 1) {
			st->bold = 1;
		} else if (v == 22) {
			st->bold = 0;
		} else if ((v >= 30 && v <= 37) || (v >= 90 && v <= 97)) {
			st->fg = v;
		} else if (v == 39) {
			st->fg = 0;
		} else if ((v >= 40 && v <= 47) || (v >= 100 && v <= 107)) {
			st->bg = v;
		} else if (v == 49) {
			st->bg = 0;
		} else if (v == 38) {
			st->fg = sgr_extended(p, n, &k, 30);
		} else if (v == 48) {
			st->bg = sgr_extended(p, n, &k, 40);
		}
	}
}

/*
 * The escape sequence at s[i] (ESC): *end is the index after it. A CSI ends
 * at its final byte, a string (OSC, DCS, SOS, PM, APC) at BEL, ST (ESC \),
 * CAN, SUB, another ESC or a newline, which is kept: a stray ESC ] cannot hide
 * the rest of a log. A byte that cannot be in the sequence ends it, unused.
 */
static enum esc
esc_scan(const unsigned char *s, size_t len, size_t i, size_t *end)
{
	size_t k = i + 1, params;

	if (k == len)
		return ESC_INCOMPLETE;
	if (s[k] == '[') {
		for (params = ++k; k < len && s[k] >= 0x30 && s[k] <= 0x3f;)
			k++;
		if (k == len)
			return ESC_INCOMPLETE;
		*end = k + 1;
		if (s[k] == 'm') {
			for (size_t q = params; q < k; q++)
				if (!(s[q] >= '0' && s[q] <= ';')) /* digits, ':', ';' */
					return ESC_OTHER;
			return ESC_SGR;
		}
		while (k < len && s[k] >= 0x20 && s[k] <= 0x2f)
			k++;
		if (k == len)
			return ESC_INCOMPLETE;
		*end = s[k] >= 0x40 && s[k] <= 0x7e ? k + 1 : k;
		return ESC_OTHER;
	}
	if (s[k] && strchr("]PX^_", s[k])) {
		for (k++; k < len; k++) {
			if (s[k] == 0x07 || s[k] == 0x18 || s[k] == 0x1a) {
				*end = k + 1;
				return ESC_OTHER;
			}
			if (s[k] == '\n') {
				*end = k;
				return ESC_OTHER;
			}
			if (s[k] == 0x1b) {
				if (k + 1 == len)
					return ESC_INCOMPLETE;
				*end = s[k + 1] == '\\' ? k + 2 : k;
				return ESC_OTHER;
			}
		}
		return ESC_INCOMPLETE;
	}
	/* ESC, intermediates (0x20-0x2f), a final byte: charsets, keypad modes, ESC 7. */
	while (k < len && s[k] >= 0x20 && s[k] <= 0x2f)
		k++;
	if (k == len)
		return ESC_INCOMPLETE;
	*end = s[k] >= 0x30 && s[k] <= 0x7e ? k + 1 : k;
	return ESC_OTHER;
}

/*
 * Renders s[0, len) (into r->out unless it is NULL) and returns where a
 * trailing incomplete UTF-8 character or escape sequence starts, or len.
 * Those are rendered as what they are when final: U+FFFD, or nothing.
 */
static size_t
render(struct render *r, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, end;
	uint32_t cp;
	int n;

	while (i < len) {
		unsigned char c = s[i];

		if (c == '\n') {
			if (r->out) {
				span_close(r);
				fputc('\n', r->out);
			}
			i++;
		} else if (c == '\t') {
			put_visible(r, "\t", 1);
			i++;
		} else if (c == 0x1b && r->ansi) {
			enum esc e = esc_scan(s, len, i, &end);

			if (e == ESC_INCOMPLETE)
				return i;
			if (e == ESC_SGR)
				sgr_apply(&r->cur, s + i + 2, end - 1 - (i + 2));
			i = end;
		} else if (c == '\r' && r->ansi) {
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			put_visible(r, "?", 1);
			i++;
		} else if (c < 0x80) {
			put_ascii(r, c);
			i++;
		} else if ((n = utf8_char(s + i, len - i, &cp)) > 0) {
			/* C1 controls (U+0080-U+009F) are controls in UTF-8 too. */
			if (cp <= 0x9f)
				put_visible(r, "?", 1);
			else
				put_visible(r, text + i, (size_t)n);
			i += (size_t)n;
		} else if (n < 0) {
			return i;
		} else {
			put_visible(r, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	return len;
}

/* Renders all of text: a trailing partial UTF-8 character as one U+FFFD, a partial escape not. */
static void
render_all(struct render *r, const char *text, size_t len)
{
	size_t at = render(r, text, len);

	if (at < len && text[at] != 0x1b)
		put_visible(r, "\xef\xbf\xbd", 3);
	if (r->out)
		span_close(r);
}

char *
ui_ansi_html(const char *text, size_t len)
{
	char *buf = NULL;
	size_t size = 0;
	struct render r = { .ansi = 1 };

	r.out = ui_mem_open(&buf, &size);
	render_all(&r, text, len);
	return ui_mem_close(r.out, &buf);
}

size_t
ui_ansi_complete(const char *text, size_t len)
{
	struct render r = { .ansi = 1 };
	size_t at = render(&r, text, len);

	return len - at > UI_ANSI_HOLD_MAX ? len : at;
}

void
ui_put_text(FILE *f, const char *s, size_t len)
{
	struct render r = { .out = f, .ansi = 0 };

	render_all(&r, s, len);
}

void
ui_put_segment(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
}

char *
ui_sse_event(const char *text, size_t len, uint64_t next)
{
	char *html = ui_ansi_html(text, len), *buf = NULL;
	size_t size = 0;
	FILE *f = ui_mem_open(&buf, &size);
	const char *line = html;

	fprintf(f, "id: %" PRIu64 "\nevent: log\n", next);
	/*
	 * Each line its own data field, the last one too even when empty: the
	 * browser joins them with '\n' and drops one trailing '\n', so the HTML
	 * arrives as it was. Rendered HTML has no '\r' or NUL to split it otherwise.
	 */
	for (;;) {
		size_t n = strcspn(line, "\r\n");

		fputs("data: ", f);
		fwrite(line, 1, n, f);
		fputc('\n', f);
		if (!line[n])
			break;
		line += n + 1;
	}
	fputc('\n', f);
	free(html);
	return ui_mem_close(f, &buf);
}

char *
ui_sse_end(enum job_status s)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = ui_mem_open(&buf, &size);

	fprintf(f, "event: end\ndata: %s\n\n", job_status_name(s));
	return ui_mem_close(f, &buf);
}
