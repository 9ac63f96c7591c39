#!/usr/bin/env python3
"""A fake OCI distribution registry for integration tests: one image built in memory, and a
scenario that makes the server misbehave in one documented way.

  fakereg.py --scenario NAME --port-file FILE --log FILE [--seed S] [--user U --password P]
             [--blobstore http://127.0.0.1:PORT] [--hold]

Listens on 127.0.0.1, port chosen by the kernel and written to --port-file once listening.
Each request is logged as one line: METHOD PATH auth=yes|no status=N [note].
The image (served as any repo, any tag) is deterministic for a given --seed.

--hold stalls every whole GET of the layer: the server sends the first half and then holds
the rest until released, so a test can act while a client is certainly mid-transfer. A held
transfer ends when released (the rest is sent, logged "released") or when its client hangs
up (logged "client-gone-at=N"). Two control paths, never logged:
  GET /_fakereg/held      one line "SENT TOTAL PATH" per transfer held now, client connected
  GET /_fakereg/release   sends the rest of every held transfer; later GETs are not held
"""
import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import random
import re
import select
import socket
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
SCENARIOS = ("normal", "blobstore", "redirect-cross-origin", "redirect-insecure", "flaky",
             "retry-after-huge", "wrong-blob", "truncated-then-ok", "huge-manifest", "token",
             "huge-declared")


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def build_image(seed):
    """Returns (manifest bytes, {digest: bytes}, layer digest)."""
    rnd = random.Random(seed)
    # 64 KiB of incompressible bytes: a layer large enough to be cut in half meaningfully.
    payload = bytes(rnd.getrandbits(8) for _ in range(65536))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("hello", ("hello from %s\n" % seed).encode()), ("random.bin", payload)):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime, ti.uid, ti.gid = len(data), 0o644, 1700000000, 0, 0
            tar.addfile(ti, io.BytesIO(data))
    tar_bytes = buf.getvalue()
    layer = gzip.compress(tar_bytes, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["cat", "/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar_bytes)]},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": sha256(layer), "size": len(layer)}],
    }, sort_keys=True).encode()
    return manifest, {sha256(config): config, sha256(layer): layer}, sha256(layer)


