#!/bin/sh
# Golden tests for textstats: every fixtures/NAME.txt must produce fixtures/NAME.expected.
set -u
cd "$(dirname "$0")/.."
failed=0
for input in test/fixtures/*.txt; do
	expected=${input%.txt}.expected
	if bin/textstats -n 3 "$input" | diff -u "$expected" - ; then
		echo "ok   $input"
	else
		echo "FAIL $input"
		failed=$((failed + 1))
	fi
done
# Bad usage is an error, not a silent success.
if bin/textstats -n x 2>/dev/null; then echo "FAIL -n x accepted"; failed=$((failed + 1)); else echo "ok   -n x refused"; fi
if bin/textstats /nonexistent 2>/dev/null; then echo "FAIL missing file accepted"; failed=$((failed + 1)); else echo "ok   missing file refused"; fi
[ $failed -eq 0 ] && echo "all tests passed" || { echo "$failed failed"; exit 1; }
