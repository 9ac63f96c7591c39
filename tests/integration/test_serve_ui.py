#!/usr/bin/env python3
"""kci serve's web UI in headless Chromium (Debian's chromium, driven by playwright-core from
npm, installed here on first use): the build list without JavaScript, a failing job marked
failed, a running job's log lines arriving live without a reload, its status turning
final when the build is canceled, a <script> line shown as text, colours rendered. The page
runs in a real browser against a real server and VMs. The live job prints for two minutes,
far longer than the browser needs on a loaded machine, and is canceled once the page has
seen lines arrive: no race between the browser's start and the job's end."""
import json, os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_lib import check, fail, github_headers, github_push, main, make_repo, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
LIVE = r"""jobs:
  live:
    steps:
      - name: talk
        run: |
          echo '<script>window.kciPwned=1</script>'
          printf '\033[31mred-text\033[0m plain\n'
          i=1
          while [ $i -le 300 ]; do echo "live-line-$i"; i=$((i+1)); sleep 0.4; done
          echo live-line-last
"""
FAILING = """jobs:
  broken:
    run: echo "this fails"; exit 1
"""


def playwright():
    """playwright-core's directory, installed with npm into a cache on first use."""
    cache = os.environ.get("KCI_TEST_NPM_CACHE",
                           os.path.join(os.path.expanduser("~"), ".cache", "kci-test-npm"))
    mod = os.path.join(cache, "node_modules", "playwright-core")
    if not os.path.isdir(mod):
        os.makedirs(cache, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", cache, "--no-audit", "--no-fund",
                        "--loglevel=error", "playwright-core@1"], check=True)
    return mod


def test(env):
    for tool in ("node", "npm", "chromium"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            raise RuntimeError(f"{tool} is not installed (scripts/install-deps.sh installs it)")
    mod = playwright()
    repos = []
    for name, pipeline in (("acme/live", LIVE), ("acme/broken", FAILING)):
        path = env.path("repos", name.split("/")[1])
        sha = make_repo(path, {".kci.yml": pipeline})
        repos.append({"name": name, "forge": "github", "secret": "s3cret",
                      "clone_url": "file://" + path, "sha": sha})
    config = env.config(repos)
    env.serve(config, "--capacity", "2")
    ids = []
    for r in repos:
        body = json.dumps(github_push(r["name"], "refs/heads/main", r["sha"],
                                      r["clone_url"])).encode()
        code, answer = env.hook("github", body, github_headers(r["secret"], body))
        assert code == 201, f"push answered {code} {answer}"
        ids.append(json.loads(answer)["build"])
    live, broken = ids
    check(env.wait_build(broken)["status"] == "failed", "the broken build fails")
    wait_for("the live job to print", lambda: "live-line-1" in env.log(live, "live"), 180)
    r = subprocess.run(["node", os.path.join(HERE, "serve_ui.js"), env.url, str(broken),
                        str(live), "live", env.token("admin.token")], capture_output=True,
                       text=True, timeout=400,
                       env=dict(os.environ, PLAYWRIGHT_CORE=mod))
    if r.returncode != 0:
        fail(f"the browser run failed ({r.returncode}): {r.stderr[-2000:]}")
        return
    for res in json.loads(r.stdout.strip().splitlines()[-1]):
        check(res["ok"], res["what"], res["detail"])
    check(env.wait_build(live)["status"] == "canceled", "the live build ends canceled")


main(test)
