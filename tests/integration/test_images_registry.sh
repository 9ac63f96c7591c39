#!/usr/bin/env bash
# Images from a real registry: whiteouts and opaque dirs seen exactly in a VM, image config
# honoured, multi-arch index resolution, tampered blobs rejected, a killed pull completed.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"
. "$(dirname "$KCI_TEST_LIB")/registry.sh"
work=$(mktemp -d)
trap 'rc=$?; stop_registry; rm -rf "$work"; (exit $rc); finish' EXIT
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

# kill -9 in the middle of a pull, then pull again: success and a clean store.
mkimage "$work/big" '{"tag":"1","layers":[{"compression":"none","entries":[{"name":"big1","random_bytes":60000000}]},
 {"compression":"none","entries":[{"name":"big2","random_bytes":60000000}]}]}' >/dev/null
push "$work/big" 1 test/big:1
"$KCI" pull "$REG/test/big:1" >/dev/null 2>&1 &
pid=$!
sleep 0.4
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
# Ctrl-C (SIGINT) instead: exit 130 and no partial blob left behind.
"$KCI" pull "$REG/test/big:1" >/dev/null 2>&1 &
pid=$!
sleep 0.1
kill -INT "$pid" 2>/dev/null || true
status=0
wait "$pid" || status=$?
expect_eq "SIGINT pull: status" 130 "$status"
# Its own temp blobs, that is: the kill -9'd pull's leftovers are the next sweep's.
expect_eq "SIGINT pull: no temp blobs of its own" "" \
	"$(ls -A "$KCI_HOME/store/blobs/sha256" | grep "tmp-$pid-" || true)"
run_kci pull "$REG/test/big:1"
expect_eq "pull after kill -9" 0 "$status"
expect_eq "the completed pull swept the killed one's temp blobs" "" \
	"$(ls -A "$KCI_HOME/store/blobs/sha256" | grep tmp || true)"
run_kci images --verify
expect_eq "store verifies after kill -9" 0 "$status"
expect_match "verify counted blobs" "^[0-9]+ blobs checked, 0 corrupt" "$out"

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
