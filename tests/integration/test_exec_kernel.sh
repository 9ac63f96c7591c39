#!/usr/bin/env bash
# The command runs under the guest kernel, not the host's; a guest panic is a clear error.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

run_kci exec -- uname -r
expect_eq "uname exit" 0 "$status"
expect_eq "guest kernel is the packaged one" "$(cat "$KCI_GUEST_DIR/release")" "$out"
if [ "$out" != "$(uname -r)" ]; then ok "guest kernel differs from host"; else fail "guest reports the host kernel"; fi

start=$(date +%s)
run_kci exec -- sh -c 'echo c > /proc/sysrq-trigger; sleep 100'
elapsed=$(( $(date +%s) - start ))
expect_eq "panic exit status" 125 "$status"
expect_match "panic one-line error" "^kci: guest kernel panic: Kernel panic - not syncing" "$(head -n1 <<<"$err")"
expect_match "panic shows kernel lines" "sysrq" "$err"
if [ "$elapsed" -le 60 ]; then ok "panic reported in ${elapsed}s"; else fail "panic took ${elapsed}s"; fi
