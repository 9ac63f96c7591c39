#!/usr/bin/env bash
# Bad input to the CLI gets a one-line error and exit 125, before any VM starts.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

check() { # check WHAT REGEX ARGS...
	local what=$1 re=$2
	shift 2
	run_kci "$@"
	expect_eq "$what: status" 125 "$status"
	expect_match "$what: message" "$re" "$err"
}
check "unknown option" "unknown option '--bogus'" exec --bogus -- true
check "bad timeout" "invalid --timeout '3x'" exec --timeout 3x -- true
check "bad memory" "invalid --memory '12Q'" exec --memory 12Q -- true
check "bad cpus" "invalid --cpus '0'" exec --cpus 0 -- true
check "bad accel" "invalid --accel 'fast'" exec --accel fast -- true
check "bad net mode" "none or nat" exec --net slirp -- true
check "no command" "no command given" exec
check "tty without terminal" "-t needs a terminal" exec -t -- true
check "relative workdir" "absolute path" exec -w tmp -- true
check "missing kernel" "--kernel /nonexistent: no such file" exec --kernel /nonexistent -- true
check "typo in command" "did you mean 'exec'" exce -- true
check "missing value" "needs a value" exec --timeout

run_kci run --help
expect_eq "run --help status" 0 "$status"
expect_match "run --help documents the exit codes" "130 +interrupted" "$out"
run_kci --help
expect_match "kci --help lists run" "run +run the repository's pipeline" "$out"

run_kci exec --help
expect_eq "help status" 0 "$status"
expect_match "help documents 124" "124 +--timeout expired" "$out"

run_kci doctor
expect_match "doctor names the accelerator" "accelerator" "$out"
expect_match "doctor finds the guest kernel" "\[ok\] +guest kernel" "$out"
