#!/usr/bin/env bash
# kci load takes OCI layouts and `docker save` tarballs; concurrent pulls of one image are safe.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"
. "$(dirname "$KCI_TEST_LIB")/registry.sh"
work=$(mktemp -d)
trap 'rc=$?; stop_registry; rm -rf "$work"; (exit $rc); finish' EXIT
bb="$KCI_GUEST_DIR/busybox"

# A docker save archive, laid out as `docker save` writes it: manifest.json, the config,
# one directory per layer holding an uncompressed layer.tar.
mkdir -p "$work/save"
python3 - "$work/save" "$bb" <<'PY'
import hashlib, io, json, os, sys, tarfile
out, bb = sys.argv[1], open(sys.argv[2], "rb").read()
def tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data, kind in entries:
            ti = tarfile.TarInfo(name)
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif kind == "link":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o755
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()
layers = [tar([("bin", None, "dir"), ("bin/busybox", bb, "file"), ("bin/sh", "busybox", "link"),
               ("bin/cat", "busybox", "link")]),
          tar([("etc", None, "dir"), ("etc/motd", b"loaded from docker save\n", "file")])]
diff_ids, paths = [], []
for i, l in enumerate(layers):
    d = hashlib.sha256(l).hexdigest()
    diff_ids.append("sha256:" + d)
    os.makedirs(os.path.join(out, d), exist_ok=True)
    open(os.path.join(out, d, "layer.tar"), "wb").write(l)
    paths.append(d + "/layer.tar")
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["cat", "/etc/motd"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cname = hashlib.sha256(config).hexdigest() + ".json"
open(os.path.join(out, cname), "wb").write(config)
json.dump([{"Config": cname, "RepoTags": ["saved/app:2"], "Layers": paths}], open(os.path.join(out, "manifest.json"), "w"))
PY
tar -C "$work/save" -cf "$work/saved.tar" .
run_kci load "$work/saved.tar"
expect_eq "docker save: load status" 0 "$status"
expect_match "docker save: names the image" "^loaded .*saved/app:2$" "$out"
run_kci exec --image saved/app:2
expect_eq "docker save: image runs its Cmd" "loaded from docker save" "$out"

# A corrupted layer in the archive is refused, and nothing half-loaded is named.
layer=$(ls "$work/save" | grep -v json | head -n1)
printf 'X' | dd of="$work/save/$layer/layer.tar" bs=1 seek=700 conv=notrunc 2>/dev/null
sed -i 's/saved\/app:2/saved\/broken:1/' "$work/save/manifest.json"
# A config of its own, so no root disk cached for the good image (same diff_ids) is reused.
sed -i 's/"Cmd": \["cat"/"Cmd": ["sh"/' "$work/save/"*.json
tar -C "$work/save" -cf "$work/broken.tar" .
run_kci load "$work/broken.tar"
expect_eq "corrupt layer: load refused" 125 "$status"
expect_match "corrupt layer: says why" "diff_id|digest mismatch|[Dd]amaged" "$err"
run_kci images
if grep -q "saved/broken" <<<"$out"; then fail "a refused load named its image"; else ok "refused load names nothing"; fi
run_kci images --verify
expect_eq "store verifies" 0 "$status"

# Two pulls of the same image at once both succeed and leave a consistent store.
start_registry
mkimage "$work/img" '{"tag":"1","busybox":"'"$bb"'","layers":[{"entries":[{"name":"big","random_bytes":20000000}]}]}' >/dev/null
push "$work/img" 1 test/conc:1
"$KCI" pull -q "$REG/test/conc:1" >"$work/p1" 2>&1 & p1=$!
"$KCI" pull -q "$REG/test/conc:1" >"$work/p2" 2>&1 & p2=$!
s1=0 s2=0
wait $p1 || s1=$?
wait $p2 || s2=$?
expect_eq "concurrent pulls succeed" "0 0" "$s1 $s2"
run_kci images --verify
expect_eq "store verifies after concurrent pulls" 0 "$status"
run_kci exec --image "$REG/test/conc:1" -- sh -c 'test -s /big && echo ok'
expect_eq "concurrently pulled image runs" "ok" "$out"
