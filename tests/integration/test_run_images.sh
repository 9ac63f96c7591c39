#!/usr/bin/env bash
# kci run with images from a real registry: per-job and default images pulled on demand,
# the image's Env and User honoured, the workspace writable by that user; a job whose
# image does not exist errors clearly and its dependents are skipped.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"
. "$(dirname "$KCI_TEST_LIB")/registry.sh"
work=$(mktemp -d)
trap 'rc=$?; stop_registry; rm -rf "$work"; (exit $rc); finish' EXIT
start_registry
bb="$KCI_GUEST_DIR/busybox"

mkimage "$work/tool" '{"tag":"1","busybox":"'"$bb"'",
 "config":{"Env":["TOOL_VERSION=1.2.3","PATH=/opt/tool:/usr/bin:/bin"]},
 "layers":[{"entries":[{"name":"opt","type":"dir"},{"name":"opt/tool","type":"dir"},
   {"name":"opt/tool/greet","data":"#!/bin/sh\necho \"greet $TOOL_VERSION: $*\"\n","mode":493}]}]}' >/dev/null
push "$work/tool" 1 test/tool:1
mkimage "$work/user" '{"tag":"1","busybox":"'"$bb"'","config":{"User":"builder"},"layers":[]}' >/dev/null
push "$work/user" 1 test/user:1

repo=$KCI_HOME/repo
new_repo "$repo"
echo "data" >"$repo/input.txt"
cat >"$repo/.kci.yml" <<YML
image: $REG/test/tool:1
jobs:
  first:
    run: greet first; cat input.txt; echo "written by first" > out.txt; cat out.txt
  second:
    run: greet second
  as-builder:
    image: $REG/test/user:1
    run: echo "uid \$(id -u) home \$HOME"; echo mine > made.txt; cat made.txt
  base:
    image: $REG/test/none:9
    run: "true"
  after-base:
    needs: [base]
    run: "true"
YML
commit_all "$repo" "image jobs"

# The pipeline names images on a registry the user has not allowed: nothing is pulled.
run_kci run "$repo" --jobs 2
expect_eq "images from a registry not allowed: the run fails" 1 "$status"
expect_match "and says how to allow it" \
	"^first +error .*registry $REG is not one you allowed for pipelines.*--insecure-registry $REG" "$out"
[ -z "$(ls "$KCI_HOME/store/blobs/sha256" 2>/dev/null)" ] && ok "nothing was pulled" ||
	fail "blobs pulled from a registry not allowed"

run_kci run "$repo" --jobs 2 --insecure-registry "$REG"
expect_eq "a job that errored fails the run" 1 "$status"
expect_match "the image's program and Env" '^first +\| greet 1.2.3: first$' "$out"
expect_match "both jobs use the pulled image" '^second +\| greet 1.2.3: second$' "$out"
expect_match "the workspace is there and writable" '^first +\| written by first$' "$out"
expect_match "the image's User runs the steps" '^as-builder +\| uid 1000 home /tmp$' "$out"
expect_match "the workspace is writable by the image's User" '^as-builder +\| mine$' "$out"
expect_match "a missing image errors with its name" "^base +error .*test/none:9" "$out"
expect_match "a pull on first use is shown" \
	'^(first|second) +\| kci: pulling 127\.0\.0\.1:[0-9]+/test/tool:1 \(not in the store yet\)$' "$out"
expect_match "with each blob it pulled" '^(first|second) +\| kci: pulled sha256:[0-9a-f]{12} \(' "$out"
expect_match "and the root disk being built" \
	'^(first|second) +\| kci: unpacking 127\.0\.0\.1:[0-9]+/test/tool:1 into its root disk$' "$out"
expect_match "the summary names a failed job's log" \
	'^base +error .*; log: .*\.kci/logs/base\.log$' "$out"
expect_match "its dependent is skipped" '^after-base +skipped +- +needs base' "$out"
expect_eq "the repository is untouched by the job's writes" "" "$(ls "$repo"/out.txt 2>/dev/null)"

# Allowed once, the image is in the store; a pipeline still may not use it without the grant
# (the store holds the operator's images, not the repository's).
run_kci run "$repo" --job first
expect_eq "an image in the store, its registry not allowed: refused" 1 "$status"
expect_match "refused by registry" "registry $REG is not one you allowed" "$out"

# A pipeline that names a loopback service as its registry makes kci connect nowhere.
probe=$KCI_HOME/probe
mkdir -p "$probe"
python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1] + "/port", "w").write(str(s.getsockname()[1]))
s.settimeout(None)
while True:
    c, _ = s.accept()
    open(sys.argv[1] + "/connected", "a").write("x\n")
    c.sendall(b"HTTP/1.0 404 Not Found\r\n\r\nINTERNAL-SERVICE-SECRET\r\n"); c.close()
' "$probe" &
probe_pid=$!
for _ in $(seq 100); do [ -s "$probe/port" ] && break; sleep 0.05; done
pport=$(cat "$probe/port")
ssrf=$KCI_HOME/ssrf
new_repo "$ssrf"
printf 'jobs:\n  probe:\n    image: 127.0.0.1:%s/anything:1\n    run: "true"\n' "$pport" >"$ssrf/.kci.yml"
commit_all "$ssrf" "ssrf"
run_kci run "$ssrf"
expect_eq "a loopback 'registry' not allowed: the job errors" 1 "$status"
expect_eq "and no connection was made to it" "" "$(cat "$probe/connected" 2>/dev/null)"
# Even allowed (by mistake), what a non-registry answers is never quoted into the log.
run_kci run "$ssrf" --insecure-registry "127.0.0.1:$pport"
expect_eq "a non-registry allowed by mistake: the job errors" 1 "$status"
if grep -q INTERNAL-SERVICE-SECRET <<<"$out$err$(cat "$ssrf"/.kci/logs/*.log)"; then
	fail "the reply of a non-registry was quoted"
else
	ok "the reply of a non-registry is not quoted"
fi
kill "$probe_pid" 2>/dev/null || true
