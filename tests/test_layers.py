"""The import graph runs one way: no cycle, and no module imports from a layer above its own.

Imports inside functions count too (a lazy import is still an arrow). The layers, bottom first, are the
README's architecture picture."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS = [
    # shared ground: errors, documents, file writing, the one training loop, the one parallel runner
    ("earmark._version", "earmark.errors", "earmark._extras", "earmark._io", "earmark._fit", "earmark.types",
     "earmark.schemas", "earmark.runner"),
    ("earmark.media",),  # containers, audio, frames (PyAV)
    ("earmark.probes", "earmark.realsound", "earmark.synth"),  # eventness of windows; real and synthetic sound
    ("earmark.anchors",),
    ("earmark.budget",),  # cost models and the planner
    ("earmark.index", "earmark.preview"),  # probes over a whole video: Timeline; preview features for search
    ("earmark.sinks", "earmark.highlights"),  # documents, messages, exports; highlights
    ("earmark.eval",),  # the equal-token protocol and its results folder
    ("earmark.report",),  # HTML: timelines, reels, the eval page
    ("earmark.train",),  # trainers of the learned probes (read eval's datasets)
    ("earmark.batch", "earmark.integrations", "earmark.demo", "earmark.search"),  # corpus, runtimes, the demo; search
    ("earmark.cli", "earmark.__main__", "earmark"),  # the command line and the package's public face
]


def modules() -> dict[str, Path]:
    out = {}
    for f in (SRC / "earmark").rglob("*.py"):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every earmark module ``name`` imports, at the top or inside a function."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                found.add(sub if sub in known else mod)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in known and m != name}


def layer(name: str) -> int:
    best = max(((i, p) for i, group in enumerate(LAYERS) for p in group if name == p or name.startswith(p + ".")),
               key=lambda x: len(x[1]), default=None)
    if best is None:
        raise AssertionError(f"{name} is in no layer of tests/test_layers.py: add it")
    return best[0]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_module_has_a_layer(graph):
    for name in graph:
        layer(name)


def test_no_module_imports_from_a_layer_above(graph):
    up = sorted(f"{a} ({layer(a)}) -> {b} ({layer(b)})" for a, deps in graph.items() for b in deps
                if layer(b) > layer(a))
    assert up == []


def test_the_import_graph_has_no_cycle(graph):
    # Within a layer, modules may import each other, but never round in a circle.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(w):], w]))
            if w not in state:
                visit(w)
        stack.pop()
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v)
