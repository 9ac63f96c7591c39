/* Private to images/: the store handle shared by image.c, pull.c and load.c. */
#ifndef KCI_IMAGES_IMAGE_H
#define KCI_IMAGES_IMAGE_H

#include "images/images.h"
#include "images/manifest.h"
#include "images/store.h"

struct kci_images {
	struct kci_store *store;
	char *home;
};

/* Parses and formats `ref` canonically into out (>= 600 bytes); *parsed optional. */
int image_canonical(const char *ref, char *out, size_t size, struct kci_image_ref *parsed,
		    struct kci_err *err);

/*
 * Reads and parses a stored manifest and (if cfg) its config, checking that
 * the config's diff_ids match the layer count. Caller clears both.
 */
int image_load_manifest(struct kci_images *im, const char *digest, const char *media_type,
			struct manifest *m, struct kci_image_config *cfg, struct kci_err *err);

#endif
