#!/usr/bin/env bash
# The VM dying under kci is a clear error, never a hang; kci dying takes its VM with it.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

# Starts `kci exec` in the background, waits until the guest printed "ready"; sets $pid $o.
start_ready() {
	o=$(mktemp)
	"$KCI" exec "$@" >"$o" 2>&1 &
	pid=$!
	for _ in $(seq 1 120); do grep -q ready "$o" && return 0; sleep 0.5; done
	fail "guest never printed ready: $(cat "$o")"
}
qemu_pid() { pgrep -f "qemu-system.*$KCI_HOME" | head -n1; }

# QEMU killed from outside: exit 125 naming the signal.
start_ready -- sh -c 'echo ready; sleep 100'
kill -KILL "$(qemu_pid)"
status=0
wait "$pid" || status=$?
expect_eq "QEMU killed: status" 125 "$status"
expect_match "QEMU killed: message" "^kci: QEMU was killed by signal 9" "$(grep '^kci:' "$o")"
rm -f "$o"
assert_clean

# A frozen guest (QEMU stopped): the agent's silence is detected, not waited on forever.
start_ready -- sh -c 'echo ready; sleep 100'
kill -STOP "$(qemu_pid)"
start=$(date +%s)
status=0
wait "$pid" || status=$?
elapsed=$(( $(date +%s) - start ))
expect_eq "frozen guest: status" 125 "$status"
expect_match "frozen guest: message" "agent stopped responding" "$(cat "$o")"
if [ "$elapsed" -le 45 ]; then ok "frozen guest detected in ${elapsed}s"; else fail "took ${elapsed}s"; fi
rm -f "$o"
assert_clean

# kci itself SIGKILLed: QEMU dies with it, and the next kci sweeps the runtime dir.
start_ready -- sh -c 'echo ready; sleep 100'
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
for _ in $(seq 1 20); do [ -z "$(qemu_pid)" ] && break; sleep 0.25; done
expect_eq "QEMU gone after kci SIGKILL" "" "$(qemu_pid)"
run_kci exec -- true
expect_eq "next run works" 0 "$status"
rm -f "$o"