class State:
    def __init__(self, args):
        self.args = args
        self.manifest, self.blobs, self.layer = build_image(args.seed or args.scenario)
        self.lock = threading.Lock()
        self.counts = {}
        self.logf = open(args.log, "a", buffering=1)
        if args.scenario == "huge-declared":
            # 64 layers declared at 15 GiB each (each within a layer's cap): 960 GiB in all,
            # more than the per-image cap and any test machine's disk.
            m = json.loads(self.manifest)
            m["layers"] = [dict(m["layers"][0], size=15 << 30) for _ in range(64)]
            self.manifest = json.dumps(m, sort_keys=True).encode()
        if args.scenario == "huge-manifest":
            m = json.loads(self.manifest)
            m["annotations"] = {"org.example.padding": "x" * (5 << 20)}
            self.manifest = json.dumps(m, sort_keys=True).encode()
        self.creds = None
        self.tokens = set()
        self.held = {}  # live held transfers: id -> "SENT TOTAL PATH"
        self.released = threading.Event()
        if args.user is not None:
            self.creds = "Basic " + base64.b64encode(
                ("%s:%s" % (args.user, args.password)).encode()).decode()

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]

    def log(self, line):
        with self.lock:
            self.logf.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakereg/1"

    def log_message(self, fmt, *a):  # quiet: our own log is enough
        pass

    def respond(self, status, body=b"", headers=(), note="", send_body=True):
        st = self.server.state
        st.log("%s %s auth=%s status=%d%s" % (
            self.command, self.path, "yes" if self.headers.get("Authorization") else "no",
            status, (" " + note) if note else ""))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    def do_HEAD(self):
        self.handle_any(send_body=False)

    def do_GET(self):
        self.handle_any(send_body=True)

    def handle_any(self, send_body):
        st = self.server.state
        sc = st.args.scenario
        path = self.path.split("?", 1)[0]
        if path.startswith("/_fakereg/"):
            return self.control(path)
        if sc == "blobstore":
            m = re.search(r"(sha256:[0-9a-f]{64})$", path)
            if m and m.group(1) in st.blobs:
                return self.serve_blob(st.blobs[m.group(1)], send_body)
            return self.respond(404, b"no such blob\n", send_body=send_body)
        if sc == "token":
            if path == "/token":
                return self.serve_token(send_body)
            if self.headers.get("Authorization") not in st.tokens:
                realm = "http://127.0.0.1:%d/token" % self.server.server_address[1]
                repo = re.match(r"/v2/(.+)/(manifests|blobs)/", path)
                scope = ',scope="repository:%s:pull"' % repo.group(1) if repo else ""
                return self.respond(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}',
                                    [("WWW-Authenticate", 'Bearer realm="%s",service="fakereg"%s' % (realm, scope)),
                                     ("Content-Type", "application/json")], send_body=send_body)
        elif st.creds is not None and self.headers.get("Authorization") != st.creds:
            return self.respond(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                                [("WWW-Authenticate", 'Basic realm="x"'),
                                 ("Content-Type", "application/json")], send_body=send_body)
        if path in ("/v2", "/v2/"):
            return self.respond(200, b"{}", [("Content-Type", "application/json")],
                                send_body=send_body)
        m = re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", path)
        if m:
            return self.serve_manifest(send_body)
        m = re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", path)
        if m and m.group(2) in st.blobs:
            digest = m.group(2)
            if sc == "redirect-cross-origin":
                return self.respond(307, headers=[("Location", "%s/storage/%s" % (
                    st.args.blobstore, digest))], send_body=send_body)
            if sc == "redirect-insecure":
                return self.respond(307, headers=[("Location", "http://example.invalid/blob")],
                                    send_body=send_body)
            data = st.blobs[digest]
            if sc == "wrong-blob" and digest == st.layer:
                bad = bytearray(data)
                bad[len(bad) // 2] ^= 0xFF
                data = bytes(bad)
            if sc == "truncated-then-ok" and digest == st.layer and send_body \
                    and st.count("layer-get") == 1:
                return self.serve_truncated(data)
            if st.args.hold and digest == st.layer and send_body and "Range" not in self.headers \
                    and not st.released.is_set():
                return self.serve_held(data)
            return self.serve_blob(data, send_body)
        return self.respond(404, b'{"errors":[{"code":"NOT_FOUND","message":"unknown"}]}',
                            [("Content-Type", "application/json")], send_body=send_body)

    def serve_manifest(self, send_body):
        st = self.server.state
        sc = st.args.scenario
        n = st.count("manifest")
        if sc == "flaky" and n <= 2:
            return self.respond(503, b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}',
                                [("Content-Type", "application/json")], note="flaky#%d" % n,
                                send_body=send_body)
        if sc == "retry-after-huge":
            return self.respond(429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
                                [("Content-Type", "application/json"), ("Retry-After", "3600")],
                                send_body=send_body)
        self.respond(200, st.manifest, [("Content-Type", MEDIA_MANIFEST),
                                        ("Docker-Content-Digest", sha256(st.manifest))],
                     send_body=send_body)

    def control(self, path):
        st = self.server.state
        if path == "/_fakereg/held":
            with st.lock:
                body = "".join(line + "\n" for line in st.held.values()).encode()
        elif path == "/_fakereg/release":
            st.released.set()
            body = b"released\n"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def client_gone(self):
        """Whether the client has hung up (EOF or reset), without consuming what it sent."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def serve_held(self, data):
        st = self.server.state
        half = len(data) // 2
        line = "%s %s auth=%s status=200" % (
            self.command, self.path, "yes" if self.headers.get("Authorization") else "no")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(data[:half])
            self.wfile.flush()
        except OSError:
            return st.log(line + " client-gone-at=0")
        st.log(line + " held-at=%d" % half)
        key = object()
        with st.lock:
            st.held[key] = "%d %d %s" % (half, len(data), self.path)
        try:
            while not st.released.wait(0.05):
                if self.client_gone():
                    return st.log(line + " client-gone-at=%d" % half)
            try:
                self.wfile.write(data[half:])
                self.wfile.flush()
                st.log(line + " released")
            except OSError:
                st.log(line + " client-gone-at=%d" % half)
        finally:
            with st.lock:
                del st.held[key]

    def serve_token(self, send_body):
        """A token server: Basic credentials (when --user is given) buy a Bearer token."""
        st = self.server.state
        if st.creds is not None and self.headers.get("Authorization") != st.creds:
            return self.respond(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}',
                                [("WWW-Authenticate", 'Basic realm="x"')], send_body=send_body)
        token = "tok-%d" % st.count("token")
        with st.lock:
            st.tokens.add("Bearer " + token)
        self.respond(200, json.dumps({"token": token, "expires_in": 300}).encode(),
                     [("Content-Type", "application/json")], send_body=send_body)

    def serve_blob(self, data, send_body):
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if m and int(m.group(1)) < len(data):
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            end = min(end, len(data) - 1)
            return self.respond(206, data[start:end + 1], [
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))],
                note="range=%s" % rng, send_body=send_body)
        self.respond(200, data, [("Content-Type", "application/octet-stream")],
                     note=("range-ignored=%s" % rng) if rng else "", send_body=send_body)

    def serve_truncated(self, data):
        half = len(data) // 2
        self.server.state.log("%s %s auth=%s status=200 truncated-at=%d" % (
            self.command, self.path, "yes" if self.headers.get("Authorization") else "no", half))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data[:half])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="normal", choices=SCENARIOS)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--seed")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--blobstore")
    ap.add_argument("--hold", action="store_true")
    args = ap.parse_args()
    if args.scenario == "redirect-cross-origin" and (not args.blobstore or args.user is None):
        ap.error("redirect-cross-origin needs --blobstore and --user/--password")
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.state = State(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
