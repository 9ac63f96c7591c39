#!/usr/bin/env python3
"""Builds OCI image layouts for kci's tests, byte by byte, so a test controls every entry.

usage: mkimage.py OUT_DIR SPEC.json
SPEC: {"tag": "1", "busybox": PATH (optional base layer with a shell),
       "config": {"Env": [...], "Cmd": [...], "Entrypoint": [...], "WorkingDir": "...", "User": "..."},
       "layers": [{"compression": "gzip"|"zstd"|"none",
                   "entries": [{"name": "...", "type": "file"|"dir"|"symlink"|"hardlink"|"fifo",
                                "data": "...", "random_bytes": N, "mode": 420, "link": "..."}]}],
       "platforms": [["linux","amd64"], ...]   (optional: wrap the manifest in an index),
       "bad_diff_id": true (optional: config lists a wrong diff_id)}
Hostile names are written verbatim: that is the point of the hostile tests.
"""
import gzip, hashlib, io, json, os, subprocess, sys, tarfile

def blob(out, data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(out, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)

def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.mode = e.get("mode", 0o755 if e.get("type") == "dir" else 0o644)
            ti.mtime = e.get("mtime", 1700000000)
            kind = e.get("type", "file")
            data = e.get("data", "").encode() if isinstance(e.get("data", ""), str) else e["data"]
            if "random_bytes" in e:
                data = os.urandom(e["random_bytes"])
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, e["link"]
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, e["link"]
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            if kind == "file":
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return buf.getvalue()

def busybox_entries(path):
    with open(path, "rb") as f:
        bb = f.read()
    es = [{"name": d, "type": "dir"} for d in ("bin", "tmp", "etc", "root")]
    es.append({"name": "bin/busybox", "data": bb, "mode": 0o755})
    for a in ("sh", "ls", "cat", "echo", "find", "id", "stat", "sort", "wc", "head", "sha256sum", "pwd", "env", "true", "chown"):
        es.append({"name": "bin/" + a, "type": "symlink", "link": "busybox"})
    es.append({"name": "etc/passwd", "data": "root:x:0:0:root:/root:/bin/sh\nbuilder:x:1000:1000::/tmp:/bin/sh\n"})
    es.append({"name": "etc/group", "data": "root:x:0:\nbuilders:x:1000:\n"})
    return es

def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        z = subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout
        return z, "application/vnd.oci.image.layer.v1.tar+zstd"
    return data, "application/vnd.oci.image.layer.v1.tar"

def main():
    out, spec = sys.argv[1], json.load(open(sys.argv[2]))
    os.makedirs(out, exist_ok=True)
    layers = list(spec.get("layers", []))
    if spec.get("busybox"):
        layers.insert(0, {"compression": "gzip", "entries": busybox_entries(spec["busybox"])})
    descs, diff_ids = [], []
    for l in layers:
        raw = tar_bytes(l["entries"])
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        data, mt = compress(raw, l.get("compression", "gzip"))
        d, n = blob(out, data)
        descs.append({"mediaType": mt, "digest": d, "size": n})
    if spec.get("bad_diff_id"):
        diff_ids[-1] = "sha256:" + "0" * 64
    config = {"architecture": "amd64", "os": "linux", "config": spec.get("config", {}),
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cd, cn = blob(out, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                "layers": descs}
    md, mn = blob(out, json.dumps(manifest).encode())
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn}
    if spec.get("platforms"):
        entries = [dict(top, platform={"os": o, "architecture": a}) for o, a in spec["platforms"]]
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
        xd, xn = blob(out, json.dumps(index).encode())
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": xd, "size": xn}
    top["annotations"] = {"org.opencontainers.image.ref.name": spec.get("tag", "1")}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [top]}, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(top["digest"])

main()
