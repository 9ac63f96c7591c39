#!/usr/bin/env python3
"""A realistic image for bench/pull: several layers, thousands of files, hundreds of MB.

usage: mkbig.py OUT_DIR [TOTAL_MB]. Content mixes text-like (compressible) and random data,
like source trees next to binaries; layer 4 deletes and replaces part of layer 1.
"""
import gzip, hashlib, io, json, os, random, sys, tarfile

out = sys.argv[1]
total_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 300
rng = random.Random(42)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(5000)]

pool = b" ".join(rng.choice(words) for _ in range(1 << 20))

def text(n):
    # Slices of one word pool: compressible like source text, cheap to make.
    if n >= len(pool):
        return (pool * (n // len(pool) + 1))[:n]
    start = rng.randrange(0, len(pool) - n)
    return pool[start:start + n]

def blob(data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(out, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)

def layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        dirs = set()
        for name, data in files:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755
                    t.addfile(ti)
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o644; ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()

per_layer = total_mb * 1024 * 1024 // 4
layers, diff_ids, descs = [], [], []
for li in range(4):
    files, size, i = [], 0, 0
    while size < per_layer:
        big = rng.random() < 0.02
        n = rng.randint(1 << 20, 8 << 20) if big else rng.randint(200, 40000)
        data = os.urandom(n) if (big or rng.random() < 0.3) else text(n)
        files.append((f"usr/share/l{li}/d{i % 50}/f{i}.dat", data))
        size += n
        i += 1
    if li == 3:
        files.append(("usr/share/l0/d0/.wh.f0.dat", b""))
    raw = layer(files)
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    data = gzip.compress(raw, compresslevel=6, mtime=0)
    d, n = blob(data)
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
config = {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
cd, cn = blob(json.dumps(config).encode())
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn}, "layers": descs}
md, mn = blob(json.dumps(m).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": m["mediaType"], "digest": md, "size": mn,
           "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, open(os.path.join(out, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
print(md)
