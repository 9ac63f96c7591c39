#!/usr/bin/env bash
# A guest that floods output cannot grow kci's memory while the reader is slow,
# and SIGTERM tears the VM down.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

fifo=$(mktemp -u)
mkfifo "$fifo"
"$KCI" exec -- sh -c 'echo ready; cat /dev/zero' >"$fifo" 2>/dev/null &
pid=$!
# Read the first line, then stop reading: the guest keeps writing into a full pipe.
exec 3<"$fifo"
IFS= read -r line <&3
expect_eq "flood started" ready "$line"
head -c 20000000 <&3 >/dev/null # 20 MB flow through first
sleep 5                         # now nobody reads; kci must block, not buffer
rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "kci peak RSS: ${rss} kB"
if [ "$rss" -lt 131072 ]; then ok "memory bounded (${rss} kB)"; else fail "kci peak RSS ${rss} kB"; fi
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
exec 3<&-
rm -f "$fifo"
expect_eq "SIGTERM exit status" 143 "$status"
