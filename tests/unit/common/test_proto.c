/* Unit tests for the frame decoder and control-payload codecs (common/proto.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/proto.h"

static struct kci_decoder dec;

static void
feed(const uint8_t *p, size_t n)
{
	uint8_t *dst;
	size_t space = kci_decoder_space(&dec, &dst);

	assert_true(n <= space);
	memcpy(dst, p, n);
	kci_decoder_commit(&dec, n);
}

static void
test_proto__roundtrip_in_pieces(void **state)
{
	uint8_t wire[64];
	struct kci_frame f;
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	kci_decoder_init(&dec);
	kci_frame_header(wire, KCI_F_STDOUT, 0x1234, 5);
	memcpy(wire + KCI_FRAME_HDR, "hello", 5);
	kci_frame_header(wire + 13, KCI_F_HEARTBEAT, 0, 0);
	/* One byte at a time: a frame appears only when complete. */
	for (size_t i = 0; i < 12; i++) {
		feed(wire + i, 1);
		assert_int_equal(kci_decoder_next(&dec, &f, &err), 0);
	}
	feed(wire + 12, 1);
	assert_int_equal(kci_decoder_next(&dec, &f, &err), 1);
	assert_int_equal(f.type, KCI_F_STDOUT);
	assert_int_equal(f.id, 0x1234);
	assert_int_equal(f.len, 5);
	assert_memory_equal(f.payload, "hello", 5);
	assert_int_equal(kci_decoder_next(&dec, &f, &err), 0);
	feed(wire + 13, KCI_FRAME_HDR);
	assert_int_equal(kci_decoder_next(&dec, &f, &err), 1);
	assert_int_equal(f.type, KCI_F_HEARTBEAT);
	assert_int_equal(f.len, 0);
}

static void
test_proto__rejects_oversized_frame_before_buffering(void **state)
{
	uint8_t hdr[KCI_FRAME_HDR];
	struct kci_frame f;
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	kci_decoder_init(&dec);
	kci_frame_header(hdr, KCI_F_STDOUT, 1, KCI_FRAME_MAX + 1);
	feed(hdr, sizeof(hdr));
	assert_int_equal(kci_decoder_next(&dec, &f, &err), KCI_PROTO);
	assert_non_null(strstr(err.msg, "exceeds"));
	/* Sticky: the stream stays broken. */
	assert_int_equal(kci_decoder_next(&dec, &f, &err), KCI_PROTO);
}

static void
test_proto__rejects_unknown_type_and_flags(void **state)
{
	uint8_t hdr[KCI_FRAME_HDR];
	struct kci_frame f;
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	kci_decoder_init(&dec);
	kci_frame_header(hdr, 0x7f, 1, 0);
	feed(hdr, sizeof(hdr));
	assert_int_equal(kci_decoder_next(&dec, &f, &err), KCI_PROTO);
	assert_non_null(strstr(err.msg, "unknown frame type 0x7f"));

	kci_decoder_init(&dec);
	kci_frame_header(hdr, KCI_F_LOG, 1, 0);
	hdr[1] = 0x80;
	feed(hdr, sizeof(hdr));
	assert_int_equal(kci_decoder_next(&dec, &f, &err), KCI_PROTO);
	assert_non_null(strstr(err.msg, "reserved flags"));
}

static void
test_proto__max_frame_fits(void **state)
{
	static uint8_t payload[KCI_FRAME_MAX];
	uint8_t hdr[KCI_FRAME_HDR];
	struct kci_frame f;
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	kci_decoder_init(&dec);
	memset(payload, 'x', sizeof(payload));
	kci_frame_header(hdr, KCI_F_STDERR, 9, KCI_FRAME_MAX);
	feed(hdr, sizeof(hdr));
	feed(payload, sizeof(payload));
	assert_int_equal(kci_decoder_next(&dec, &f, &err), 1);
	assert_int_equal(f.len, KCI_FRAME_MAX);
	assert_int_equal(f.payload[KCI_FRAME_MAX - 1], 'x');
}

