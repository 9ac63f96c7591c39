#!/usr/bin/env bash
# A misbehaving registry (tests/integration/fakereg.py): cross-origin redirects get no
# credentials, insecure redirects are refused, 503s are retried, a huge Retry-After fails
# fast, a wrong blob is rejected and kept out of the store, a cut transfer is resumed, an
# oversized manifest is refused, and a Bearer token is fetched once with Basic credentials.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"
fakereg="$(dirname "${KCI_TEST_LIB:-$0}")/fakereg.py"
work=$(mktemp -d)
pids=()
stop_servers() {
	local p
	for p in ${pids[@]+"${pids[@]}"}; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=()
}
trap 'rc=$?; stop_servers; rm -rf "$work"; (exit $rc); finish' EXIT

# start_server NAME SCENARIO [ARGS...]: sets PORT; the log is $work/NAME.log.
start_server() {
	local name=$1 scenario=$2
	shift 2
	python3 "$fakereg" --scenario "$scenario" --port-file "$work/$name.port" \
		--log "$work/$name.log" --seed "$name" "$@" 2>"$work/$name.err" &
	pids+=($!)
	for _ in $(seq 1 400); do
		if [ -s "$work/$name.port" ]; then
			PORT=$(cat "$work/$name.port")
			return 0
		fi
		sleep 0.05
	done
	fail "fake registry $name did not start: $(cat "$work/$name.err")"
	return 1
}

# 1. Basic auth, blobs redirected to another origin: credentials stay behind.
start_server blobstore blobstore --seed cross
store_port=$PORT
start_server cross redirect-cross-origin --seed cross --user builder --password s3cret \
	--blobstore "http://127.0.0.1:$store_port"
export DOCKER_CONFIG="$work/docker"
mkdir -p "$DOCKER_CONFIG"
echo '{"auths":{"127.0.0.1:'"$PORT"'":{"auth":"'"$(printf 'builder:s3cret' | base64)"'"}}}' \
	>"$DOCKER_CONFIG/config.json"
run_kci pull "127.0.0.1:$PORT/test/fake:1"
expect_eq "cross-origin redirect: status" 0 "$status"
[ "$status" -eq 0 ] || echo "stderr: $err"
expect_match "cross-origin redirect: registry saw credentials" "/blobs/sha256:.* auth=yes status=307" \
	"$(cat "$work/cross.log")"
expect_match "cross-origin redirect: blobstore served the blobs" "GET /storage/sha256:.* status=200" \
	"$(cat "$work/blobstore.log")"
if grep -q "auth=yes" "$work/blobstore.log"; then
	fail "cross-origin redirect: credentials sent to the blobstore: $(cat "$work/blobstore.log")"
else
	ok "cross-origin redirect: no Authorization at the blobstore"
fi
stop_servers
unset DOCKER_CONFIG

# 2. A redirect to plain HTTP on a non-loopback host is refused.
start_server insecure redirect-insecure
run_kci pull "127.0.0.1:$PORT/test/fake:1"
expect_eq "insecure redirect: status" 125 "$status"
expect_match "insecure redirect: refused" "refusing http://example.invalid/blob.*plain HTTP" "$err"
echo "insecure message: $err"
stop_servers

# 3. Two 503s for the manifest, then success.
start_server flaky flaky
run_kci pull "127.0.0.1:$PORT/test/fake:1"
expect_eq "flaky: status" 0 "$status"
[ "$status" -eq 0 ] || echo "stderr: $err"
expect_eq "flaky: manifest requests (503, 503, 200)" "503 503 200" \
	"$(grep -E '^GET /v2/test/fake/manifests/1 ' "$work/flaky.log" | sed 's/.*status=\([0-9]*\).*/\1/' | xargs)"
stop_servers

# 4. 429 with Retry-After: 3600: fail at once, saying why.
start_server ratelimit retry-after-huge
t0=$(date +%s)
run_kci pull "127.0.0.1:$PORT/test/fake:1"
elapsed=$(($(date +%s) - t0))
expect_eq "retry-after huge: status" 125 "$status"
expect_match "retry-after huge: message" "429|Too Many Requests|[Rr]etry.[Aa]fter" "$err"
if [ "$elapsed" -lt 15 ]; then ok "retry-after huge: gave up in ${elapsed}s"; else fail "retry-after huge: took ${elapsed}s"; fi
echo "retry-after message: $err"
stop_servers

