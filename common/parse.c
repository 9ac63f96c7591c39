/* Command-line value parsers: strict, with overflow checks. */
#include "common/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* Reads leading digits into *v; returns the rest, or NULL on overflow or no digits. */
static const char *
digits(const char *s, uint64_t *v)
{
	const char *p = s;

	*v = 0;
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p - '0');
		if (*v > (UINT64_MAX - d) / 10)
			return NULL;
		*v = *v * 10 + d;
		p++;
	}
	return p == s ? NULL : p;
}

int
kci_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { NULL, 0 } };
	const uint64_t max = INT64_MAX / 2;
	uint64_t total = 0, v;
	const char *p = s;

	if (!s || !*s)
		return KCI_INVALID;
	if ((p = digits(s, &v)) && *p == '\0') {
		if (v > max / 1000)
			return KCI_INVALID;
		*ms = (int64_t)(v * 1000);
		return 0;
	}
	p = s;
	while (*p) {
		size_t i;
		if (!(p = digits(p, &v)))
			return KCI_INVALID;
		for (i = 0; units[i].unit; i++) {
			size_t n = strlen(units[i].unit);
			/* "ms" before "m", so "5ms" is not read as minutes followed by junk. */
			if (strncmp(p, units[i].unit, n) == 0 && !isalpha((unsigned char)p[n]))
				break;
		}
		if (!units[i].unit || v > max / units[i].ms || total > max - v * units[i].ms)
			return KCI_INVALID;
		total += v * units[i].ms;
		p += strlen(units[i].unit);
	}
	*ms = (int64_t)total;
	return 0;
}

int
kci_parse_size_mib(const char *s, uint64_t *mib)
{
	uint64_t v;
	const char *p;

	if (!s || !(p = digits(s, &v)))
		return KCI_INVALID;
	switch (toupper((unsigned char)*p)) {
	case '\0':
	case 'M':
		break;
	case 'G':
		if (v > UINT64_MAX / 1024)
			return KCI_INVALID;
		v *= 1024;
		break;
	case 'K':
		if (v % 1024)
			return KCI_INVALID;
		v /= 1024;
		break;
	default:
		return KCI_INVALID;
	}
	if (*p) {
		p++;
		if (strcmp(p, "") != 0 && strcmp(p, "B") != 0 && strcmp(p, "iB") != 0)
			return KCI_INVALID;
	}
	*mib = v;
	return 0;
}

int
kci_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	uint64_t v;
	const char *p = s ? digits(s, &v) : NULL;

	if (!p || *p || v < min || v > max)
		return KCI_INVALID;
	*out = (unsigned)v;
	return 0;
}

const char *
kci_format_duration(char *buf, size_t len, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (ms < 60000)
		snprintf(buf, len, "%lld.%llds", (long long)(ms / 1000),
			 (long long)(ms % 1000 / 100));
	else
		snprintf(buf, len, "%lldm%02llds", (long long)(ms / 60000),
			 (long long)(ms / 1000 % 60));
	return buf;
}
