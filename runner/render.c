/*
 * Rendering a run's events for people and for tools: prefixed live lines and
 * a summary table on a terminal or a pipe, or one JSON object per event.
 * Everything the guest or the repository wrote is made safe to print first.
 * Writes go to one FILE (stdout in kci run); the caller checks it for errors.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/parse.h"
#include "common/xalloc.h"
#include "runner/cli.h"

#define NAME_WIDTH_MAX 40 /* longer job names are elided in the middle in the prefix */

static const char *const colors[] = { "36", "33", "35", "32", "34", "91", "96", "93" };

struct job_view {
	enum kci_job_state state;
	int64_t duration_ms;
	char *why;
	char *log;  /* its log file as the user would name it, or NULL */
	char *name; /* the job's name made safe to print, once */
	char *tag;  /* the name as the line prefix shows it: elided to fit the column */
};

struct kci_render {
	FILE *out;
	const struct kci_plan *p;
	int *selected;
	int json, color, interrupted;
	int width; /* of the job-name column of live lines */
	struct job_view *jobs;
};

/* Whether byte i of s (a continuation byte) is within reach of a UTF-8 lead byte before it. */
static int
continues_utf8(const unsigned char *s, size_t i)
{
	for (size_t back = 1; back <= 3 && back <= i; back++) {
		unsigned char c = s[i - back];
		size_t follow = c >= 0xf5 ? 0 : c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : 0;

		if (c < 0x80 || c > 0xbf)
			return back <= follow;
	}
	return 0;
}

/*
 * Whether byte i of s is a control a terminal would act on: C0 and DEL, and C1
 * (0x80-0x9f), whether raw or UTF-8 encoded (0xc2 0x80-0x9f). *skip is set
 * to the bytes to drop after it.
 */
static int
is_control(const unsigned char *s, size_t len, size_t i, size_t *skip)
{
	*skip = 0;
	if (s[i] < 0x20 || s[i] == 0x7f)
		return 1;
	if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) {
		*skip = 1;
		return 1;
	}
	/* A byte 0x80-0x9f that no lead byte before it claims is a raw C1 control or junk. */
	return s[i] >= 0x80 && s[i] <= 0x9f && !continues_utf8(s, i);
}

void
kci_put_sanitized(FILE *f, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = u[i];
		size_t skip;

		if (c == 0x1b && i + 1 < len && s[i + 1] == '[') {
			size_t k = i + 2;

			while (k < len && ((s[k] >= '0' && s[k] <= '9') || s[k] == ';'))
				k++;
			if (k < len && s[k] == 'm') {
				fwrite(s + i, 1, k + 1 - i, f);
				i = k;
				continue;
			}
		}
		if (c != '\t' && is_control(u, len, i, &skip)) {
			fputc('?', f);
			i += skip;
			continue;
		}
		fputc(c, f);
	}
}

