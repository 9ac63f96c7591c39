#!/usr/bin/env bash
# kci run's secrets: injected into the job's env, never in kci's output (text or JSON) nor
# in the saved logs, even when printed in pieces; a missing secret stops the run up front.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

repo=$KCI_HOME/repo
new_repo "$repo"
cat >"$repo/.kci.yml" <<'YML'
secrets: [API_TOKEN]
jobs:
  leak:
    secrets: [DB_PASSWORD]
    steps:
      - name: print the secrets every way
        run: |
          echo "token=$API_TOKEN"
          echo "password: $DB_PASSWORD" >&2
          i=1; while [ $i -le ${#API_TOKEN} ]; do printf '%s' "$(echo "$API_TOKEN" | cut -c$i)"; i=$((i+1)); done; echo
          for i in 1 2 3; do printf '%s' "${API_TOKEN%${API_TOKEN#?????}}"; printf '%s\n' "${API_TOKEN#?????}"; done
          test ${#API_TOKEN} -eq 28 && echo "length ok"
      - name: fail with the secret in the message
        run: |
          echo "fatal: $DB_PASSWORD rejected"; exit 4
YML
commit_all "$repo" "secrets"

token=tok-3f9a1c77e2b84d0aa6e1
token=${token}XYZ9
password='pa ss*w0rd$'
printf 'DB_PASSWORD=%s\n# comment\n' "$password" >"$KCI_HOME/secrets.env"

API_TOKEN=$token run_kci run "$repo" --secret-file "$KCI_HOME/secrets.env"
expect_eq "the failing step fails the run" 1 "$status"
expect_match "the secret reached the job (masked)" '^leak +\| token=\*\*\*$' "$out"
expect_match "stderr is masked too" '^leak +\| password: \*\*\*$' "$out"
expect_match "the job saw the value" '^leak +\| length ok$' "$out"
all="$out$err$(cat "$repo"/.kci/logs/*.log)"
for s in "$token" "$password"; do
	if grep -qF -- "$s" <<<"$all"; then fail "a secret leaked: $s"; else ok "secret never shown"; fi
done
if grep -qF -- "${token:0:5}${token:5}" <<<"$all"; then fail "split secret leaked"; else ok "secret printed in two writes is masked"; fi

API_TOKEN=$token run_kci run "$repo" --secret-file "$KCI_HOME/secrets.env" --json
for s in "$token" "$password"; do
	if grep -qF -- "$s" <<<"$out$err"; then fail "a secret leaked in JSON: $s"; else ok "secret not in JSON events"; fi
done
expect_match "JSON shows the masked line" '"line":"token=\*\*\*"' "$out"

# Missing values stop the run before any VM starts.
run_kci run "$repo"
expect_eq "missing secrets exit 125" 125 "$status"
expect_match "missing secrets are named" 'secrets API_TOKEN, DB_PASSWORD are not set' "$err"
expect_match "missing secrets: both named" 'DB_PASSWORD' "$err"
printf 'garbage line\n' >"$KCI_HOME/bad.env"
run_kci run "$repo" --secret-file "$KCI_HOME/bad.env"
expect_eq "malformed secret file exits 125" 125 "$status"
expect_match "malformed secret file: the line is named" 'line 1 is not NAME=VALUE' "$err"