# 5. The layer's bytes do not match its digest: rejected and not stored.
start_server wrong wrong-blob
layer=$(python3 -B -c 'import sys; sys.path.insert(0, sys.argv[1]); import fakereg; print(fakereg.build_image("wrong")[2])' \
	"$(dirname "$fakereg")")
run_kci pull "127.0.0.1:$PORT/test/fake:1"
expect_eq "wrong blob: status" 125 "$status"
expect_match "wrong blob: names the digest" "${layer}.*digest mismatch|digest mismatch.*${layer}" "$err"
if [ -e "$KCI_HOME/store/blobs/sha256/${layer#sha256:}" ]; then fail "wrong blob in the store"; else ok "wrong blob not stored"; fi
run_kci images --verify
expect_eq "wrong blob: store verifies" 0 "$status"
stop_servers

# 6. The first layer GET is cut off halfway; the retry (with or without Range) completes it.
start_server cut truncated-then-ok
run_kci pull "127.0.0.1:$PORT/test/fake:1"
expect_eq "truncated transfer: status" 0 "$status"
[ "$status" -eq 0 ] || echo "stderr: $err"
expect_match "truncated transfer: the cut happened" "truncated-at=" "$(cat "$work/cut.log")"
echo "truncated transfer, layer requests: $(grep '/blobs/' "$work/cut.log" | tail -n 2 | xargs)"
run_kci images --verify
expect_eq "truncated transfer: store verifies" 0 "$status"
stop_servers

# 7. A 5 MiB manifest: refused for its size.
start_server huge huge-manifest
run_kci pull "127.0.0.1:$PORT/test/fake:1"
expect_eq "huge manifest: status" 125 "$status"
expect_match "huge manifest: message about size" "larger than [0-9]+ bytes|too large" "$err"
echo "huge manifest message: $err"
stop_servers

# 7b. Layers declared at 960 GiB in all: refused before any blob is asked for.
start_server declared huge-declared
run_kci pull "127.0.0.1:$PORT/test/fake:1"
expect_eq "declared beyond the free space: status" 125 "$status"
expect_match "declared beyond the free space: says so" \
	'its layers add up to 983040 MiB, more than the cap of 16384 MiB per image' "$err"
if grep -q ' /v2/test/fake/blobs/' "$work/declared.log"; then
	fail "a blob was requested: $(grep /blobs/ "$work/declared.log")"
else
	ok "declared beyond the free space: no blob requested"
fi
run_kci images --verify
expect_eq "declared beyond the free space: store verifies" 0 "$status"
# Within the cap (raised), the store's free space refuses it.
KCI_IMAGE_MAX=2048G run_kci pull "127.0.0.1:$PORT/test/fake:1"
expect_match "beyond the free space, cap raised: says so" \
	'its layers add up to 983040 MiB, more than the [0-9]+ MiB the store .* has free' "$err"
stop_servers

# 8. Bearer tokens: the challenge's realm gets the credentials, the token serves every request.
start_server token token --user builder --password s3cret
export DOCKER_CONFIG="$work/docker"
echo '{"auths":{"127.0.0.1:'"$PORT"'":{"auth":"'"$(printf 'builder:s3cret' | base64)"'"}}}' \
	>"$DOCKER_CONFIG/config.json"
run_kci pull "127.0.0.1:$PORT/test/fake:1"
expect_eq "token: status" 0 "$status"
[ "$status" -eq 0 ] || echo "stderr: $err"
expect_eq "token: one token for the whole pull, bought with credentials" \
	"GET /token?service=fakereg&scope=repository%3Atest%2Ffake%3Apull auth=yes status=200" \
	"$(grep '^GET /token' "$work/token.log")"
expect_eq "token: every blob fetched with it" "2" \
	"$(grep -c '^GET /v2/test/fake/blobs/.* auth=yes status=200' "$work/token.log")"
stop_servers
unset DOCKER_CONFIG