char *
kci_plain(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), o = 0, skip;
	char *out = kci_xmalloc(len + 1);

	for (size_t i = 0; i < len; i++) {
		if (is_control(u, len, i, &skip)) {
			out[o++] = '?';
			i += skip;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* "try (INPUT=test/fixtures/poem.txt)" in w columns: "try (INPUT=te...poem.txt)". */
static char *
elide(const char *name, int w)
{
	int len = (int)strlen(name), head, tail;

	if (len <= w || w < 8)
		return kci_xstrdup(name);
	tail = (w - 3) / 2;
	head = w - 3 - tail;
	return kci_xasprintf("%.*s...%s", head, name, name + len - tail);
}

/*
 * The prefix column: as wide as the longest selected name, up to
 * NAME_WIDTH_MAX, with longer names elided in the middle; and if eliding
 * would make two prefixes alike, as wide as it takes.
 */
static void
size_column(struct kci_render *r)
{
	const struct kci_plan *p = r->p;
	int longest = 0, w;

	for (size_t i = 0; i < p->n_jobs; i++)
		if (r->selected[i] && (int)strlen(r->jobs[i].name) > longest)
			longest = (int)strlen(r->jobs[i].name);
	w = longest > NAME_WIDTH_MAX ? NAME_WIDTH_MAX : longest;
	for (size_t i = 0; i < p->n_jobs; i++)
		r->jobs[i].tag = elide(r->jobs[i].name, w);
	for (size_t i = 0; i < p->n_jobs && w < longest; i++)
		for (size_t k = 0; k < i; k++)
			if (r->selected[i] && r->selected[k] &&
			    strcmp(r->jobs[i].tag, r->jobs[k].tag) == 0) {
				for (size_t j = 0; j < p->n_jobs; j++) {
					free(r->jobs[j].tag);
					r->jobs[j].tag = kci_xstrdup(r->jobs[j].name);
				}
				w = longest;
				break;
			}
	r->width = w;
}

struct kci_render *
kci_render_new(FILE *out, const struct kci_plan *p, const int *selected, int json, int color)
{
	struct kci_render *r = kci_xcalloc(1, sizeof(*r));

	r->out = out;
	r->p = p;
	r->json = json;
	r->color = color && !json;
	r->selected = kci_xcalloc(p->n_jobs ? p->n_jobs : 1, sizeof(int));
	r->jobs = kci_xcalloc(p->n_jobs ? p->n_jobs : 1, sizeof(*r->jobs));
	for (size_t i = 0; i < p->n_jobs; i++) {
		r->selected[i] = selected ? selected[i] : 1;
		r->jobs[i].name = kci_plain(p->jobs[i].name);
	}
	size_column(r);
	return r;
}

void
kci_render_free(struct kci_render *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->p->n_jobs; i++) {
		free(r->jobs[i].why);
		free(r->jobs[i].log);
		free(r->jobs[i].name);
		free(r->jobs[i].tag);
	}
	free(r->jobs);
	free(r->selected);
	free(r);
}

void
kci_render_interrupted(struct kci_render *r)
{
	r->interrupted = 1;
}

static void
prefix(struct kci_render *r, size_t job)
{
	const char *tag = r->jobs[job].tag;

	if (r->color)
		fprintf(r->out, "\033[%sm%-*s |\033[0m ",
			colors[job % (sizeof(colors) / sizeof(*colors))], r->width, tag);
	else
		fprintf(r->out, "%-*s | ", r->width, tag);
}

static void
render_text(struct kci_render *r, const struct kci_event *ev)
{
	char d[32], *step = ev->step_name ? kci_plain(ev->step_name) : NULL;
	FILE *f = r->out;

	prefix(r, ev->job);
	switch (ev->kind) {
	case KCI_EV_JOB_START:
		fprintf(f, "started\n");
		break;
	case KCI_EV_JOB_NOTE:
		fprintf(f, "kci: ");
		kci_put_sanitized(f, ev->text, ev->len);
		fputc('\n', f);
		break;
	case KCI_EV_STEP_START:
		fprintf(f, "%s==> %s%s\n", r->color ? "\033[1m" : "", step,
			r->color ? "\033[0m" : "");
		break;
	case KCI_EV_LOG:
		kci_put_sanitized(f, ev->text, ev->len);
		fputc('\n', f);
		break;
	case KCI_EV_STEP_END:
		if (ev->exit_code == 0)
			fprintf(f, "<== %s passed in %s\n", step,
				kci_format_duration(d, sizeof(d), ev->duration_ms));
		else
			fprintf(f, "<== %s failed (exit %d) in %s\n", step, ev->exit_code,
				kci_format_duration(d, sizeof(d), ev->duration_ms));
		break;
	case KCI_EV_JOB_END:
		fprintf(f, "job %s", kci_engine_job_state_name(ev->state));
		if (ev->state != KCI_JOB_SKIPPED && ev->state != KCI_JOB_CANCELED)
			fprintf(f, " in %s", kci_format_duration(d, sizeof(d), ev->duration_ms));
		if (ev->text) {
			fprintf(f, ": ");
			kci_put_sanitized(f, ev->text, ev->len);
		}
		fputc('\n', f);
		break;
	case KCI_EV_RUN_END:
		break;
	}
	free(step);
}

static const char *const kind_names[] = {
	[KCI_EV_JOB_START] = "job_start",   [KCI_EV_JOB_NOTE] = "note",
	[KCI_EV_STEP_START] = "step_start", [KCI_EV_LOG] = "log",
	[KCI_EV_STEP_END] = "step_end",	    [KCI_EV_JOB_END] = "job_end",
	[KCI_EV_RUN_END] = "summary",
};

static void
put_json(FILE *f, json_object *o)
{
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE),
	      f);
	fputc('\n', f);
	json_object_put(o);
}

