#!/usr/bin/env bash
# --net: nat reaches the outside world (deb.debian.org, the one outside host these machines
# may contact) but not the host's loopback; none has no network device at all; passt never
# outlives kci, even when kci is killed with SIGKILL. The host filter (root) confines only
# the sandbox user's traffic and goes when the last kci using it does.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

command -v passt >/dev/null || { fail "passt is not installed (scripts/install-deps.sh)"; exit 1; }

# passt gets no environment from kci, so ours are told apart by their parent: a kci started
# here. nat_run CMD... runs kci in the background, notes the passt it starts, waits for kci,
# and sets $passt to those pids (plus the usual $status/$out/$err).
passt_of() { pgrep -P "$1" -f '^(/[^ ]*/)?passt ' || true; }

nat_run() {
	local o e pid p=
	o=$(mktemp) e=$(mktemp)
	"$KCI" "$@" >"$o" 2>"$e" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		p=$(passt_of "$pid")
		[ -n "$p" ] && break
		sleep 0.05
	done
	set +e
	wait "$pid"
	status=$?
	set -e
	passt=$p out=$(cat "$o") err=$(cat "$e")
	rm -f "$o" "$e"
}

# expect_gone WHAT PIDS: every one of PIDS has exited (waiting up to 5 s for them).
expect_gone() {
	local left=
	for _ in $(seq 50); do
		left=
		for p in $2; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
		[ -z "$left" ] && break
		sleep 0.1
	done
	expect_eq "$1: no passt left" "" "$left"
}

release=http://deb.debian.org/debian/dists/bookworm/Release

nat_run exec --net nat -- sh -c "wget -q -O - $release | head -n 1"
expect_eq "nat: deb.debian.org is reachable by name" 0 "$status"
expect_eq "nat: the Release file arrives" "Origin: Debian" "$out"
[ -n "$passt" ] && ok "nat: kci started passt" || fail "nat: no passt seen"
# Nothing of kci's environment reaches passt (root can read it even as another uid).
for p in $passt; do
	env_of=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null || true)
	expect_eq "nat: passt has an empty environment" "" "$env_of"
done
expect_gone "nat" "$passt"

run_kci exec --net nat -- sh -c 'ls /sys/class/net | tr "\n" " "; cat /etc/resolv.conf'
expect_eq "nat: eth0 and lo, resolv.conf points at the forwarder" \
	"eth0 lo nameserver 10.0.2.3" "$out"

run_kci exec --net none -- sh -c 'ls /sys/class/net'
expect_eq "none: only lo" "lo" "$out"
run_kci exec -- sh -c 'ls /sys/class/net'
expect_eq "default is none: only lo" "lo" "$out"
run_kci exec --net none -- sh -c "wget -T 5 -q -O - $release"
[ "$status" -ne 0 ] && ok "none: deb.debian.org is unreachable" ||
	fail "none: deb.debian.org answered"

run_kci exec --net bogus -- true
expect_eq "bad --net exits 125" 125 "$status"
expect_match "bad --net says what is valid" "none or nat" "$err"

# The host's loopback, its addresses, its LAN and private networks stay out of reach, for
# kci as root and without. kci runs in a network namespace made here, so no probe leaves
# this machine: its "host" is on a veth whose peer is a router and an "outside" host in a
# namespace of its own. Both run a web server; the host's listens on 0.0.0.0, so on its
# loopback too. The outside server is the control: nat works there.
cat >"$KCI_HOME/netns.sh" <<'INNER'
set -u
port=18080
ip link set lo up
ip link add kci0 type veth peer name kci1
# The host's LAN is 198.51.100.0/24, a documentation range no fixed list of private ranges
# covers, and 10.99.0.0/24; the router on it, 198.51.100.2 (10.99.0.2), also holds the
# outside world's 203.0.113.2 (standing in for a public address), reached through it.
ip addr add 198.51.100.1/24 dev kci0
ip addr add 10.99.0.1/24 dev kci0
ip link set kci0 up
ip route add default via 198.51.100.2 dev kci0
unshare -n sh -c "until ip link show kci1 >/dev/null 2>&1; do sleep 0.1; done
	ip addr add 198.51.100.2/24 dev kci1; ip addr add 10.99.0.2/24 dev kci1
	ip addr add 203.0.113.2/32 dev kci1
	ip link set kci1 up; ip link set lo up
	exec python3 -m http.server --bind 0.0.0.0 $port" >/dev/null 2>&1 &
