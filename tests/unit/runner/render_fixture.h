/* Shared by test_render.c and test_render_sanitize.c: output captured in memory. */
#ifndef KCI_TEST_RENDER_FIXTURE_H
#define KCI_TEST_RENDER_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

/* Output captured in memory. */
struct sink {
	FILE *f;
	char *buf;
	size_t len;
};

static inline void
sink_open(struct sink *s)
{
	s->buf = NULL;
	s->len = 0;
	s->f = open_memstream(&s->buf, &s->len);
	assert_non_null(s->f);
}

/* What was written so far (valid until the next write). */
static inline const char *
sink_text(struct sink *s)
{
	assert_int_equal(fflush(s->f), 0);
	return s->buf;
}

static inline void
sink_close(struct sink *s)
{
	fclose(s->f);
	free(s->buf);
}

#endif
