/*
 * Artifacts: a job's tar stream from the (hostile) guest, extracted beneath a
 * host directory by images/' one extractor with KCI_EXTRACT_ARTIFACTS, in its
 * seccomp-confined child. This file only maps the engine's limits onto that
 * policy; images.h says what the policy allows and refuses.
 */
#include "engine/internal.h"

#include <stdint.h>

#include "images/images.h"

/* Raw stream allowance per name, on top of file bytes: headers, pax records, padding. */
#define ART_HEADER_MAX (64 * 1024)

int
art_extract(int fd, const char *dest, const struct art_limits *lim, struct art_stats *st,
	    struct kci_err *err)
{
	static const struct art_limits defaults = { ART_MAX_BYTES, ART_MAX_FILES };
	struct kci_extract_policy p = KCI_EXTRACT_ARTIFACTS;
	struct kci_extract_stats stats = { 0 };
	int rc;

	if (!lim)
		lim = &defaults;
	p.max_bytes = p.max_file = lim->max_bytes;
	p.max_names = lim->max_files;
	/* Skipped data and headers count too, so a stream of them cannot keep kci reading. */
	p.max_stream = lim->max_bytes + ((uint64_t)lim->max_files + 2) * ART_HEADER_MAX;
	if (p.max_stream < lim->max_bytes)
		p.max_stream = UINT64_MAX;
	rc = kci_images_extract(dest, fd, &p, NULL, &stats, err);
	if (st) {
		st->files = stats.names;
		st->bytes = stats.bytes;
	}
	return rc;
}
