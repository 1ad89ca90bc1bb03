#!/usr/bin/env python3
"""Fails when a crate's modules depend on each other in a cycle.

Reads `use crate::…` / `crate::…` paths and `super::…` paths in each module's non-test code
(comments skipped) and reports every strongly connected group of more than one module. A child
using its parent's items (`super::Inner`) is the normal shape of a Rust module tree and is not
counted; a parent using a child is.
"""
import glob
import os
import re
import sys


def graph(root):
    edges = {}
    for path in glob.glob(root + "/**/*.rs", recursive=True):
        name = os.path.relpath(path, root)[:-3].replace("/mod", "").replace("/", "::")
        if name in ("lib", "main"):
            continue
        text = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
        text = "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))
        # `use super::{a, b::C}` and `crate::{x, y}` name several modules at once.
        for base, group in re.findall(r"\b(super|crate)::\{([^}]*)\}", text):
            text += "".join(f" {base}::{item.strip()}" for item in group.split(","))
        deps = set()
        for top, sub in re.findall(r"crate::([a-z_]+)(?:::([a-z_]+))?", text):
            deps.add(f"{top}::{sub}" if sub and os.path.exists(f"{root}/{top}/{sub}.rs") else top)
        if "::" in name:
            parent = name.split("::")[0]
            for sub in re.findall(r"super::([a-z_]+)", text):
                deps.add(f"{parent}::{sub}" if os.path.exists(f"{root}/{parent}/{sub}.rs") else parent)
        deps.discard(name)
        edges[name] = {d for d in deps if not name.startswith(d + "::")}
    return edges


def cycles(edges):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on.add(node)
        for dep in edges[node]:
            if dep not in edges:
                continue
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in edges:
        if node not in index:
            visit(node)
    return found


failed = False
for root in sys.argv[1:] or ["crates/mcpgate/src", "crates/mcpgate-cli/src"]:
    for group in cycles(graph(root)):
        print(f"{root}: modules in a cycle: {', '.join(group)}")
        failed = True
sys.exit(1 if failed else 0)
