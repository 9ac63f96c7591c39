#!/usr/bin/env bash
# Every resource a job can take is capped: a job without `timeout:` ends at the run's default;
# a job that floods its output is failed at its output budget, and kci's own stdout stays
# within it; VMs whose memory or disk together would exceed the host's wait for each other
# instead of over-committing, and one that alone cannot fit is refused; `cpus` beyond the
# host's is cut to the host's.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

repo=$KCI_HOME/repo
new_repo "$repo"
host_mib=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
# Each alone fits (under 3/4 of the host), both together do not.
big=$((host_mib * 2 / 5))
# The same for disk: the VMs' writable disks are sparse, but a guest may fill them.
mkdir -p "$KCI_HOME/run"
free_mib=$(df --output=avail -BM "$KCI_HOME/run" | tail -n1 | tr -dc 0-9)
wide=$((free_mib * 3 / 5))
cat >"$repo/.kci.yml" <<YML
jobs:
  forever:
    run: echo started; sleep 600
  flood:
    run: yes "kci-flood-\$(printf '%0200d' 0)" | head -c 100000000; echo survived
  big-a:
    memory: ${big}M
    run: echo a-running
  big-b:
    memory: ${big}M
    run: echo b-running
  wide-a:
    disk: ${wide}M
    run: echo a-running
  wide-b:
    disk: ${wide}M
    run: echo b-running
  too-wide:
    disk: $((free_mib * 3))M
    run: echo never
  greedy:
    cpus: 64
    run: echo "cpus \$(grep -c ^processor /proc/cpuinfo)"
YML
commit_all "$repo" "limits"

# expect_one_after_other WHAT JOB1 JOB2: in the JSON events in $out, the later of the two
# jobs started only once the earlier had ended.
expect_one_after_other() {
	printf '%s\n' "$out" >"$KCI_HOME/events.json"
	if python3 - "$KCI_HOME/events.json" "$2" "$3" <<'PY'; then
import json, sys
start, end = {}, {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "job_start": start[e["job"]] = e["time_ms"]
    if e["event"] == "job_end": end[e["job"]] = e["time_ms"]
a, b = sorted(sys.argv[2:4], key=lambda j: start[j])
sys.exit(0 if start[b] >= end[a] else 1)
PY
		ok "$1 ran one after the other"
	else
		fail "$1 overlapped: over-commit"
	fi
}

# A job with no timeout of its own ends at the run's default (1h unless --timeout says).
start=$(date +%s)
run_kci run "$repo" --job forever --timeout 3s
expect_eq "a job past the default timeout fails the run" 1 "$status"
expect_match "it timed out at the default" '^forever +timeout +[0-9.]+s +timed out after 3\.0s' "$out"
[ $(($(date +%s) - start)) -lt 60 ] && ok "it did not run on" || fail "the default timeout did not stop it"

# The flood: failed at the budget with the reason; kci's output stays near the budget.
run_kci run "$repo" --job flood --max-output 2M
expect_eq "a flooding job fails the run" 1 "$status"
expect_match "failed at its output budget, with why" \
	"^flood +failed .*printed more than 2 MiB, the job's output budget" "$out"
if grep -qE '^flood +\| survived$' <<<"$out"; then fail "the flood went on after the budget"; else ok "stopped at the budget"; fi
bytes=$(printf '%s' "$out" | wc -c)
# 2 MiB of 211-byte lines, each with a short prefix, plus kci's own lines.
[ "$bytes" -lt $((3 << 20)) ] && ok "kci printed $bytes bytes for a 2 MiB budget" ||
	fail "kci printed $bytes bytes for a 2 MiB budget"
log=$(wc -c <"$repo/.kci/logs/flood.log")
[ "$log" -lt $((3 << 20)) ] && ok "the log stays within the budget ($log bytes)" ||
	fail "the log holds $log bytes"

# Two VMs that together need more than the host has: the second waits for the first.
run_kci run "$repo" --job big-a --job big-b --jobs 2 --json
expect_eq "both big jobs pass" 0 "$status"
expect_one_after_other "the big jobs (memory)" big-a big-b

# Disk the same way: two VMs that could together fill more than is free run one at a time,
# and one that could alone is refused.
run_kci run "$repo" --job wide-a --job wide-b --jobs 2 --json
expect_eq "both wide jobs pass" 0 "$status"
expect_one_after_other "the wide jobs (disk)" wide-a wide-b
run_kci run "$repo" --job too-wide
expect_eq "a job whose disk cannot fit fails the run" 1 "$status"
expect_match "it errors with why" '^too-wide +error .*more than the [0-9]+ MiB free' "$out"

# cpus beyond the host's: cut to the host's, and said.
run_kci run "$repo" --job greedy
expect_eq "a job asking for 64 CPUs runs" 0 "$status"
expect_match "with the host's CPUs" "^greedy +\\| cpus $(nproc)$" "$out"
expect_match "and says so" "asks for 64 CPUs; this host has $(nproc)" "$out"
