#!/usr/bin/env bash
# A decompression bomb (a 2 MB layer of 2 GiB of zeros) never fills RAM or disk: the unpack
# tree may hold only what the room in /dev/shm or the disk allows, less a reserve, and the
# per-image cap (KCI_IMAGE_MAX); beyond it the image is refused cleanly, nothing is left,
# and the store is intact. With room enough it is just a large image.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

python3 "$(dirname "$KCI_TEST_LIB")/mkbomb.py" "$KCI_HOME/bomb" bomb 2048 >/dev/null
run_kci load "$KCI_HOME/bomb"
expect_eq "the bomb loads (it is 2 MB)" 0 "$status"
ref=localhost/bomb:bomb

# The cap: refused before a byte of the file is written, so /dev/shm never holds it.
shm_before=$(df --output=used -B1 /dev/shm | tail -n1)
KCI_IMAGE_MAX=1G run_kci exec --image "$ref" -- true
expect_eq "over the per-image cap: refused" 125 "$status"
expect_match "with why" 'unpack to more than kci may write: 1024 MiB at most' "$err"
shm_after=$(df --output=used -B1 /dev/shm | tail -n1)
[ $((shm_after - shm_before)) -lt $((64 << 20)) ] && ok "/dev/shm did not fill" ||
	fail "/dev/shm grew by $((shm_after - shm_before)) bytes"

# Small RAM and a small disk (a mount namespace with a 64 MiB /dev/shm and KCI_HOME on a
# 512 MiB tmpfs): refused by the room, not by the cap; nothing left anywhere.
if [ "$(id -u)" -eq 0 ]; then
	small=$(mktemp -d)
	mkdir -p "$KCI_HOME/small"
	cp -a "$KCI_HOME/store" "$small/store.orig"
	out=$(unshare -m bash -c '
		set -e
		mount -t tmpfs -o size=64m tmpfs /dev/shm
		mount -t tmpfs -o size=512m tmpfs "$1"
		cp -a "$2/store.orig" "$1/store"
		set +e
		KCI_HOME=$1 "$KCI" exec --image "$3" -- true 2>&1
		echo "status:$?"
		echo "shm:$(ls -A /dev/shm | tr "\n" " ")"
		echo "cache:$(ls -A "$1/cache" | grep -c -e tree- -e tmp- )"
		KCI_HOME=$1 "$KCI" images --verify 2>&1 | tail -n 1
		echo "verify:$?"' _ "$KCI_HOME/small" "$small" "$ref")
	expect_match "small host: refused" '^status:125$' "$out"
	expect_match "small host: says why" 'unpack to more than kci may write' "$out"
	expect_match "small host: no unpack tree in /dev/shm" '^shm:$' "$out"
	expect_match "small host: no tree or temp file in the cache" '^cache:0$' "$out"
	expect_match "small host: the store verifies" '^verify:0$' "$out"
	rm -rf "$small"
else
	ok "not root: the small-host case needs a mount namespace"
fi

# With room it is only a big image: built, the tree removed, the file there in full.
run_kci exec --image "$ref" -- /zeros
expect_eq "with room: the image boots (its one file is not a program)" 126 "$status"
if ls /dev/shm | grep -q "^kci-unpack-"; then fail "an unpack tree was left in /dev/shm"; else ok "no unpack tree left"; fi
