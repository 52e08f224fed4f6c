"""Tag maps: a plant's historian tag names → ``unit_id`` + a signal of its catalog (+ unit).

Format (YAML, documented in ``docs/ingestion.md``)::

    site: my-plant
    catalog: signals.yaml       # optional: a signal catalog file (relative to this file)
    signals:                    # optional: signals declared here (added to `catalog`)
      methanol_feed: {unit: kg/h, kind: flow, range: [-0.5, 50]}
      base_flow: {kind: flow}   #   no unit: inferred from the exported unit's dimension
    tags:                       # 1. exact tag names (highest precedence)
      FERM-01.TEMP.PV: {unit_id: BR-201, parameter: temperature, unit: K}
    patterns:                   # 2. whole-tag patterns; {unit_id} captures the unit part
      - {match: "{unit_id}/TT-100", parameter: temperature, unit: degC}
      - {regex: "^(?P<unit_id>R\\d+)_PH$", parameter: ph}
    separator: "."              # 3. suffixes: tag = <unit_id><separator><suffix>
    suffixes:                   #    (unit id = text before the first separator)
      TEMP.PV: temperature      #    short form: the canonical unit is exported
      DO.PV: {parameter: dissolved_oxygen, unit: fraction}
    units: {FERM-01: BR-201}    # optional: rename captured unit ids
    ranges: {temperature: [0, 60]}   # optional plausibility range overrides (canonical unit)

The signals a rule may map to are the tag map's catalog: ``catalog`` + ``signals``; a tag map
with neither uses the default catalog (:func:`lakehouse.catalog.default_catalog`, the CHO
twin's signals). ``unit`` is the unit the plant exports (default: the signal's canonical
unit); the importer converts to the canonical unit with :mod:`lakehouse.units` (pint). Every
rule is checked at load: an unknown signal or a unit of another dimension is a one-line error
naming the rule, both units and their dimensions. A row whose own unit string is not the
declared unit (pint-equal spellings match: ``l/min`` = ``L/min``) is quarantined as a wrong
unit.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lakehouse.catalog import (
    DEFAULT_PLANT_DIR,
    CatalogError,
    Signal,
    SignalCatalog,
    default_catalog,
    load_catalog,
    signal_from_spec,
    specs_of,
)
from lakehouse.units import Conversion, UnitError, conversion, dimension, normalise_unit, preferred_unit

_UNIT_KEYS = ("unit", "source_unit", "from_unit", "eng_unit", "units")
_UNIT_ID_KEYS = ("unit_id", "equipment", "vessel")
_TOP_KEYS = {
    "site",
    "name",
    "description",
    "catalog",
    "signals",
    "tags",
    "patterns",
    "separator",
    "suffixes",
    "units",
    "unit_ids",
    "ranges",
}


class TagMapError(ValueError):
    """A tag map that cannot be used (one-line reason naming the file and the rule)."""


@dataclass(frozen=True)
class TagSpec:
    """How one exported tag maps to the canonical model."""

    unit_id: str
    parameter: str
    source_unit: str  # unit string the plant exports (normalised)
    eng_unit: str  # canonical unit (the catalog's)
    conv: Conversion
    lo: float
    hi: float
    kind: str = "process_value"


@dataclass(frozen=True)
class _Rule:
    parameter: str
    unit: str | None
    unit_id: str | None = None
    regex: re.Pattern | None = None
    where: str = field(default="", repr=False, compare=False)  # for messages only


def _rule(value: Any, where: str) -> _Rule:
    if isinstance(value, str):
        return _Rule(parameter=value, unit=None, where=where)
    if not isinstance(value, dict) or "parameter" not in value:
        raise TagMapError(f"{where}: expected a parameter name or a mapping with 'parameter'")
    unit = next((value[k] for k in _UNIT_KEYS if k in value), None)
    unit_id = next((value[k] for k in _UNIT_ID_KEYS if k in value), None)
    return _Rule(
        parameter=str(value["parameter"]),
        unit=None if unit is None else str(unit),
        unit_id=None if unit_id is None else str(unit_id),
        where=where,
    )


def _placeholder_regex(match: str) -> re.Pattern:
    parts = re.split(r"(\{unit_id\})", match)
    body = "".join("(?P<unit_id>[^.]+?)" if p == "{unit_id}" else re.escape(p) for p in parts)
    return re.compile(f"^{body}$")


def _legacy_suffixes(section: Any) -> bool:
    """``signals:`` written as a suffix table (an old spelling of ``suffixes:``)."""
    if isinstance(section, Mapping):
        return any(isinstance(v, str) or (isinstance(v, Mapping) and "parameter" in v) for v in section.values())
    if isinstance(section, list):
        return any(isinstance(v, Mapping) and "suffix" in v for v in section)
    return False


@dataclass
class TagMap:
    """Historian tag → (unit id, signal of the catalog, unit conversion): a plant's tag map YAML."""

    site: str = "default"
    tags: dict[str, _Rule] = field(default_factory=dict)
    patterns: list[_Rule] = field(default_factory=list)
    suffixes: dict[str, _Rule] = field(default_factory=dict)
    unit_ids: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    source: str = "<built-in>"
    catalog: SignalCatalog = field(default_factory=default_catalog)
    separator: str = "."
    _cache: dict[str, TagSpec | None] = field(default_factory=dict, repr=False)
    #: per distinct tag list, what the historian reader derives from the specs (readers._TagPlan)
    plans: dict[tuple[str, ...], Any] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------ loading
    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>", base: Path | None = None) -> TagMap:
        """Build a tag map from its YAML content (``source`` names it in error messages;
        ``base``: folder that a relative ``catalog:`` path is relative to)."""
        if not isinstance(d, dict):
            raise TagMapError(f"{source}: a tag map is a YAML mapping")
        unknown = set(d) - _TOP_KEYS
        if unknown:
            raise TagMapError(f"{source}: unknown key(s) {sorted(unknown)} (allowed: {sorted(_TOP_KEYS)})")
        sep = str(d.get("separator", "."))
        if len(sep) != 1:
            raise TagMapError(f"{source}: separator must be one character, got {sep!r}")
        tm = cls(site=str(d.get("site", d.get("name", "default"))), source=source, separator=sep)
        for tag, v in (d.get("tags") or {}).items():
            r = _rule(v, f"{source}: tags.{tag}")
            if r.unit_id is None:
                raise TagMapError(f"{source}: tags.{tag} needs a unit_id")
            tm.tags[str(tag)] = r
        for i, v in enumerate(d.get("patterns") or []):
            where = f"{source}: patterns[{i}]"
            r = _rule(v, where)
            if "regex" in v:
                rx = re.compile(v["regex"])
            elif "match" in v or "pattern" in v:
                rx = _placeholder_regex(str(v.get("match", v.get("pattern"))))
            else:
                raise TagMapError(f"{where} needs 'match' or 'regex'")
            if r.unit_id is None and "unit_id" not in rx.groupindex:
                raise TagMapError(f"{where} must capture unit_id or set one")
            tm.patterns.append(_Rule(r.parameter, r.unit, r.unit_id, rx, where))
        signals = d.get("signals")
        suffixes = d.get("suffixes")
        if suffixes is None and _legacy_suffixes(signals):
            suffixes, signals = signals, None
        if isinstance(suffixes, list):  # [{suffix: TEMP.PV, parameter: temperature, unit: degC}]
            suffixes = {s["suffix"]: s for s in suffixes}
        for suf, v in (suffixes or {}).items():
            tm.suffixes[str(suf).lstrip(sep)] = _rule(v, f"{source}: suffixes.{suf}")
        tm.unit_ids = {str(k): str(v) for k, v in (d.get("units") or d.get("unit_ids") or {}).items()}
        for p, rng in (d.get("ranges") or {}).items():
            tm.ranges[str(p)] = (float(rng[0]), float(rng[1]))
        tm.catalog = tm._build_catalog(d.get("catalog"), signals, base)
        unknown_ranges = set(tm.ranges) - set(tm.catalog.names())
        if unknown_ranges:
            raise TagMapError(f"{source}: ranges for unknown signal(s) {sorted(unknown_ranges)}")
        # validate every rule eagerly: unknown signals and impossible conversions fail at load
        for r in [*tm.tags.values(), *tm.patterns, *tm.suffixes.values()]:
            tm._spec_for(r, "X")
        return tm

    def _rules(self) -> list[_Rule]:
        return [*self.tags.values(), *self.patterns, *self.suffixes.values()]

    def _build_catalog(self, catalog_path: Any, signals: Any, base: Path | None) -> SignalCatalog:
        """``catalog`` file + ``signals`` declared here; the default catalog when neither."""
        try:
            if catalog_path is None and signals is None:
                return default_catalog()
            cat = SignalCatalog((), self.source)
            if catalog_path is not None:
                p = Path(str(catalog_path))
                cat = load_catalog(p if p.is_absolute() or base is None else base / p)
            declared = []
            for name, spec in specs_of(signals, self.source):
                declared.append(
                    signal_from_spec(name, spec, f"{self.source}: signals.{name}", unit=self._inferred_unit(name, spec))
                )
            out = cat.extended(declared, self.source) if declared else cat
        except CatalogError as exc:
            raise TagMapError(str(exc)) from None
        if not len(out):
            raise TagMapError(f"{self.source}: the catalog declares no signal")
        return out

    def _inferred_unit(self, name: str, spec: Any) -> str | None:
        """The canonical unit of a signal declared without one: the project's preferred unit
        for the dimension of the unit its rules export."""
        if isinstance(spec, Mapping) and spec.get("unit"):
            return None
        exported = sorted({r.unit for r in self._rules() if r.parameter == name and r.unit})
        if not exported:
            return None
        try:
            return preferred_unit(exported[0])
        except UnitError as exc:
            raise TagMapError(f"{self.source}: signals.{name}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> TagMap:
        """Load a tag map YAML file."""
        p = Path(path)
        try:
            d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise TagMapError(f"{p}: not valid YAML: {str(exc).splitlines()[0]}") from None
        return cls.from_dict(d, source=str(p), base=p.resolve().parent)

    @classmethod
    def contract_default(cls) -> TagMap:
        """The CHO twin's tag map: the one the default plant bundle names
        (``config/plants/cho-twin/plant.yaml`` → ``config/tagmaps/twin.yaml``)."""
        return dataclasses.replace(_default_plant_tagmap(), _cache={})

    def suffix_table(self) -> dict[str, tuple[str, str]]:
        """``suffix -> (signal, exported unit)`` of the ``suffixes`` rules, in file order."""
        return {suf: (r.parameter, self._spec_for(r, "X").source_unit) for suf, r in self.suffixes.items()}

    # ---------------------------------------------------------- resolving
    def _spec_for(self, rule: _Rule, unit_id: str) -> TagSpec:
        if rule.parameter not in self.catalog:
            raise TagMapError(
                f"{rule.where or self.source}: unknown signal {rule.parameter!r} "
                f"(not in the catalog {self.catalog.source}; declare it under `signals:`)"
            )
        sig: Signal = self.catalog.get(rule.parameter)
        lo, hi = self.ranges.get(rule.parameter, sig.bounds)
        src = normalise_unit(rule.unit) if rule.unit is not None else sig.unit
        try:
            conv = conversion(src, sig.unit)
        except UnitError:
            raise TagMapError(
                f"{rule.where or self.source}: {rule.parameter}: exported unit {src!r} ({_dim(src)}) "
                f"does not convert to the signal's unit {sig.unit!r} ({_dim(sig.unit)})"
            ) from None
        return TagSpec(
            unit_id=self.unit_ids.get(unit_id, unit_id),
            parameter=rule.parameter,
            source_unit=src,
            eng_unit=sig.unit,
            conv=conv,
            lo=lo,
            hi=hi,
            kind=sig.kind,
        )

    def resolve(self, tag: str) -> TagSpec | None:
        """The spec for one exported tag, or None if the map does not know it."""
        if tag in self._cache:
            return self._cache[tag]
        spec: TagSpec | None = None
        rule = self.tags.get(tag)
        if rule is not None:
            spec = self._spec_for(rule, rule.unit_id or tag)
        if spec is None:
            for r in self.patterns:
                m = r.regex.match(tag) if r.regex else None
                if m:
                    uid = r.unit_id or m.group("unit_id")
                    spec = self._spec_for(r, uid)
                    break
        if spec is None and self.separator in tag:
            uid, suffix = tag.split(self.separator, 1)
            r = self.suffixes.get(suffix)
            if r is not None:
                spec = self._spec_for(r, r.unit_id or uid)
        self._cache[tag] = spec
        return spec


@functools.cache
def _default_plant_tagmap() -> TagMap:
    manifest = DEFAULT_PLANT_DIR / "plant.yaml"
    d = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    return TagMap.load(DEFAULT_PLANT_DIR / str(d.get("tagmap", "tagmap.yaml")))


def _dim(unit: str) -> str:
    try:
        return dimension(unit)
    except UnitError:
        return "unknown unit"


def load_tagmap(path: str | Path | None) -> TagMap:
    """Load a tag map; ``None`` gives the CHO twin's (the default plant's) tag map."""
    if path is None:
        return TagMap.contract_default()
    p = Path(path)
    if not p.exists():
        raise TagMapError(f"tag map not found: {p}")
    return TagMap.load(p)
