#!/usr/bin/env bash
# kci run's `network:`: a nat job fetches deb.debian.org's Release file but cannot connect
# to a server on the host's 127.0.0.1; a job without network reaches neither.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

command -v passt >/dev/null || { fail "passt is not installed (scripts/install-deps.sh)"; exit 1; }
repo=$KCI_HOME/repo
new_repo "$repo"
# A free port: this test also runs cold (integration/cold/), possibly at the same time.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0",0)); print(s.getsockname()[1])')
# What the host's server serves: a guest that prints it has reached the host's loopback.
# (Only the content proves it: this network's intercepting proxy accepts connections to
# any address, so a successful connect alone proves nothing.)
token=host-loopback-$RANDOM$RANDOM
# The host's own LAN address: traffic to it never leaves this machine.
hostaddr=$(ip -4 -o addr show scope global | awk '{sub("/.*", "", $4); print $4; exit}')
[ -n "$hostaddr" ] || hostaddr=127.0.0.2
cat >"$repo/.kci.yml" <<YML
env:
  RELEASE: http://deb.debian.org/debian/dists/bookworm/Release
  PORT: "$port"
  TOKEN: "$token"
  HOSTADDR: "$hostaddr"
jobs:
  online:
    network: nat
    steps:
      - name: fetch the Release file
        run: timeout 30 wget -q -O - "\$RELEASE" | head -n 1
      - name: probe the host
        run: |
          for target in 10.0.2.2 10.0.2.3 127.0.0.1 192.0.2.1 \$HOSTADDR; do
            got=\$(timeout 10 wget -q -O - "http://\$target:\$PORT/token" 2>/dev/null) || true
            case "\$got" in *\$TOKEN*) echo "probe \$target reached the host";; *) echo "probe \$target no";; esac
          done
  offline:
    steps:
      - name: interfaces
        run: echo "interfaces \$(ls /sys/class/net | tr '\n' ' ')"
      - name: fetch the Release file
        run: if timeout 10 wget -q -O - "\$RELEASE" >/dev/null 2>&1; then echo "offline fetch worked"; else echo "offline fetch failed"; fi
      - name: probe the host
        run: |
          for target in 10.0.2.2 127.0.0.1; do
            got=\$(timeout 10 wget -q -O - "http://\$target:\$PORT/token" 2>/dev/null) || true
            case "\$got" in *\$TOKEN*) echo "probe \$target reached the host";; *) echo "probe \$target no";; esac
          done
YML
commit_all "$repo" "network jobs"

# The host's server on 127.0.0.1, up for the whole run.
mkdir -p "$KCI_HOME/www"
echo "$token" >"$KCI_HOME/www/token"
(cd "$KCI_HOME/www" && exec python3 -m http.server --bind 0.0.0.0 "$port" >/dev/null 2>&1) &
srv=$!
trap 'kill $srv 2>/dev/null; finish' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
expect_eq "the host reaches its own server" "$token" "$(curl -s "http://127.0.0.1:$port/token")"

run_kci run "$repo" --jobs 2
expect_eq "both jobs pass" 0 "$status"
expect_match "nat: the Release file arrives" '^online +\| Origin: Debian$' "$out"
expect_match "nat: the host's loopback is not behind the gateway" '^online +\| probe 10.0.2.2 no$' "$out"
expect_match "nat: nor behind the DNS forwarder" '^online +\| probe 10.0.2.3 no$' "$out"
expect_match "nat: 127.0.0.1 is the guest's own" '^online +\| probe 127.0.0.1 no$' "$out"
expect_match "nat: nor the host's own router" '^online +\| probe 192.0.2.1 no$' "$out"
expect_match "nat: nor the host's own LAN address (root: nftables filter)" "^online +\\| probe $hostaddr no$" "$out"
if grep -q "reached the host" <<<"$out"; then fail "a guest reached the host's loopback"; else ok "no probe reached the host"; fi
expect_match "none: only lo" '^offline +\| interfaces lo $' "$out"
expect_match "none: no outside world" '^offline +\| offline fetch failed$' "$out"
expect_match "none: no host" '^offline +\| probe 10.0.2.2 no$' "$out"