static void
test_proto__exit_parse(void **state)
{
	struct kci_exit e;
	struct kci_err err = KCI_ERR_INIT;
	const char *ok = "{\"code\":7}", *sig = "{\"signal\":9}",
		   *both = "{\"code\":1,\"signal\":9}", *range = "{\"code\":256}",
		   *text = "{\"code\":\"7\"}", *trailing = "{\"code\":1} x",
		   *err127 = "{\"code\":127,\"error\":\"nope: command not found\"}";

	(void)state;
	assert_int_equal(kci_proto_parse_exit((const uint8_t *)ok, strlen(ok), &e, &err), 0);
	assert_int_equal(e.code, 7);
	assert_int_equal(e.signal, 0);
	assert_int_equal(kci_proto_parse_exit((const uint8_t *)sig, strlen(sig), &e, &err), 0);
	assert_int_equal(e.signal, 9);
	assert_int_equal(kci_proto_parse_exit((const uint8_t *)err127, strlen(err127), &e, &err),
			 0);
	assert_string_equal(e.error, "nope: command not found");
	assert_int_equal(kci_proto_parse_exit((const uint8_t *)both, strlen(both), &e, &err),
			 KCI_PROTO);
	assert_int_equal(kci_proto_parse_exit((const uint8_t *)range, strlen(range), &e, &err),
			 KCI_PROTO);
	assert_int_equal(kci_proto_parse_exit((const uint8_t *)text, strlen(text), &e, &err),
			 KCI_PROTO);
	assert_int_equal(
		kci_proto_parse_exit((const uint8_t *)trailing, strlen(trailing), &e, &err),
		KCI_PROTO);
	assert_int_equal(kci_proto_parse_exit((const uint8_t *)"[]", 2, &e, &err), KCI_PROTO);
	assert_int_equal(kci_proto_parse_exit((const uint8_t *)"", 0, &e, &err), KCI_PROTO);
}

static void
test_proto__hello_bounds_strings(void **state)
{
	struct kci_hello h;
	struct kci_err err = KCI_ERR_INIT;
	char json[2048];
	char longname[1000];

	(void)state;
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	snprintf(json, sizeof(json), "{\"proto\":1,\"agent\":\"%s\",\"kernel\":\"6.1\"}", longname);
	assert_int_equal(kci_proto_parse_hello((const uint8_t *)json, strlen(json), &h, &err), 0);
	assert_int_equal(h.proto, 1);
	assert_int_equal(strlen(h.agent), sizeof(h.agent) - 1);
	assert_string_equal(h.kernel, "6.1");
	assert_int_equal(kci_proto_parse_hello((const uint8_t *)"{}", 2, &h, &err), KCI_PROTO);
}

static void
test_proto__deep_json_rejected(void **state)
{
	struct kci_exit e;
	struct kci_err err = KCI_ERR_INIT;
	char json[256] = "{\"code\":";
	size_t n = strlen(json);

	(void)state;
	for (int i = 0; i < 50; i++)
		json[n++] = '[';
	json[n] = '\0';
	assert_int_equal(kci_proto_parse_exit((const uint8_t *)json, n, &e, &err), KCI_PROTO);
}

static void
test_proto__run_roundtrip(void **state)
{
	char *argv[] = { "sh", "-c", "echo \"hi\"", NULL };
	char *env[] = { "A=1", "B=two words", NULL };
	struct kci_run_req in = { .argv = argv,
				  .env = env,
				  .cwd = "/work",
				  .user = "1000:100",
				  .tty = 1,
				  .rows = 40,
				  .cols = 120 };
	struct kci_run_req out;
	struct kci_err err = KCI_ERR_INIT;
	size_t len;
	char *json = kci_proto_encode_run(&in, &len);

	(void)state;
	assert_int_equal(kci_proto_parse_run((const uint8_t *)json, len, &out, &err), 0);
	assert_string_equal(out.argv[2], "echo \"hi\"");
	assert_null(out.argv[3]);
	assert_string_equal(out.env[1], "B=two words");
	assert_string_equal(out.cwd, "/work");
	assert_string_equal(out.user, "1000:100");
	assert_int_equal(out.tty, 1);
	assert_int_equal(out.rows, 40);
	assert_int_equal(out.cols, 120);
	kci_run_req_clear(&out);
	free(json);

	const char *empty = "{\"argv\":[]}", *nonstr = "{\"argv\":[\"a\",1]}";
	assert_int_equal(kci_proto_parse_run((const uint8_t *)empty, strlen(empty), &out, &err),
			 KCI_PROTO);
	assert_int_equal(kci_proto_parse_run((const uint8_t *)nonstr, strlen(nonstr), &out, &err),
			 KCI_PROTO);
}

