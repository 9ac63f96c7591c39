/*
 * The bounded YAML tree: libyaml's event stream as a small tree, refusing what kci's YAML files
 * never need, and the lookups its readers share (keys, nulls, booleans, did-you-mean).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "jobs/internal.h"

struct builder {
	const char *file;
	struct kci_yaml_node *root;
	struct kci_yaml_node *stack[KCI_YAML_DEPTH_MAX];
	int depth;
	int documents;
};

void
kci_jobs_yaml_free(struct kci_yaml_node *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->n; i++)
		kci_jobs_yaml_free(n->items[i]);
	free(n->items);
	free(n->str);
	free(n);
}

static int
at(const struct builder *b, const yaml_mark_t *m, struct kci_err *err, const char *msg)
{
	return kci_err_set(err, KCI_INVALID, "%s:%zu:%zu: %s", b->file, m->line + 1, m->column + 1,
			   msg);
}

/* Keys of one mapping must be distinct: a second "needs:" silently winning hides mistakes. */
static int
check_new_key(const struct builder *b, const struct kci_yaml_node *map,
	      const struct kci_yaml_node *key, struct kci_err *err)
{
	size_t i;

	for (i = 0; i < map->n; i += 2) {
		if (strcmp(map->items[i]->str, key->str) == 0)
			return kci_err_set(err, KCI_INVALID,
					   "%s:%d:%d: duplicate key \"%s\" (first at line %d)",
					   b->file, key->line, key->col, key->str,
					   map->items[i]->line);
	}
	return 0;
}

/* Attaches n to the open collection (or makes it the root); n is owned by the tree after. */
static int
attach(struct builder *b, struct kci_yaml_node *n, struct kci_err *err)
{
	struct kci_yaml_node *parent;
	int rc;

	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->kind == KCI_YAML_MAP && parent->n % 2 == 0) {
		if (n->kind != KCI_YAML_SCALAR) {
			rc = kci_err_set(err, KCI_INVALID,
					 "%s:%d:%d: mapping keys must be plain strings", b->file,
					 n->line, n->col);
			kci_jobs_yaml_free(n);
			return rc;
		}
		if ((rc = check_new_key(b, parent, n, err)) < 0) {
			kci_jobs_yaml_free(n);
			return rc;
		}
	}
	if (parent->n >= 2 * KCI_YAML_ITEMS_MAX) {
		rc = kci_err_set(err, KCI_INVALID, "%s:%d:%d: too many entries (at most %d)",
				 b->file, n->line, n->col, KCI_YAML_ITEMS_MAX);
		kci_jobs_yaml_free(n);
		return rc;
	}
	if (parent->n == parent->cap) {
		parent->cap = parent->cap ? 2 * parent->cap : 8;
		parent->items = kci_xrealloc(parent->items, parent->cap * sizeof(*parent->items));
	}
	parent->items[parent->n++] = n;
	return 0;
}

static struct kci_yaml_node *
node_new(enum kci_yaml_kind kind, const yaml_event_t *ev)
{
	struct kci_yaml_node *n = kci_xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	return n;
}

static int
on_scalar(struct builder *b, const yaml_event_t *ev, struct kci_err *err)
{
	struct kci_yaml_node *n;
	size_t len = ev->data.scalar.length;

	if (len > KCI_YAML_SCALAR_MAX)
		return at(b, &ev->start_mark, err, "string longer than 64 KiB");
	if (memchr(ev->data.scalar.value, '\0', len))
		return at(b, &ev->start_mark, err, "string contains a NUL character");
	n = node_new(KCI_YAML_SCALAR, ev);
	n->str = kci_xmalloc(len + 1);
	memcpy(n->str, ev->data.scalar.value, len);
	n->str[len] = '\0';
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return attach(b, n, err);
}

static int
on_open(struct builder *b, const yaml_event_t *ev, enum kci_yaml_kind kind, struct kci_err *err)
{
	struct kci_yaml_node *n;
	int rc;

	if (b->depth == KCI_YAML_DEPTH_MAX)
		return at(b, &ev->start_mark, err, "nested too deeply");
	n = node_new(kind, ev);
	if ((rc = attach(b, n, err)) < 0)
		return rc;
	b->stack[b->depth++] = n;
	return 0;
}

static int
on_event(struct builder *b, const yaml_event_t *ev, struct kci_err *err)
{
	static const char no_anchors[] =
		"anchors and aliases are not supported (they make small files expand hugely)";

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->documents > 1)
			return at(b, &ev->start_mark, err,
				  "more than one YAML document (remove the \"---\")");
		return 0;
	case YAML_ALIAS_EVENT:
		return at(b, &ev->start_mark, err, no_anchors);
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor)
			return at(b, &ev->start_mark, err, no_anchors);
		return on_scalar(b, ev, err);
	case YAML_SEQUENCE_START_EVENT:
		if (ev->data.sequence_start.anchor)
			return at(b, &ev->start_mark, err, no_anchors);
		return on_open(b, ev, KCI_YAML_SEQ, err);
	case YAML_MAPPING_START_EVENT:
		if (ev->data.mapping_start.anchor)
			return at(b, &ev->start_mark, err, no_anchors);
		return on_open(b, ev, KCI_YAML_MAP, err);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		b->depth--;
		return 0;
	default:
		return 0;
	}
}

