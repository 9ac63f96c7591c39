/* The web UI's pages: the build list, a build with its jobs, a job with its log. */
#include "server/ui.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"

/* s as HTML text; NULL as nothing. */
static void
put_s(FILE *f, const char *s)
{
	if (s)
		ui_put_text(f, s, strlen(s));
}

static void
page_start(FILE *f, const char *title_a, const char *title_b)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	      "<meta name=\"referrer\" content=\"same-origin\">\n<title>",
	      f);
	put_s(f, title_a);
	if (title_b) {
		fputs(" &middot; ", f);
		put_s(f, title_b);
	}
	fputs(" &middot; kci</title>\n<link rel=\"stylesheet\" href=\"" UI_CSS_PATH "\">\n"
	      "<script src=\"" UI_JS_PATH "\" defer></script>\n</head>\n<body>\n"
	      "<header><a class=\"home\" href=\"/\">kci</a></header>\n<main>\n",
	      f);
}

static char *
page_end(FILE *f, char **buf)
{
	fputs("</main>\n</body>\n</html>\n", f);
	return ui_mem_close(f, buf);
}

/* ms since the epoch as <time> in UTC, ISO 8601; 0 (not yet) as a dash. */
static void
put_time(FILE *f, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char iso[32];

	if (ms <= 0 || !gmtime_r(&t, &tm) ||
	    !strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		fputs("&mdash;", f);
		return;
	}
	fprintf(f, "<time datetime=\"%s\">%s</time>", iso, iso);
}

