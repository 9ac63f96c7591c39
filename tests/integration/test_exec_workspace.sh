#!/usr/bin/env bash
# --workspace DIR: DIR's files appear byte-exact (modes too) at /workspace, the guest can
# write there freely, DIR itself is never changed, and no disk image is left behind.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

ws="$KCI_HOME/ws"
mkdir -p "$ws/sub/deeper"
printf 'hello\n' >"$ws/a.txt"
: >"$ws/empty"
head -c 300000 /dev/urandom >"$ws/sub/random.bin"
printf '#!/bin/sh\necho script ran\n' >"$ws/sub/run.sh"
chmod 0750 "$ws/sub/run.sh"
chmod 0600 "$ws/a.txt"
ln -s a.txt "$ws/link"
# What the tree holds: path, mode, size and checksum of every file.
manifest() { (cd "$1" && find . -mindepth 1 ! -name lost+found ! -path './lost+found/*' \
	-exec stat -c '%n %a %s %F' {} + | sort && find . -type f ! -path './lost+found/*' \
	-exec md5sum {} + | sort); }
before=$(manifest "$ws")
[ "$(wc -l <<<"$before")" -ge 10 ] || fail "the test tree manifest is too short: $before"

run_kci exec --workspace "$ws" -- sh -c '
	cd /workspace || exit 9
	find . -mindepth 1 ! -name lost+found ! -path "./lost+found/*" -exec stat -c "%n %a %s %F" {} + | sort
	find . -type f ! -path "./lost+found/*" -exec md5sum {} + | sort'
expect_eq "files, modes and bytes of DIR at /workspace" "$before" "$out"

run_kci exec --workspace "$ws" -- /workspace/sub/run.sh
expect_eq "an executable in the workspace runs" "script ran" "$out"

run_kci exec --workspace "$ws" -- sh -c '
	set -e
	cd /workspace
	echo changed >a.txt
	rm sub/random.bin
	mkdir new && echo new >new/file
	dd if=/dev/zero of=big bs=1M count=100 2>/dev/null
	sync
	stat -c %s big
	mount | grep " /workspace "'
expect_eq "guest writes, including 100 MiB, succeed" 0 "$status"
expect_match "100 MiB written" "^104857600$" "$out"
expect_match "mounted read-write, noatime" "ext4 \(rw,noatime" "$out"
expect_eq "DIR is unchanged by the guest" "$before" "$(manifest "$ws")"

# A root without a /workspace dir: the mount point is made on the overlay.
root="$KCI_HOME/root"
mkdir -p "$root/bin"
cp "$KCI_GUEST_DIR/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
run_kci exec --rootfs "$root" --workspace "$ws" -- /bin/busybox cat /workspace/a.txt
expect_eq "workspace on a rootfs without /workspace" "hello" "$out"

run_kci exec --workspace "$KCI_HOME/no-such-dir" -- true
expect_eq "missing workspace dir exits 125" 125 "$status"
expect_match "missing workspace dir is named" "no-such-dir" "$err"

left=$(find "$KCI_HOME" -name 'workspace*' 2>/dev/null)
expect_eq "no workspace image left anywhere" "" "$left"
