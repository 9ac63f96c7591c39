#!/usr/bin/env python3
"""kci exec -it: a real pseudo-terminal in the guest, window size, Ctrl-C delivered to the guest."""
import os, pty, select, signal, struct, subprocess, sys, tempfile, time, fcntl, termios, shutil

kci = os.environ["KCI"]
home = tempfile.mkdtemp(prefix="kci-test.")
os.environ["KCI_HOME"] = home
failures = []

def read_until(fd, needle, timeout):
    buf = b""
    end = time.time() + timeout
    while needle not in buf and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            buf += data
    return buf

def run_in_pty(args, script_steps, timeout=90):
    pid, fd = pty.fork()
    if pid == 0:
        # Sized before kci starts, so it cannot read 0x0 first.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 37, 101, 0, 0))
        os.execv(kci, [kci] + args)
    out = b""
    for needle, send in script_steps:
        out += read_until(fd, needle, timeout)
        if needle not in out:
            failures.append(f"did not see {needle!r} in {out[-300:]!r}")
            os.kill(pid, signal.SIGKILL)
            break
        if send:
            os.write(fd, send)
    out += read_until(fd, b"\x00never", 5)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out

# The guest sees a terminal with our window size.
code, out = run_in_pty(["exec", "-it", "--", "sh", "-c", "tty; stty size; echo done"],
                       [(b"done", None)])
if b"/dev/pts/" not in out: failures.append(f"no pty in guest: {out!r}")
if b"37 101" not in out: failures.append(f"window size not mirrored: {out!r}")
if code != 0: failures.append(f"tty run exit {code}")

# Ctrl-C typed on our terminal reaches the guest's foreground process as SIGINT.
code, out = run_in_pty(["exec", "-it", "--", "sh", "-c",
                        "trap 'echo got-int; exit 3' INT; echo ready; while :; do sleep 1; done"],
                       [(b"ready", b"\x03"), (b"got-int", None)])
if b"got-int" not in out: failures.append(f"Ctrl-C did not reach the guest: {out!r}")
if code != 3: failures.append(f"Ctrl-C run exit {code}, want 3")

# An interactive shell reads what we type.
code, out = run_in_pty(["exec", "-it", "--", "sh"],
                       [(b"#", b"echo $((6*7))\r"), (b"42", b"exit 5\r")])
if code != 5: failures.append(f"interactive shell exit {code}, want 5")

left = subprocess.run(["pgrep", "-f", "qemu-system.*" + home], capture_output=True, text=True).stdout
if left.strip(): failures.append("QEMU left behind: " + left)
rundir = os.path.join(home, "run")
if os.path.isdir(rundir) and os.listdir(rundir): failures.append(f"runtime dir not empty: {os.listdir(rundir)}")
shutil.rmtree(home, ignore_errors=True)
for f in failures: print("FAIL:", f, file=sys.stderr)
print("test_exec_tty:", "FAILED" if failures else "passed")
sys.exit(1 if failures else 0)
