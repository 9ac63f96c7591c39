#!/usr/bin/env bash
# --rootfs DIR becomes a cached ext4 image; changes to the tree rebuild it; the guest writes
# to its own overlay, never to the shared image.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

root=$(mktemp -d)
trap 'rc=$?; rm -rf "$root"; (exit $rc); finish' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/data"
cp "$KCI_GUEST_DIR/busybox" "$root/bin/busybox"
for a in sh cat echo ls wc mkdir; do ln -s busybox "$root/bin/$a"; done
echo "marker-1" > "$root/data/marker"

run_kci exec --rootfs "$root" --memory 256M --cpus 1 -- /bin/sh -c 'cat /data/marker; echo x > /data/new; cat /data/new'
expect_eq "rootfs exit" 0 "$status"
expect_eq "rootfs content and overlay write" "marker-1
x" "$out"
images=$(ls "$KCI_HOME/cache" | grep -c '^rootfs-.*\.ext4$')
expect_eq "one cached image" 1 "$images"

run_kci exec --rootfs "$root" -- /bin/sh -c 'ls /data'
expect_eq "overlay writes do not persist" "marker" "$out"
expect_eq "cache reused" 1 "$(ls "$KCI_HOME/cache" | grep -c '^rootfs-.*\.ext4$')"

echo "marker-2" > "$root/data/marker"
touch -d '2001-01-01' "$root/data/marker"
run_kci exec --rootfs "$root" -- /bin/cat /data/marker
expect_eq "changed tree is rebuilt" "marker-2" "$out"
expect_eq "the superseded image is pruned" 1 "$(ls "$KCI_HOME/cache" | grep -c '^rootfs-.*\.ext4$')"

run_kci exec --rootfs "$root/nonexistent" -- true
expect_eq "missing rootfs status" 125 "$status"
expect_match "missing rootfs message" "^kci: --rootfs .*nonexistent: No such file or directory" "$err"

# A normal user's PATH on Debian has no sbin, where mke2fs lives: kci looks there itself.
echo "marker-3" > "$root/data/marker"
PATH=/usr/local/bin:/usr/bin:/bin run_kci exec --rootfs "$root" -- /bin/cat /data/marker
expect_eq "mke2fs is found without sbin in PATH" "marker-3" "$out"