static void
render_json(struct kci_render *r, const struct kci_event *ev)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string(kind_names[ev->kind]));
	json_object_object_add(o, "time_ms", json_object_new_int64(ev->time_ms));
	json_object_object_add(o, "job", json_object_new_string(ev->job_name));
	if (ev->kind == KCI_EV_STEP_START || ev->kind == KCI_EV_STEP_END ||
	    ev->kind == KCI_EV_LOG) {
		json_object_object_add(o, "step", json_object_new_int64((int64_t)ev->step));
		json_object_object_add(o, "step_name", json_object_new_string(ev->step_name));
	}
	if (ev->kind == KCI_EV_LOG)
		json_object_object_add(
			o, "stream", json_object_new_string(ev->stream == 2 ? "stderr" : "stdout"));
	if (ev->text)
		json_object_object_add(o, ev->kind == KCI_EV_LOG ? "line" : "message",
				       json_object_new_string_len(ev->text, (int)ev->len));
	if (ev->kind == KCI_EV_STEP_END)
		json_object_object_add(o, "exit_code", json_object_new_int(ev->exit_code));
	if (ev->kind == KCI_EV_STEP_END || ev->kind == KCI_EV_JOB_END) {
		json_object_object_add(
			o, "result", json_object_new_string(kci_engine_job_state_name(ev->state)));
		json_object_object_add(o, "duration_ms", json_object_new_int64(ev->duration_ms));
	}
	if (ev->log_path)
		json_object_object_add(o, "log", json_object_new_string(ev->log_path));
	put_json(r->out, o);
}

/* The table after a run, or the JSON summary object. */
static void
summary(struct kci_render *r, const struct kci_event *ev)
{
	size_t counts[KCI_JOB_ERROR + 1] = { 0 };
	int all_passed = 1, width = 3;
	json_object *arr = NULL;
	FILE *f = r->out;
	char d[32];

	for (size_t i = 0; i < r->p->n_jobs; i++)
		if (r->selected[i] && (int)strlen(r->jobs[i].name) > width)
			width = (int)strlen(r->jobs[i].name);
	if (r->json)
		arr = json_object_new_array();
	else
		fprintf(f, "\n%-*s  %-8s  %8s\n", width, "JOB", "RESULT", "DURATION");
	for (size_t i = 0; i < r->p->n_jobs; i++) {
		const struct job_view *v = &r->jobs[i];
		int ran = v->state != KCI_JOB_SKIPPED && v->state != KCI_JOB_PENDING &&
			  !(v->state == KCI_JOB_CANCELED && v->duration_ms == 0);

		if (!r->selected[i])
			continue;
		counts[v->state]++;
		all_passed &= v->state == KCI_JOB_PASSED;
		if (r->json) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "job",
					       json_object_new_string(r->p->jobs[i].name));
			json_object_object_add(
				o, "result",
				json_object_new_string(kci_engine_job_state_name(v->state)));
			json_object_object_add(o, "duration_ms",
					       json_object_new_int64(v->duration_ms));
			if (v->why)
				json_object_object_add(o, "message",
						       json_object_new_string(v->why));
			if (v->log)
				json_object_object_add(o, "log", json_object_new_string(v->log));
			json_object_array_add(arr, o);
			continue;
		}
		fprintf(f, "%-*s  ", width, v->name);
		if (r->color)
			fprintf(f, "\033[%sm",
				v->state == KCI_JOB_PASSED    ? "32"
				: v->state == KCI_JOB_SKIPPED ? "2"
							      : "31");
		fprintf(f, "%-8s", kci_engine_job_state_name(v->state));
		if (r->color)
			fprintf(f, "\033[0m");
		fprintf(f, "  %8s", ran ? kci_format_duration(d, sizeof(d), v->duration_ms) : "-");
		if (v->why) {
			fprintf(f, "  ");
			kci_put_sanitized(f, v->why, strlen(v->why));
		}
		/* Where to read more, for every job that did not pass and has a log. */
		if (v->log && v->state != KCI_JOB_PASSED) {
			fprintf(f, "%s", v->why ? "; log: " : "  log: ");
			kci_put_sanitized(f, v->log, strlen(v->log));
		}
		fputc('\n', f);
	}
	if (r->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "event", json_object_new_string("summary"));
		json_object_object_add(o, "time_ms", json_object_new_int64(ev->time_ms));
		json_object_object_add(o, "passed",
				       json_object_new_boolean(all_passed && !r->interrupted));
		json_object_object_add(o, "jobs", arr);
		put_json(f, o);
		return;
	}
	fputc('\n', f);
	for (int s = KCI_JOB_PASSED, first = 1; s <= KCI_JOB_ERROR; s++) {
		if (!counts[s])
			continue;
		fprintf(f, "%s%zu %s", first ? "" : ", ", counts[s], kci_engine_job_state_name(s));
		first = 0;
	}
	fprintf(f, "%s\n", r->interrupted ? " (interrupted)" : "");
}

