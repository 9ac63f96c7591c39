#!/usr/bin/env bash
# Images from a real registry: whiteouts and opaque dirs seen exactly in a VM, image config
# honoured, multi-arch index resolution, tampered blobs rejected, a killed pull completed.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"
. "$(dirname "$KCI_TEST_LIB")/registry.sh"
work=$(mktemp -d)
pull_pid=
trap 'rc=$?; [ -z "$pull_pid" ] || kill -9 "$pull_pid" 2>/dev/null || true; stop_fakereg
	stop_registry; rm -rf "$work"; (exit $rc); finish' EXIT
start_registry
bb="$KCI_GUEST_DIR/busybox"

# Layer 2 deletes /data/a (whiteout) and replaces /dir wholesale (opaque); zstd for layer 3.
mkimage "$work/wh" '{"tag":"1","busybox":"'"$bb"'",
 "config":{"Env":["GREETING=hi"],"WorkingDir":"/data","Cmd":["sh","-c","echo $GREETING from $PWD as $(id -u)"]},
 "layers":[
  {"entries":[{"name":"data","type":"dir"},{"name":"data/a","data":"A"},{"name":"data/b","data":"B"},
              {"name":"dir","type":"dir"},{"name":"dir/x","data":"X"},{"name":"dir/sub","type":"dir"},{"name":"dir/sub/y","data":"Y"}]},
  {"entries":[{"name":"data/.wh.a","data":""},{"name":"dir","type":"dir"},{"name":"dir/.wh..wh..opq","data":""},{"name":"dir/z","data":"Z"}]},
  {"compression":"zstd","entries":[{"name":"data/c","data":"C"}]}]}' >/dev/null
push "$work/wh" 1 test/wh:1
run_kci pull "$REG/test/wh:1"
expect_eq "pull status" 0 "$status"
expect_match "pull prints the digest" "sha256:[0-9a-f]{64}" "$out"
run_kci images
expect_match "images lists it" "^$REG/test/wh:1 +sha256:" "$(sed -n 2p <<<"$out")"
run_kci exec --image "$REG/test/wh:1" -- sh -c 'cd /; find data dir | sort; cat data/b dir/z'
expect_eq "whiteout and opaque tree" "data
data/b
data/c
dir
dir/z
BZ" "$out"
run_kci exec --image "$REG/test/wh:1"
expect_eq "Env, WorkingDir and Cmd honoured" "hi from /data as 0" "$out"
run_kci exec --image "$REG/test/wh:1" --user builder -- sh -c 'id -u; echo $HOME'
expect_eq "--user switches user and HOME" "1000
/tmp" "$out"

# Multi-arch index: linux/amd64 is chosen; an index without it fails clearly.
mkimage "$work/multi" '{"tag":"1","busybox":"'"$bb"'","platforms":[["linux","arm64"],["linux","amd64"]],
 "layers":[{"entries":[{"name":"arch","data":"amd64-image"}]}]}' >/dev/null
push "$work/multi" 1 test/multi:1
run_kci exec --image "$REG/test/multi:1" -- cat /arch
expect_eq "index resolves to amd64 (pulled on demand)" "amd64-image" "$out"
mkimage "$work/arm" '{"tag":"1","busybox":"'"$bb"'","platforms":[["linux","arm64"],["linux","s390x"]],
 "layers":[]}' >/dev/null
push "$work/arm" 1 test/arm:1
run_kci pull "$REG/test/arm:1"
expect_eq "no amd64: status" 125 "$status"
expect_match "no amd64: message" "no linux/amd64 .*linux/arm64" "$err"

# A blob tampered with on the registry's disk: rejected by digest, nothing left in the store.
mkimage "$work/tamper" '{"tag":"1","layers":[{"entries":[{"name":"f","data":"original content"}]}]}' >/dev/null
push "$work/tamper" 1 test/tamper:1
layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["layers"][0]["digest"])' \
	"$work/tamper/blobs/sha256/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$work/tamper/index.json")")
data=$(find "$REG_DATA" -path "*/blobs/sha256/*/${layer#sha256:}/data")
python3 -c 'import sys; f=open(sys.argv[1],"r+b"); b=bytearray(f.read()); b[len(b)//2]^=0xff; f.seek(0); f.write(b)' "$data"
run_kci pull "$REG/test/tamper:1"
expect_eq "tampered: status" 125 "$status"
expect_match "tampered: names the digest" "${layer}.*digest mismatch|digest mismatch.*${layer}" "$err"
if [ -e "$KCI_HOME/store/blobs/sha256/${layer#sha256:}" ]; then fail "tampered blob in the store"; else ok "tampered blob not stored"; fi
run_kci images --verify
expect_eq "store verifies after tampering" 0 "$status"

# Interrupted pulls. The fake registry sends half of the layer and holds the rest until
# released, and each signal is sent only once the pull is stalled there with every byte it
# got in its temp blob: the signal lands mid-transfer however loaded the machine is.
start_fakereg held --hold
blobs="$KCI_HOME/store/blobs/sha256"

# wait_for WHAT CMD...: polls CMD until it succeeds; fails the test after 120 s.
wait_for() {
	local what=$1 deadline=$((SECONDS + 120))
	shift
	until "$@"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			fail "timed out waiting for $what"
			return 1
		fi
		sleep 0.05
	done
}

