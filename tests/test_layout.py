"""The package layout rules, checked statically over every module of flowdet/ (no imports run).

- Only ``flowdet/cli.py`` and ``flowdet/commands/`` import click: stages raise ``flowdet.errors``
  and talk through ``flowdet.log``, so a notebook calling ``flowdet.detect.train.train(cfg)`` never
  meets CLI exceptions.
- No import circles among flowdet modules. Every import counts, function-local (lazy) ones too:
  a lazy import only postpones a circle to the first call, and the three this layout removed were
  all lazy on one side. ``if TYPE_CHECKING:`` imports would count as well (there are none). An
  import of a submodule is an edge to that module only, not to its parent packages: a package's
  ``__init__`` has always run before any module inside it.
- No circles between the top-level packages either (``flowdet.detect`` ↔ ``flowdet.runtime`` …),
  the one documented door aside: the runtime imports ``flowdet.detect.torch_predictor`` inside
  ``load_predictor``, for a ``.pt`` checkpoint.
- ``flowdet/core/`` is the floor: it imports only itself and the two leaf modules ``flowdet.errors``
  and ``flowdet.log`` (standard library only), and never torch.
- ``flowdet/core/`` and ``flowdet/runtime/`` are torch-free all the way down: no import of theirs,
  lazy ones included, leads to a module that imports torch when it loads (the door aside).
  tests/runtime/test_torch_free.py proves the same by importing every runtime module without torch.
- ``flowdet/mine/`` (frames: mining, lists, the leakage guard) sits beneath the SSL methods: pretrain,
  detect/semi.py and pseudo read its frames, and it imports nothing of ``flowdet.pretrain``.
- ``flowdet/experiments/`` (the label-efficiency grid) is on top: it may import the stages (detect,
  pretrain, mine), and only ``flowdet/commands/`` imports it — no stage depends on an experiment.
- ``flowdet/runtime/`` is three rooms with arrows only ``stream → predict`` and ``stream → track``:
  prediction and tracking know nothing of sources, loops or each other.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "flowdet"
CLI_LAYER = ("flowdet.cli", "flowdet.commands")
CORE = "flowdet.core"
LEAVES = ("flowdet.errors", "flowdet.log")  # beneath everything: the standard library only
TORCH_FREE = (CORE, "flowdet.runtime")
MINE = "flowdet.mine"
EXPERIMENTS = "flowdet.experiments"
DOOR = "flowdet.detect.torch_predictor"  # load_predictor("x.pt") imports it, on request
RUNTIME_ROOMS = ("predict", "track", "stream")
RUNTIME_ARROWS = {("stream", "predict"), ("stream", "track")}  # (importer, imported): the only ones allowed


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _is_door(src: str, dst: str) -> bool:
    return _in(src, "flowdet.runtime") and dst == DOOR


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = f.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _module_level(tree: ast.Module) -> list[ast.AST]:
    """Every node that runs when the module loads: all of it but the bodies of functions."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        out.append(node)
        todo += list(ast.iter_child_nodes(node))
    return out


def _imports(path: Path, module: str, at_load: bool = False) -> list[tuple[str, int]]:
    """(imported name, line) for every import statement anywhere in the file, relative ones resolved;
    ``at_load``: only those that run when the module is imported (not inside functions)."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in (_module_level(tree) if at_load else ast.walk(tree)):
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
    assert "flowdet.runtime.predict.predictor" in graph["flowdet.detect.predict"]  # the scan sees imports at all
    assert "flowdet.detect.torch_predictor" in graph["flowdet.runtime.predict.predictor"]  # ... lazy ones included
    cycles = _cycles(graph)
    detail = [" <-> ".join(c) + ": " + "; ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a]) if b in c)
              for c in cycles]
    assert not cycles, "import circles (move the shared piece down a level):\n" + "\n".join(detail)


def test_cycle_finder_finds_a_lazy_circle():
    """The checker itself: a two-module circle and a three-module one are reported, a chain is not."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def _package(module: str) -> str:
    """flowdet.detect.loss → flowdet.detect; a top-level module (flowdet.errors) is its own."""
    return ".".join(module.split(".")[:2])


def test_no_cycles_between_top_level_packages():
    graph: dict[str, set[str]] = {}
    for src, targets in _graph().items():
        for dst in targets:
            if _package(src) != _package(dst) and not _is_door(src, dst):
                graph.setdefault(_package(src), set()).add(_package(dst))
                graph.setdefault(_package(dst), set())
    assert "flowdet.core" in graph["flowdet.runtime"] and "flowdet.runtime" in graph["flowdet.detect"]
    cycles = _cycles(graph)
    assert not cycles, "circles between packages (move the shared piece down, e.g. into flowdet/core):\n" + \
        "\n".join(" <-> ".join(c) for c in cycles)


