/* Parsers for the human-friendly values kci accepts on the command line. */
#ifndef KCI_COMMON_PARSE_H
#define KCI_COMMON_PARSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Durations: "90" (seconds), "500ms", "3s", "2m", "1h", "1m30s". Returns 0
 * and milliseconds in *ms, or KCI_INVALID. Zero is allowed; overflow is not.
 */
int kci_parse_duration(const char *s, int64_t *ms);

/* Formats milliseconds for people: "3.2s", "12m05s". Returns buf. */
const char *kci_format_duration(char *buf, size_t len, int64_t ms);

/* Sizes: "512" (MiB), "512M", "2G", "1024K" (binary units). Returns MiB in *mib. */
int kci_parse_size_mib(const char *s, uint64_t *mib);

/* Non-negative decimal integer in [min, max]. */
int kci_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

#endif