/* 0.8s, 42s, 3m05s, 1h02m; negative or 0 (not known) as a dash. */
static void
put_duration(FILE *f, int64_t ms)
{
	int64_t s = ms / 1000;

	if (ms <= 0)
		fputs("&mdash;", f);
	else if (ms < 10000)
		fprintf(f, "%" PRId64 ".%" PRId64 "s", s, ms % 1000 / 100);
	else if (s < 60)
		fprintf(f, "%" PRId64 "s", s);
	else if (s < 3600)
		fprintf(f, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else
		fprintf(f, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
}

/* The status word with its class (st-failed...), so CSS can mark it and kci.js change it. */
static void
put_status(FILE *f, const char *id, const char *name)
{
	fputs("<span", f);
	if (id)
		fprintf(f, " id=\"%s\"", id);
	fprintf(f, " class=\"status st-%s\">%s</span>", name, name);
}

static void
put_build_href(FILE *f, int64_t id)
{
	fprintf(f, "/builds/%" PRId64, id);
}

static void
put_job_href(FILE *f, int64_t build, const char *name)
{
	put_build_href(f, build);
	fputs("/jobs/", f);
	ui_put_segment(f, name ? name : "");
}

/* A commit id's first 10 characters, the whole in its title (hex, but not trusted to be). */
static void
put_short_commit(FILE *f, const char *commit)
{
	if (!commit)
		return;
	fputs("<code title=\"", f);
	put_s(f, commit);
	fputs("\">", f);
	ui_put_text(f, commit, strnlen(commit, 10));
	fputs("</code>", f);
}

static int64_t
build_duration(const struct build_row *b)
{
	return b->started > 0 && b->finished >= b->started ? b->finished - b->started : 0;
}

char *
ui_builds_page(const struct build_row *builds, size_t n)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = ui_mem_open(&buf, &size);

	page_start(f, "Builds", NULL);
	fputs("<h1>Builds</h1>\n", f);
	if (!n) {
		fputs("<p class=\"empty\">No builds yet.</p>\n", f);
		return page_end(f, &buf);
	}
	fputs("<table class=\"builds\">\n<thead><tr><th>Build</th><th>Status</th>"
	      "<th>Repository</th><th>Ref</th><th>Commit</th><th>Created</th>"
	      "<th>Duration</th></tr></thead>\n<tbody>\n",
	      f);
	for (size_t i = 0; i < n; i++) {
		const struct build_row *b = &builds[i];
		const char *st = build_status_name(b->status);

		fprintf(f, "<tr class=\"row-%s\"><td><a href=\"", st);
		put_build_href(f, b->id);
		fprintf(f, "\">#%" PRId64 "</a></td><td>", b->id);
		put_status(f, NULL, st);
		fputs("</td><td>", f);
		put_s(f, b->repo);
		fputs("</td><td>", f);
		put_s(f, b->ref);
		fputs("</td><td>", f);
		put_short_commit(f, b->commit);
		fputs("</td><td>", f);
		put_time(f, b->created);
		fputs("</td><td>", f);
		put_duration(f, build_duration(b));
		fputs("</td></tr>\n", f);
	}
	fputs("</tbody>\n</table>\n", f);
	return page_end(f, &buf);
}

/* "#12 acme/widget refs/heads/main" with the build's link, atop the build and job pages. */
static void
put_build_title(FILE *f, const struct build_row *b, int link)
{
	if (link) {
		fputs("<a href=\"", f);
		put_build_href(f, b->id);
		fprintf(f, "\">Build #%" PRId64 "</a>", b->id);
	} else {
		fprintf(f, "Build #%" PRId64, b->id);
	}
	fputs(" <span class=\"repo\">", f);
	put_s(f, b->repo);
	fputs("</span> <span class=\"ref\">", f);
	put_s(f, b->ref);
	fputs("</span>", f);
}

static void
put_field(FILE *f, const char *name, const char *value)
{
	fprintf(f, "<dt>%s</dt><dd>", name);
	put_s(f, value);
	fputs("</dd>\n", f);
}

char *
ui_build_page(const struct build_row *b)
{
	char *buf = NULL, *title = kci_xasprintf("Build #%" PRId64, b->id);
	size_t size = 0;
	FILE *f = ui_mem_open(&buf, &size);

	page_start(f, title, b->repo);
	free(title);
	fputs("<h1>", f);
	put_build_title(f, b, 0);
	fputs("</h1>\n<dl class=\"fields\">\n<dt>Status</dt><dd>", f);
	put_status(f, "build-status", build_status_name(b->status));
	fputs("</dd>\n", f);
	put_field(f, "Repository", b->repo);
	put_field(f, "Ref", b->ref);
	fputs("<dt>Commit</dt><dd><code>", f);
	put_s(f, b->commit);
	fputs("</code></dd>\n", f);
	put_field(f, "Event", b->event);
	put_field(f, "Secrets", b->trusted ? "granted" : "withheld (untrusted source)");
	fputs("<dt>Created</dt><dd>", f);
	put_time(f, b->created);
	fputs("</dd>\n<dt>Started</dt><dd>", f);
	put_time(f, b->started);
	fputs("</dd>\n<dt>Finished</dt><dd>", f);
	put_time(f, b->finished);
	fputs("</dd>\n<dt>Duration</dt><dd>", f);
	put_duration(f, build_duration(b));
	fputs("</dd>\n</dl>\n", f);
	if (b->error) {
		fputs("<p class=\"error\">", f);
		put_s(f, b->error);
		fputs("</p>\n", f);
	}
	fputs("<h2>Jobs</h2>\n", f);
	if (!b->n_jobs) {
		fputs("<p class=\"empty\">No jobs.</p>\n", f);
		return page_end(f, &buf);
	}
	fputs("<table class=\"jobs\">\n<thead><tr><th>Job</th><th>Status</th><th>Attempt</th>"
	      "<th>Duration</th><th>Message</th></tr></thead>\n<tbody>\n",
	      f);
	for (size_t i = 0; i < b->n_jobs; i++) {
		const struct job_row *j = &b->jobs[i];
		const char *st = job_status_name(j->status);

		fprintf(f, "<tr class=\"row-%s\"><td><a href=\"", st);
		put_job_href(f, b->id, j->name);
		fputs("\">", f);
		put_s(f, j->name);
		fputs("</a></td><td>", f);
		put_status(f, NULL, st);
		fprintf(f, "</td><td>%d</td><td>", j->attempt);
		put_duration(f, j->duration_ms);
		fputs("</td><td class=\"message\">", f);
		put_s(f, j->message);
		fputs("</td></tr>\n", f);
	}
	fputs("</tbody>\n</table>\n", f);
	return page_end(f, &buf);
}

char *
ui_job_page(const struct build_row *b, const struct job_row *j, const char *log, size_t len,
	    int live)
{
	char *buf = NULL, *html;
	size_t size = 0;
	FILE *f = ui_mem_open(&buf, &size);

	if (live)
		len = ui_ansi_complete(log, len);
	page_start(f, j->name, b->repo);
	fputs("<nav class=\"crumbs\">", f);
	put_build_title(f, b, 1);
	fputs("</nav>\n<h1>", f);
	put_s(f, j->name);
	fputs("</h1>\n<dl class=\"fields\">\n<dt>Status</dt><dd>", f);
	put_status(f, "job-status", job_status_name(j->status));
	fprintf(f, "</dd>\n<dt>Attempt</dt><dd>%d</dd>\n<dt>Duration</dt><dd>", j->attempt);
	put_duration(f, j->duration_ms);
	fputs("</dd>\n", f);
	if (j->message)
		put_field(f, "Message", j->message);
	fputs("</dl>\n<pre id=\"log\" class=\"log\"", f);
	if (live) {
		fputs(" data-events=\"/api/v1", f);
		put_job_href(f, b->id, j->name);
		fprintf(f, "/events?offset=%zu\"", len);
	}
	/* The newline after <pre> is the one a parser drops, so a log's own first one stays. */
	html = ui_ansi_html(log, len);
	fprintf(f, ">\n%s</pre>\n", html);
	free(html);
	if (!len && !live)
		fputs("<p class=\"empty\">No output.</p>\n", f);
	return page_end(f, &buf);
}
