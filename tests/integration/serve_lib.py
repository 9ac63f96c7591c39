"""Shared by the kci serve / kci agent integration tests: real kci processes, real git
repositories served by file://, webhooks signed the way each forge signs them and sent with
curl, the API read over real HTTP, and a fake forge API on loopback that records the commit
statuses kci posts. Nothing here sleeps to hope: every wait polls for a state, with a
deadline that only a broken build reaches."""
import hashlib, hmac, http.server, json, os, shutil, signal, socket, subprocess, sys
import tempfile, threading, time, urllib.error, urllib.request

KCI = os.environ["KCI"]
NAME = os.path.basename(sys.argv[0])
failures = []


def fail(msg):
    print(f"FAIL: {NAME}: {msg}", file=sys.stderr, flush=True)
    failures.append(msg)


def ok(msg):
    print(f"ok: {msg}", flush=True)


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        fail(f"{msg}{': ' + detail if detail else ''}")
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, fn, timeout=120, every=0.1):
    """Polls fn() until it returns something true; fails the test at the deadline."""
    end = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > end:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(path, files):
    """A git repository with files (name -> text) in one commit; returns the commit id."""
    os.makedirs(path, exist_ok=True)
    if not os.path.isdir(os.path.join(path, ".git")):
        git(path, "init", "-q", "-b", "main")
        git(path, "config", "user.name", "kci test")
        git(path, "config", "user.email", "test@kci.invalid")
    return commit(path, files, "initial")


def commit(path, files, message):
    for name, text in files.items():
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD")


# ---- webhooks, in the shapes the forges document ----

def github_push(repo, ref, sha, clone_url, before="0" * 40, deleted=False):
    return {"ref": ref, "before": before, "after": "0" * 40 if deleted else sha,
            "created": before == "0" * 40, "deleted": deleted, "forced": False,
            "repository": {"id": 1, "name": repo.split("/")[-1], "full_name": repo,
                           "private": False, "clone_url": clone_url,
                           "owner": {"login": repo.split("/")[0]}},
            "pusher": {"name": "octocat", "email": "octocat@example.com"},
            "sender": {"login": "octocat"},
            "head_commit": None if deleted else {"id": sha, "message": "change"},
            "commits": []}


def gitea_push(repo, ref, sha, clone_url, before="0" * 40):
    return {"ref": ref, "before": before, "after": sha, "compare_url": "",
            "commits": [{"id": sha, "message": "change\n"}],
            "head_commit": {"id": sha, "message": "change\n"},
            "repository": {"id": 2, "name": repo.split("/")[-1], "full_name": repo,
                           "clone_url": clone_url, "owner": {"login": repo.split("/")[0]}},
            "pusher": {"login": "gitea"}, "sender": {"login": "gitea"}}


def gitlab_push(repo, ref, sha, clone_url, before="0" * 40):
    return {"object_kind": "push", "event_name": "push", "before": before, "after": sha,
            "ref": ref, "checkout_sha": sha, "user_username": "gitlab",
            "project_id": 3,
            "project": {"id": 3, "name": repo.split("/")[-1], "path_with_namespace": repo,
                        "git_http_url": clone_url, "default_branch": "main"},
            "commits": [{"id": sha, "message": "change"}], "total_commits_count": 1,
            "repository": {"name": repo.split("/")[-1], "git_http_url": clone_url}}


def github_headers(secret, body, event="push", delivery=None):
    h = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or os.urandom(8).hex(),
         "Content-Type": "application/json"}
    if secret is not None:
        h["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body,
                                                        hashlib.sha256).hexdigest()
    return h


