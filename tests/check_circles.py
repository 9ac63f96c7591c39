#!/usr/bin/env python3
"""Fails when two source files call into each other (docs/conventions.md: move the shared piece down a
level, or give the callee a narrow context). Reads the symbols of the built objects with nm:
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
for o in objs:
    name = os.path.relpath(o, build).split(os.sep)
    name = name[0] + "/" + os.path.basename(o)[:-len(".c.o")] + ".c"
    out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "TDBRV":
            defs[f[2]] = name
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
if not bad:
    print(f"circles: ok ({len(objs)} files)")
sys.exit(1 if bad else 0)
