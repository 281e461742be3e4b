"""The package layout rules, checked statically over every module of flowdet/ (no imports run).

- Only ``flowdet/cli.py`` and ``flowdet/commands/`` import click: stages raise ``flowdet.errors``
  and talk through ``flowdet.log``, so a notebook calling ``flowdet.detect.train.train(cfg)`` never
  meets CLI exceptions.
- No import circles among flowdet modules. Every import counts, function-local (lazy) ones too:
  a lazy import only postpones a circle to the first call, and the three this layout removed were
  all lazy on one side. ``if TYPE_CHECKING:`` imports would count as well (there are none). An
  import of a submodule is an edge to that module only, not to its parent packages: a package's
  ``__init__`` has always run before any module inside it.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "flowdet"
CLI_LAYER = ("flowdet.cli", "flowdet.commands")


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = f.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(path: Path, module: str) -> list[tuple[str, int]]:
    """(imported name, line) for every import statement anywhere in the file, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".")[: -node.level] if path.name != "__init__.py" else \
                    module.split(".")[: len(module.split(".")) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            # "from a import b" may import the submodule a.b: record both, resolved below.
            found += [(base, node.lineno)] + [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        for name, _ in _imports(path, m):
            if name == "flowdet" or name.startswith("flowdet."):
                target = resolve(name)
                if target and target != m and not m.startswith(target + "."):  # own parent package
                    graph[m].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_only_the_cli_imports_click():
    bad = []
    for m, path in _modules().items():
        if m in CLI_LAYER or m.startswith(tuple(p + "." for p in CLI_LAYER)):
            continue
        for name, line in _imports(path, m):
            if name == "click" or name.startswith("click."):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not bad, "library code must raise flowdet.errors and use flowdet.log, not click:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    assert "flowdet.runtime.predictor" in graph["flowdet.detect.predict"]  # the scan sees imports at all
    assert "flowdet.detect.torch_predictor" in graph["flowdet.runtime.predictor"]  # ... lazy ones included
    cycles = _cycles(graph)
    detail = [" <-> ".join(c) + ": " + "; ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a]) if b in c)
              for c in cycles]
    assert not cycles, "import circles (move the shared piece down a level):\n" + "\n".join(detail)


def test_cycle_finder_finds_a_lazy_circle():
    """The checker itself: a two-module circle and a three-module one are reported, a chain is not."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
