#!/usr/bin/env bash
# VM templates (docs/templates.md): the first VM of a kind is saved as a template, later
# ones are restored from it. Clones of one template differ in everything that must be
# theirs (boot id, random bytes, host name, machine id), keep the host's clock, see only
# their own workspace and writes; a job cannot change the template; a damaged template
# is removed and the job boots cold with one note; concurrent kci processes make one
# template; --cold makes none; kci images / prune show and remove them.
. "${KCI_TEST_LIB:-$(dirname "$0")/lib.sh}"

tdir="$KCI_HOME/cache/templates"
templates() { find "$tdir" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | grep -v '\.tmp-' || true; }

run_kci exec --cold -- true
expect_eq "--cold passes" 0 "$status"
expect_eq "--cold makes no template" "" "$(templates)"

# The first warm VM boots cold and is saved as the template for its kind.
run_kci exec -- echo first
expect_eq "the first VM runs its command" "first" "$out"
t=$(templates)
expect_eq "one template made" 1 "$(grep -c . <<<"$t")"
for f in state ram scratch.ext4 meta key; do
	[ -f "$t/$f" ] || fail "template file $f missing"
done
expect_eq "the templates dir is private" 700 "$(stat -c %a "$tdir")"
expect_eq "the state is private" 600 "$(stat -c %a "$t/state")"

# Two clones, each with its own workspace, at the same time. A VM with a workspace disk is
# a kind of its own: the first one makes its template.
for i in 0 1 2; do
	mkdir -p "$KCI_HOME/ws$i"
	echo "workspace $i" >"$KCI_HOME/ws$i/mine"
done
run_kci exec --workspace "$KCI_HOME/ws0" -- cat /workspace/mine
expect_eq "the first VM with a workspace sees it" "workspace 0" "$out"
probe='cat /proc/sys/kernel/random/boot_id; cat /proc/sys/kernel/random/uuid
	head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n"; echo
	date +%s; hostname; cat /etc/machine-id; cat /workspace/mine
	echo written >/workspace/new; ls /workspace | tr "\n" " "; echo'
for i in 1 2; do
	"$KCI" exec --debug --workspace "$KCI_HOME/ws$i" -- sh -c "$probe" \
		>"$KCI_HOME/out$i" 2>"$KCI_HOME/err$i" &
	pids[$i]=$!
done
for i in 1 2; do
	wait "${pids[$i]}" || fail "clone $i failed: $(tail -3 "$KCI_HOME/err$i")"
	grep -q -- '-incoming defer' "$KCI_HOME/err$i" || fail "VM $i was not restored from the template"
