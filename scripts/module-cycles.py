#!/usr/bin/env python3
"""Import cycles between the server crate's top-level modules (issue 15's bar: none).

A module A depends on B when a file of A names `crate::B` (a `use` or a path), outside the
`#[cfg(test)]` modules at the end of a file. Prints each strongly connected component of more
than one module, with the references that make it; exits 1 if there is any (0 otherwise).

    python3 scripts/module-cycles.py [server/src]
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "server/src"
deps, where = {}, {}
for dp, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(dp, f)
        top = os.path.relpath(path, root).split(os.sep)[0].removesuffix(".rs")
        # `src/bin/` holds the binaries: other crates, whose `crate::` is their own root.
        if top in ("lib", "main", "bin"):
            continue
        text = open(path, encoding="utf-8").read()
        cut = text.find("#[cfg(test)]\nmod tests")
        if cut >= 0:
            text = text[:cut]
        deps.setdefault(top, set())
        for m in re.finditer(r"crate::([a-z_][a-z0-9_]*)", text):
            dep = m.group(1)
            if dep != top:
                deps[top].add(dep)
                line = text.count("\n", 0, m.start()) + 1
                where.setdefault((top, dep), f"{os.path.relpath(path)}:{line}")

# Tarjan's strongly connected components.
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in sorted(deps.get(v, ())):
        if w not in deps:
            continue
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        comps.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in sorted(deps):
    if v not in index:
        visit(v)
cycles = [c for c in comps if len(c) > 1]
for c in cycles:
    print("cycle: " + " ↔ ".join(c))
    for a in c:
        for b in sorted(deps[a] & set(c)):
            print(f"  {a} → {b}  ({where[(a, b)]})")
print(f"{len(cycles)} cycle(s) among {len(deps)} modules")
sys.exit(1 if cycles else 0)
