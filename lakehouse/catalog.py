"""The signal catalog: which online signals a plant has, in which canonical unit — one home.

A catalog is configuration, not code. Each plant declares its own (a ``signals:`` section of its
tag map, or a ``signals.yaml`` the tag map names with ``catalog:``); the CHO twin's 19 signals
are one catalog like any other (``config/plants/cho-twin/signals.yaml``), which is also the
default for tag maps that declare no signals of their own (the contract's parameter list).

Format (YAML; a mapping, keys in column order, or a list of mappings with ``name``)::

    signals:
      temperature:   {unit: degC, kind: process_value, range: [-20, 150], description: broth temperature}
      methanol_feed: {unit: kg/h, kind: flow}
      process_step:  {unit: code, kind: state}

* ``name`` becomes a column of ``fct_process_readings`` (and of the Spark/DuckDB alignment):
  lower-case letters, digits and ``_``, starting with a letter (a plain identifier,
  :mod:`lakehouse.identifiers`, that is also a SQL column name), not one of the table's key
  columns.
* ``unit``: canonical unit, parsed by the project's unit registry (:mod:`lakehouse.units`).
  Values land in bronze in this unit. A tag map may leave it out; it is then inferred from
  the exported unit's dimension (:func:`lakehouse.units.preferred_unit`).
* ``kind``: one of :data:`KINDS`. ``flow`` and ``rate`` need a per-time unit, a ``totaliser``
  an amount (not per time), ``state`` the unit ``code``.
* ``range``: physical plausibility ``[lo, hi]`` in the canonical unit; a reading outside is a
  broken reading and is quarantined (not a process excursion). Default: unbounded.

Everything downstream reads the catalog: ingestion (tag map → unit, range), the dbt model
(wide columns, ``LAKEHOUSE_SIGNALS``), the Spark alignment, the ML layer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lakehouse.identifiers import check_identifier
from lakehouse.units import UnitError, dimension, normalise_unit, parse_unit, time_exponent

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: the default plant bundle (the CHO twin site; lakehouse/plant.py)
DEFAULT_PLANT_DIR = PROJECT_ROOT / "config" / "plants" / "cho-twin"
#: the catalog used by tag maps that declare no signals (the CHO twin's, the contract's list)
DEFAULT_CATALOG_PATH = DEFAULT_PLANT_DIR / "signals.yaml"

KINDS: tuple[str, ...] = ("process_value", "setpoint", "flow", "totaliser", "rate", "state")
_KIND_ALIASES = {
    "process value": "process_value",
    "pv": "process_value",
    "sp": "setpoint",
    "totalizer": "totaliser",
    "total": "totaliser",
}
#: columns of the aligned table that a signal may not be called
RESERVED_NAMES = frozenset(
    {"batch_id", "unit_id", "ts", "culture_age_h", "maturity_pct", "phase", "_source_ingested_at", "_loaded_at"}
)
_COLUMN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SPEC_KEYS = {"name", "unit", "kind", "description", "range", "valid_range"}


class CatalogError(ValueError):
    """A signal catalog that cannot be used (one-line reason naming the file and the signal)."""


@dataclass(frozen=True)
class Signal:
    """One online signal of a plant.

    Attributes
    ----------
    name : str
        Canonical parameter name: the ``parameter`` of bronze ``historian_readings`` and a
        column of ``fct_process_readings``.
    unit : str
        Canonical unit (pint-parsable in the project's registry): bronze holds this unit.
    kind : str
        ``process_value``, ``setpoint``, ``flow``, ``totaliser``, ``rate`` or ``state``.
    description : str
        Free text.
    valid_range : tuple of float or None
        Physical plausibility ``(lo, hi)`` in ``unit``; readings outside are quarantined.
    """

    name: str
    unit: str
    kind: str
    description: str = ""
    valid_range: tuple[float, float] | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """``valid_range`` or ``(-inf, inf)``."""
        return self.valid_range if self.valid_range is not None else (float("-inf"), float("inf"))


@dataclass(frozen=True)
class SignalCatalog:
    """The signals of a plant, in column order.

    Attributes
    ----------
    signals : tuple of Signal
        Unique names; the order is the column order of the aligned table.
    source : str
        Where it was read from (for messages only; not part of the fingerprint).
    """

    signals: tuple[Signal, ...]
    source: str = field(default="<catalog>", compare=False, repr=False)

    def names(self) -> list[str]:
        """Signal names in column order."""
        return [s.name for s in self.signals]

    def units(self) -> dict[str, str]:
        """Signal name -> its canonical unit (e.g. for plot axes)."""
        return {s.name: s.unit for s in self.signals}

    def get(self, name: str) -> Signal:
        """The signal called ``name`` (``KeyError`` naming the known ones otherwise)."""
        for s in self.signals:
            if s.name == name:
                return s
        raise KeyError(f"{name!r} is not a signal of {self.source} (one of {self.names()})")

    def __contains__(self, name: object) -> bool:
        return any(s.name == name for s in self.signals)

    def __len__(self) -> int:
        return len(self.signals)

    def of_kind(self, *kinds: str) -> list[Signal]:
        """Signals of the given kinds, in column order."""
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown signal kind(s) {sorted(unknown)} (one of {list(KINDS)})")
        return [s for s in self.signals if s.kind in kinds]

    def fingerprint(self) -> str:
        """sha256 (16 hex) of names, units, kinds and ranges in order: what shapes the data."""
        blob = json.dumps(
            [[s.name, s.unit, s.kind, list(s.valid_range) if s.valid_range else None] for s in self.signals]
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_json(self) -> str:
        """The catalog as JSON (what the dbt model reads from ``LAKEHOUSE_SIGNALS``)."""
        return json.dumps([{"name": s.name, "unit": s.unit, "kind": s.kind} for s in self.signals])

    def extended(self, signals: Iterable[Signal], source: str | None = None) -> SignalCatalog:
        """This catalog followed by ``signals`` (a name declared twice is an error)."""
        out = SignalCatalog((*self.signals, *signals), source or self.source)
        _check_unique(out.signals, out.source)
        return out


def check_signal_name(name: object, where: str = "signal") -> str:
    """``name`` if it can be a signal (a plain identifier and a SQL column name), else raise."""
    check_identifier(name, f"{where} name")
    if not _COLUMN.fullmatch(str(name)):
        raise CatalogError(
            f"invalid {where} name {name!r}: lower-case letters, digits and '_', "
            "starting with a letter (it becomes a column name)"
        )
    if name in RESERVED_NAMES:
        raise CatalogError(f"invalid {where} name {name!r}: a key column of the aligned table")
    return str(name)


def _kind(value: object, where: str) -> str:
    k = str(value or "").strip().lower()
    k = _KIND_ALIASES.get(k, k)
    if k not in KINDS:
        raise CatalogError(f"{where}: kind {value!r} is not one of {list(KINDS)}")
    return k


def _range(value: object, where: str) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise CatalogError(f"{where}: range must be [lo, hi] (numbers), got {value!r}") from None
    if not lo < hi:
        raise CatalogError(f"{where}: range [{lo}, {hi}] is empty")
    return lo, hi


def check_unit_for_kind(unit: str, kind: str, where: str) -> None:
    """Raise :class:`CatalogError` if ``unit`` is not a unit, or does not fit ``kind``."""
    try:
        texp = time_exponent(unit)
        dim = dimension(unit)
    except UnitError as exc:
        raise CatalogError(f"{where}: {exc}") from None
    if kind in ("flow", "rate") and texp >= 0:
        raise CatalogError(f"{where}: a {kind} needs a per-time unit, {unit!r} is {dim}")
    if kind == "totaliser" and texp != 0:
        raise CatalogError(f"{where}: a totaliser needs an amount (not per time), {unit!r} is {dim}")
    if kind == "state" and dim != str(parse_unit("code").dimensionality):
        raise CatalogError(f"{where}: a state signal has the unit 'code', not {unit!r}")


def signal_from_spec(name: str, spec: Mapping[str, Any] | None, where: str, unit: str | None = None) -> Signal:
    """One :class:`Signal` from its YAML spec (``unit`` given: used when the spec has none)."""
    spec = dict(spec or {})
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(_SPEC_KEYS)})")
    check_signal_name(name, f"{where}: signal")
    u = spec.get("unit", unit)
    if not u:
        raise CatalogError(f"{where}: no unit (give `unit:`, or map a tag with an exported unit to it)")
    u = normalise_unit(str(u)) or ""
    kind = _kind(spec.get("kind", "process_value"), where)
    check_unit_for_kind(u, kind, where)
    rng = _range(spec.get("range", spec.get("valid_range")), where)
    return Signal(name=name, unit=u, kind=kind, description=str(spec.get("description") or ""), valid_range=rng)


def _check_unique(signals: Iterable[Signal], source: str) -> None:
    seen: set[str] = set()
    for s in signals:
        if s.name in seen:
            raise CatalogError(f"{source}: signal {s.name!r} declared twice")
        seen.add(s.name)


def specs_of(section: Any, source: str) -> list[tuple[str, dict[str, Any]]]:
    """``(name, spec)`` pairs of a ``signals:`` section (mapping or list of mappings with ``name``)."""
    if section is None:
        return []
    if isinstance(section, Mapping):
        out = []
        for name, spec in section.items():
            if spec is not None and not isinstance(spec, Mapping):
                raise CatalogError(f"{source}: signals.{name}: expected a mapping (unit, kind, range, description)")
            out.append((str(name), dict(spec or {})))
        return out
    if isinstance(section, list):
        out = []
        for i, spec in enumerate(section):
            if not isinstance(spec, Mapping) or "name" not in spec:
                raise CatalogError(f"{source}: signals[{i}]: expected a mapping with `name`")
            out.append((str(spec["name"]), {k: v for k, v in spec.items() if k != "name"}))
        return out
    raise CatalogError(f"{source}: `signals` is a mapping name -> spec (or a list of specs)")


def catalog_from_dict(d: Mapping[str, Any], source: str = "<dict>") -> SignalCatalog:
    """A catalog from the content of a catalog YAML (``{signals: …}``)."""
    if not isinstance(d, Mapping) or "signals" not in d:
        raise CatalogError(f"{source}: a signal catalog is a mapping with `signals:`")
    signals = tuple(signal_from_spec(n, s, f"{source}: signals.{n}") for n, s in specs_of(d["signals"], source))
    if not signals:
        raise CatalogError(f"{source}: the catalog declares no signal")
    _check_unique(signals, source)
    return SignalCatalog(signals, source)


def load_catalog(path: str | Path) -> SignalCatalog:
    """Load a signal catalog YAML (a ``signals:`` section; see the module docstring).

    Raises
    ------
    CatalogError
        Missing file, invalid YAML, or an invalid signal (one line naming file and signal).
    """
    p = Path(path)
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise CatalogError(f"signal catalog not found: {p}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{p}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return catalog_from_dict(d, str(p))


@functools.cache
def default_catalog() -> SignalCatalog:
    """The catalog of tag maps that declare no signals: ``config/plants/cho-twin/signals.yaml``."""
    return load_catalog(DEFAULT_CATALOG_PATH)
