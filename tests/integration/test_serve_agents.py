#!/usr/bin/env python3
"""Two kci agent processes share a server's queue. One is killed with SIGKILL mid-job: its
job runs again on the other (attempt 2) and the build passes; the dead agent's lease is
refused afterwards, its QEMU gone with it. One is stalled (SIGSTOP) past its lease: when it
wakes, the server refuses it and it stops its VM. One stopped with SIGTERM finishes its job
first. Every wait is on a state the test can see (a log line, a job's attempt)."""
import json, os, re, signal, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_lib import (check, commit, github_headers, github_push, main, make_repo, wait_for)

PIPELINE = """jobs:
  slow:
    steps:
      - name: work
        run: echo "marker-started $KCI_MARK"; sleep 6; echo "marker-done"
"""


def qemu_of(home):
    r = subprocess.run(["pgrep", "-f", f"qemu-system.*{home}/"], capture_output=True,
                       text=True)
    return r.stdout.split()


def test(env):
    path = env.path("repos", "widget")
    sha = make_repo(path, {".kci.yml": PIPELINE.replace("$KCI_MARK", "one")})
    repo = {"name": "acme/widget", "forge": "github", "secret": "s3cret",
            "clone_url": "file://" + path}
    config = env.config([repo], extra="lease_timeout: 5s")
    server = env.serve(config, "--no-local-agent")
    agents = {"a": env.agent("a", "--capacity", "1"), "b": env.agent("b", "--capacity", "1")}
    wait_for("both agents to register",
             lambda: len(re.findall(r"agent \d+ \((a|b)\) registered", server.text())) == 2, 120)

    def push(sha, before="0" * 40):
        body = json.dumps(github_push(repo["name"], "refs/heads/main", sha, repo["clone_url"],
                                      before=before)).encode()
        code, answer = env.hook("github", body, github_headers(repo["secret"], body))
        assert code == 201, f"push answered {code} {answer}"
        return json.loads(answer)["build"]

    def holder(bid, among):
        """The agent whose log says it runs build bid (attempt n)."""
        def find():
            for name in among:
                if re.search(rf"build {bid} job slow: running", agents[name].text()):
                    return name
            return None
        return wait_for(f"an agent to take build {bid}", find, 120)

    # ---- SIGKILL mid-job: the other agent runs it again ----
    bid = push(sha)
    wait_for("the job to start", lambda: "marker-started" in env.log(bid, "slow"), 180)
    victim = holder(bid, ["a", "b"])
    other = "b" if victim == "a" else "a"
    m = re.search(rf"build {bid}: a job leased to agent \d+ \(lease (\d+)\)", server.text())
    first_lease = m.group(1) if m else None
    agents[victim].p.send_signal(signal.SIGKILL)
    agents[victim].wait()
    b = env.wait_build(bid, 300)
    job = b["jobs"][0]
    check(b["status"] == "passed" and job["attempt"] == 2,
          "a job whose agent was killed re-runs as attempt 2 and the build passes",
          json.dumps(b))
    check(re.search(rf"build {bid} job slow: running .*attempt 2", agents[other].text()),
          "the other agent ran it", agents[other].text()[-800:])
    log = env.log(bid, "slow")
    check(log.count("marker-started") == 2 and "marker-done" in log and "attempt 2" in log,
          "the job's log has both attempts, marked", log[-800:])
    check(not qemu_of(env.path(f"agent-{victim}")), "the killed agent's VM died with it")
    token = env.token("agent.token")
    code, _ = env.post(f"/api/v1/leases/{first_lease}/log?epoch=1&offset=0", b"late line\n",
                       token)
    check(code == 409, "the killed agent's late log chunk is refused", str(code))
    code, _ = env.post(f"/api/v1/leases/{first_lease}/finish",
                       json.dumps({"epoch": 1, "status": "failed", "duration_ms": 1}).encode(),
                       token)
    check(code == 409, "the killed agent's late result is refused", str(code))
    check(env.build(bid)["status"] == "passed" and "late line" not in env.log(bid, "slow"),
          "and they changed nothing")

    # ---- SIGSTOP past the lease: the stale agent is refused and stops its VM ----
    agents[victim + "2"] = env.agent(victim + "2", "--capacity", "1")
    names = [other, victim + "2"]
    sha2 = commit(path, {".kci.yml": PIPELINE.replace("$KCI_MARK", "two")}, "two")
    bid2 = push(sha2, before=sha)
    wait_for("the job to start", lambda: "marker-started two" in env.log(bid2, "slow"), 180)
    stalled = holder(bid2, names)
    awake = names[0] if stalled == names[1] else names[1]
    agents[stalled].signal(signal.SIGSTOP)
    wait_for("the job to run again elsewhere",
             lambda: re.search(rf"build {bid2} job slow: running .*attempt 2",
                               agents[awake].text()), 120)
    agents[stalled].signal(signal.SIGCONT)
    wait_for("the stalled agent to be refused",
             lambda: "its VM is stopped" in agents[stalled].text(), 60)
    ok_text = agents[stalled].text()
    check(re.search(rf"build {bid2} job slow: the server (ended its lease|refused)", ok_text),
          "the stalled agent hears that its lease ended", ok_text[-800:])
    wait_for("the stalled agent's VM to stop",
             lambda: not qemu_of(env.path(f"agent-{stalled}")), 60)
    b2 = env.wait_build(bid2, 300)
    check(b2["status"] == "passed" and b2["jobs"][0]["attempt"] == 2,
          "the build passes with the second attempt", json.dumps(b2))
    check(agents[stalled].p.poll() is None, "the stalled agent goes on serving")

    # ---- SIGTERM: the agent finishes its job, reports it, exits 0 ----
    sha3 = commit(path, {".kci.yml": PIPELINE.replace("$KCI_MARK", "three")}, "three")
    bid3 = push(sha3, before=sha2)
    wait_for("the job to start", lambda: "marker-started three" in env.log(bid3, "slow"), 180)
    h = holder(bid3, names)
    agents[h].signal(signal.SIGTERM)
    rc = agents[h].wait(180)
    b3 = env.build(bid3)
    check(rc == 0 and b3["status"] == "passed" and b3["jobs"][0]["attempt"] == 1,
          "an agent stopped with SIGTERM finishes its job first", f"{rc} {json.dumps(b3)}")
    check("stopping: no new jobs" in agents[h].text(), "and says so")
    # ---- a newer push to the same branch cancels the older build, VM and all ----
    survivor = [n for n in names if n != h][0]
    sha4 = commit(path, {".kci.yml": PIPELINE.replace("$KCI_MARK", "four")}, "four")
    bid4 = push(sha4, before=sha3)
    wait_for("the job to start", lambda: "marker-started four" in env.log(bid4, "slow"), 180)
    sha5 = commit(path, {".kci.yml": PIPELINE.replace("$KCI_MARK", "five")}, "five")
    bid5 = push(sha5, before=sha4)
    b4 = env.wait_build(bid4, 60)
    check(b4["status"] == "canceled" and b4["jobs"][0]["status"] == "canceled",
          "a newer push to the branch cancels the running build", json.dumps(b4))
    wait_for("the agent to stop the canceled job's VM",
             lambda: re.search(rf"build {bid4} job slow: the server (ended its lease|refused)",
                               agents[survivor].text()), 60)
    b5 = env.wait_build(bid5, 300)
    check(b5["status"] == "passed", "and the newer build runs and passes", json.dumps(b5))
    check("marker-done four" not in env.log(bid4, "slow"), "the canceled job did not go on")
    server.signal(signal.SIGTERM)
    check(server.wait(60) == 0, "the server stops")


main(test)
