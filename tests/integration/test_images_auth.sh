#!/usr/bin/env bash
# A registry requiring authentication: works with credentials from docker's config.json,
# fails with a clear 401 without them, and refuses credential helpers clearly.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"
. "$(dirname "$KCI_TEST_LIB")/registry.sh"
work=$(mktemp -d)
trap 'rc=$?; stop_registry; rm -rf "$work"; (exit $rc); finish' EXIT
start_registry builder s3cret
mkimage "$work/img" '{"tag":"1","layers":[{"entries":[{"name":"hello","data":"authorised"}]}]}' >/dev/null
push "$work/img" 1 team/private:1
export DOCKER_CONFIG="$work/docker"
mkdir -p "$DOCKER_CONFIG"

run_kci pull "$REG/team/private:1"
expect_eq "no credentials: status" 125 "$status"
expect_match "no credentials: clear 401" "401|[Uu]nauthorized|authentication required" "$err"
echo "no-credentials message: $err"

echo '{"auths":{"'"$REG"'":{"auth":"'"$(printf 'builder:wrong' | base64)"'"}}}' >"$DOCKER_CONFIG/config.json"
run_kci pull "$REG/team/private:1"
expect_eq "wrong password: status" 125 "$status"
expect_match "wrong password: 401" "401|[Uu]nauthorized" "$err"

echo '{"auths":{"'"$REG"'":{"auth":"'"$(printf 'builder:s3cret' | base64)"'"}}}' >"$DOCKER_CONFIG/config.json"
run_kci pull "$REG/team/private:1"
expect_eq "with credentials: status" 0 "$status"

echo '{"credHelpers":{"'"$REG"'":"secretservice"}}' >"$DOCKER_CONFIG/config.json"
run_kci rmi "$REG/team/private:1"
run_kci pull "$REG/team/private:1"
expect_eq "credential helper: status" 125 "$status"
expect_match "credential helper refused clearly" "credential helper|secretservice" "$err"
