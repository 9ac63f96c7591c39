#!/usr/bin/env python3
"""Fails when two source files call into each other (docs/conventions.md: move the shared piece down a
level, or give the callee a narrow context), and when two host files define the same global
symbol (two modules' private names meeting in one binary: the linker's error, found early). Reads the symbols of the built objects with nm:
a file 'uses' another when it references a global symbol the other defines.
usage: check_circles.py BUILD_DIR"""
import collections, glob, os, subprocess, sys

build = sys.argv[1] if len(sys.argv) > 1 else "."
objs = [o for o in glob.glob(os.path.join(build, "*", "CMakeFiles", "*.dir", "*.c.o"))]
objs = [o for o in objs if os.sep + "tests" + os.sep not in o and "bench" not in o]
if not objs:
    print("circles: no objects found under", build)
    sys.exit(1)
defs, uses = {}, collections.defaultdict(set)
twice, defs_obj = [], {}
for o in objs:
    name = os.path.relpath(o, build).split(os.sep)
    name = name[0] + "/" + os.path.basename(o)[:-len(".c.o")] + ".c"
    out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "TDBR":
            # The guest's builds of shared sources (*_guest) never link with the host's.
            if f[2] in defs and defs[f[2]] != name and f[2] != "main" and "guest" not in o and "guest" not in defs_obj[f[2]]:
                twice.append((f[2], defs[f[2]], name))
            if f[2] not in defs or "guest" in defs_obj[f[2]]:
                defs[f[2]], defs_obj[f[2]] = name, o
        elif len(f) == 2 and f[0] == "U":
            uses[name].add(f[1])
edges = collections.defaultdict(set)
for f, syms in uses.items():
    for s in syms:
        if s in defs and defs[s] != f:
            edges[f].add(defs[s])
bad = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, ())})
for a, b in bad:
    print(f"circles: {a} and {b} call into each other")
for sym, a, b in twice:
    print(f"circles: {sym} is defined in both {a} and {b}")
if not bad and not twice:
    print(f"circles: ok ({len(objs)} files)")
sys.exit(1 if bad or twice else 0)
