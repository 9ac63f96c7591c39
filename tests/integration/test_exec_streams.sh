#!/usr/bin/env bash
# stdout and stderr stay separate and ordered; stdin is forwarded; 10 MiB arrive byte-exact.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

run_kci exec -- sh -c 'i=1; while [ $i -le 300 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done'
expect_eq "interleaved exit" 0 "$status"
expect_eq "stdout in order" "$(seq -f 'out%g' 1 300)" "$out"
expect_eq "stderr in order" "$(seq -f 'err%g' 1 300)" "$err"

status=0
got=$(printf 'hello' | "$KCI" exec -- sh -c 'cat | wc -c') || status=$?
expect_eq "stdin forwarded" "5" "$(echo $got)"
expect_eq "stdin run exit" 0 "$status"

# The guest writes 10 MiB of random bytes and reports their digest on stderr.
o=$(mktemp)
status=0
"$KCI" exec -- sh -c 'head -c 10485760 /dev/urandom > /tmp/blob && sha256sum /tmp/blob >&2 && cat /tmp/blob' >"$o" 2>"$o.err" || status=$?
expect_eq "bulk exit" 0 "$status"
expect_eq "bulk size" 10485760 "$(stat -c %s "$o")"
expect_eq "bulk digest" "$(awk '{print $1}' "$o.err")" "$(sha256sum "$o" | awk '{print $1}')"
rm -f "$o" "$o.err"