done
now=$(date +%s)
mapfile -t a <"$KCI_HOME/out1"
mapfile -t b <"$KCI_HOME/out2"
[ "${a[0]}" != "${b[0]}" ] && ok "clones have different boot ids" || fail "same boot id ${a[0]}"
[ "${a[1]}" != "${b[1]}" ] && ok "clones have different uuids" || fail "same uuid ${a[1]}"
[ ${#a[2]} -eq 64 ] && [ "${a[2]}" != "${b[2]}" ] && ok "clones read different bytes from /dev/urandom" ||
	fail "urandom: '${a[2]}' vs '${b[2]}'"
for c in "${a[3]}" "${b[3]}"; do
	d=$((now - c))
	[ "${d#-}" -le 2 ] && ok "the clone's clock is within 2 s of the host's ($d s)" ||
		fail "clock off by $d s"
done
[ "${a[4]}" != "${b[4]}" ] && ok "clones have their own host names" || fail "same host name ${a[4]}"
[ "${a[5]}" != "${b[5]}" ] && expect_match "machine id" '^[0-9a-f]{32}$' "${a[5]}" ||
	fail "same machine id ${a[5]}"
expect_eq "clone 1 sees its workspace" "workspace 1" "${a[6]}"
expect_eq "clone 2 sees its workspace" "workspace 2" "${b[6]}"
expect_eq "clone 1 sees only its files and its writes" "mine new " "${a[7]}"
expect_eq "clone 2 sees only its files and its writes" "mine new " "${b[7]}"
[ ! -e "$KCI_HOME/ws1/new" ] || fail "a clone wrote into the host's workspace dir"

# A job that overwrites all the RAM it can get and every disk it can write does not
# change the template: the next clone is the same as before. (Filling RAM to the last page
# would only summon the OOM killer: 90% of what is free will do.)
hostile='echo marker >/etc/kci-marker
	mkdir -p /m && mount -t tmpfs t /m
	mib=$(awk "/MemAvailable/ {print int(\$2 / 1024 * 0.9)}" /proc/meminfo)
	dd if=/dev/zero of=/m/fill bs=1M count=$mib 2>/dev/null
	for d in /sys/block/vd*; do
		dd if=/dev/zero of=/dev/${d##*/} bs=1M count=64 2>/dev/null && echo "wrote ${d##*/}"
	done
	exit 0'
sum_before=$(cd "$t" && sha256sum ram state scratch.ext4 meta key)
ctime_before=$(stat -c %Z "$t/ram")
run_kci exec --memory 256M -- sh -c "$hostile"
expect_eq "the hostile job ran" 0 "$status"
expect_match "it overwrote its scratch disk" 'wrote vd' "$out"
# --memory 256M is a different kind of VM: it has a template of its own, and the
# original's files are untouched.
expect_eq "the original template's files are unchanged" "$sum_before" \
	"$(cd "$t" && sha256sum ram state scratch.ext4 meta key)"
expect_eq "the original template's RAM file was not written" "$ctime_before" \
	"$(stat -c %Z "$t/ram")"
t256=$(grep -l '"memory_mib": 256' "$tdir"/*/meta | xargs -r dirname)
[ -n "$t256" ] || fail "no template made for --memory 256M"
sum256=$(cd "$t256" && sha256sum ram state scratch.ext4)
run_kci exec --debug --memory 256M -- sh -c "$hostile"
expect_eq "a clone's hostile job ran" 0 "$status"
expect_match "that job ran in a clone" '-incoming defer' "$err"
expect_eq "a clone's writes to RAM and disks leave its template as it was" "$sum256" \
	"$(cd "$t256" && sha256sum ram state scratch.ext4)"
run_kci exec --debug --memory 256M -- sh -c 'cat /etc/kci-marker 2>&1; echo ok'
expect_match "the next clone is restored from the template" '-incoming defer' "$err"
expect_match "the next clone does not see the earlier job's files" 'No such file' "$out"

# Damaged templates: the job still passes, cold, with one note, and the template goes.
damage() { # WHAT COMMAND...
	local what=$1
	shift
	"$@"
	run_kci exec -- echo survived
	expect_eq "$what: the job passes" "0 survived" "$status $out"
	expect_match "$what: one note says so" 'template .*(could not be (used|restored))' "$err"
	expect_eq "$what: only one note" 1 "$(grep -c 'template' <<<"$err")"
	run_kci exec --debug -- true
	expect_match "$what: the next VM is restored from a new template" '-incoming defer' "$err"
}
damage "corrupted RAM" dd if=/dev/urandom of="$t/ram" bs=4096 count=16 seek=100 conv=notrunc status=none
damage "truncated RAM" truncate -s 1M "$t/ram"
damage "corrupted state" dd if=/dev/urandom of="$t/state" bs=1 count=64 seek=200 conv=notrunc status=none
# A state QEMU refuses, with a checksum that matches: found only by the restore itself.
restore_fails() {
	head -c 4096 /dev/urandom >"$t/state"
	python3 - "$t" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(d + "/meta"))
data = open(d + "/state", "rb").read()
m["state_sha256"] = hashlib.sha256(data).hexdigest()
m["state_bytes"] = len(data)
open(d + "/meta", "w").write(json.dumps(m))
PY
}
damage "a state QEMU cannot load" restore_fails

# Two kci processes at once with no template: one makes it, both pass.
rm -rf "$tdir"
for i in 1 2; do "$KCI" exec -- true 2>"$KCI_HOME/err$i" & pids[$i]=$!; done
for i in 1 2; do wait "${pids[$i]}" || fail "concurrent VM $i failed: $(cat "$KCI_HOME/err$i")"; done
expect_eq "concurrent first VMs make one template" 1 "$(templates | grep -c . || true)"
expect_eq "no half-made template is left" "" "$(ls "$tdir" | grep '\.tmp-' || true)"

run_kci images
expect_match "kci images lists the template" "^[0-9a-f]{32} +base system +2 +512M +none" "$out"
run_kci prune
expect_eq "kci prune keeps a template in use" 1 "$(templates | grep -c . || true)"
run_kci prune --templates
expect_match "kci prune --templates removes them" 'removed 1 VM template' "$out"
expect_eq "no template is left" "" "$(templates)"
