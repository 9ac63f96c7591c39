#!/usr/bin/env bash
# --timeout covers the VM's whole life; SIGINT or a closed stdout tears the VM down; nothing
# is left behind.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

start=$(date +%s)
run_kci exec --timeout 3s -- sleep 100
elapsed=$(( $(date +%s) - start ))
expect_eq "timeout exit status" 124 "$status"
expect_match "timeout message" "^kci: timed out after 3\.0s" "$err"
if [ "$elapsed" -le 8 ]; then ok "timeout ended in ${elapsed}s"; else fail "timeout took ${elapsed}s"; fi
assert_clean

o=$(mktemp)
"$KCI" exec -- sh -c 'echo ready; sleep 100' >"$o" 2>&1 &
pid=$!
for _ in $(seq 1 120); do grep -q ready "$o" && break; sleep 0.5; done
expect_match "guest started" ready "$(cat "$o")"
kill -INT "$pid"
status=0
wait "$pid" || status=$?
expect_eq "SIGINT exit status" 130 "$status"
expect_match "SIGINT message" "torn down" "$(cat "$o")"
rm -f "$o"
assert_clean

# The reader of stdout goes away while the command is silent: the VM is torn down then,
# not when the command next writes, and kci exits 141 as SIGPIPE would have it.
e=$(mktemp)
set +e
"$KCI" exec -- sh -c 'echo ready; sleep 100' 2>"$e" | head -n 1 >/dev/null
status=${PIPESTATUS[0]}
set -e
expect_eq "closed stdout: exit status" 141 "$status"
expect_match "closed stdout: message" "stdout was closed" "$(cat "$e")"
rm -f "$e"
assert_clean

# A timeout that fires during boot is reported as such.
run_kci exec --timeout 200ms -- true
expect_eq "boot-time timeout status" 124 "$status"
expect_match "boot-time timeout message" "not finished booting" "$err"
