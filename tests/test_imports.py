"""The package's imports run one way: no cycles, and the graph layer stays low.

The walk reads every module's source with :mod:`ast` and follows every import of
a taskflow module, wherever it is written: at module level, inside functions,
and under ``if TYPE_CHECKING:``.  Nothing is imported, so the test is fast and
sees imports that only happen at run time.
"""
from __future__ import annotations

import ast
from pathlib import Path

import taskflow

PACKAGE = Path(taskflow.__file__).parent
GRAPH_LAYER = {"taskflow.task", "taskflow.flow", "taskflow.graph", "taskflow.conditional"}
HIGH_LAYERS = ("engine", "executors", "results", "history", "dashboard", "deploy", "server")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
TREES = {m: ast.parse(p.read_text(), filename=str(p)) for m, p in MODULES.items()}


def _resolve(name: str) -> str | None:
    """The taskflow module ``name`` refers to (a module, or the package holding a name)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _type_checking_blocks(tree: ast.Module) -> set[int]:
    """The ids of the import nodes under ``if TYPE_CHECKING:``."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def _imports(module: str, *, typing: bool = True) -> list[tuple[str, bool]]:
    """(imported taskflow module, at module level?) for every import in ``module``.

    With ``typing=False``, imports under ``if TYPE_CHECKING:`` are left out.
    """
    path, tree = MODULES[module], TREES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(n) for n in tree.body}
    typing_only = set() if typing else _type_checking_blocks(tree)
    out: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names = [f"{base}.{a.name}" for a in node.names]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                out.append((target, id(node) in top_level))
    return out


GRAPH = {m: sorted({t for t, _ in _imports(m)}) for m in MODULES}


def _ancestors(module: str) -> list[str]:
    """Packages whose ``__init__`` runs before ``module`` (not edges of a cycle)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _cycles() -> list[list[str]]:
    """Every strongly connected group of modules (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = [0]

    def edges(m: str) -> list[str]:
        # importing a submodule runs its package's __init__ first: that is not a cycle
        return [t for t in GRAPH[m] if t not in _ancestors(m)]

    def visit(m: str) -> None:
        index[m] = low[m] = counter[0]
        counter[0] += 1
        stack.append(m)
        on_stack.add(m)
        for t in edges(m):
            if t not in index:
                visit(t)
                low[m] = min(low[m], low[t])
            elif t in on_stack:
                low[m] = min(low[m], index[t])
        if low[m] == index[m]:
            group = []
            while True:
                t = stack.pop()
                on_stack.discard(t)
                group.append(t)
                if t == m:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for m in sorted(MODULES):
        if m not in index:
            visit(m)
    return groups


def test_the_walk_sees_imports_inside_functions_and_under_type_checking():
    assert "taskflow.graph" in GRAPH["taskflow.task"]
    assert len(MODULES) > 40


def test_no_import_cycle_between_taskflow_modules():
    assert _cycles() == []


def test_the_graph_layer_imports_no_higher_layer_at_module_level():
    bad = [
        f"{m} imports {t}"
        for m in sorted(GRAPH_LAYER)
        for t, top in _imports(m)
        if top and t.split(".")[1:2] and t.split(".")[1] in HIGH_LAYERS
    ]
    assert bad == []


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for m, tree in sorted(TREES.items()):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("taskflow"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{m}: from {node.module} import {a.name}")
    assert bad == []


def test_importing_taskflow_loads_neither_distributed_nor_the_history():
    import subprocess
    import sys

    code = (
        "import sys, taskflow; "
        "print(sorted(m for m in ('distributed', 'sqlalchemy', 'taskflow.history.recorder', "
        "'taskflow.deploy.serve', 'taskflow.engine') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def _loaded_with(module: str) -> set[str]:
    """The taskflow modules importing ``module`` runs (module-level imports, transitively)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(_ancestors(m))
        todo.extend(t for t, top in _imports(m, typing=False) if top)
    return seen


def test_the_worker_side_runner_loads_no_planning_code():
    for worker_side in ("taskflow.executors.dask_worker", "taskflow.engine.task_runner"):
        loaded = _loaded_with(worker_side)
        assert "taskflow.engine.plan" not in loaded, worker_side
        assert "taskflow.engine.flow_runner" not in loaded, worker_side
