#!/usr/bin/env python3
"""Module dependency graph of the crate under src/, and a check that it has no cycle.

Each file's module path comes from its file path (src/lib.rs is the crate root, a/mod.rs and
a.rs are `a`, a/b.rs is `a::b`); a file attached with `#[path = "..."]` belongs to the module
that declares it. Modules declared under `#[cfg(test)]` (and everything below them), and
`#[cfg(test)]` items inside a file, are test-only and left out.

Edges come from `crate::...` and `super::...` paths in code (`use` trees included, comments and
string literals ignored), resolved to the longest known module they name. Edges between a
module and its own ancestors or descendants (a child using its parent's shared types, a parent
re-exporting its children) are not dependencies between concepts and are ignored: what is
reported is edges between sibling or unrelated modules.

Usage: scripts/modgraph.py [--print] [SRC_DIR]
  --print   print the graph, one line per module: `module -> dep, dep`
Exits 1, printing each cycle, if the graph among non-test modules has one. Stdlib only.
"""

import os
import re
import sys

ROOT = "crate"


def strip_comments_and_strings(text):
    """Replaces comments, string and char literals with spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif (m := re.compile(r'b?r(#*)"').match(text, i)) and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            end = '"' + m.group(1)
            j = text.find(end, m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and (m := re.compile(r"'(?:\\.[^']*|[^\\'])'").match(text, i)):
            out.append(" " * (m.end() - i))
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


TEST_CFG = re.compile(r"#\[cfg\((?:test|all\([^\]]*\btest\b[^\]]*\))\)\]")
ATTR = re.compile(r"\s*#!?\[[^\]]*\]")
MOD_DECL = re.compile(
    r"((?:\s*#\[[^\]]*\])*)\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;"
)


def item_end(code, i):
    """End of the item starting at `i`: after its first `;`, or its matched `{...}` block."""
    n = len(code)
    while i < n:
        if code[i] == ";":
            return i + 1
        if code[i] == "{":
            depth = 0
            while i < n:
                depth += code[i] == "{"
                depth -= code[i] == "}"
                i += 1
                if depth == 0:
                    return i
        i += 1
    return n


def remove_test_items(code):
    """Blanks out every item under `#[cfg(test)]`."""
    while m := TEST_CFG.search(code):
        j = m.end()
        while a := ATTR.match(code, j):
            j = a.end()
        end = item_end(code, j)
        code = code[: m.start()] + re.sub(r"[^\n]", " ", code[m.start() : end]) + code[end:]
    return code


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel in (["lib"], ["main"]):
        return ROOT
    if rel[-1] == "mod":
        rel = rel[:-1]
    return "::".join(rel)


def parent(module):
    return ROOT if "::" not in module else module.rsplit("::", 1)[0]


def is_within(a, b):
    """Whether `a` is `b` or one of its descendants."""
    return a == b or b == ROOT or a.startswith(b + "::")


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (renames and globs dropped)."""
    tree = re.sub(r"\s+", "", tree)
    depth, start, parts = 0, 0, []
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"as\w+$", "", tree).rstrip(":*").rstrip(":")]
    head, body = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    for k, ch in enumerate(body):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(body[start:k])
            start = k + 1
    parts.append(body[start:])
    out = []
    for p in filter(None, parts):
        for sub in expand_use(p):
            out.append(head.rstrip(":") + ("::" + sub if sub and sub != "self" else ""))
    return out


PATH = re.compile(r"\b((?:crate|super|self)(?:::(?:super|\w+))*)")
USE = re.compile(r"\buse\s+([^;]*);")


def references(code):
    """Every `crate::`, `super::` and `self::` path in `code`."""
    paths = []
    for m in USE.finditer(code):
        paths += [p for p in expand_use(m.group(1)) if re.match(r"(crate|super|self)\b", p)]
    code = USE.sub(" ", code)
    paths += [m.group(1) for m in PATH.finditer(code) if "::" in m.group(1)]
    return paths


def resolve(path, current, modules):
    """The module a path from `current` names, at module granularity (or None)."""
    segs = path.split("::")
    base = current
    if segs[0] == "crate":
        base, segs = ROOT, segs[1:]
    elif segs[0] == "self":
        segs = segs[1:]
    while segs and segs[0] == "super":
        base, segs = parent(base), segs[1:]
    best = base
    for k in range(1, len(segs) + 1):
        cand = "::".join(([] if base == ROOT else [base]) + segs[:k])
        if cand in modules:
            best = cand
    return best if best in modules else None


def scan(src):
    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    files[os.path.normpath(path)] = strip_comments_and_strings(f.read())
    # Which module each file is, and which modules are test-only.
    owner = {p: module_of(src, p) for p in files}
    test_modules = set()
    for path, code in sorted(files.items()):
        here = owner[path]
        for m in MOD_DECL.finditer(code):
            attrs, name = m.group(1), m.group(2)
            child = name if here == ROOT else f"{here}::{name}"
            path_attr = re.search(r'#\[path\s*=\s*"([^"]*)"\]', _raw_attr(path, m))
            if path_attr:
                target = os.path.normpath(
                    os.path.join(os.path.dirname(path), path_attr.group(1))
                )
                if target in owner:
                    # A `#[path]` file belongs to the module that declares it.
                    owner[target] = child if TEST_CFG.search(attrs) else here
                    if TEST_CFG.search(attrs):
                        test_modules.add(child)
                continue
            if TEST_CFG.search(attrs):
                test_modules.add(child)
    modules = set(owner.values()) | {ROOT}

    def is_test(module):
        return any(is_within(module, t) for t in test_modules)

    graph = {m: set() for m in modules if not is_test(m)}
    for path, code in files.items():
        here = owner[path]
        if is_test(here):
            continue
        for ref in references(remove_test_items(code)):
            dep = resolve(ref, here, modules)
            if dep is None or is_test(dep) or is_within(here, dep) or is_within(dep, here):
                continue
            graph[here].add(dep)
    return graph


_RAW = {}


def _raw_attr(path, match):
    """The attribute text before a `mod` declaration, from the unstripped file (the path
    string itself was blanked out with the other string literals)."""
    if path not in _RAW:
        with open(path, encoding="utf-8") as f:
            _RAW[path] = f.read()
    return _RAW[path][match.start(1) : match.end(1)]


def cycles(graph):
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on, comps = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                strong(w)
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
            if len(comp) > 1:
                comps.append(set(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    found = []
    for comp in comps:
        start = min(comp)
        # Breadth-first back to `start` inside the component: a shortest cycle through it.
        prev, queue = {start: None}, [start]
        while queue:
            v = queue.pop(0)
            nxt = [w for w in sorted(graph[v]) if w in comp]
            if start in nxt:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                found.append(list(reversed(path)) + [start])
                break
            for w in nxt:
                if w not in prev:
                    prev[w] = v
                    queue.append(w)
    return found


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    src = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    graph = scan(os.path.normpath(src))
    if "--print" in argv:
        for m in sorted(graph):
            print(f"{m} -> {', '.join(sorted(graph[m]))}")
    found = cycles(graph)
    for c in found:
        print("cycle: " + " -> ".join(c), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