void
kci_render_event(struct kci_render *r, const struct kci_event *ev)
{
	if (ev->kind == KCI_EV_JOB_END) {
		struct job_view *v = &r->jobs[ev->job];

		v->state = ev->state;
		v->duration_ms = ev->duration_ms;
		free(v->why);
		v->why = ev->text ? kci_xstrndup(ev->text, ev->len) : NULL;
		free(v->log);
		v->log = ev->log_path ? kci_shown_path(ev->log_path) : NULL;
	}
	if (ev->kind == KCI_EV_RUN_END)
		summary(r, ev);
	else if (r->json)
		render_json(r, ev);
	else
		render_text(r, ev);
}

int
kci_render_passed(const struct kci_render *r)
{
	for (size_t i = 0; i < r->p->n_jobs; i++)
		if (r->selected[i] && r->jobs[i].state != KCI_JOB_PASSED)
			return 0;
	return 1;
}

void
kci_render_list(FILE *f, const struct kci_plan *p, const int *selected, int json)
{
	int width = 3, iwidth = 5;

	for (size_t i = 0; i < p->n_jobs; i++) {
		const char *img = p->jobs[i].image ? p->jobs[i].image : "(busybox base)";
		if (!selected[i])
			continue;
		if ((int)strlen(p->jobs[i].name) > width)
			width = (int)strlen(p->jobs[i].name);
		if ((int)strlen(img) > iwidth)
			iwidth = (int)strlen(img);
	}
	if (!json)
		fprintf(f, "%-*s  %-*s  %5s  %s\n", width, "JOB", iwidth, "IMAGE", "STEPS",
			"NEEDS");
	for (size_t i = 0; i < p->n_jobs; i++) {
		const struct kci_job *j = &p->jobs[i];
		if (!selected[i])
			continue;
		if (json) {
			json_object *o = json_object_new_object(), *needs = json_object_new_array();
			json_object_object_add(o, "job", json_object_new_string(j->name));
			json_object_object_add(o, "image",
					       j->image ? json_object_new_string(j->image) : NULL);
			json_object_object_add(o, "steps",
					       json_object_new_int64((int64_t)j->n_steps));
			for (size_t k = 0; j->needs && j->needs[k]; k++)
				json_object_array_add(needs, json_object_new_string(j->needs[k]));
			json_object_object_add(o, "needs", needs);
			put_json(f, o);
			continue;
		}
		char *name = kci_plain(j->name);
		char *image = kci_plain(j->image ? j->image : "(busybox base)");
		fprintf(f, "%-*s  %-*s  %5zu  ", width, name, iwidth, image, j->n_steps);
		free(name);
		free(image);
		for (size_t k = 0; j->needs && j->needs[k]; k++) {
			char *need = kci_plain(j->needs[k]);
			fprintf(f, "%s%s", k ? ", " : "", need);
			free(need);
		}
		fprintf(f, "%s\n", j->needs && j->needs[0] ? "" : "-");
	}
}
