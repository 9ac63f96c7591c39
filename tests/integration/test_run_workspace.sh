#!/usr/bin/env bash
# kci run's workspace and artifacts: the working tree (an uncommitted edit in, an ignored
# file out), --commit (exactly that commit), artifacts byte-exact, escapes refused.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

repo=$KCI_HOME/repo
new_repo "$repo"
echo v1 >"$repo/version.txt"
echo "ignored.txt" >"$repo/.gitignore"
cat >"$repo/.kci.yml" <<'YML'
jobs:
  show:
    run: |
      echo "version $(cat version.txt)"
      ls -a /workspace | tr '\n' ' '; echo
      test -f .git/HEAD && echo "git dir present"
YML
commit_all "$repo" "v1"
echo v2 >"$repo/version.txt"
commit_all "$repo" "v2"
echo v3-uncommitted >"$repo/version.txt"
echo new >"$repo/untracked.txt"
echo secret-local >"$repo/ignored.txt"

run_kci run "$repo"
expect_eq "working tree run passes" 0 "$status"
expect_match "the uncommitted edit is in" '\| version v3-uncommitted$' "$out"
expect_match "an untracked file is in" 'untracked.txt' "$out"
if grep -q ignored.txt <<<"$out"; then fail "an ignored file reached the VM"; else ok "ignored file excluded"; fi
expect_match ".git is available" '\| git dir present$' "$out"
if grep -q "lost+found" <<<"$out"; then fail "the workspace shows mke2fs's lost+found"; else ok "no lost+found in /workspace"; fi
expect_match "the header says the tree is dirty" 'uncommitted changes' "$out"

run_kci run "$repo" --commit HEAD~1
expect_eq "--commit run passes" 0 "$status"
expect_match "--commit HEAD~1 runs v1" '\| version v1$' "$out"
if grep -q untracked.txt <<<"$out"; then fail "--commit saw an untracked file"; else ok "--commit is clean"; fi
run_kci run "$repo" --commit no-such-rev
expect_eq "unknown revision exits 125" 125 "$status"
expect_match "unknown revision is named" "unknown revision 'no-such-rev'" "$err"

# A .git *file* pointing at another repository (as a crafted tarball could hold): that
# repository's history and config, credentials in a remote URL included, never reach the VM.
other=$KCI_HOME/other
new_repo "$other"
git -C "$other" config remote.origin.url "https://user:TOKEN-$RANDOM@example.invalid/x.git"
echo "OTHER-CONTENT" >"$other/o.txt"
commit_all "$other" "OTHER-REPO-MARKER"
plain=$KCI_HOME/plain
mkdir -p "$plain"
echo "gitdir: $other/.git" >"$plain/.git"
cat >"$plain/.kci.yml" <<'YML'
jobs:
  look:
    run: |
      ls -a /workspace | tr '\n' ' '; echo
      # The patterns are split so this very file does not match them.
      o=OTHER
      if grep -rqs -e "$o-REPO-MARKER" -e "TO""KEN-" -e "$o-CONTENT" /workspace; then echo "other repository visible"; else echo "nothing of it"; fi
YML
run_kci run "$plain"
expect_eq "a gitfile to another repository: the run passes" 0 "$status"
expect_match "the VM sees nothing of the other repository" '\| nothing of it$' "$out"
if grep -q "other repository visible" <<<"$out"; then fail "the other repository reached the VM"; fi
expect_match "kci says the .git was left out" 'its \.git points at .*other/\.git.*without \.git' "$out"

# Another user's repository: refused, as git refuses it, instead of copied with its .git.
theirs=$KCI_HOME/theirs
new_repo "$theirs"
printf 'jobs:\n  a:\n    run: "true"\n' >"$theirs/.kci.yml"
commit_all "$theirs" "theirs"
chown -R 65534 "$theirs"
run_kci run "$theirs"
expect_eq "another user's repository exits 125" 125 "$status"
expect_match "and names the problem" 'owned by another user' "$err"
chown -R "$(id -u)" "$theirs"