static int
syntax_error(const struct builder *b, const yaml_parser_t *parser, struct kci_err *err)
{
	const char *problem = parser->problem ? parser->problem : "invalid YAML";

	if (parser->context)
		return kci_err_set(err, KCI_INVALID, "%s:%zu:%zu: %s %s", b->file,
				   parser->problem_mark.line + 1, parser->problem_mark.column + 1,
				   problem, parser->context);
	return kci_err_set(err, KCI_INVALID, "%s:%zu:%zu: %s", b->file,
			   parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem);
}

int
kci_jobs_yaml_parse(const char *text, size_t len, const char *filename, struct kci_yaml_node **out,
		    struct kci_err *err)
{
	struct builder b = { .file = filename };
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0, done = 0;

	/* untrusted: len <= KCI_YAML_TEXT_MAX; every collection and string is bounded below */
	if (len > KCI_YAML_TEXT_MAX)
		return kci_err_set(err, KCI_INVALID, "%s: larger than %d KiB", filename,
				   KCI_YAML_TEXT_MAX / 1024);
	if (!yaml_parser_initialize(&parser))
		return kci_err_set(err, KCI_ERROR, "%s: cannot initialise the YAML parser",
				   filename);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = syntax_error(&b, &parser, err);
			break;
		}
		rc = on_event(&b, &ev, err);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (rc < 0) {
		kci_jobs_yaml_free(b.root);
		return rc;
	}
	*out = b.root;
	return 0;
}

const struct kci_yaml_node *
kci_jobs_yaml_get(const struct kci_yaml_node *map, const char *key)
{
	size_t i;

	for (i = 0; map && map->kind == KCI_YAML_MAP && i < map->n; i += 2) {
		if (strcmp(map->items[i]->str, key) == 0)
			return map->items[i + 1];
	}
	return NULL;
}

int
kci_jobs_yaml_is_null(const struct kci_yaml_node *n)
{
	return n->kind == KCI_YAML_SCALAR && n->plain &&
	       (!*n->str || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
		!strcmp(n->str, "Null") || !strcmp(n->str, "NULL"));
}

int
kci_jobs_yaml_bool(const struct kci_yaml_node *n, int *out)
{
	static const char *const yes[] = { "true", "True", "TRUE" };
	static const char *const no[] = { "false", "False", "FALSE" };
	size_t i;

	for (i = 0; n->kind == KCI_YAML_SCALAR && n->plain && i < sizeof(yes) / sizeof(*yes); i++) {
		if (!strcmp(n->str, yes[i]) || !strcmp(n->str, no[i])) {
			*out = !strcmp(n->str, yes[i]);
			return 0;
		}
	}
	return KCI_INVALID;
}

int
kci_jobs_yaml_check_keys(const struct kci_yaml_node *map, const char *const *known, size_t n_known,
			 const char *filename, const char *where, struct kci_err *err)
{
	size_t i, k;

	for (i = 0; map->kind == KCI_YAML_MAP && i < map->n; i += 2) {
		const struct kci_yaml_node *key = map->items[i];
		const char *hint;

		for (k = 0; k < n_known && strcmp(key->str, known[k]); k++)
			;
		if (k < n_known)
			continue;
		if ((hint = kci_jobs_closest_name(key->str, known, n_known)))
			return kci_err_set(err, KCI_INVALID,
					   "%s:%d:%d: unknown key \"%s\" %s (did you mean \"%s\"?)",
					   filename, key->line, key->col, key->str, where, hint);
		return kci_err_set(err, KCI_INVALID, "%s:%d:%d: unknown key \"%s\" %s", filename,
				   key->line, key->col, key->str, where);
	}
	return 0;
}

/* Edit distance, for "did you mean"; words here are short keys and job names. */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, prev[65], cur[65];

	if (la > 64 || lb > 64)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(prev));
	}
	return prev[lb];
}

const char *
kci_jobs_closest_name(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, i, limit = strlen(word) <= 4 ? 1 : 2;

	for (i = 0; i < n; i++) {
		size_t d = distance(word, candidates[i]);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best_d <= limit ? best : NULL;
}

int
kci_jobs_yaml_error(struct kci_err *err, const char *filename, const struct kci_yaml_node *n,
		    const char *fmt, ...)
{
	char msg[KCI_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kci_err_set(err, KCI_INVALID, "%s:%d:%d: %s", filename, n ? n->line : 1,
			   n ? n->col : 1, msg);
}
