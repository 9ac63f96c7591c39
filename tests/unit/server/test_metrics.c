/*
 * Unit tests for server/metrics.c: its output read back as Prometheus would,
 * line by line: families declared once before their samples, labels, values,
 * cumulative histogram buckets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "server/metrics.h"

#define MAX_SAMPLES 64

struct sample {
	char name[64];
	char label[32], value[32]; /* the one label, or "" */
	double v;
};

struct family {
	char name[64], type[128];
};

struct exposition {
	struct sample s[MAX_SAMPLES];
	size_t n;
	struct family f[16];
	size_t nf;
};

static int
is_name(const char *s, size_t n)
{
	if (!n || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz_0123456789", s[i]))
			return 0;
	return 1;
}

/* The family a sample name belongs to: itself, or a histogram's name_bucket/_sum/_count. */
static const struct family *
family_of(const struct exposition *e, const char *name)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };

	for (size_t i = 0; i < e->nf; i++) {
		size_t n = strlen(e->f[i].name);

		if (strncmp(name, e->f[i].name, n))
			continue;
		if (!name[n])
			return &e->f[i];
		if (!strcmp(e->f[i].type, "histogram"))
			for (size_t k = 0; k < 3; k++)
				if (!strcmp(name + n, suffixes[k]))
					return &e->f[i];
	}
	return NULL;
}

static void
parse_comment(struct exposition *e, const char *line)
{
	char name[64], rest[128];

	if (sscanf(line, "# TYPE %63s %127s", name, rest) == 2) {
		assert_true(is_name(name, strlen(name)));
		assert_true(!strcmp(rest, "gauge") || !strcmp(rest, "counter") ||
			    !strcmp(rest, "histogram"));
		/* Declared once, and before any sample of it (its HELP just before). */
		assert_null(family_of(e, name));
		assert_true(e->nf < 16);
		snprintf(e->f[e->nf].name, sizeof(e->f[0].name), "%s", name);
		snprintf(e->f[e->nf].type, sizeof(e->f[0].type), "%s", rest);
		e->nf++;
	} else {
		assert_int_equal(sscanf(line, "# HELP %63s %127[^\n]", name, rest), 2);
		assert_true(is_name(name, strlen(name)));
		assert_null(family_of(e, name));
	}
}

static void
parse_sample(struct exposition *e, const char *line)
{
	struct sample *s = &e->s[e->n];
	size_t n = strcspn(line, "{ ");
	const char *p = line + n;
	char *end;

	assert_true(e->n < MAX_SAMPLES);
	assert_true(is_name(line, n) && n < sizeof(s->name));
	memcpy(s->name, line, n);
	s->name[n] = '\0';
	s->label[0] = s->value[0] = '\0';
	assert_non_null(family_of(e, s->name));
	if (*p == '{') {
		size_t k = strcspn(++p, "=");

		assert_true(is_name(p, k) && k < sizeof(s->label));
		memcpy(s->label, p, k);
		s->label[k] = '\0';
		p += k + 1;
		assert_int_equal(*p, '"');
		k = strcspn(++p, "\"\\\n");
		assert_true(k < sizeof(s->value));
		memcpy(s->value, p, k);
		s->value[k] = '\0';
		p += k;
		assert_int_equal(p[0], '"');
		assert_int_equal(p[1], '}');
		p += 2;
	}
	assert_int_equal(*p, ' ');
	s->v = strtod(p + 1, &end);
	assert_true(end > p + 1 && *end == '\0');
	e->n++;
}

/* Parses text into e, failing the test on anything Prometheus would reject. */
static void
parse(struct exposition *e, const char *text)
{
	char *copy = kci_xstrdup(text), *line, *save = NULL;

	memset(e, 0, sizeof(*e));
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	assert_null(strstr(text, "\n\n"));
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			parse_comment(e, line);
		else
			parse_sample(e, line);
	}
	free(copy);
}

/* The value of the sample name{label="value"}; fails when there is not exactly one. */
static double
value(const struct exposition *e, const char *name, const char *label)
{
	const struct sample *found = NULL;

	for (size_t i = 0; i < e->n; i++) {
		if (strcmp(e->s[i].name, name) || strcmp(e->s[i].value, label ? label : ""))
			continue;
		assert_null(found);
		found = &e->s[i];
	}
	if (!found)
		fail_msg("no sample %s{%s}", name, label ? label : "");
	return found->v;
}

static size_t
samples_named(const struct exposition *e, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < e->n; i++)
		n += !strcmp(e->s[i].name, name);
	return n;
}

