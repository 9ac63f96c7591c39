#!/usr/bin/env bash
# QEMU runs in a jail (root): its own unprivileged uid, no capabilities, no_new_privs, new
# mount/PID/IPC/UTS/network namespaces, a root holding only /usr, four device nodes and its
# VM's files, an empty environment, only the fds kci passes, and a cgroup leaf that caps its
# memory, processes and CPU. Nothing of it is left when the VM ends.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

[ "$(id -u)" -eq 0 ] || { ok "not root: the jail's root-only parts are not tested"; exit 0; }

# An fd the caller holds (kci must not hand it on) and a secret in kci's environment.
marker=$KCI_HOME/caller-fd-marker
echo "private" >"$marker"
exec 7<"$marker"
SECRET_TOKEN=hunter2-$RANDOM "$KCI" exec --memory 256M --cpus 1 -- sh -c 'echo up; sleep 60' \
	>"$KCI_HOME/out" 2>&1 &
kci_pid=$!
exec 7<&-
for _ in $(seq 600); do
	grep -q up "$KCI_HOME/out" 2>/dev/null && break
	sleep 0.1
done
qemu=$(pgrep -f "qemu-system.*$KCI_HOME" | head -n1)
[ -n "$qemu" ] && ok "QEMU found" || { fail "no QEMU: $(cat "$KCI_HOME/out")"; exit 1; }

status_of() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$qemu/status"; }
uid=$(status_of Uid)
[ "$uid" != 0 ] && ok "QEMU's uid is not root ($uid)" || fail "QEMU runs as root"
expect_eq "QEMU has no effective capabilities" 0000000000000000 "$(status_of CapEff)"
expect_eq "nor permitted ones" 0000000000000000 "$(status_of CapPrm)"
expect_eq "nor any in its bounding set" 0000000000000000 "$(status_of CapBnd)"
expect_eq "no_new_privs" 1 "$(status_of NoNewPrivs)"
for ns in mnt pid net ipc uts; do
	[ "$(readlink "/proc/$qemu/ns/$ns")" != "$(readlink "/proc/self/ns/$ns")" ] &&
		ok "own $ns namespace" || fail "QEMU shares the host's $ns namespace"
done
expect_eq "an empty environment" "" "$(tr '\0' '\n' <"/proc/$qemu/environ")"
fds=$(for f in /proc/$qemu/fd/*; do readlink "$f"; done)
if grep -qF "$marker" <<<"$fds"; then fail "QEMU holds the caller's fd: $fds"; else ok "not the caller's fds"; fi
if grep -q "$KCI_HOME" <<<"$fds"; then fail "QEMU sees host paths: $fds"; else ok "only jail paths among its files"; fi
expect_eq "its root holds only /usr, /dev and its VM" "bin dev lib lib64 usr vm" \
	"$(ls "/proc/$qemu/root" | tr '\n' ' ' | sed 's/ $//')"
# The first VM of a fresh KCI_HOME makes the VM template: its RAM is a file of its own.
vm_files="initrd ram root.ext4 scratch.ext4 vmlinuz"
[ "${KCI_COLD:-}" != 1 ] || vm_files="initrd root.ext4 scratch.ext4 vmlinuz"
expect_eq "and /vm only that VM's files" "$vm_files" \
	"$(ls "/proc/$qemu/root/vm" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "and /dev four nodes" "null random urandom zero" \
	"$(ls "/proc/$qemu/root/dev" | tr '\n' ' ' | sed 's/ $//')"

# The cgroup leaf: v2 (memory.max, pids.max) or v1 (memory.limit_in_bytes, pids.max).
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -q memory /sys/fs/cgroup/cgroup.controllers; then
	leaf=/sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' "/proc/$qemu/cgroup")
	mem=$(cat "$leaf/memory.max")
	pids=$(cat "$leaf/pids.max")
	cpu=$(cut -d' ' -f1 "$leaf/cpu.max")
else
	leaf=/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' "/proc/$qemu/cgroup")
	mem=$(cat "$leaf/memory.limit_in_bytes")
	pids=$(cat "/sys/fs/cgroup/pids$(awk -F: '$2 == "pids" {print $3}' "/proc/$qemu/cgroup")/pids.max")
	cpu=$(cat "/sys/fs/cgroup/cpu$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print $3}' "/proc/$qemu/cgroup")/cpu.cfs_quota_us")
fi
expect_match "QEMU is in a kci cgroup leaf" '/kci/vm-[A-Za-z0-9]+$' "$leaf"
# 256 MiB of guest RAM plus QEMU's own: capped, and far below the host's memory.
[ "$mem" -gt $((256 << 20)) ] && [ "$mem" -le $((2048 << 20)) ] &&
	ok "memory capped at $mem bytes" || fail "memory cap $mem"
[ "$pids" != max ] && [ "$pids" -le 512 ] && ok "pids capped at $pids" || fail "pids cap $pids"
expect_eq "CPU capped at one CPU's worth (--cpus 1)" 100000 "$cpu"

kill -TERM "$kci_pid"
wait "$kci_pid" 2>/dev/null || true
[ ! -d "$leaf" ] && ok "the cgroup leaf is gone with the VM" || fail "cgroup leaf left: $leaf"
