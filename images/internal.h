/* Private to images/: the store handle shared by image.c, pull.c and load.c. */
#ifndef KCI_IMAGES_INTERNAL_H
#define KCI_IMAGES_INTERNAL_H

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

#endif
