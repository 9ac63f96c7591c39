/*
 * Fuzz target: the host-side decoding of guest frames. Feeds arbitrary bytes
 * through the streaming decoder in uneven chunks and parses every control
 * payload the way the host does. Built with libFuzzer (KCI_FUZZ=ON) or linked
 * with replay.c so ctest replays the corpus on every build.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
handle(const struct kci_frame *f)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_hello h;
	struct kci_exit e;
	struct kci_run_req r;
	unsigned rows, cols;

	switch (f->type) {
	case KCI_F_HELLO:
		(void)kci_proto_parse_hello(f->payload, f->len, &h, &err);
		break;
	case KCI_F_EXIT:
		(void)kci_proto_parse_exit(f->payload, f->len, &e, &err);
		break;
	case KCI_F_RUN:
		if (kci_proto_parse_run(f->payload, f->len, &r, &err) == 0)
			kci_run_req_clear(&r);
		break;
	case KCI_F_RESIZE:
		(void)kci_proto_parse_resize(f->payload, f->len, &rows, &cols, &err);
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kci_decoder dec;
	struct kci_err err = KCI_ERR_INIT;
	struct kci_frame f;
	size_t off = 0;
	int rc;

	kci_decoder_init(&dec);
	/* The first byte picks the chunk size, so short reads and frame splits get explored. */
	size_t chunk = size ? (size_t)data[0] % 61 + 1 : 1;
	while (off < size) {
		uint8_t *dst;
		size_t space = kci_decoder_space(&dec, &dst);
		size_t n = size - off < chunk ? size - off : chunk;
		if (n > space)
			n = space;
		memcpy(dst, data + off, n);
		kci_decoder_commit(&dec, n);
		off += n;
		while ((rc = kci_decoder_next(&dec, &f, &err)) == 1)
			handle(&f);
		if (rc < 0)
			break;
	}
	return 0;
}