static void
test_metrics__gauges_and_job_results(void **state)
{
	struct store_counts c = { .queued = 3, .running = 2, .agents = 1 };
	struct metrics m = { 0 };
	struct exposition e;
	char *text;

	(void)state;
	c.jobs_by_status[J_WAITING] = 100;
	c.jobs_by_status[J_QUEUED] = 3;
	c.jobs_by_status[J_RUNNING] = 2;
	c.jobs_by_status[J_PASSED] = 40;
	c.jobs_by_status[J_FAILED] = 5;
	c.jobs_by_status[J_TIMEOUT] = 4;
	c.jobs_by_status[J_SKIPPED] = 3;
	c.jobs_by_status[J_CANCELED] = 2;
	c.jobs_by_status[J_ERROR] = 1;
	text = metrics_text(&c, &m);
	parse(&e, text);
	assert_true(!strncmp(text, "# HELP kci_queue_depth ", 23));
	assert_true(strstr(text, "# TYPE kci_queue_depth gauge\nkci_queue_depth 3\n"));
	assert_true(strstr(text, "# TYPE kci_job_results_total counter\n"));
	assert_true(strstr(text, "kci_job_results_total{status=\"passed\"} 40\n"));
	assert_true(value(&e, "kci_queue_depth", NULL) == 3);
	assert_true(value(&e, "kci_jobs_running", NULL) == 2);
	assert_true(value(&e, "kci_agents_connected", NULL) == 1);
	assert_true(value(&e, "kci_job_results_total", "passed") == 40);
	assert_true(value(&e, "kci_job_results_total", "failed") == 5);
	assert_true(value(&e, "kci_job_results_total", "timeout") == 4);
	assert_true(value(&e, "kci_job_results_total", "skipped") == 3);
	assert_true(value(&e, "kci_job_results_total", "canceled") == 2);
	assert_true(value(&e, "kci_job_results_total", "error") == 1);
	/* Only finished jobs are results. */
	assert_int_equal(samples_named(&e, "kci_job_results_total"), 6);
	for (size_t i = 0; i < e.n; i++)
		if (!strcmp(e.s[i].name, "kci_job_results_total"))
			assert_string_equal(e.s[i].label, "status");
	assert_int_equal(e.nf, 6);
	free(text);
}

static void
test_metrics__boot_histogram_is_cumulative(void **state)
{
	static const char *const le[] = { "0.5", "1", "2", "4", "8", "16", "+Inf" };
	static const double want[] = { 3, 3, 4, 5, 5, 5, 7 };
	struct store_counts c = { 0 };
	struct metrics m = { 0 };
	struct exposition e;
	char *text;

	(void)state;
	metrics_observe_boot(&m, 0.3);
	metrics_observe_boot(&m, 0.5); /* on a bound: in it (le) */
	metrics_observe_boot(&m, -1);  /* as 0 */
	metrics_observe_boot(&m, 1.5);
	metrics_observe_boot(&m, 3);
	metrics_observe_boot(&m, 20);
	metrics_observe_boot(&m, 16.5);
	metrics_observe_boot(&m, NAN); /* not at all */
	metrics_observe_boot(&m, INFINITY);
	text = metrics_text(&c, &m);
	parse(&e, text);
	assert_true(strstr(text, "# TYPE kci_vm_boot_seconds histogram\n"));
	assert_int_equal(samples_named(&e, "kci_vm_boot_seconds_bucket"), 7);
	for (size_t i = 0; i < 7; i++)
		assert_true(value(&e, "kci_vm_boot_seconds_bucket", le[i]) == want[i]);
	/* Buckets in order, cumulative, +Inf last and equal to the count. */
	for (size_t i = 0, k = 0; i < e.n; i++) {
		if (strcmp(e.s[i].name, "kci_vm_boot_seconds_bucket"))
			continue;
		assert_string_equal(e.s[i].label, "le");
		assert_string_equal(e.s[i].value, le[k]);
		if (k > 0)
			assert_true(e.s[i].v >= e.s[i - 1].v);
		k++;
	}
	assert_true(value(&e, "kci_vm_boot_seconds_count", NULL) == 7);
	assert_true(fabs(value(&e, "kci_vm_boot_seconds_sum", NULL) - 41.8) < 1e-9);
	assert_true(strstr(text, "kci_vm_boot_seconds_sum 41.800000\n"));
	free(text);
}

static void
test_metrics__webhook_deliveries_by_result(void **state)
{
	static const char *const names[] = { "accepted",  "duplicate", "unauthorized",
					     "too_large", "malformed", "unknown_repo",
					     "ignored" };
	struct store_counts c = { 0 };
	struct metrics m = { 0 };
	struct exposition e;
	char *text;

	(void)state;
	for (int r = 0; r < DELIVERY_RESULTS; r++)
		for (int k = 0; k <= r; k++)
			metrics_delivery(&m, (enum delivery_result)r);
	metrics_delivery(&m, DELIVERY_RESULTS);
	metrics_delivery(&m, (enum delivery_result) - 1);
	text = metrics_text(&c, &m);
	parse(&e, text);
	assert_true(strstr(text, "# TYPE kci_webhook_deliveries_total counter\n"));
	assert_int_equal(samples_named(&e, "kci_webhook_deliveries_total"), DELIVERY_RESULTS);
	for (int r = 0; r < DELIVERY_RESULTS; r++) {
		assert_string_equal(metrics_delivery_name((enum delivery_result)r), names[r]);
		assert_true(value(&e, "kci_webhook_deliveries_total", names[r]) == r + 1);
	}
	assert_string_equal(metrics_delivery_name(DELIVERY_RESULTS), "unknown");
	free(text);
}

static void
test_metrics__empty_is_all_zero(void **state)
{
	struct store_counts c = { 0 };
	struct metrics m = { 0 };
	struct exposition e;
	char *text;

	(void)state;
	text = metrics_text(&c, &m);
	parse(&e, text);
	for (size_t i = 0; i < e.n; i++)
		assert_true(e.s[i].v == 0);
	assert_int_equal(e.n, 3 + 6 + 9 + DELIVERY_RESULTS);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics__gauges_and_job_results),
		cmocka_unit_test(test_metrics__boot_histogram_is_cumulative),
		cmocka_unit_test(test_metrics__webhook_deliveries_by_result),
		cmocka_unit_test(test_metrics__empty_is_all_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