# pull_stalled PID: PID's pull is held mid-layer and has written every byte sent to it into
# its temp blob (its config's temp blob comes and goes before); sets held_sent and held_total.
pull_stalled() {
	local held
	held=$(curl -sf "http://$FAKE/_fakereg/held" | head -n1) || return 1
	read -r held_sent held_total _ <<<"$held"
	[ -n "$held_sent" ] &&
		find "$blobs" -maxdepth 1 -name ".blob.tmp-$1-*" -size "${held_sent}c" 2>/dev/null |
		grep -q .
}

# clients_gone N: the fake registry saw the clients of N held transfers hang up.
clients_gone() { [ "$(grep -c 'client-gone-at=' "$FAKE_LOG" 2>/dev/null)" = "$1" ]; }

# Ctrl-C (SIGINT): exit 130 and no partial blob left behind.
"$KCI" pull "$FAKE/test/held:1" >/dev/null 2>"$work/sigint.err" &
pull_pid=$!
wait_for "the SIGINT pull to stall mid-layer" pull_stalled "$pull_pid"
kill -INT "$pull_pid"
status=0
wait "$pull_pid" || status=$?
expect_eq "SIGINT pull: status" 130 "$status"
expect_match "SIGINT pull: says so" "interrupted; partial downloads removed" "$(cat "$work/sigint.err")"
expect_eq "SIGINT pull: no temp blobs of its own" "" "$(ls -A "$blobs" | grep "tmp-$pull_pid-" || true)"
expect_eq "SIGINT pull: no temp blobs at all" "" "$(ls -A "$blobs" | grep tmp || true)"
pull_pid=
wait_for "the registry to see the SIGINT pull hang up" clients_gone 1

# kill -9 mid-layer: its temp blob stays behind, to be swept once its pid is gone.
"$KCI" pull "$FAKE/test/held:1" >/dev/null 2>&1 &
pull_pid=$!
wait_for "the kill -9 pull to stall mid-layer" pull_stalled "$pull_pid"
kill -9 "$pull_pid"
status=0
wait "$pull_pid" 2>/dev/null || status=$?
expect_eq "kill -9 pull: killed by SIGKILL" 137 "$status"
if kill -0 "$pull_pid" 2>/dev/null; then fail "kill -9 pull: pid $pull_pid still exists"; else ok "kill -9 pull: pid gone"; fi
wait_for "the registry to see the killed pull hang up" clients_gone 2
left=$(find "$blobs" -maxdepth 1 -name ".blob.tmp-$pull_pid-*")
expect_eq "kill -9 landed mid-transfer: its temp blob holds the $held_sent of $held_total bytes sent" \
	"$held_sent" "$([ -n "$left" ] && stat -c %s "$left")"
if [ "$held_sent" -gt 0 ] && [ "$held_sent" -lt "$held_total" ]; then ok "kill -9: cut mid-layer"; else fail "kill -9: sent $held_sent of $held_total"; fi
pull_pid=

# Released, the next pull completes and sweeps the dead pull's temp blob.
curl -sf -o /dev/null "http://$FAKE/_fakereg/release"
run_kci pull "$FAKE/test/held:1"
expect_eq "pull after kill -9" 0 "$status"
[ "$status" -eq 0 ] || echo "stderr: $err"
expect_eq "the completed pull swept the killed one's temp blobs" "" "$(ls -A "$blobs" | grep tmp || true)"
run_kci images --verify
expect_eq "store verifies after kill -9" 0 "$status"
expect_match "verify counted blobs" "^[0-9]+ blobs checked, 0 corrupt" "$out"
stop_fakereg

# Two layers the size of a small real image, from the real registry, for what follows.
mkimage "$work/big" '{"tag":"1","layers":[{"compression":"none","entries":[{"name":"big1","random_bytes":8000000}]},
 {"compression":"none","entries":[{"name":"big2","random_bytes":8000000}]}]}' >/dev/null
push "$work/big" 1 test/big:1
run_kci pull "$REG/test/big:1"
expect_eq "pull of two layers" 0 "$status"

# A blob corrupted in the store: verify names it, removes it, and a pull fetches it again.
victim=$(ls -S "$KCI_HOME/store/blobs/sha256" | head -n1)
chmod u+w "$KCI_HOME/store/blobs/sha256/$victim"
printf 'rot' | dd of="$KCI_HOME/store/blobs/sha256/$victim" bs=1 seek=100 conv=notrunc 2>/dev/null
run_kci images --verify
expect_eq "corrupt blob: verify fails" 1 "$status"
expect_match "corrupt blob: named" "blob sha256:$victim is corrupt" "$err"
run_kci pull "$REG/test/big:1"
expect_eq "corrupt blob: re-pull" 0 "$status"
run_kci images --verify
expect_eq "corrupt blob: repaired" 0 "$status"

# rmi and prune drop what no image needs.
run_kci rmi "$REG/test/big:1"
expect_eq "rmi status" 0 "$status"
run_kci prune
expect_match "prune frees space" "^freed [0-9.]+[kMG]?B" "$out"
run_kci images
if grep -q "test/big" <<<"$out"; then fail "rmi left the image listed"; else ok "rmi removed it"; fi
run_kci images --verify
expect_eq "store verifies after prune" 0 "$status"
