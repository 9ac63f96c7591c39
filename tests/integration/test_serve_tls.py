#!/usr/bin/env python3
"""kci serve over HTTPS (tls_cert_file/tls_key_file: libmicrohttpd with GnuTLS): the API
answers over TLS only; the server's own agent (which trusts exactly its server's
certificate) runs a build through it; an agent that does not trust the certificate refuses
to talk, one given the CA with --ca-file registers; plain http to another machine is refused
before anything is sent."""
import json, os, re, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_lib import (check, github_headers, github_push, main, make_repo, wait_for, KCI,
                       Proc)


def test(env):
    cert, key = env.path("cert.pem"), env.path("key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    path = env.path("repos", "widget")
    sha = make_repo(path, {".kci.yml": "jobs:\n  hello:\n    run: echo over-tls\n"})
    repo = {"name": "acme/widget", "forge": "github", "secret": "s3cret",
            "clone_url": "file://" + path}
    config = env.config([repo], extra=f"tls_cert_file: {cert}\ntls_key_file: {key}")
    env.url = env.url.replace("http://", "https://")
    home = env.path("server-home")
    os.makedirs(home)
    server = Proc(["serve", "--config", config, "--data", env.path("data"), "--capacity", "1"],
                  home, env.path("serve.log"))
    env.procs.append(server)

    def curl(*args):
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args],
                           capture_output=True, text=True)
        return r.stdout

    wait_for("the server to listen", lambda: curl("--cacert", cert, env.url + "/api/v1/builds")
             == "200" or server.p.poll() is not None, 60)
    check(curl("--cacert", cert, env.url + "/api/v1/builds") == "200",
          "the API answers over HTTPS")
    check(curl(env.url.replace("https://", "http://") + "/api/v1/builds") != "200",
          "plain HTTP gets no answer from the TLS port")

    # An agent that does not trust the certificate cannot reach the server.
    doubter = env.agent("doubter")
    wait_for("the agent to give its reason", lambda: "cannot reach the server" in
             doubter.text(), 60)
    check(re.search(r"certificate|SSL", doubter.text()) is not None,
          "an agent refuses a certificate it does not trust", doubter.text()[-400:])
    doubter.kill()

    # One given the certificate's CA registers.
    agent = env.agent("truster", "--ca-file", cert)
    wait_for("the agent to register", lambda: "(truster) registered" in server.text(), 60)
    check(True, "an agent with --ca-file registers over HTTPS")
    body = json.dumps(github_push(repo["name"], "refs/heads/main", sha,
                                  repo["clone_url"])).encode()
    r = subprocess.run(["curl", "-sS", "--cacert", cert, "--data-binary", "@-", "-H",
                        "Content-Type: application/json", *sum(
                            (["-H", f"{k}: {v}"] for k, v in
                             github_headers(repo["secret"], body).items()), []),
                        env.url + "/hooks/github"], input=body, capture_output=True)
    bid = json.loads(r.stdout)["build"]

    def build():
        out = subprocess.run(["curl", "-sS", "--cacert", cert,
                              f"{env.url}/api/v1/builds/{bid}"], capture_output=True,
                             text=True).stdout
        b = json.loads(out) if out.startswith("{") else None
        return b if b and b["status"] not in ("queued", "running") else None

    b = wait_for("the build over TLS", build, 300)
    check(b["status"] == "passed", "a build runs over HTTPS", json.dumps(b))
    log = subprocess.run(["curl", "-sS", "--cacert", cert,
                          f"{env.url}/api/v1/builds/{bid}/jobs/hello/log"],
                         capture_output=True, text=True).stdout
    check("over-tls" in log, "and its log arrives", log[-300:])

    # Plain http to a server that is not on this machine: refused before anything is sent.
    r = subprocess.run([KCI, "agent", "--server", "http://192.0.2.1:8080", "--token-file",
                        env.agent_token], capture_output=True, text=True,
                       env=dict(os.environ, KCI_HOME=env.path("x")))
    check(r.returncode == 125 and "plain http to another machine" in r.stderr,
          "an agent refuses plain http to a remote server", r.stderr)
    agent.signal(15)
    check(agent.wait(60) == 0, "the agent stops on SIGTERM")


main(test)