# Artifacts: byte-exact out of the VM, into .kci/artifacts/<job>/.
cat >"$repo/.kci.yml" <<'YML'
jobs:
  build:
    steps:
      - run: |
          mkdir -p out/nested
          head -c 3000000 /dev/urandom > out/nested/blob.bin
          printf 'exec\n' > out/run.sh && chmod 755 out/run.sh
          ln -s nested/blob.bin out/link
          sha256sum out/nested/blob.bin
    artifacts: [out/]
  matrix:
    matrix:
      K: [a b]
    run: echo "$K" > m.txt
    artifacts: [m.txt]
  escape:
    steps:
      - run: ln -s /etc etc-link
    artifacts: [etc-link]
  missing:
    run: "true"
    artifacts: [not-there]
YML
run_kci run "$repo"
expect_eq "an artifact failure fails the run" 1 "$status"
art=$repo/.kci/artifacts
guest_sum=$(grep -oE '[0-9a-f]{64}  out/nested/blob.bin' <<<"$out" | cut -d' ' -f1)
host_sum=$(sha256sum "$art/build/out/nested/blob.bin" 2>/dev/null | cut -d' ' -f1)
[ -n "$guest_sum" ] && expect_eq "artifact is byte-exact" "$guest_sum" "$host_sum" || fail "no checksum from the guest"
[ -x "$art/build/out/run.sh" ] && ok "exec bit kept" || fail "exec bit lost"
expect_eq "relative symlink inside kept" "nested/blob.bin" "$(readlink "$art/build/out/link")"
expect_eq "matrix job's artifact dir is sanitised" "a b" "$(cat "$art/matrix_K-a_b/m.txt" 2>/dev/null)"
expect_match "symlink escape is refused by name" "^escape +failed .*artifact 'etc-link': symlink to '/etc' points outside the archive" "$out"
[ ! -e "$art/escape" ] && ok "nothing of the refused artifacts kept" || fail "escape artifacts dir exists: $(ls -la "$art/escape")"
expect_match "missing artifact is named" "^missing +failed .*not-there" "$out"
expect_match "build passed" '^build +passed' "$out"
if ls -a "$art" | grep -q tmp; then fail "temporary artifact dirs left: $(ls -a "$art")"; else ok "no temp dirs in artifacts/"; fi

# A path that leaves the workspace is refused when the file is read, before anything runs.
printf 'jobs:\n  x:\n    run: "true"\n    artifacts: [../x]\n' >"$repo/.kci.yml"
run_kci run "$repo"
expect_eq "../ artifact exits 125" 125 "$status"
expect_match "../ artifact: file:line:col" '\.kci\.yml:4:[0-9]+: artifact "\.\./x" must not contain' "$err"

# .kci/ lies in the repository: links planted there must not steer kci's writes.
printf 'jobs:\n  hooks:\n    run: echo pwned > x\n    artifacts: [x]\n' >"$repo/.kci.yml"
mkdir -p "$KCI_HOME/victim/hooks" && echo keep >"$KCI_HOME/victim/hooks/pre-commit"
rm -rf "$repo/.kci" && mkdir "$repo/.kci" && ln -s "$KCI_HOME/victim" "$repo/.kci/artifacts"
run_kci run "$repo"
expect_eq "a symlinked .kci/artifacts stops the run" 125 "$status"
expect_match "a symlinked .kci/artifacts is named" 'artifacts is a symlink or not a directory' "$err"
expect_eq "the link's target is untouched" keep "$(cat "$KCI_HOME/victim/hooks/pre-commit")"
rm -rf "$repo/.kci" && ln -s "$KCI_HOME/victim" "$repo/.kci"
run_kci run "$repo"
expect_match "a symlinked .kci is refused" '\.kci is a symlink or not a directory' "$err"
rm -rf "$repo/.kci" && mkdir -p "$repo/.kci/logs" && ln -s "$KCI_HOME/victim/hooks/pre-commit" "$repo/.kci/logs/hooks.log"
run_kci run "$repo"
expect_eq "a log planted as a symlink: the job still runs" 0 "$status"
expect_eq "a log planted as a symlink is not written through" keep "$(cat "$KCI_HOME/victim/hooks/pre-commit")"
[ -f "$repo/.kci/logs/hooks.log" ] && [ ! -L "$repo/.kci/logs/hooks.log" ] && ok "the planted log link is replaced by the log" || fail "no real log file"
