#!/usr/bin/env python3
"""Fails when a module imports one it may not (ARCHITECTURE.md, "Layers").

Reads every `crate::…`, `$crate::…` and `super::…` path in `src/` (test
modules excluded) and checks two rules:

1. a top-level module imports only the modules the table below allows it;
2. the files of one module (e.g. `oauth/authenticate.rs`, `oauth/service.rs`)
   do not import each other in a cycle.

Keep ALLOWED and the table in ARCHITECTURE.md the same.
"""

import os
import re
import sys

ALLOWED = {
    # the leaves: they import nothing from the crate
    "domain": set(),
    "clock": set(),
    "fault": set(),
    "metrics": set(),
    "telemetry": set(),
    "net": set(),
    "tls": {"net"},
    # the core
    "crypto": {"domain", "fault"},
    "store": {"domain", "fault"},
    "keys": {"domain", "fault", "crypto", "store"},
    "key_fetch": {"crypto", "fault"},
    "oauth": {"domain", "fault", "clock", "crypto", "store", "keys", "metrics",
              "key_fetch"},
    "admin": {"domain", "fault", "clock", "crypto", "store", "keys"},
    # the faces and the assembly
    "http": {"domain", "fault", "clock", "crypto", "store", "keys", "metrics",
             "oauth", "admin", "tls", "net", "telemetry"},
    "config": {"domain", "crypto", "store", "telemetry"},
    "startup": {"domain", "fault", "clock", "crypto", "store", "keys", "admin",
                "metrics", "oauth", "http", "tls", "net", "config", "key_fetch"},
    "cli": {"domain", "fault", "clock", "crypto", "store", "keys", "admin",
            "startup", "config", "telemetry"},
}

ROOT_FILES = {"lib", "main"}


def strip_tests_and_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        brace = text.find("{", m.end())
        semi = text.find(";", m.end())
        if brace == -1 or (semi != -1 and semi < brace):
            i = semi + 1
            continue
        depth, j = 0, brace
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
            if depth == 0:
                break
        i = j
    out.append(text[i:])
    return "".join(out)


def module_of(path):
    parts = os.path.relpath(path, "src")[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def imported_paths(text):
    """Every `crate::a::b` and `super::a` path, with use-groups expanded."""
    paths = []
    for m in re.finditer(r"(\$?crate|super(?:::super)*)::(\{[^;]*?\}|[A-Za-z_][\w:]*)", text, re.S):
        root, rest = m.group(1).lstrip("$"), m.group(2)
        if rest.startswith("{"):
            for item in re.findall(r"(?:^|[{,])\s*([A-Za-z_][\w:]*)", rest):
                paths.append((root, item))
        else:
            paths.append((root, rest))
    return paths


def resolve(module, root, rest):
    """The module path a reference lands in: `['oauth', 'service']`."""
    if root == "crate":
        base = []
    else:
        base = module[: len(module) - root.count("super")]
    return base + [p for p in rest.split("::") if p and p != "self"]


def main():
    files = {}
    for directory, _, names in os.walk("src"):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(directory, name)
                files[tuple(module_of(path))] = path
    violations = []
    sibling_edges = {}
    for module, path in sorted(files.items()):
        top = module[0]
        if top in ROOT_FILES:
            continue
        if top not in ALLOWED:
            violations.append(f"{path}: module '{top}' is not in the layer table")
            continue
        with open(path, encoding="utf-8") as f:
            text = strip_tests_and_comments(f.read())
        for root, rest in imported_paths(text):
            target = resolve(list(module), root, rest)
            if not target:
                continue
            if target[0] != top and target[0] not in ALLOWED[top]:
                violations.append(
                    f"{path}: '{top}' may not import '{target[0]}' ({root}::{rest})")
            # the longest prefix that is a file of this module, for cycles
            if target[0] == top and len(module) >= 2:
                for n in range(len(target), 1, -1):
                    key = tuple(target[:n])
                    if key in files and key != module and key[:-1] == module[:-1]:
                        sibling_edges.setdefault(module, set()).add(key)
                        break
    # cycles among the files of one module
    def reach(start, node, seen):
        for nxt in sibling_edges.get(node, ()):
            if nxt == start:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reach(start, nxt, seen):
                    return True
        return False
    for module in sorted(sibling_edges):
        if reach(module, module, set()):
            violations.append(f"{files[module]}: is part of an import cycle among "
                              f"the files of '{'::'.join(module[:-1])}'")
    for v in violations:
        print(v)
    if violations:
        print(f"{len(violations)} layer violation(s); see ARCHITECTURE.md, \"Layers\"")
        return 1
    print(f"layers: {len(files)} files, no violation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
