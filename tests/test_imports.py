"""The import structure: no import circle in sciml_seq; the solver packages take no private names.

Read from the source (``ast``), so nothing is imported: imports that run inside a
function count too, since they still tie two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "sciml_seq"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        if "SciMLSeqJL" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """``(imported module, names)`` for every import statement of ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                target = base + ("." + node.module if node.module else "")
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, names in _imports(module):
            for candidate in [target, *(f"{target}.{n}" for n in names)]:
                if candidate in MODULES and candidate != module and not module.startswith(
                    candidate + "."
                ):
                    graph[module].add(candidate)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_circle_and_a_private_import() -> None:
    """The checks below can fail: made-up imports with a circle and a private name."""
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    imports = [("sciml_seq.x", ["public", "_private", "__version__"]), ("numpy", ["_np"])]
    assert _private_names("m", imports) == ["m imports _private from sciml_seq.x"]


def test_no_import_circle_in_sciml_seq() -> None:
    assert _circles(_graph()) == []


def _private_names(module: str, imports: list[tuple[str, list[str]]]) -> list[str]:
    """Private names (``_x``) among ``imports`` taken from a sciml_seq module."""
    return [
        f"{module} imports {name} from {target}"
        for target, names in imports
        if target.startswith("sciml_seq")
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]


SOLVER_MODULES = sorted(
    m
    for m in MODULES
    if m.startswith(("sciml_seq.torch.solve", "sciml_seq.jax.solve", "sciml_seq.host"))
    or m in ("sciml_seq.solver", "sciml_seq.engines", "sciml_seq.tableaus", "sciml_seq.stats",
             "sciml_seq.methods")
)


@pytest.mark.parametrize("module", SOLVER_MODULES)
def test_solver_modules_import_no_private_name(module: str) -> None:
    assert _private_names(module, _imports(module)) == []


def test_engines_import_only_the_shared_core_of_their_package() -> None:
    """A module of one engine of torch/solve or jax/solve imports no other engine's module."""
    graph = _graph()
    for package in ("sciml_seq.torch.solve", "sciml_seq.jax.solve"):
        for module in (m for m in MODULES if m.startswith(package + ".")):
            engine = module[len(package) + 1 :].split(".")[0]
            for target in graph[module]:
                if target.startswith(package + "."):
                    other = target[len(package) + 1 :].split(".")[0]
                    assert other in (engine, "core"), f"{module} imports {target}"
