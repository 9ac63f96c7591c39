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

run_kci run "$repo" --jobs 2
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
