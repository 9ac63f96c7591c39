#!/usr/bin/env python3
"""kci serve end to end: signed GitHub, Gitea and GitLab pushes of real git repositories
(file://) become builds that run in micro-VMs and pass; the API shows them with their logs;
forged, oversized, malformed and replayed deliveries create nothing; commit statuses reach a
fake forge API with the documented paths, auth headers and bodies; /metrics counts it all."""
import json, os, re, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_lib import (check, commit, fail, gitea_headers, gitea_push, github_headers,
                       github_push, gitlab_headers, gitlab_push, main, make_repo, wait_for,
                       FakeForge)

PIPELINE = """jobs:
  hello:
    steps:
      - name: greet
        run: echo "hello from $FORGE"
"""

FAILING = """jobs:
  hello:
    run: echo "about to fail"; exit 3
"""


def test(env):
    forge = FakeForge()
    repos = {}
    for forge_name, repo in (("github", "acme/widget"), ("gitea", "acme/gadget"),
                             ("gitlab", "acme/gizmo")):
        path = env.path("repos", forge_name)
        sha = make_repo(path, {".kci.yml": PIPELINE.replace("$FORGE", forge_name)})
        repos[forge_name] = {"name": repo, "forge": forge_name, "secret": f"s3cret-{forge_name}",
                             "clone_url": "file://" + path, "path": path, "sha": sha,
                             "api_url": forge.url, "status_token": f"tok-{forge_name}"}
    config = env.config(list(repos.values()))
    server = env.serve(config, "--capacity", "2")

    def builds():
        return env.get("/api/v1/builds")

    # ---- a signed push from each forge builds and passes ----
    gh = repos["github"]
    body = json.dumps(github_push(gh["name"], "refs/heads/main", gh["sha"],
                                  gh["clone_url"])).encode()
    first_headers = github_headers(gh["secret"], body)
    code, answer = env.hook("github", body, first_headers)
    check(code == 201, "a signed GitHub push is accepted (201)", f"{code} {answer}")
    gh_build = json.loads(answer)["build"]

    ge = repos["gitea"]
    gbody = json.dumps(gitea_push(ge["name"], "refs/heads/main", ge["sha"],
                                  ge["clone_url"])).encode()
    code, answer = env.hook("gitea", gbody, gitea_headers(ge["secret"], gbody))
    check(code == 201, "a signed Gitea push is accepted", f"{code} {answer}")
    ge_build = json.loads(answer)["build"]

    gl = repos["gitlab"]
    lbody = json.dumps(gitlab_push(gl["name"], "refs/heads/main", gl["sha"],
                                   gl["clone_url"])).encode()
    code, answer = env.hook("gitlab", lbody, gitlab_headers(gl["secret"]))
    check(code == 201, "a GitLab push with its token is accepted", f"{code} {answer}")
    gl_build = json.loads(answer)["build"]

    for name, bid, r in (("GitHub", gh_build, gh), ("Gitea", ge_build, ge),
                         ("GitLab", gl_build, gl)):
        b = env.wait_build(bid)
        check(b["status"] == "passed", f"the {name} build passed", json.dumps(b))
        check(b["repo"] == r["name"] and b["ref"] == "refs/heads/main"
              and b["commit"] == r["sha"] and b["id"] == bid and b["created"],
              f"the {name} build names its repo, ref and commit", json.dumps(b))
        job = b["jobs"][0]
        check(job["name"] == "hello" and job["status"] == "passed" and job["attempt"] == 1
              and job["duration_ms"] > 0, f"the {name} build's job is listed", json.dumps(job))
        log = env.log(bid, "hello")
        check(f"hello from {r['forge']}" in log and "== job passed" in log,
              f"the {name} job's log is served", log[-500:])

    listed = builds()
    check([b["id"] for b in listed][:3] == sorted([gh_build, ge_build, gl_build], reverse=True),
          "GET /api/v1/builds lists builds newest first", json.dumps(listed)[:300])

    # ---- deliveries that must create nothing ----
    before = len(builds())
    code, _ = env.hook("github", body, github_headers(None, body))
    check(code == 401, "an unsigned GitHub delivery is 401", str(code))
    code, _ = env.hook("github", body, github_headers("wrong-secret", body))
    check(code == 401, "a wrongly signed GitHub delivery is 401", str(code))
    code, _ = env.hook("gitea", gbody, gitea_headers("wrong-secret", gbody))
    check(code == 401, "a wrongly signed Gitea delivery is 401", str(code))
    code, _ = env.hook("gitlab", lbody, gitlab_headers("wrong-token"))
    check(code == 401, "a GitLab delivery with a wrong token is 401", str(code))
    big = json.dumps(dict(github_push(gh["name"], "refs/heads/main", gh["sha"],
                                      gh["clone_url"]), pad="x" * (1 << 20))).encode()
    code, _ = env.hook("github", big, github_headers(gh["secret"], big))
    check(code == 413, "an oversized delivery is 413", str(code))
    junk = b'{"repository": {"full_name": "acme/widget"}, "ref": 7'
    code, _ = env.hook("github", junk, github_headers(gh["secret"], junk))
    check(code == 400, "a malformed (signed) delivery is 400", str(code))
    nocommit = json.dumps(dict(github_push(gh["name"], "refs/heads/main", gh["sha"],
                                           gh["clone_url"]), after="not-a-commit")).encode()
    code, _ = env.hook("github", nocommit, github_headers(gh["secret"], nocommit))
    check(code == 400, "a push whose commit is not a commit id is 400", str(code))
    other = json.dumps(github_push("evil/repo", "refs/heads/main", gh["sha"],
                                   gh["clone_url"])).encode()
    code, _ = env.hook("github", other, github_headers(gh["secret"], other))
    check(code == 404, "a delivery for a repository not configured is 404", str(code))
    code, answer = env.hook("github", body, first_headers)
    check(code == 200 and json.loads(answer).get("build") == gh_build,
          "a replayed delivery answers with its first build", f"{code} {answer}")
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1,
                       "repository": {"full_name": gh["name"]}}).encode()
    code, _ = env.hook("github", ping, github_headers(gh["secret"], ping, event="ping"))
    check(code == 200, "a ping is answered 200", str(code))
    gone = json.dumps(github_push(gh["name"], "refs/heads/old", gh["sha"], gh["clone_url"],
                                  before=gh["sha"], deleted=True)).encode()
    code, answer = env.hook("github", gone, github_headers(gh["secret"], gone))
    check(code == 200 and "deletion" in answer, "a branch deletion is ignored, with why",
          f"{code} {answer}")
    check(len(builds()) == before, "none of them created a build",
          f"{before} -> {len(builds())}")

    # ---- a failing pipeline fails its build, and the forge hears it ----
    sha2 = commit(gh["path"], {".kci.yml": FAILING}, "break it")
    body2 = json.dumps(github_push(gh["name"], "refs/heads/main", sha2, gh["clone_url"],
                                   before=gh["sha"])).encode()
    code, answer = env.hook("github", body2, github_headers(gh["secret"], body2))
    check(code == 201, "the second push is accepted", f"{code} {answer}")
    b2 = env.wait_build(json.loads(answer)["build"])
    check(b2["status"] == "failed" and b2["jobs"][0]["status"] == "failed",
          "a failing step fails the job and the build", json.dumps(b2))
    check("exited with 3" in (b2["jobs"][0].get("message") or ""),
          "the job says why it failed", json.dumps(b2["jobs"][0]))

    # ---- commit statuses, as each forge documents them ----
    gh_path = f"/repos/acme/widget/statuses/{gh['sha']}"
    gh2_path = f"/repos/acme/widget/statuses/{sha2}"
    ge_path = f"/api/v1/repos/acme/gadget/statuses/{ge['sha']}"
    gl_path = f"/api/v4/projects/acme%2Fgizmo/statuses/{gl['sha']}"
    for path, final in ((gh_path, "success"), (gh2_path, "failure"), (ge_path, "success"),
                        (gl_path, "success")):
        try:
            wait_for(f"status {final} at {path}",
                     lambda: forge.states(path) and forge.states(path)[-1] == final, 60)
        except TimeoutError:
            pass
        states = forge.states(path)
        check(states and states[0] in ("pending", "running") and states[-1] == final,
              f"{path.split('/statuses')[0]}: statuses end {final}", str(states))
    with forge.lock:
        reqs = list(forge.requests)
    ghr = [r for r in reqs if r["path"] == gh_path][-1]
    check(ghr["headers"].get("authorization") == "Bearer tok-github"
          and ghr["body"].get("context") == "kci"
          and ghr["body"].get("target_url") == f"{env.url}/builds/{gh_build}",
          "GitHub statuses carry the token, the context and a link to the build",
          json.dumps(ghr))
    ger = [r for r in reqs if r["path"] == ge_path][-1]
    check(ger["headers"].get("authorization") == "token tok-gitea",
          "Gitea statuses use its token scheme", json.dumps(ger["headers"]))
    glr = [r for r in reqs if r["path"] == gl_path][-1]
    check(glr["headers"].get("private-token") == "tok-gitlab" and glr["body"].get("name") == "kci",
          "GitLab statuses use PRIVATE-TOKEN and name", json.dumps(glr))

    # ---- cancel and restart, with the admin token only ----
    code, _ = env.post(f"/api/v1/builds/{gh_build}/restart")
    check(code == 401, "restart without the admin token is 401", str(code))
    code, answer = env.post(f"/api/v1/builds/{gh_build}/restart", token=env.token("admin.token"))
    check(code == 201, "restart with the admin token makes a new build", f"{code} {answer}")
    again = env.wait_build(json.loads(answer)["build"])
    check(again["status"] == "passed" and again["commit"] == gh["sha"],
          "the restarted build runs the same commit and passes", json.dumps(again))
    code, _ = env.post(f"/api/v1/builds/{gh_build}/cancel", token=env.token("admin.token"))
    check(code == 200 and env.build(gh_build)["status"] == "passed",
          "canceling a finished build changes nothing", str(code))

    # ---- /metrics ----
    metrics = env.get("/metrics", raw=True) or ""

    def metric(name):
        m = re.search(r"^" + re.escape(name) + r" (\S+)$", metrics, re.M)
        return float(m.group(1)) if m else None

    check(metric('kci_webhook_deliveries_total{result="unauthorized"}') == 4,
          "/metrics counts the refused deliveries", metrics[-1500:])
    check(metric('kci_webhook_deliveries_total{result="too_large"}') == 1
          and metric('kci_webhook_deliveries_total{result="duplicate"}') == 1
          and metric('kci_webhook_deliveries_total{result="accepted"}') == 5
          and metric('kci_webhook_deliveries_total{result="malformed"}') == 2
          and metric('kci_webhook_deliveries_total{result="unknown_repo"}') == 1
          and metric('kci_webhook_deliveries_total{result="ignored"}') == 1,
          "/metrics counts deliveries by result")
    check(metric('kci_job_results_total{status="passed"}') == 4
          and metric('kci_job_results_total{status="failed"}') == 1,
          "/metrics counts job results")
    check((metric("kci_vm_boot_seconds_count") or 0) == 5, "/metrics has a boot time per job")
    check(metric("kci_queue_depth") == 0 and metric("kci_agents_connected") == 1,
          "/metrics: nothing queued, the local agent connected")

    # ---- stopping: one line, exit 0 ----
    server.signal(15)
    check(server.wait(60) == 0, "kci serve stops on SIGTERM with status 0", server.text()[-500:])
    log = server.text()
    check(re.search(r"build \d+: acme/widget refs/heads/main", log) is not None,
          "kci serve logs a line per build", log[-1000:])
    check("refused" in log, "kci serve logs refused deliveries")
    forge.stop()


main(test)
