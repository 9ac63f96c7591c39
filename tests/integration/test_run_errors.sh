#!/usr/bin/env bash
# kci run with malformed pipelines: each mistake gives FILE:LINE:COL and runs nothing. Also
# the CLI's own mistakes (wrong flags, no pipeline), and a job timeout.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

repo=$KCI_HOME/repo
new_repo "$repo"
cd "$repo"

# try_bad NAME REGEX: the current .kci.yml must be refused with a message matching REGEX.
try_bad() {
	run_kci run
	expect_eq "$1: exit 125" 125 "$status"
	expect_match "$1: precise error" "$2" "$err"
	expect_eq "$1: nothing ran" "" "$out"
	[ ! -d "$KCI_HOME/run" ] || [ -z "$(ls -A "$KCI_HOME/run")" ] || fail "$1: runtime dir used"
}

printf 'jobs:\n  a:\n    run: [unclosed\n' >.kci.yml
try_bad "bad YAML" '^kci: \.kci\.yml:[0-9]+:[0-9]+: '
printf 'jobs:\n  a:\n    run: "true"\n    timout: 5m\n' >.kci.yml
try_bad "unknown key" "^kci: \.kci\.yml:4:5: unknown key \"timout\".*did you mean \"timeout\""
printf 'jobs:\n  a:\n    needs: [b]\n    run: "true"\n  b:\n    needs: [a]\n    run: "true"\n' >.kci.yml
try_bad "cycle" '^kci: \.kci\.yml:[0-9]+:[0-9]+: jobs (a -> b -> a|b -> a -> b) form a cycle'
printf 'jobs:\n  a:\n    needs: [bulid]\n    run: "true"\n  build:\n    run: "true"\n' >.kci.yml
try_bad "unknown needs" '^kci: \.kci\.yml:3:13: .*"bulid".*build'
printf 'jobs:\n  a:\n    timeout: 5 minutes\n    run: "true"\n' >.kci.yml
try_bad "bad duration" '^kci: \.kci\.yml:3:14: .*duration'

rm .kci.yml
run_kci run
expect_eq "no pipeline: exit 125" 125 "$status"
expect_match "no pipeline: says so" "no \.kci\.yml in $repo" "$err"
run_kci run --lsit
expect_eq "typo in a flag: exit 125" 125 "$status"
expect_match "typo in a flag: did you mean" "did you mean '--list'" "$err"
run_kci run --jobs 0
expect_match "bad --jobs value is named" "invalid --jobs '0'" "$err"
run_kci run "$repo" extra
expect_match "a second DIR is refused" "unexpected argument 'extra'" "$err"

# A job's timeout kills its VM and marks it timed out; the run goes on and reports it.
printf 'jobs:\n  slow:\n    timeout: 4s\n    run: sleep 60\n  quick:\n    run: echo quick\n' >.kci.yml
start=$(date +%s)
run_kci run
elapsed=$(($(date +%s) - start))
expect_eq "timed out job: exit 1" 1 "$status"
expect_match "timed out job is reported" '^slow +timeout .*timed out after 4.0s' "$out"
expect_match "the other job passed" '^quick +passed' "$out"
[ "$elapsed" -lt 30 ] && ok "timeout enforced (${elapsed}s)" || fail "timeout took ${elapsed}s"

# Names from the repository reach the terminal only as text: no escape sequence of the
# file's (a matrix value, a step name) nor of the guest's (beyond colour) gets through.
cat >.kci.yml <<'YML'
jobs:
  esc:
    matrix:
      V: ["\e]0;title\a", "\u009b2J"]
    steps:
      - name: "\e[2J clear"
        run: printf 'guest \033]0;t\007 \302\233 \033[31mred\033[0m\n'
YML
run_kci run --list
if grep -q $'\e\\]' <<<"$out$err" || grep -q $'\xc2\x9b' <<<"$out$err"; then fail "--list printed a raw escape"; else ok "--list shows names as text"; fi
run_kci run
expect_eq "escape test run passes" 0 "$status"
if grep -q $'\e\\]\|\e\\[2J' <<<"$out" || grep -q $'\xc2\x9b' <<<"$out"; then fail "a raw escape reached the terminal"; else ok "no raw escapes in kci run's output"; fi
expect_match "guest colour survives" $'guest \\?\\]0;t\\? \\? \e\\[31mred' "$out"

# A job cannot ask for more memory than the host can give one VM.
printf 'jobs:\n  huge:\n    memory: 1000G\n    run: "true"\n' >.kci.yml
run_kci run
expect_eq "too much memory: the run fails" 1 "$status"
expect_match "too much memory: said plainly" '^huge +error .*asks for 1024000 MiB of memory; this host has' "$out"
