#!/usr/bin/env bash
# Downloads the guest kernel bundle kci boots: Debian's linux-image-cloud-amd64 and
# busybox-static, unpacked (never installed on the host) into DEST:
#   DEST/vmlinuz  DEST/release  DEST/modules/ (with modules.dep)  DEST/busybox
# Usage: scripts/fetch-guest.sh [DEST]   (default: /usr/local/share/kci/guest)
# Needs apt-get (Debian/Ubuntu), dpkg-deb and depmod (kmod). Idempotent.
set -euo pipefail

dest=${1:-${KCI_GUEST_DIR:-/usr/local/share/kci/guest}}
die() { echo "fetch-guest: $*" >&2; exit 1; }
command -v apt-get >/dev/null || die "apt-get not found: this script needs a Debian-based host"
command -v depmod >/dev/null || die "depmod not found: apt-get install kmod"

# The meta package names the current kernel; resolve it to the versioned image package.
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || die "cannot resolve linux-image-cloud-amd64 (run apt-get update first)"
release=${kpkg#linux-image-}

if [ -f "$dest/release" ] && [ "$(cat "$dest/release")" = "$release" ] &&
   [ -f "$dest/vmlinuz" ] && [ -f "$dest/busybox" ] && [ -f "$dest/modules/modules.dep" ]; then
  echo "fetch-guest: $dest already holds $release"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt-get download as root warns that _apt cannot write here; that is harmless.
apt-get download -q "$kpkg" busybox-static 2>&1 | grep -v 'unsandboxed' >&2 || true
ls "$work"/linux-image-*.deb >/dev/null 2>&1 || die "download of $kpkg failed"
ls "$work"/busybox-static_*.deb >/dev/null 2>&1 || die "download of busybox-static failed"
dpkg-deb -x linux-image-*.deb k
dpkg-deb -x busybox-static_*.deb b
depmod -b k "$release"

stage="$dest.tmp.$$"
rm -rf "$stage"
mkdir -p "$stage"
cp "k/boot/vmlinuz-$release" "$stage/vmlinuz"
cp -a "k/lib/modules/$release" "$stage/modules"
cp b/bin/busybox "$stage/busybox"
echo "$release" > "$stage/release"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$stage" "$dest"
rm -rf "$dest.old"
echo "fetch-guest: $release installed in $dest"
