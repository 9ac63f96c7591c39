/*
 * Guest output becomes lines, and secrets never leave: every line is masked
 * before any event, log file or terminal sees it. Masking works on whole
 * lines, so a secret printed a byte at a time, or split across frames, is
 * still whole when it is looked for.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "engine/internal.h"

#define MASK "***"

static int
longest_first(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

	return la < lb ? 1 : la > lb ? -1 : 0;
}

static void
add_value(struct masker *m, const char *v, size_t len)
{
	if (len == 0)
		return;
	for (size_t i = 0; i < m->n; i++)
		if (strlen(m->values[i]) == len && memcmp(m->values[i], v, len) == 0)
			return;
	m->values = kci_xrealloc(m->values, (m->n + 1) * sizeof(char *));
	m->values[m->n++] = kci_xstrndup(v, len);
	if (len > m->maxlen)
		m->maxlen = len;
}

void
mask_init(struct masker *m, char *const *secrets)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; secrets && secrets[i]; i++) {
		const char *v = strchr(secrets[i], '=');
		const char *line;

		if (!v)
			continue;
		v++;
		add_value(m, v, strlen(v));
		/* Output is cut into lines: each line of a multi-line secret is a secret too. */
		for (line = v; strchr(line, '\n');) {
			const char *nl = strchr(line, '\n');
			size_t len = (size_t)(nl - line);

			if (len && line[len - 1] == '\r')
				len--;
			add_value(m, line, len);
			line = nl + 1;
		}
		if (line != v)
			add_value(m, line, strlen(line));
	}
	if (m->n)
		qsort(m->values, m->n, sizeof(char *), longest_first);
}

void
mask_free(struct masker *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->values[i]);
	free(m->values);
	memset(m, 0, sizeof(*m));
}

/* Length of the longest secret starting at s[i] and ending within len, else 0. */
static size_t
match_at(const struct masker *m, const char *s, size_t len, size_t i)
{
	for (size_t k = 0; k < m->n; k++) {
		size_t l = strlen(m->values[k]);

		if (l <= len - i && memcmp(s + i, m->values[k], l) == 0)
			return l;
	}
	return 0;
}

/*
 * Masks s[0..len) into a new string, stopping at the first position at or
 * after `cut` where no secret starts; *used says how far it got. With cut ==
 * len everything is consumed.
 */
static char *
mask_until(const struct masker *m, const char *s, size_t len, size_t cut, size_t *used,
	   size_t *outlen)
{
	char *out = kci_xmalloc(len * sizeof(MASK) + 1);
	size_t i = 0, o = 0;

	while (i < len) {
		size_t l = m->n ? match_at(m, s, len, i) : 0;

		if (l) {
			memcpy(out + o, MASK, sizeof(MASK) - 1);
			o += sizeof(MASK) - 1;
			i += l;
			continue;
		}
		if (i >= cut)
			break;
		out[o++] = s[i++];
	}
	out[o] = '\0';
	*used = i;
	*outlen = o;
	return out;
}

char *
mask_str(const struct masker *m, const char *s, size_t len, size_t *outlen)
{
	size_t used;

	return mask_until(m, s, len, len, &used, outlen);
}

static void
emit_line(const struct masker *m, const char *s, size_t len, line_fn emit, void *ctx)
{
	size_t outlen;
	char *line;

	if (len && s[len - 1] == '\r')
		len--;
	line = mask_str(m, s, len, &outlen);
	emit(ctx, line, outlen);
	free(line);
}

/*
 * The buffer is full and holds no newline: send a piece. Every secret that
 * starts before the cut ends inside the buffer (the cut leaves room for the
 * longest), so none is split; what follows the cut starts the next piece.
 */
static void
emit_piece(struct logbuf *b, const struct masker *m, line_fn emit, void *ctx)
{
	size_t keep = m->maxlen ? m->maxlen - 1 : 0, cut, used, outlen;
	char *piece;

	/* The buffer holds LOG_LINE_MAX + maxlen bytes, so the cut is past LOG_LINE_MAX. */
	cut = b->len - keep;
	piece = mask_until(m, b->buf, b->len, cut, &used, &outlen);
	emit(ctx, piece, outlen);
	free(piece);
	memmove(b->buf, b->buf + used, b->len - used);
	b->len -= used;
}

void
logbuf_feed(struct logbuf *b, const struct masker *m, const char *data, size_t len, line_fn emit,
	    void *ctx)
{
	if (!b->buf) {
		b->cap = LOG_LINE_MAX + m->maxlen;
		b->buf = kci_xmalloc(b->cap);
	}
	while (len) {
		size_t room = b->cap - b->len;
		size_t n = len < room ? len : room;
		const char *nl = memchr(data, '\n', n);

		if (nl)
			n = (size_t)(nl - data) + 1;
		memcpy(b->buf + b->len, data, n);
		b->len += n;
		data += n;
		len -= n;
		if (nl) {
			emit_line(m, b->buf, b->len - 1, emit, ctx);
			b->len = 0;
		} else if (b->len == b->cap) {
			emit_piece(b, m, emit, ctx);
		}
	}
}

void
logbuf_flush(struct logbuf *b, const struct masker *m, line_fn emit, void *ctx)
{
	if (b->len)
		emit_line(m, b->buf, b->len, emit, ctx);
	b->len = 0;
}

void
logbuf_free(struct logbuf *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}
