#!/usr/bin/env bash
# Exit statuses propagate from the guest: 0, 1, 7, 126, 127, 128+signal.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

run_kci exec -- true
expect_eq "true exits 0" 0 "$status"
run_kci exec -- false
expect_eq "false exits 1" 1 "$status"
run_kci exec -- sh -c 'echo out; echo err >&2; exit 7'
expect_eq "exit 7 propagates" 7 "$status"
expect_eq "stdout of sh" out "$out"
expect_eq "stderr of sh" err "$err"
run_kci exec -- no-such-command --flag
expect_eq "missing command exits 127" 127 "$status"
expect_match "missing command is named" "no-such-command.*not found" "$err"
run_kci exec -- /etc/passwd
expect_eq "non-executable exits 126" 126 "$status"
run_kci exec -- sh -c 'kill -9 $$'
expect_eq "SIGKILL inside exits 137" 137 "$status"
run_kci exec -w /tmp -e GREETING=hello -- sh -c 'echo "$PWD $GREETING"'
expect_eq "workdir and env reach the guest" "/tmp hello" "$out"
