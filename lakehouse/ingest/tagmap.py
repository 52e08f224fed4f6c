"""Tag maps: a plant's historian tag names → canonical ``unit_id`` + ``parameter`` (+ unit).

Format (YAML, documented in ``docs/ingestion.md``)::

    site: my-plant
    tags:                       # 1. exact tag names (highest precedence)
      FERM-01.TEMP.PV: {unit_id: BR-201, parameter: temperature, unit: K}
    patterns:                   # 2. whole-tag patterns; {unit_id} captures the unit part
      - {match: "{unit_id}/TT-100", parameter: temperature, unit: degC}
      - {regex: "^(?P<unit_id>R\\d+)_PH$", parameter: ph}
    suffixes:                   # 3. tag = <unit_id>.<suffix> (unit id = text before 1st '.')
      TEMP.PV: temperature      #    short form: canonical unit assumed
      DO.PV: {parameter: dissolved_oxygen, unit: fraction}
    units: {FERM-01: BR-201}    # optional: rename captured unit ids
    ranges: {temperature: [0, 60]}   # optional plausibility range overrides (canonical unit)

``unit`` is the unit the plant exports (default: the canonical unit of the parameter); the
importer converts to the canonical unit. A row whose own unit string differs from the
declared one (after alias normalisation) is quarantined as a wrong unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lakehouse.ingest.units import PARAMETERS, Conversion, conversion, normalise_unit

# the twin's suffix table (docs/contracts.md) — used when config/tagmaps/twin.yaml is absent
CONTRACT_SUFFIXES: dict[str, str] = {
    "TEMP.PV": "temperature",
    "TEMP.SP": "temperature_sp",
    "PH.PV": "ph",
    "DO.PV": "dissolved_oxygen",
    "AGIT.PV": "agitation",
    "AIR.FLOW": "air_flow",
    "O2.FLOW": "o2_flow",
    "CO2.FLOW": "co2_flow",
    "OFFGAS.O2": "offgas_o2",
    "OFFGAS.CO2": "offgas_co2",
    "CAP.PV": "capacitance",
    "BASE.TOT": "base_total",
    "FEED.FLOW.SP": "feed_flow_sp",
    "FEED.FLOW.PV": "feed_flow",
    "FEED.TOT": "feed_total",
    "WEIGHT.PV": "weight",
    "PRESS.PV": "pressure",
    "AGIT.VIB": "vibration",
    "AGIT.CURRENT": "motor_current",
}

_UNIT_KEYS = ("unit", "source_unit", "from_unit", "eng_unit", "units")
_UNIT_ID_KEYS = ("unit_id", "equipment", "vessel")


class TagMapError(ValueError):
    """A tag map that cannot be used (one-line reason)."""

    pass


@dataclass(frozen=True)
class TagSpec:
    """How one exported tag maps to the canonical model."""

    unit_id: str
    parameter: str
    source_unit: str  # unit string the plant exports (normalised)
    eng_unit: str  # canonical unit
    conv: Conversion
    lo: float
    hi: float


@dataclass(frozen=True)
class _Rule:
    parameter: str
    unit: str | None
    unit_id: str | None = None
    regex: re.Pattern | None = None


def _rule(value: Any, where: str) -> _Rule:
    if isinstance(value, str):
        return _Rule(parameter=value, unit=None)
    if not isinstance(value, dict) or "parameter" not in value:
        raise TagMapError(f"{where}: expected a parameter name or a mapping with 'parameter'")
    unit = next((value[k] for k in _UNIT_KEYS if k in value), None)
    unit_id = next((value[k] for k in _UNIT_ID_KEYS if k in value), None)
    return _Rule(
        parameter=str(value["parameter"]),
        unit=None if unit is None else str(unit),
        unit_id=None if unit_id is None else str(unit_id),
    )


def _placeholder_regex(match: str) -> re.Pattern:
    parts = re.split(r"(\{unit_id\})", match)
    body = "".join("(?P<unit_id>[^.]+?)" if p == "{unit_id}" else re.escape(p) for p in parts)
    return re.compile(f"^{body}$")


@dataclass
class TagMap:
    """Historian tag → (unit id, canonical parameter, unit conversion): a plant's tag map YAML."""

    site: str = "default"
    tags: dict[str, _Rule] = field(default_factory=dict)
    patterns: list[_Rule] = field(default_factory=list)
    suffixes: dict[str, _Rule] = field(default_factory=dict)
    unit_ids: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    source: str = "<built-in>"
    _cache: dict[str, TagSpec | None] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------ loading
    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> TagMap:
        """Build a tag map from its YAML content (``source`` names it in error messages)."""
        if not isinstance(d, dict):
            raise TagMapError(f"{source}: a tag map is a YAML mapping")
        tm = cls(site=str(d.get("site", d.get("name", "default"))), source=source)
        for tag, v in (d.get("tags") or {}).items():
            r = _rule(v, f"{source}: tags.{tag}")
            if r.unit_id is None:
                raise TagMapError(f"{source}: tags.{tag} needs a unit_id")
            tm.tags[str(tag)] = r
        for i, v in enumerate(d.get("patterns") or []):
            r = _rule(v, f"{source}: patterns[{i}]")
            if "regex" in v:
                rx = re.compile(v["regex"])
            elif "match" in v or "pattern" in v:
                rx = _placeholder_regex(str(v.get("match", v.get("pattern"))))
            else:
                raise TagMapError(f"{source}: patterns[{i}] needs 'match' or 'regex'")
            if r.unit_id is None and "unit_id" not in rx.groupindex:
                raise TagMapError(f"{source}: patterns[{i}] must capture unit_id or set one")
            tm.patterns.append(_Rule(r.parameter, r.unit, r.unit_id, rx))
        suffixes = d.get("suffixes", d.get("signals")) or {}
        if isinstance(suffixes, list):  # [{suffix: TEMP.PV, parameter: temperature, unit: degC}]
            suffixes = {s["suffix"]: s for s in suffixes}
        for suf, v in suffixes.items():
            tm.suffixes[str(suf).lstrip(".")] = _rule(v, f"{source}: suffixes.{suf}")
        tm.unit_ids = {str(k): str(v) for k, v in (d.get("units") or d.get("unit_ids") or {}).items()}
        for p, rng in (d.get("ranges") or {}).items():
            tm.ranges[str(p)] = (float(rng[0]), float(rng[1]))
        # validate every rule eagerly: unknown parameters and impossible conversions fail at load
        for r in [*tm.tags.values(), *tm.patterns, *tm.suffixes.values()]:
            tm._spec_for(r, "X")
        return tm

    @classmethod
    def load(cls, path: str | Path) -> TagMap:
        """Load a tag map YAML file."""
        p = Path(path)
        with p.open("r", encoding="utf-8") as fh:
            return cls.from_dict(yaml.safe_load(fh) or {}, source=str(p))

    @classmethod
    def contract_default(cls) -> TagMap:
        """The contract's suffix table (what ``config/tagmaps/twin.yaml`` encodes)."""
        return cls.from_dict({"site": "twin", "suffixes": dict(CONTRACT_SUFFIXES)}, "<contract>")

    # ---------------------------------------------------------- resolving
    def _spec_for(self, rule: _Rule, unit_id: str) -> TagSpec:
        if rule.parameter not in PARAMETERS:
            raise TagMapError(
                f"{self.source}: unknown canonical parameter {rule.parameter!r} (one of {sorted(PARAMETERS)})"
            )
        eng_unit, lo, hi = PARAMETERS[rule.parameter]
        lo, hi = self.ranges.get(rule.parameter, (lo, hi))
        src = normalise_unit(rule.unit) if rule.unit is not None else eng_unit
        try:
            conv = conversion(src, eng_unit)
        except ValueError as exc:
            raise TagMapError(f"{self.source}: {rule.parameter}: {exc}") from None
        return TagSpec(
            unit_id=self.unit_ids.get(unit_id, unit_id),
            parameter=rule.parameter,
            source_unit=src,
            eng_unit=eng_unit,
            conv=conv,
            lo=lo,
            hi=hi,
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
        if spec is None and "." in tag:
            uid, suffix = tag.split(".", 1)
            r = self.suffixes.get(suffix)
            if r is not None:
                spec = self._spec_for(r, r.unit_id or uid)
        self._cache[tag] = spec
        return spec


def load_tagmap(path: str | Path | None) -> TagMap:
    """Load a tag map; ``None`` or a missing twin map gives the contract's suffix table."""
    if path is None:
        return TagMap.contract_default()
    p = Path(path)
    if not p.exists():
        if p.name == "twin.yaml":
            return TagMap.contract_default()
        raise TagMapError(f"tag map not found: {p}")
    return TagMap.load(p)
