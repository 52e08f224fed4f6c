"""Dependencies point down, read from the source with ``ast`` (no import is executed).

Layers, top to bottom::

    bioprocess_cli   the product command line: may import everything, nothing imports it
    orchestration    wiring: Definitions, jobs, settings, `lakehouse run`
    assets           Dagster assets, checks and resources (thin)
    lakehouse, ml, twin   plain-Python libraries (no Dagster)

Every import counts, also one inside a function (a lazy import is still a dependency); only
``if TYPE_CHECKING:`` blocks are left out. New modules need no registration: a module belongs
to the layer of its top-level package, so a new library module (``twin/opcua.py``,
``lakehouse/live/…``) is checked like the others. Test scaffolding (``tests/…``) and the
benchmarks (``bench/…``) are never imported by product code.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"lakehouse": 0, "ml": 0, "twin": 0, "assets": 1, "orchestration": 2, "bioprocess_cli": 3}
PRODUCT = tuple(LAYERS)
NOT_FOR_PRODUCT = ("tests", "bench", "conftest")
NO_DAGSTER = ("lakehouse", "ml", "twin")
DAGSTER = ("dagster", "dagster_dbt", "dagster_webserver", "dagster_postgres", "dagster_aws")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path, module: str, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) of every import in ``path``; ``from pkg import mod`` resolves to
    ``pkg.mod`` when that is a module of the project."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            out += [(s, node.lineno) for s in subs] or [(target, node.lineno)]
    return out


def _graph() -> dict[str, list[tuple[str, int, Path]]]:
    files = [
        p
        for top in (*PRODUCT, "tests", "bench")
        for p in (ROOT / top).rglob("*.py")
        if ".venv" not in p.parts and "target" not in p.parts
    ]
    known = {_module_name(p) for p in files}
    return {_module_name(p): [(m, line, p) for m, line in _imports(p, _module_name(p), known)] for p in files}


def _top(module: str) -> str:
    return module.split(".")[0]


def test_imports_point_down():
    bad = []
    for module, imports in _graph().items():
        if _top(module) not in LAYERS:
            continue
        for target, line, path in imports:
            top = _top(target)
            where = f"{path.relative_to(ROOT)}:{line}"
            if top in NOT_FOR_PRODUCT:
                bad.append(f"{where}: product code imports test/bench code {target}")
            elif top in LAYERS and LAYERS[top] > LAYERS[_top(module)]:
                bad.append(f"{where}: {module} ({_top(module)}) imports {target} from a higher layer")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_nothing_imports_the_cli():
    bad = [
        f"{p.relative_to(ROOT)}:{line}: imports {t}"
        for module, imports in _graph().items()
        for t, line, p in imports
        if _top(t) == "bioprocess_cli" and _top(module) not in ("bioprocess_cli", "tests")
    ]
    assert not bad, "\n".join(bad)


def test_libraries_do_not_import_dagster():
    bad = [
        f"{p.relative_to(ROOT)}:{line}: imports {t}"
        for module, imports in _graph().items()
        if _top(module) in NO_DAGSTER
        for t, line, p in imports
        if _top(t) in DAGSTER
    ]
    assert not bad, "Dagster in library code (put it in assets/):\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    edges = {
        m: sorted({t for t, _, _ in imps if t in graph and t != m}) for m, imps in graph.items() if _top(m) in LAYERS
    }
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_rules_catch_what_they_should(tmp_path):
    """The checker itself: an upward import, Dagster in a library and a cycle are all seen."""
    known = {"lakehouse.a", "lakehouse.b", "assets.x"}
    src = tmp_path / "lakehouse" / "a.py"
    src.parent.mkdir()
    src.write_text("import dagster as dg\nfrom assets import x\n\ndef f():\n    from lakehouse import b\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = {t for t, _ in _imports(src, "lakehouse.a", known)}
    finally:
        ROOT = saved
    assert found == {"dagster", "assets.x", "lakehouse.b"}
