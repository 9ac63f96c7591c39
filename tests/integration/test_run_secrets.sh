#!/usr/bin/env bash
# kci run's secrets: only what the user grants (--secret NAME, --secret-file) reaches a job,
# never a variable the pipeline merely names; injected into the job's env, never in kci's
# output (text or JSON) nor in the saved logs, even when printed in pieces; a secret asked
# for and not granted stops the run up front.
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

API_TOKEN=$token run_kci run "$repo" --secret API_TOKEN --secret-file "$KCI_HOME/secrets.env"
expect_eq "the failing step fails the run" 1 "$status"
expect_match "the secret reached the job (masked)" '^leak +\| token=\*\*\*$' "$out"
expect_match "stderr is masked too" '^leak +\| password: \*\*\*$' "$out"
expect_match "the job saw the value" '^leak +\| length ok$' "$out"
all="$out$err$(cat "$repo"/.kci/logs/*.log)"
for s in "$token" "$password"; do
	if grep -qF -- "$s" <<<"$all"; then fail "a secret leaked: $s"; else ok "secret never shown"; fi
done
if grep -qF -- "${token:0:5}${token:5}" <<<"$all"; then fail "split secret leaked"; else ok "secret printed in two writes is masked"; fi

API_TOKEN=$token run_kci run "$repo" --secret API_TOKEN --secret-file "$KCI_HOME/secrets.env" --json
for s in "$token" "$password"; do
	if grep -qF -- "$s" <<<"$out$err"; then fail "a secret leaked in JSON: $s"; else ok "secret not in JSON events"; fi
done
expect_match "JSON shows the masked line" '"line":"token=\*\*\*"' "$out"

# Missing values stop the run before any VM starts.
run_kci run "$repo"
expect_eq "missing secrets exit 125" 125 "$status"
expect_match "missing secrets are named" 'asks for secrets API_TOKEN, DB_PASSWORD, which were not granted' "$err"
expect_match "and how to grant them" '--secret NAME' "$err"

# The attack: a pipeline naming a variable of the caller's environment does not get it. The
# value is in kci's environment, yet without --secret the run is refused before any VM.
API_TOKEN=$token DB_PASSWORD=$password run_kci run "$repo"
expect_eq "a secret in the environment but not granted: refused" 125 "$status"
expect_match "refused by name" 'API_TOKEN, DB_PASSWORD, which were not granted' "$err"
if grep -qF -- "$token" <<<"$out$err"; then fail "the refusal printed the value"; else ok "the value is not shown"; fi
[ -z "$(ls -A "$KCI_HOME/run" 2>/dev/null)" ] && ok "nothing was staged" || fail "a refused run staged: $(ls "$KCI_HOME/run")"
run_kci run "$repo" --secret NOT_SET_ANYWHERE
expect_eq "--secret of an unset variable exits 125" 125 "$status"
expect_match "and says so" 'NOT_SET_ANYWHERE is not set in your environment' "$err"
printf 'garbage line\n' >"$KCI_HOME/bad.env"
run_kci run "$repo" --secret-file "$KCI_HOME/bad.env"
expect_eq "malformed secret file exits 125" 125 "$status"
expect_match "malformed secret file: the line is named" 'line 1 is not NAME=VALUE' "$err"
