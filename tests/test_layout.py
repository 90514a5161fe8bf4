"""The layout's rules, checked on the source: no import circle, no job importing a job.

Imports are read with :mod:`ast` from every module of ``engine/``, ``kernels/`` and
``export/``, module-level and function-level (lazy) imports alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "kernels", "export")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path], *, lazy: bool) -> set[str]:
    """Project modules imported by ``path`` (at module level only unless ``lazy``)."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if lazy else iter(tree.body)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks never run
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name.partition(".")[0] in PACKAGES:
                found.add(name)
    return found


def test_no_job_imports_another_job():
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        if name.startswith("engine.jobs.") and name != "engine.jobs":
            for imported in _imports(path, modules, lazy=True):
                if imported.startswith("engine.jobs.") and imported != name:
                    offenders.append(f"{name} imports {imported}")
    assert not offenders, offenders


def test_domain_never_imports_jobs_or_cli():
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        if name.startswith(("engine.jobs", "engine.cli")):
            continue
        for imported in _imports(path, modules, lazy=True):
            if imported.startswith(("engine.jobs", "engine.cli")):
                offenders.append(f"{name} imports {imported}")
    assert not offenders, offenders


def test_kernels_import_nothing_of_the_engine():
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("kernels"):
            imported = _imports(path, modules, lazy=True)
            assert all(m.startswith("kernels") for m in imported), (name, imported)


def test_no_import_circle_at_module_level():
    modules = _modules()
    graph = {name: _imports(path, modules, lazy=False) - {name} for name, path in modules.items()}
    # a package's __init__ importing its own submodules is how re-exports work, not a circle
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, cycles[:5]


def test_the_checks_can_fail(tmp_path):
    """The parser sees a job importing another job, including a lazy import."""
    job = tmp_path / "job.py"
    job.write_text("def run():\n    from engine.jobs.train import run_train_job\n")
    modules = _modules()
    assert _imports(job, modules, lazy=True) == {"engine.jobs.train"}
    assert _imports(job, modules, lazy=False) == set()