static void
test_proto__resize(void **state)
{
	uint8_t p[4];
	unsigned r, c;
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	kci_proto_encode_resize(p, 50, 300);
	assert_int_equal(kci_proto_parse_resize(p, 4, &r, &c, &err), 0);
	assert_int_equal(r, 50);
	assert_int_equal(c, 300);
	assert_int_equal(kci_proto_parse_resize(p, 3, &r, &c, &err), KCI_PROTO);
}

static void
test_proto__resume_roundtrip_and_rejects(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_resume r = { .time_ns = 1765000000123456789LL }, back;
	size_t len;
	char *json;

	(void)state;
	for (int i = 0; i < KCI_RESUME_ENTROPY; i++)
		r.entropy[i] = (uint8_t)(i * 37 + 1);
	strcpy(r.hostname, "kci-0a1b2c3d");
	strcpy(r.machine_id, "0123456789abcdef0123456789abcdef");
	json = kci_proto_encode_resume(&r, &len);
	assert_int_equal(kci_proto_parse_resume((const uint8_t *)json, len, &back, &err), 0);
	free(json);
	assert_true(back.time_ns == r.time_ns);
	assert_memory_equal(back.entropy, r.entropy, KCI_RESUME_ENTROPY);
	assert_string_equal(back.hostname, r.hostname);
	assert_string_equal(back.machine_id, r.machine_id);

	/* What a broken or hostile host could send instead. */
	static const char *const bad[] = {
		"{}",
		"{\"time_ns\":-1,\"entropy\":\"00\",\"hostname\":\"a\",\"machine_id\":\"00\"}",
		"{\"time_ns\":1,\"entropy\":\"zz\",\"hostname\":\"a\","
		"\"machine_id\":\"0123456789abcdef0123456789abcdef\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(kci_proto_parse_resume((const uint8_t *)bad[i], strlen(bad[i]),
							&back, &err),
				 KCI_PROTO);
	/* A hostname that would be shell or path syntax somewhere is refused. */
	strcpy(r.hostname, "a/b");
	json = kci_proto_encode_resume(&r, &len);
	assert_int_equal(kci_proto_parse_resume((const uint8_t *)json, len, &back, &err),
			 KCI_PROTO);
	free(json);
	strcpy(r.hostname, "kci-1");
	strcpy(r.machine_id, "0123456789ABCDEF0123456789abcdef");
	json = kci_proto_encode_resume(&r, &len);
	assert_int_equal(kci_proto_parse_resume((const uint8_t *)json, len, &back, &err),
			 KCI_PROTO);
	free(json);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto__roundtrip_in_pieces),
		cmocka_unit_test(test_proto__rejects_oversized_frame_before_buffering),
		cmocka_unit_test(test_proto__rejects_unknown_type_and_flags),
		cmocka_unit_test(test_proto__max_frame_fits),
		cmocka_unit_test(test_proto__exit_parse),
		cmocka_unit_test(test_proto__hello_bounds_strings),
		cmocka_unit_test(test_proto__deep_json_rejected),
		cmocka_unit_test(test_proto__run_roundtrip),
		cmocka_unit_test(test_proto__resize),
		cmocka_unit_test(test_proto__resume_roundtrip_and_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
