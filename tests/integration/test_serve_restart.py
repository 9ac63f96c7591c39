#!/usr/bin/env python3
"""kci serve killed with SIGKILL mid-build and started again loses nothing: the running
job's agent keeps going and reports when the server is back, the queued build behind it
still runs, and a job whose agent died while the server was down is re-queued when its
lease lapses. Nothing stays queued or running for ever."""
import json, os, re, signal, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_lib import check, commit, github_headers, github_push, main, make_repo, wait_for

PIPELINE = """jobs:
  slow:
    steps:
      - name: work
        run: echo "marker-started $KCI_MARK"; sleep 5; echo "marker-done $KCI_MARK"
"""


def test(env):
    path = env.path("repos", "widget")
    sha = make_repo(path, {".kci.yml": PIPELINE.replace("$KCI_MARK", "one")})
    repo = {"name": "acme/widget", "forge": "github", "secret": "s3cret",
            "clone_url": "file://" + path}
    config = env.config([repo], extra="lease_timeout: 5s")
    server = env.serve(config, "--no-local-agent")
    agent = env.agent("a", "--capacity", "1")

    def push(sha, ref, before="0" * 40):
        body = json.dumps(github_push(repo["name"], ref, sha, repo["clone_url"],
                                      before=before)).encode()
        code, answer = env.hook("github", body, github_headers(repo["secret"], body))
        assert code == 201, f"push answered {code} {answer}"
        return json.loads(answer)["build"]

    # Two builds: the first runs on the only agent, the second waits in the queue.
    b1 = push(sha, "refs/heads/main")
    sha2 = commit(path, {".kci.yml": PIPELINE.replace("$KCI_MARK", "two")}, "two")
    b2 = push(sha2, "refs/heads/feature")
    wait_for("build 1's job to start", lambda: "marker-started one" in env.log(b1, "slow"), 180)
    check(env.build(b2)["status"] == "queued", "the second build waits in the queue")

    server.p.send_signal(signal.SIGKILL)
    server.wait()
    server = env.serve(config, "--no-local-agent")
    check(True, "the server starts again on the same data")

    for bid, mark in ((b1, "one"), (b2, "two")):
        b = env.wait_build(bid, 300)
        log = env.log(bid, "slow")
        check(b["status"] == "passed", f"build {mark} passes after the restart", json.dumps(b))
        check(f"marker-started {mark}" in log and f"marker-done {mark}" in log
              and "== job passed" in log, f"build {mark}'s log is whole", log[-600:])

    # The agent dies while the server is down: its lease lapses, the job runs again.
    sha3 = commit(path, {".kci.yml": PIPELINE.replace("$KCI_MARK", "three")}, "three")
    b3 = push(sha3, "refs/heads/main", before=sha)
    wait_for("build 3's job to start", lambda: "marker-started three" in env.log(b3, "slow"),
             180)
    server.p.send_signal(signal.SIGKILL)
    server.wait()
    agent.p.send_signal(signal.SIGKILL)
    agent.wait()
    server = env.serve(config, "--no-local-agent")
    agent = env.agent("b", "--capacity", "1")
    b = env.wait_build(b3, 300)
    check(b["status"] == "passed" and b["jobs"][0]["attempt"] == 2,
          "a job whose agent died with the server runs again and passes", json.dumps(b))
    check(re.search(r"re-queued", server.text()) is not None,
          "the server says it re-queued it", server.text()[-800:])

    left = [x for x in env.get("/api/v1/builds") if x["status"] in ("queued", "running")]
    check(not left, "nothing is left queued or running", json.dumps(left))
    server.signal(signal.SIGTERM)
    check(server.wait(60) == 0, "the server stops")


main(test)
