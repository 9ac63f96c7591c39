#!/usr/bin/env bash
# kci run: four jobs, two independent ones concurrently, the dependent of a failing one
# skipped, the right summary and exit status; the JSON event stream; --list; --job.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

repo=$KCI_HOME/repo
new_repo "$repo"
cat >"$repo/.kci.yml" <<'YML'
env:
  GREETING: hello
jobs:
  one:
    steps:
      - name: wait a little
        run: sleep 3; echo "one says $GREETING from $PWD"
  two:
    steps:
      - name: fails
        run: sleep 3; echo "two is failing" >&2; exit 3
      - name: never runs
        run: echo "this must not run"
  both:
    needs: [one, two]
    run: echo "both ran"
  solo:
    env: {GREETING: hi}
    steps:
      - run: "false"
        allow_failure: true
      - run: echo "solo says $GREETING"
YML
commit_all "$repo" "pipeline"

# Text mode: live prefixed lines and a summary; exit 1 because a job failed.
run_kci run "$repo" --jobs 2
expect_eq "a failed job makes the run exit 1" 1 "$status"
expect_match "job output is prefixed with the job" '^one +\| one says hello from /workspace$' "$out"
expect_match "job env overrides the top-level env" '^solo +\| solo says hi$' "$out"
expect_match "stderr lines are shown" '^two +\| two is failing$' "$out"
expect_match "a step's start is shown" '^two +\| ==> fails$' "$out"
expect_match "a step's end and duration are shown" '^one +\| <== wait a little passed in [0-9.]+s$' "$out"
expect_match "the failing step's status is shown" '^two +\| <== fails failed \(exit 3\)' "$out"
if grep -q "this must not run" <<<"$out"; then fail "a step after a failing one ran"; else ok "steps after a failure do not run"; fi
if grep -q "both ran" <<<"$out"; then fail "the dependent of a failed job ran"; else ok "dependent not run"; fi
expect_match "summary: one passed" '^one +passed +[0-9.]+s' "$out"
expect_match "summary: two failed, with why and its log" \
	"^two +failed +[0-9.]+s +step 'fails' exited with 3; log: .*/\.kci/logs/two\.log$" "$out"
expect_match "summary: both skipped, with why" '^both +skipped +- +needs two, which did not pass' "$out"
expect_match "summary: solo passed despite an allowed failure" '^solo +passed' "$out"
expect_match "summary counts" '^2 passed, 1 failed, 1 skipped$' "$out"
[ -s "$repo/.kci/logs/two.log" ] && ok "a log file per job" || fail "no log file for two"
expect_match "the log holds the job's output" 'two is failing' "$(cat "$repo/.kci/logs/two.log")"

# JSON mode: the independent jobs overlapped in time.
run_kci run "$repo" --jobs 2 --json
expect_eq "json run exits 1" 1 "$status"
ev=$KCI_HOME/events.json
printf '%s\n' "$out" >"$ev"
python3 - "$ev" <<'PY' && ok "every line is a JSON object; one and two ran concurrently" || fail "json stream or concurrency"
import json, sys
start, end = {}, {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "job_start": start[e["job"]] = e["time_ms"]
    if e["event"] == "job_end": end[e["job"]] = e["time_ms"]
    if e["event"] == "summary":
        res = {j["job"]: j["result"] for j in e["jobs"]}
        assert res == {"one": "passed", "two": "failed", "both": "skipped", "solo": "passed"}, res
        assert e["passed"] is False
assert start["one"] < end["two"] and start["two"] < end["one"], (start, end)
PY
expect_eq "log lines carry job, step and stream" "two is failing" \
	"$(json_field "$ev" 'e["event"]=="log" and e["stream"]=="stderr"' 'e["line"]')"

# --job selects a job and what it needs; --list runs nothing.
run_kci run "$repo" --job both --list
expect_eq "--list exits 0" 0 "$status"
expect_match "--list shows the needs" '^both +\(busybox base\) +1 +one, two$' "$out"
if grep -q '^solo' <<<"$out"; then fail "--job both listed solo"; else ok "--job selects"; fi
run_kci run "$repo" --job solo
expect_eq "a passing selection exits 0" 0 "$status"
expect_match "only solo ran" '^1 passed$' "$out"
# A matrix job's combination by the name of its log file.
cp "$repo/.kci.yml" "$KCI_HOME/pipeline.saved"
printf '  build:\n    matrix: {CC: [gcc, clang]}\n    run: echo "$CC"\n' >>"$repo/.kci.yml"
run_kci run "$repo" --job build_CC-gcc --list
expect_eq "--job takes a log file name" 0 "$status"
expect_match "and selects that combination" '^build \(CC=gcc\) ' "$out"
if grep -q 'CC=clang' <<<"$out"; then fail "--job build_CC-gcc selected clang"; else ok "only that one"; fi
cp "$KCI_HOME/pipeline.saved" "$repo/.kci.yml"
run_kci run "$repo" --job sol
expect_eq "unknown --job exits 125" 125 "$status"
expect_match "unknown --job suggests" 'no job named "sol".*solo' "$err"