def test_core_imports_only_core_and_the_leaves():
    mods = _modules()
    assert f"{CORE}.letterbox" in mods and f"{CORE}.detections" in mods
    bad = []
    for m, path in mods.items():
        if not (_in(m, CORE) or m in LEAVES):
            continue
        allowed = (CORE,) + LEAVES if _in(m, CORE) else ()  # the leaves import nothing of flowdet
        for name, line in _imports(path, m):
            if name == "torch" or name.startswith(("torch.", "torchvision")):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
            elif _in(name, "flowdet") and name != "flowdet" and not any(_in(name, a) for a in allowed):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
            elif name == "flowdet" and m in LEAVES:
                bad.append(f"{path.relative_to(REPO)}:{line} imports flowdet")
    assert not bad, "flowdet/core imports only flowdet.core, flowdet.errors and flowdet.log:\n" + "\n".join(bad)


def test_torch_free_packages_never_reach_torch():
    """From core/ and runtime/, follow every import (lazy ones too, the door aside): no module on
    the way imports torch when it loads, and none of theirs imports torch at all."""
    mods, graph = _modules(), _graph()
    loads_torch = {m for m, path in mods.items()
                   if any(n == "torch" or n.startswith("torch.") for n, _ in _imports(path, m, at_load=True))}
    assert "flowdet.detect.loss" in loads_torch and "flowdet.devices" not in loads_torch  # lazy torch: fine
    bad = []
    for pkg in TORCH_FREE:
        path_to: dict[str, list[str]] = {m: [m] for m in mods if _in(m, pkg)}
        todo = list(path_to)
        while todo:
            src = todo.pop()
            for dst in sorted(graph[src]):
                if dst not in path_to and not _is_door(src, dst):
                    path_to[dst] = path_to[src] + [dst]
                    todo.append(dst)
        bad += [" -> ".join(path_to[m]) for m in sorted(loads_torch & set(path_to))]
        for m in (m for m in mods if _in(m, pkg)):
            bad += [f"{m} imports {n} (line {line})" for n, line in _imports(mods[m], m)
                    if n == "torch" or n.startswith(("torch.", "torchvision"))]
    assert not bad, "a torch-free package reaches torch:\n" + "\n".join(bad)


def test_module_level_scan_skips_function_bodies():
    tree = ast.parse("import a\nif x:\n    import b\ndef f():\n    import c\nclass K:\n    import d\n")
    names = {n.names[0].name for n in _module_level(tree) if isinstance(n, ast.Import)}
    assert names == {"a", "b", "d"}


def _imports_of(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``file:line imports name`` for every import, lazy ones too, from ``package`` into ``forbidden``."""
    mods = _modules()
    return [f"{mods[m].relative_to(REPO)}:{line} imports {name}"
            for m in mods if _in(m, package)
            for name, line in _imports(mods[m], m) if any(_in(name, f) for f in forbidden)]


def test_mining_never_imports_the_pretraining_methods():
    assert f"{MINE}.frames" in _graph()["flowdet.pretrain.train"]  # the scan sees the arrow the other way
    bad = _imports_of(MINE, ("flowdet.pretrain",))
    assert not bad, "flowdet/mine/ is beneath flowdet/pretrain/ (move the shared piece into mine/):\n" + "\n".join(bad)


def test_only_the_commands_import_the_experiments():
    graph = _graph()
    assert f"{EXPERIMENTS}.efficiency" in graph["flowdet.commands.efficiency"]  # the one allowed arrow is seen
    bad = [f"{src} imports {dst}" for src, targets in graph.items() for dst in sorted(targets)
           if _in(dst, EXPERIMENTS) and not (_in(src, EXPERIMENTS) or _in(src, "flowdet.commands"))]
    assert not bad, "only flowdet/commands/ imports flowdet/experiments/ (a stage must not depend on an " \
        "experiment):\n" + "\n".join(bad)
def _room(module: str) -> str | None:
    """flowdet.runtime.track.kalman → "track"; the runtime package itself (and non-runtime) → None."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["flowdet", "runtime"] else None


def test_runtime_rooms_and_their_arrows():
    mods, graph = _modules(), _graph()
    rooms = {_room(m) for m in mods if _room(m)}
    assert rooms == set(RUNTIME_ROOMS), f"flowdet/runtime/ holds only the subpackages {RUNTIME_ROOMS}: {rooms}"
    assert "flowdet.runtime.track.tracker" in graph["flowdet.runtime.stream.source_tracking"]  # the scan sees arrows
    bad = [f"{src} -> {dst}" for src, targets in sorted(graph.items()) for dst in sorted(targets)
           if _room(src) and _room(dst) and _room(src) != _room(dst)
           and (_room(src), _room(dst)) not in RUNTIME_ARROWS]
    assert not bad, "runtime arrows go only stream -> predict and stream -> track:\n" + "\n".join(bad)
