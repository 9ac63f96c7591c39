/* Keeps the tail of the guest's serial console, for errors when the guest dies. */
#include <stdio.h>
#include <string.h>

#include "vm/internal.h"

void
console_ring_add(struct console_ring *r, const char *p, size_t n)
{
	/* untrusted: only the last CONSOLE_RING bytes are ever kept */
	if (n >= CONSOLE_RING) {
		p += n - CONSOLE_RING;
		n = CONSOLE_RING;
	}
	for (size_t i = 0; i < n; i++) {
		size_t at = (r->start + r->len) % CONSOLE_RING;
		r->buf[at] = p[i];
		if (r->len < CONSOLE_RING)
			r->len++;
		else
			r->start = (r->start + 1) % CONSOLE_RING;
	}
}

/* Linearises the ring into r->tail, dropping CR and other control bytes. */
static size_t
linearise(struct console_ring *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->len; i++) {
		unsigned char c = (unsigned char)r->buf[(r->start + i) % CONSOLE_RING];
		if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f))
			r->tail[n++] = (char)c;
	}
	while (n > 0 && r->tail[n - 1] == '\n')
		n--;
	r->tail[n] = '\0';
	return n;
}

const char *
console_ring_tail(struct console_ring *r, int lines)
{
	size_t n = linearise(r);
	int seen = 0;

	for (size_t i = n; i > 0; i--) {
		if (r->tail[i - 1] == '\n' && ++seen == lines)
			return r->tail + i;
	}
	return r->tail;
}

const char *
console_panic_line(struct console_ring *r, char *buf, size_t size)
{
	const char *p, *end;

	linearise(r);
	p = strstr(r->tail, "Kernel panic - not syncing");
	if (!p)
		return NULL;
	end = strchr(p, '\n');
	snprintf(buf, size, "%.*s", (int)(end ? end - p : (long)strlen(p)), p);
	return buf;
}

int
console_shows(struct console_ring *r, const char *needle)
{
	linearise(r);
	return strstr(r->tail, needle) != NULL;
}
