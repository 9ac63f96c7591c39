#!/usr/bin/env bash
# Ctrl-C during kci run stops everything promptly and tears every VM down: no QEMU, no
# temp files, no half-written artifacts. So does a stdout whose reader went away. kci
# killed outright takes QEMU with it, and the next run sweeps what was left.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

repo=$KCI_HOME/repo
new_repo "$repo"
cat >"$repo/.kci.yml" <<'YML'
jobs:
  a:
    run: echo ready-a; sleep 100
    artifacts: [.]
  b:
    run: echo ready-b; sleep 100
  later:
    needs: [a]
    run: echo "must not run"
YML
commit_all "$repo" "slow pipeline"

# start_run: kci run in the background; waits until both jobs print.
start_run() {
	o=$(mktemp)
	"$KCI" run "$repo" --jobs 2 >"$o" 2>&1 &
	pid=$!
	# The guests' own output, not the step lines that name the command.
	for _ in $(seq 1 120); do
		grep -q '^a *| ready-a$' "$o" && grep -q '^b *| ready-b$' "$o" && break
		sleep 0.5
	done
	expect_match "both jobs started" '^b +\| ready-b$' "$(cat "$o")"
}

start_run
start=$(date +%s)
kill -INT "$pid"
status=0
wait "$pid" || status=$?
elapsed=$(($(date +%s) - start))
expect_eq "Ctrl-C exits 130" 130 "$status"
[ "$elapsed" -le 10 ] && ok "stopped in ${elapsed}s" || fail "stopping took ${elapsed}s"
text=$(cat "$o")
expect_match "Ctrl-C is acknowledged" 'stopping: tearing down every VM' "$text"
expect_match "running jobs are canceled" '^a +canceled' "$text"
expect_match "and say where they stopped" "^a +\| job canceled: stopped during step 'echo ready-a; sleep 100'$" "$text"
expect_match "pending jobs are canceled" '^later +canceled' "$text"
if grep -q "must not run" <<<"$text"; then fail "a job started after Ctrl-C"; else ok "nothing started after Ctrl-C"; fi
[ ! -d "$repo/.kci/artifacts/a" ] && ok "no artifacts from a canceled job" || fail "artifacts of a canceled job"
if ls -a "$repo/.kci/artifacts" 2>/dev/null | grep -q tmp; then fail "temp artifact dirs left"; else ok "no temp artifact dirs"; fi
rm -f "$o"
assert_clean

# stdout's reader goes away (`kci run | head`) while both jobs sit silent in their VMs: the
# run is canceled like Ctrl-C, not run to the end for nobody, and exits 141 (SIGPIPE's).
for mode in text json; do
	e=$(mktemp)
	flag=$([ "$mode" = json ] && echo --json || true)
	set +e
	# The reader leaves once both jobs have printed: the VMs are up and busy then.
	"$KCI" run "$repo" --jobs 2 $flag 2>"$e" | {
		a='' b=''
		while IFS= read -r line; do
			case "$line" in
			*'| ready-a' | *'"line":"ready-a"'*) a=1 ;;
			*'| ready-b' | *'"line":"ready-b"'*) b=1 ;;
			esac
			[ -n "$a" ] && [ -n "$b" ] && break
		done
	}
	status=${PIPESTATUS[0]}
	set -e
	expect_eq "$mode: a closed stdout stops the run with 141" 141 "$status"
	expect_match "$mode: and says why" 'stdout was closed' "$(cat "$e")"
	[ ! -d "$repo/.kci/artifacts/a" ] && ok "$mode: no artifacts from the stopped run" ||
		fail "$mode: artifacts of a stopped run"
	rm -f "$e"
	assert_clean
done

# kci killed outright (what a second Ctrl-C does, with _exit): QEMU dies with it (it is
# kci's child with PR_SET_PDEATHSIG), and the next run sweeps the dead run's dirs.
start_run
kill -KILL "$pid"
wait "$pid" || true
rm -f "$o"
for _ in $(seq 1 20); do pgrep -f "qemu-system.*$KCI_HOME" >/dev/null || break; sleep 0.5; done
left=$(pgrep -f "qemu-system.*$KCI_HOME" || true)
[ -z "$left" ] && ok "QEMU died with kci" || fail "QEMU survived kci: $left"
# The next run sweeps the killed run's runtime dirs.
printf 'jobs:\n  quick:\n    run: "true"\n' >"$repo/.kci.yml"
run_kci run "$repo"
expect_eq "the next run works" 0 "$status"
