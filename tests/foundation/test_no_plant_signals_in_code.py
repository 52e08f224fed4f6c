"""Architecture: no plant's signal is named in product code — signals are configuration.

The signal names of every plant bundle's catalog (``config/plants/*/``: the CHO twin's, the
Pichia plant's, …) must not appear in ``lakehouse/``, ``ml/``, ``assets/`` or ``dbt_project/``
as data: not as a string in Python (docstrings and comments are prose, not data), not as a
word of SQL outside comments, not as a value or key of the dbt YAML outside descriptions. The
code gets the signals from the catalog (``lakehouse/catalog.py``); tests and ``bench/`` may name
them.

Two explicit lists, each entry with its reason:

* ``ALLOWED``: uses of a word that happens to equal a signal name but means something else (the
  ``ph`` column of the chromatography curves, the ``ph`` recipe setpoint of an MES record).
* ``PENDING``: known offenders owned by other work (the ML half of issue 11 rewrites the
  golden-batch/soft-sensor defaults). The list may only shrink: an entry whose file still
  exists but no longer names the signal fails the test, so it has to be removed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from lakehouse.plant import PLANTS_DIR, load_plant

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("lakehouse", "ml", "assets", "dbt_project")
SKIP_DIRS = {"target", "logs", "dbt_packages", "__pycache__"}
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_CHROM_OR_SETPOINT = "the pH column of chromatography curves / the pH recipe setpoint of an MES record"
ALLOWED: dict[tuple[str, str], str] = {
    ("lakehouse/ingest/schemas.py", "ph"): _CHROM_OR_SETPOINT,
    ("lakehouse/ingest/readers.py", "ph"): _CHROM_OR_SETPOINT,
    ("dbt_project/macros/bronze.sql", "ph"): _CHROM_OR_SETPOINT,
    ("dbt_project/models/staging/mes/stg_mes__batches.sql", "ph"): _CHROM_OR_SETPOINT,
    ("dbt_project/models/staging/chromatography/stg_chromatography__curves.sql", "ph"): _CHROM_OR_SETPOINT,
    ("dbt_project/models/intermediate/int_batches__windows.sql", "ph"): _CHROM_OR_SETPOINT,
    ("dbt_project/models/marts/dim_batches.sql", "ph"): _CHROM_OR_SETPOINT,
    ("dbt_project/models/marts/_marts__models.yml", "ph"): _CHROM_OR_SETPOINT,
    ("dbt_project/models/marts/fct_chromatography_runs.sql", "ph"): _CHROM_OR_SETPOINT,
    ("lakehouse/units.py", "ph"): "a spelling of the unit pH (alias)",
}

# the ML half of issue 11 (golden-batch / MSPC / soft-sensor defaults from the bundle's configs) emptied it
PENDING: dict[str, tuple[set[str], str]] = {}


def _signal_names() -> set[str]:
    names: set[str] = set()
    bundles = sorted(p.parent for p in PLANTS_DIR.glob("*/plant.yaml"))
    assert len(bundles) >= 3, bundles  # cho-twin, demo-plant, pichia at least
    for folder in bundles:
        names |= set(load_plant(folder).catalog.names())
    return names


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                ids.add(id(body[0].value))
    return ids


def _python_words(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstring_nodes(tree)
    words: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            words |= set(WORD.findall(node.value))
    return words


def _sql_words(path: Path) -> set[str]:
    text = re.sub(r"\{#.*?#\}", " ", path.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"--[^\n]*", " ", text)
    return set(WORD.findall(text))


def _yaml_words(path: Path) -> set[str]:
    words: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                words.update(WORD.findall(str(k)))
                if k != "description":
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            words.update(WORD.findall(node))

    walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return words


def _scanned_files() -> list[Path]:
    out = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if not path.is_file() or SKIP_DIRS & set(path.relative_to(ROOT).parts):
                continue
            if path.suffix in (".py", ".sql", ".yml", ".yaml"):
                out.append(path)
    return out


def _words(path: Path) -> set[str]:
    if path.suffix == ".py":
        return _python_words(path)
    if path.suffix == ".sql":
        return _sql_words(path)
    return _yaml_words(path)


def test_product_code_names_no_plant_signal():
    names = _signal_names()
    assert {"temperature", "methanol_feed", "oxygen_uptake_rate"} <= names  # the twin's and the Pichia plant's
    files = _scanned_files()
    assert len(files) > 80 and any(p.suffix == ".sql" for p in files)
    offenders: dict[str, set[str]] = {}
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        hits = {w for w in _words(path) & names if (rel, w) not in ALLOWED}
        pending = PENDING.get(rel, (set(), ""))[0]
        if hits - pending:
            offenders[rel] = hits - pending
    assert not offenders, (
        "signal names in product code (take them from the catalog, lakehouse/catalog.py): "
        f"{ {k: sorted(v) for k, v in sorted(offenders.items())} }"
    )


def test_pending_list_only_shrinks():
    """A PENDING entry that no longer occurs in its (still existing) file must be removed."""
    names = _signal_names()
    stale = {}
    for rel, (expected, _why) in PENDING.items():
        path = ROOT / rel
        if not path.exists():  # moved out of the scanned packages: nothing left to check
            continue
        gone = expected - (_words(path) & names)
        if gone:
            stale[rel] = sorted(gone)
    assert not stale, f"remove from PENDING (no longer named there): {stale}"
    for (rel, _word), _why in ALLOWED.items():
        assert (ROOT / rel).exists(), f"ALLOWED names a file that does not exist: {rel}"
