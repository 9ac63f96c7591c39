# Shared setup for integration tests: a private KCI_HOME, and after each test a check that
# no QEMU of ours survived and the runtime dir is empty. Source it; needs $KCI.
set -euo pipefail
: "${KCI:?KCI must point at the kci binary}"
KCI_HOME=$(mktemp -d "${TMPDIR:-/tmp}/kci-test.XXXXXX")
export KCI_HOME
TEST_NAME=$(basename "$0")
failures=0

fail() {
	echo "FAIL: $TEST_NAME: $*" >&2
	# What kci said last, so a failure in CI can be understood from its log alone.
	if [ -n "${err:-}" ]; then
		echo "  last kci stderr: $(head -c 2000 <<<"$err")" >&2
	fi
	failures=$((failures + 1))
}

ok() { echo "ok: $*"; }

# Our QEMU processes carry $KCI_HOME in their command line (the scratch disk path).
assert_clean() {
	local left
	left=$(pgrep -f "qemu-system.*$KCI_HOME" || true)
	[ -z "$left" ] || fail "QEMU processes left behind: $left"
	if [ -d "$KCI_HOME/run" ] && [ -n "$(ls -A "$KCI_HOME/run")" ]; then
		fail "runtime dir not empty: $(ls -A "$KCI_HOME/run")"
	fi
	if [ -d "$KCI_HOME/cache" ] && ls "$KCI_HOME/cache" | grep -q '\.tmp-'; then
		fail "temporary files left in the cache: $(ls "$KCI_HOME/cache")"
	fi
	if [ -d "$KCI_HOME/cache/templates" ] && ls "$KCI_HOME/cache/templates" | grep -q '\.tmp-'; then
		fail "half-made VM templates left: $(ls "$KCI_HOME/cache/templates")"
	fi
}

finish() {
	local rc=$?
	assert_clean
	pkill -KILL -f "qemu-system.*$KCI_HOME" 2>/dev/null || true
	rm -rf "$KCI_HOME"
	if [ $rc -ne 0 ] || [ $failures -ne 0 ]; then
		echo "$TEST_NAME: FAILED ($failures failures, exit $rc)" >&2
		exit 1
	fi
	echo "$TEST_NAME: passed"
}
trap finish EXIT

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	if [ "$2" == "$3" ]; then ok "$1"; else fail "$1: expected '$2', got '$3'"; fi
}

# expect_match WHAT REGEX TEXT
expect_match() {
	if grep -qE -- "$2" <<<"$3"; then ok "$1"; else fail "$1: '$3' does not match /$2/"; fi
}

# Runs kci, capturing stdout/stderr into $out/$err and the status into $status.
run_kci() {
	local o e
	o=$(mktemp) e=$(mktemp)
	set +e
	"$KCI" "$@" >"$o" 2>"$e"
	status=$?
	set -e
	out=$(cat "$o") err=$(cat "$e")
	rm -f "$o" "$e"
}

# new_repo DIR: an empty git repository with an identity, for kci run tests.
new_repo() {
	mkdir -p "$1"
	git -C "$1" init -q
	git -C "$1" config user.name "kci test"
	git -C "$1" config user.email "test@kci.invalid"
}

# commit_all DIR MESSAGE
commit_all() {
	git -C "$1" add -A
	git -C "$1" commit -qm "$2"
}

# Field of the JSON event stream: json_events FILE JQ-LIKE-PYTHON-EXPR (see tests using it).
json_field() {
	python3 -c 'import json,sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if eval(sys.argv[2]): print(eval(sys.argv[3]))' "$@"
}
