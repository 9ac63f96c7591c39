#!/usr/bin/env bash
# kci pull on a terminal: one progress line per blob, redrawn at most ten times a second
# however fast the transfer (it was redrawn for every chunk: thousands of times), and a line
# for the root-disk build that follows, which used to be silent.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"
. "$(dirname "$KCI_TEST_LIB")/registry.sh"
work=$(mktemp -d)
trap 'rc=$?; stop_registry; rm -rf "$work"; (exit $rc); finish' EXIT
start_registry

# 32 MiB of incompressible data: thousands of chunks on the way in.
mkimage "$work/big" '{"tag":"1",
 "layers":[{"compression":"none","entries":[{"name":"blob","random_bytes":33554432}]}]}' >/dev/null
push "$work/big" 1 test/big:1

# script(1) gives kci a terminal, as a person's would be.
start=$(date +%s%N)
script -qec "\"$KCI\" pull $REG/test/big:1" "$work/typescript" >/dev/null
status=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "pull on a terminal succeeds" 0 "$status"
shown=$(tr "\r" "\n" <"$work/typescript" | sed "s/\x1b\[K//g")
# Every redraw starts with \r, erases the line and names the blob.
redraws=$(grep -o $'\r\e\[Ksha256:' "$work/typescript" | wc -l)
limit=$((elapsed_ms / 100 + 8))
if [ "$redraws" -ge 1 ] && [ "$redraws" -le "$limit" ]; then
	ok "progress redrawn $redraws times in ${elapsed_ms} ms (at most $limit)"
else
	fail "progress redrawn $redraws times in ${elapsed_ms} ms (at most $limit allowed)"
fi
expect_match "each blob ends with its full size" '^sha256:[0-9a-f]{12}  33\.[0-9]MB / 33\.[0-9]MB' "$shown"
expect_match "the root-disk build is announced" "^unpacking $REG/test/big:1 into its root disk\.\.\.$" "$shown"

# Not on a terminal: no progress at all, only the result.
run_kci pull "$REG/test/big:1"
expect_eq "a second pull succeeds" 0 "$status"
expect_eq "no progress when stderr is not a terminal" "" "$err"
