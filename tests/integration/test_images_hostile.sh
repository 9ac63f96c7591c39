#!/usr/bin/env bash
# Hostile layers are rejected or contained: a canary file outside the rootfs never changes.
# Images are loaded from OCI layouts (kci load), then unpacked by `kci exec --image`.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"
work=$(mktemp -d)
trap 'rc=$?; rm -rf "$work"; (exit $rc); finish' EXIT
. "$(dirname "$KCI_TEST_LIB")/registry.sh"
bb="$KCI_GUEST_DIR/busybox"
canary_dir="$work/canary"
mkdir -p "$canary_dir"
echo "precious" >"$canary_dir/file"
chmod 0640 "$canary_dir/file"
touch -d '2001-02-03' "$canary_dir/file"
canary_state() { stat -c '%a %u %g %Y %s' "$canary_dir/file"; cat "$canary_dir/file"; ls -A "$canary_dir"; }
before=$(canary_state)
rel=$(realpath --relative-to=/ "$canary_dir")

try() { # try NAME ENTRIES_JSON
	mkimage "$work/$1" '{"tag":"1","busybox":"'"$bb"'","layers":[{"entries":'"$2"'}]}' >/dev/null
	run_kci load "$work/$1"
	expect_eq "$1: load" 0 "$status"
	run_kci exec --image "localhost/$1:1" -- sh -c 'echo ran; cat /escape-proof 2>/dev/null; true'
	echo "$1: status $status: $(head -c 300 <<<"$err")"
	if [ "$status" -ne 0 ]; then
		expect_match "$1: clear error" "^kci: .*(image|layer|entry|unpack)" "$err"
	fi
	expect_eq "$1: canary unchanged" "$before" "$(canary_state)"
}

try dotdot '[{"name":"../../../../../../'"$rel"'/file","data":"pwned"}]'
try absolute '[{"name":"/'"$rel"'/file","data":"pwned"}]'
try symlink-write '[{"name":"evil","type":"symlink","link":"/'"$rel"'"},{"name":"evil/file","data":"pwned"},{"name":"evil/new","data":"pwned"}]'
try symlink-relative '[{"name":"up","type":"symlink","link":"../../../../../../../'"$rel"'"},{"name":"up/file","data":"pwned"}]'
try hardlink-out '[{"name":"hl","type":"hardlink","link":"/'"$rel"'/file"}]'
try hardlink-via-symlink '[{"name":"evil","type":"symlink","link":"/'"$rel"'"},{"name":"hl","type":"hardlink","link":"evil/file"},{"name":"hl","data":"pwned"}]'
try whiteout-dotdot '[{"name":".wh..","data":""},{"name":"x/.wh..","data":""}]'
try symlink-dot '[{"name":".","type":"symlink","link":"/'"$rel"'"},{"name":"file","data":"pwned"}]'
try whiteout-through-symlink '[{"name":"evil","type":"symlink","link":"/'"$rel"'"},{"name":"evil/.wh.file","data":""}]'

# `docker save` tarballs are unpacked by kci load itself: links in them must not write out.
python3 - "$work/evil.tar" "$canary_dir/file" <<'PY'
import io, sys, tarfile
# A pax hardlink that carries data (libarchive reports it as a regular file), a symlink to
# the canary's dir with a file written through it, and an empty manifest.json.
out = b""
ti = tarfile.TarInfo("x"); ti.type = tarfile.LNKTYPE; ti.linkname = sys.argv[2]
ti.pax_headers = {"size": "6"}
out += ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + b"pwned\n" + b"\0" * 506
ti = tarfile.TarInfo("y"); ti.type = tarfile.SYMTYPE; ti.linkname = sys.argv[2].rsplit("/", 1)[0]
out += ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
for name, data in (("y/file", b"pwned\n"), ("manifest.json", b"[]")):
    ti = tarfile.TarInfo(name); ti.size = len(data)
    out += ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + data + b"\0" * (512 - len(data))
open(sys.argv[1], "wb").write(out + b"\0" * 1024)
PY
run_kci load "$work/evil.tar"
expect_eq "evil tarball: refused" 125 "$status"
expect_eq "evil tarball: canary unchanged" "$before" "$(canary_state)"