outside=$!
# Move the peer only once unshare has made the outside namespace.
while [ "$(readlink /proc/$outside/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do sleep 0.05; done
ip link set kci1 netns "$outside"
mkdir -p "$KCI_HOME/www"
truncate -s 100M "$KCI_HOME/www/big"
python3 -m http.server --bind 0.0.0.0 --directory "$KCI_HOME/www" "$port" >/dev/null 2>&1 &
host=$!
for _ in $(seq 100); do
	curl -s -m 1 -o /dev/null "http://127.0.0.1:$port/" &&
		curl -s -m 1 -o /dev/null "http://203.0.113.2:$port/" && break
	sleep 0.1
done
curl -s -m 5 -o /dev/null -w "host:%{http_code}\n" "http://127.0.0.1:$port/"
curl -s -m 5 -o /dev/null -w "outside:%{http_code}\n" "http://203.0.113.2:$port/"
curl -s -m 5 -o /dev/null -w "private:%{http_code}\n" "http://10.99.0.2:$port/"
curl -s -m 5 -o /dev/null -w "lan:%{http_code}\n" "http://198.51.100.2:$port/"
# A nat VM that holds the filter table for the checks below.
"$KCI" exec --net nat -- sleep 600 >/dev/null 2>&1 &
holder=$!
for _ in $(seq 600); do
	nft list table inet kci_net >/dev/null 2>&1 && break
	sleep 0.1
done
nft list table inet kci_net >/dev/null 2>&1 && echo "table:loaded"
# The table touches only the sandbox user's traffic: the kernel's own RSTs (no socket) must
# pass, so a closed loopback port is refused (curl 7), not left to time out (curl 28).
curl -s -o /dev/null --connect-timeout 10 "http://127.0.0.1:1/"
echo "closed-port:$?"
curl -s -o /dev/null -m 120 -w "big:%{size_download}\n" "http://127.0.0.1:$port/big"
# busybox nc -w does not bound the connect itself; timeout does.
probes='
	for target in 203.0.113.2 10.99.0.2 198.51.100.2 10.0.2.2 127.0.0.1 10.0.2.3 198.51.100.1 10.99.0.1 169.254.169.254; do
		if printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 nc "$target" '"$port"' 2>/dev/null |
			grep -q "^HTTP/1.0 200"; then
			echo "$WHO:$target:open"
		else
			echo "$WHO:$target:closed"
		fi
	done'
"$KCI" exec --net nat -e WHO=root -- sh -c "$probes"
echo "kci:$?"
# Another kci still has a nat VM: the table stays until the last one is gone.
nft list table inet kci_net >/dev/null 2>&1 && echo "table:kept"
kill -TERM "$holder"
wait "$holder"
nft list table inet kci_net >/dev/null 2>&1 && echo "table:left" || echo "table:removed"
# The same probes from a kci without root (uid 4242): its network stack runs in a user and
# network namespace of the VM's own, with the same rules, connected outward by pasta. kci,
# its agent and the guest bundle are bind-mounted where that uid can reach them, and
# /dev/net/tun (0600 on some hosts; Debian makes it 0666) is made usable by it.
nr=$(mktemp -d)
chmod 755 "$nr"
mkdir -p "$nr/bin" "$nr/guest" "$nr/home" "$nr/dev"
chown 4242:4242 "$nr/home"
mknod -m 666 "$nr/dev/tun" c 10 200
unshare -m sh -c '
	mount --bind "$(dirname "$KCI")" "$1/bin" && mount --bind "$KCI_GUEST_DIR" "$1/guest" &&
	mount --bind "$1/dev/tun" /dev/net/tun &&
	exec setpriv --reuid 4242 --regid 4242 --clear-groups env -i PATH=/usr/bin:/bin \
		KCI_HOME="$1/home" KCI_GUEST_DIR="$1/guest" \
		"$1/bin/$(basename "$KCI")" exec --net nat -e WHO=user -- sh -c "$2"' _ "$nr" "$probes"
echo "user-kci:$?"
rm -rf "$nr"
kill "$host" "$outside"
wait 2>/dev/null
INNER
netns_out=$(KCI="$KCI" unshare -n bash "$KCI_HOME/netns.sh" 2>&1)
expect_match "netns: the host reaches its own server" "^host:200$" "$netns_out"
expect_match "netns: the host reaches the outside server" "^outside:200$" "$netns_out"
expect_match "netns: kci ran" "^kci:0$" "$netns_out"
expect_match "netns: the host reaches the private server" "^private:200$" "$netns_out"
expect_match "netns: the host reaches its LAN's router" "^lan:200$" "$netns_out"
expect_match "netns: a nat VM loads the filter table" "^table:loaded$" "$netns_out"
expect_match "filter: a closed loopback port is refused at once" "^closed-port:7$" "$netns_out"
expect_match "filter: a 100 MB loopback transfer completes" "^big:104857600$" "$netns_out"
expect_match "filter: kept while another kci has a nat VM" "^table:kept$" "$netns_out"
expect_match "filter: removed when the last kci with a nat VM exits" "^table:removed$" \
	"$netns_out"
expect_match "netns: kci without root ran" "^user-kci:0$" "$netns_out"
for who in root user; do
	expect_match "$who: the outside world is reachable" "^$who:203.0.113.2:open$" "$netns_out"
	expect_match "$who: a private network is not" "^$who:10.99.0.2:closed$" "$netns_out"
	expect_match "$who: nor the host's LAN, in a documentation range" \
		"^$who:198.51.100.2:closed$" "$netns_out"
	expect_match "$who: nor the host's own addresses" "^$who:198.51.100.1:closed$" "$netns_out"
	expect_match "$who: nor the host's own private address" "^$who:10.99.0.1:closed$" "$netns_out"
	expect_match "$who: nor link-local metadata" "^$who:169.254.169.254:closed$" "$netns_out"
	expect_match "$who: host loopback not reachable through the gateway" \
		"^$who:10.0.2.2:closed$" "$netns_out"
	expect_match "$who: 127.0.0.1 is the guest's own loopback" "^$who:127.0.0.1:closed$" \
		"$netns_out"
	expect_match "$who: nor through the DNS forwarder's address" "^$who:10.0.2.3:closed$" \
		"$netns_out"
done

# SIGKILL to kci: QEMU dies of its parent-death signal, then passt of its closed socket.
"$KCI" exec --net nat -- sleep 60 >/dev/null 2>&1 &
kci_pid=$!
passt=
for _ in $(seq 300); do
	passt=$(passt_of "$kci_pid")
	[ -n "$passt" ] && pgrep -f "qemu-system.*" -P "$kci_pid" >/dev/null && break
	sleep 0.1
done
[ -n "$passt" ] && ok "passt runs while the VM does" || fail "no passt seen for the VM"
kill -9 "$kci_pid"
wait "$kci_pid" 2>/dev/null || true
expect_gone "after kill -9 of kci" "$passt"
for _ in $(seq 50); do
	pgrep -f "qemu-system.*$KCI_HOME" >/dev/null || break
	sleep 0.1
done
# The next kci sweeps the dead one's runtime dir, for assert_clean.
run_kci exec -- true
expect_eq "a later run still works" 0 "$status"
