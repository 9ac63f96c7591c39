/* Unit tests for command-line value parsers (common/parse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/parse.h"

static void
test_parse__durations(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(kci_parse_duration("90", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(kci_parse_duration("3s", &ms), 0);
	assert_int_equal(ms, 3000);
	assert_int_equal(kci_parse_duration("500ms", &ms), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(kci_parse_duration("1h30m", &ms), 0);
	assert_int_equal(ms, 5400000);
	assert_int_equal(kci_parse_duration("2m5s", &ms), 0);
	assert_int_equal(ms, 125000);
}

static void
test_parse__bad_durations(void **state)
{
	int64_t ms;
	const char *bad[] = { "",
			      "s",
			      "3x",
			      "-3s",
			      "3 s",
			      "3s5",
			      "1.5s",
			      "99999999999999999999",
			      "9999999999999999h",
			      "3sec",
			      NULL };

	(void)state;
	for (int i = 0; bad[i]; i++)
		assert_int_equal(kci_parse_duration(bad[i], &ms), KCI_INVALID);
}

static void
test_parse__sizes(void **state)
{
	uint64_t mib;

	(void)state;
	assert_int_equal(kci_parse_size_mib("512", &mib), 0);
	assert_int_equal(mib, 512);
	assert_int_equal(kci_parse_size_mib("512M", &mib), 0);
	assert_int_equal(mib, 512);
	assert_int_equal(kci_parse_size_mib("2G", &mib), 0);
	assert_int_equal(mib, 2048);
	assert_int_equal(kci_parse_size_mib("2GiB", &mib), 0);
	assert_int_equal(mib, 2048);
	assert_int_equal(kci_parse_size_mib("1g", &mib), 0);
	assert_int_equal(mib, 1024);
	assert_int_equal(kci_parse_size_mib("2048K", &mib), 0);
	assert_int_equal(mib, 2);
	assert_int_equal(kci_parse_size_mib("1000K", &mib), KCI_INVALID);
	assert_int_equal(kci_parse_size_mib("12T", &mib), KCI_INVALID);
	assert_int_equal(kci_parse_size_mib("M", &mib), KCI_INVALID);
	assert_int_equal(kci_parse_size_mib("5Mx", &mib), KCI_INVALID);
	assert_int_equal(kci_parse_size_mib("99999999999999999999G", &mib), KCI_INVALID);
}

static void
test_parse__uint(void **state)
{
	unsigned v;

	(void)state;
	assert_int_equal(kci_parse_uint("4", 1, 64, &v), 0);
	assert_int_equal(v, 4);
	assert_int_equal(kci_parse_uint("0", 1, 64, &v), KCI_INVALID);
	assert_int_equal(kci_parse_uint("65", 1, 64, &v), KCI_INVALID);
	assert_int_equal(kci_parse_uint("4x", 1, 64, &v), KCI_INVALID);
	assert_int_equal(kci_parse_uint("", 1, 64, &v), KCI_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse__durations),
		cmocka_unit_test(test_parse__bad_durations),
		cmocka_unit_test(test_parse__sizes),
		cmocka_unit_test(test_parse__uint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