def gitea_headers(secret, body, event="push", delivery=None):
    return {"X-Gitea-Event": event, "X-Gitea-Delivery": delivery or os.urandom(8).hex(),
            "Content-Type": "application/json",
            "X-Gitea-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def gitlab_headers(secret, event="Push Hook", delivery=None):
    return {"X-Gitlab-Event": event, "X-Gitlab-Token": secret,
            "X-Gitlab-Event-UUID": delivery or os.urandom(8).hex(),
            "Content-Type": "application/json"}


def curl_post(url, body, headers, work):
    """POSTs body (bytes) with curl; returns (HTTP status, answer text)."""
    fd, path = tempfile.mkstemp(dir=work)
    with os.fdopen(fd, "wb") as f:
        f.write(body)
    args = ["curl", "-sS", "-o", path + ".out", "-w", "%{http_code}", "--data-binary",
            "@" + path, "--max-time", "120"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    r = subprocess.run(args + [url], capture_output=True, text=True)
    try:
        with open(path + ".out") as f:
            answer = f.read()
    except FileNotFoundError:
        answer = r.stderr
    os.unlink(path)
    if os.path.exists(path + ".out"):
        os.unlink(path + ".out")
    return int(r.stdout or 0), answer


# ---- a fake forge API that records commit statuses ----

class FakeForge:
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        forge = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                with forge.lock:
                    forge.requests.append({"path": self.path,
                                           "headers": {k.lower(): v for k, v
                                                       in self.headers.items()},
                                           "body": doc})
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def states(self, path):
        with self.lock:
            return [r["body"].get("state") for r in self.requests
                    if r["path"] == path and r["body"]]

    def stop(self):
        self.httpd.shutdown()


# ---- kci processes ----

class Proc:
    """A kci serve or kci agent with its stderr in a file."""

    def __init__(self, args, home, log):
        self.args, self.home, self.log = args, home, log
        self.p = None
        self.start()

    def start(self):
        env = dict(os.environ, KCI_HOME=self.home)
        self.err = open(self.log, "ab")
        self.p = subprocess.Popen([KCI, *self.args], env=env, stdin=subprocess.DEVNULL,
                                  stdout=self.err, stderr=self.err)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def signal(self, sig):
        if self.p and self.p.poll() is None:
            self.p.send_signal(sig)

    def wait(self, timeout=120):
        try:
            return self.p.wait(timeout)
        finally:
            self.err.close()

    def kill(self):
        if self.p and self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.err.close()


class Env:
    """A temp dir with a config, tokens, repositories, and the processes of one test."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kci-serve-test.")
        self.procs = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.agent_token = self.write("agent.token", os.urandom(16).hex() + "\n")
        self.admin_token = self.write("admin.token", os.urandom(16).hex() + "\n")

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        os.chmod(self.path(name), 0o600)
        return self.path(name)

    def token(self, name):
        with open(self.path(name)) as f:
            return f.read().strip()

    def config(self, repos, extra=""):
        """repos: list of dicts with name, forge, secret, clone_url and optional keys."""
        lines = [f"listen: 127.0.0.1:{self.port}", f"url: {self.url}",
                 f"agent_token_file: {self.agent_token}",
                 f"admin_token_file: {self.admin_token}"]
        lines += [l for l in extra.splitlines() if l]
        lines.append("repos:")
        for r in repos:
            secret = self.write(f"{r['name'].replace('/', '_')}.{r['forge']}.hook",
                                r["secret"] + "\n")
            lines += [f"  - name: {r['name']}", f"    forge: {r['forge']}",
                      f"    secret_file: {secret}", f"    clone_url: {r['clone_url']}"]
            for key in ("api_url", "cancel_superseded"):
                if key in r:
                    lines.append(f"    {key}: {r[key]}")
            if "status_token" in r:
                tok = self.write(f"{r['name'].replace('/', '_')}.{r['forge']}.status",
                                 r["status_token"] + "\n")
                lines.append(f"    status_token_file: {tok}")
        return self.write("server.yml", "\n".join(lines) + "\n")

    def serve(self, config, *args, home=None):
        home = home or self.path("server-home")
        os.makedirs(home, exist_ok=True)
        p = Proc(["serve", "--config", config, "--data", self.path("data"), *args], home,
                 self.path("serve.log"))
        self.procs.append(p)
        wait_for("the server to listen", lambda: self.get("/api/v1/builds") is not None
                 or p.p.poll() is not None, timeout=60)
        if p.p.poll() is not None:
            raise RuntimeError(f"kci serve exited {p.p.returncode}: {p.text()[-2000:]}")
        return p

    def agent(self, name, *args):
        home = self.path(f"agent-{name}")
        os.makedirs(home, exist_ok=True)
        p = Proc(["agent", "--server", self.url, "--token-file", self.agent_token, "--name",
                  name, *args], home, self.path(f"agent-{name}.log"))
        self.procs.append(p)
        return p

    def get(self, path, raw=False):
        """GET from the server: parsed JSON (or text when raw), None when it cannot answer."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as r:
                data = r.read()
                return data.decode() if raw else json.loads(data)
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return None

    def post(self, path, body=b"", token=None):
        req = urllib.request.Request(self.url + path, data=body, method="POST")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def hook(self, forge, body, headers):
        return curl_post(f"{self.url}/hooks/{forge}", body, headers, self.dir)

    def build(self, bid):
        return self.get(f"/api/v1/builds/{bid}")

    def wait_build(self, bid, timeout=300):
        def done():
            b = self.build(bid)
            return b if b and b["status"] not in ("queued", "running") else None
        return wait_for(f"build {bid} to finish", done, timeout=timeout, every=0.2)

    def log(self, bid, job):
        return self.get(f"/api/v1/builds/{bid}/jobs/{job}/log", raw=True) or ""

    def cleanup(self):
        for p in self.procs:
            p.kill()
        # No QEMU of any of our homes may survive its kci.
        def leftovers():
            r = subprocess.run(["pgrep", "-f", f"qemu-system.*{self.dir}"],
                               capture_output=True, text=True)
            return r.stdout.split()
        try:
            wait_for("no QEMU left", lambda: not leftovers(), timeout=10)
        except TimeoutError:
            fail(f"QEMU processes left behind: {leftovers()}")
            subprocess.run(["pkill", "-KILL", "-f", f"qemu-system.*{self.dir}"])
        shutil.rmtree(self.dir, ignore_errors=True)


def main(test):
    """Runs test(env), reports, cleans up; exits non-zero on any failure."""
    env = Env()
    try:
        test(env)
    except Exception as e:  # a timeout or a crash is a failure with its story
        import traceback
        traceback.print_exc()
        fail(f"{type(e).__name__}: {e}")
        for p in env.procs:
            print(f"--- {' '.join(p.args[:1])} log ({p.log}):\n{p.text()[-3000:]}",
                  file=sys.stderr)
        # The jobs' own logs say why a job ended (a guest's last console lines, say).
        for root, _, files in os.walk(os.path.join(env.dir, "data")):
            for name in sorted(f for f in files if f.endswith(".log")):
                with open(os.path.join(root, name), errors="replace") as f:
                    print(f"--- job log {os.path.join(root, name)}:\n{f.read()[-2000:]}",
                          file=sys.stderr)
    finally:
        env.cleanup()
    if failures:
        print(f"{NAME}: FAILED ({len(failures)} failures)", file=sys.stderr)
        sys.exit(1)
    print(f"{NAME}: passed")
