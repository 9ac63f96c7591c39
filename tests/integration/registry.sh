# A real registry for integration tests: Debian's docker-registry (CNCF distribution) on
# 127.0.0.1, with its storage in a temp dir. Source after lib.sh.
#   start_registry [USER PASS]   sets REG (host:port) and REG_DATA; basic auth when given
#   push LAYOUT TAG NAME:TAG     pushes an OCI layout with skopeo (all platforms)
# And tests/integration/fakereg.py, for what a real registry cannot be made to do on cue:
#   start_fakereg SEED [ARGS...] sets FAKE (host:port) and FAKE_LOG; ARGS go to fakereg.py

start_registry() {
	local dir port
	dir=$(mktemp -d)
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	{
		echo "version: 0.1"
		echo "log: {level: error, accesslog: {disabled: true}}"
		echo "storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}"
		echo "http: {addr: 127.0.0.1:$port}"
		if [ $# -eq 2 ]; then
			htpasswd -Bbn "$1" "$2" >"$dir/htpasswd"
			echo "auth: {htpasswd: {realm: kci-test, path: $dir/htpasswd}}"
		fi
	} >"$dir/config.yml"
	docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
	REG_PID=$!
	REG="127.0.0.1:$port"
	REG_DATA="$dir/data"
	REG_DIR=$dir
	REG_CREDS=${1:+$1:$2}
	for _ in $(seq 1 100); do
		curl -s -o /dev/null "http://$REG/v2/" && return 0
		sleep 0.1
	done
	fail "registry did not start: $(cat "$dir/log")"
	return 1
}

stop_registry() {
	if [ -n "${REG_PID:-}" ]; then
		kill "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
	fi
	if [ -n "${REG_DIR:-}" ]; then rm -rf "$REG_DIR"; fi
	REG_PID=
}

start_fakereg() {
	local seed=$1 dir
	shift
	dir=$(mktemp -d)
	python3 "$(dirname "$KCI_TEST_LIB")/fakereg.py" --port-file "$dir/port" --log "$dir/log" \
		--seed "$seed" "$@" 2>"$dir/err" &
	FAKE_PID=$!
	FAKE_DIR=$dir
	FAKE_LOG=$dir/log
	for _ in $(seq 1 400); do
		if [ -s "$dir/port" ]; then
			FAKE="127.0.0.1:$(cat "$dir/port")"
			return 0
		fi
		sleep 0.05
	done
	fail "fake registry did not start: $(cat "$dir/err")"
	return 1
}

stop_fakereg() {
	if [ -n "${FAKE_PID:-}" ]; then
		kill "$FAKE_PID" 2>/dev/null || true
		wait "$FAKE_PID" 2>/dev/null || true
	fi
	if [ -n "${FAKE_DIR:-}" ]; then rm -rf "$FAKE_DIR"; fi
	FAKE_PID= FAKE_DIR=
}

push() {
	skopeo copy --quiet --all --dest-tls-verify=false ${REG_CREDS:+--dest-creds "$REG_CREDS"} \
		"oci:$1:$2" "docker://$REG/$3"
}

# mkimage OUT JSON: builds an OCI layout with tests/integration/mkimage.py; prints its digest.
mkimage() {
	python3 "$(dirname "$KCI_TEST_LIB")/mkimage.py" "$1" <(echo "$2")
}
