"""Canonical parameters/analytes, engineering units and unit conversion.

Conversions are affine: ``canonical = value * scale + offset``. Unit strings are normalised
through a small alias table first (``°C`` → ``degC``, ``l/min`` → ``L/min`` …).
"""

from __future__ import annotations

from dataclasses import dataclass

# canonical historian parameters (docs/contracts.md): parameter -> (eng unit, lo, hi)
# The ranges are *physical plausibility* bounds in the canonical unit, not spec limits: a
# value outside them is a broken reading (quarantined), not a process excursion.
PARAMETERS: dict[str, tuple[str, float, float]] = {
    "temperature": ("degC", -20.0, 150.0),
    "temperature_sp": ("degC", -20.0, 150.0),
    "ph": ("pH", 0.0, 14.0),
    "dissolved_oxygen": ("%", -5.0, 500.0),
    "agitation": ("rpm", -1.0, 5000.0),
    "air_flow": ("L/min", -1.0, 1.0e5),
    "o2_flow": ("L/min", -1.0, 1.0e5),
    "co2_flow": ("L/min", -1.0, 1.0e5),
    "offgas_o2": ("%", -1.0, 100.0),
    "offgas_co2": ("%", -1.0, 100.0),
    "capacitance": ("pF/cm", -50.0, 5000.0),
    "base_total": ("mL", -10.0, 1.0e8),
    "feed_flow_sp": ("mL/min", -1.0, 1.0e6),
    "feed_flow": ("mL/min", -10.0, 1.0e6),
    "feed_total": ("mL", -10.0, 1.0e9),
    "weight": ("kg", -500.0, 1.0e6),
    "pressure": ("bar", -1.5, 20.0),
    "vibration": ("mm/s", -1.0, 500.0),
    "motor_current": ("A", -1.0, 2000.0),
}

# canonical LIMS analytes: analyte -> (unit, lo, hi). A plant may add its own analytes in an
# import config (with their unit and range); unknown analytes in the twin's LIMS files are
# accepted with any non-empty unit and only the generic finite-value check.
ANALYTES: dict[str, tuple[str, float, float]] = {
    "vcd": ("1e6 cells/mL", 0.0, 500.0),
    "viability": ("%", 0.0, 100.0),
    "glucose": ("g/L", 0.0, 100.0),
    "lactate": ("g/L", 0.0, 100.0),
    "glutamine": ("mM", 0.0, 200.0),
    "ammonia": ("mM", 0.0, 200.0),
    "osmolality": ("mOsm/kg", 0.0, 3000.0),
    "ph_offline": ("pH", 0.0, 14.0),
    "po2_offline": ("%", 0.0, 500.0),
    "titer": ("g/L", 0.0, 100.0),
    "g0f": ("%", 0.0, 100.0),
    "g1f": ("%", 0.0, 100.0),
    "g2f": ("%", 0.0, 100.0),
    "man5": ("%", 0.0, 100.0),
    "afucosylation": ("%", 0.0, 100.0),
    "hmw": ("%", 0.0, 100.0),
}

_ALIASES: dict[str, list[str]] = {
    "degC": ["°C", "ºC", "C", "deg C", "degc", "Cel", "celsius", "Celsius"],
    "K": ["kelvin", "Kelvin"],
    "degF": ["°F", "F", "deg F", "degf"],
    "%": ["pct", "percent", "% air sat", "%sat", "% sat", "%air", "%vol", "vol%", "mol%"],
    "fraction": ["frac", "ratio", "1"],
    "L/min": ["l/min", "lpm", "LPM", "slpm", "SLPM", "sL/min", "NL/min", "nL/min"],
    "mL/min": ["ml/min", "mlpm"],
    "L/h": ["l/h", "L/hr", "l/hr", "lph"],
    "mL/h": ["ml/h", "mL/hr", "ml/hr"],
    "m3/h": ["m³/h", "m3/hr"],
    "mL": ["ml"],
    "L": ["l"],
    "kg": ["KG", "Kg"],
    "g": [],
    "bar": ["barg", "bar(g)"],
    "mbar": ["mbarg"],
    "kPa": ["kpa", "kPag"],
    "psi": ["psig", "PSI"],
    "rpm": ["RPM", "1/min", "min-1"],
    "pH": ["ph", "PH"],
    "pF/cm": ["pf/cm"],
    "mm/s": [],
    "A": ["amp", "amps"],
    "mA": [],
    "g/L": ["g/l"],
    "mg/mL": ["mg/ml"],
    "mg/L": ["mg/l"],
    "mM": ["mmol/L", "mmol/l"],
    "mOsm/kg": ["mosm/kg", "mOsmol/kg"],
    "1e6 cells/mL": ["1e6/mL", "10^6 cells/mL", "e6 cells/mL", "x10^6 cells/mL", "1e6 cells/ml", "MVC/mL"],
    "1e5 cells/mL": ["10^5 cells/mL", "1e5/mL"],
    "cells/mL": ["cells/ml"],
}
ALIAS: dict[str, str] = {}
for _canon, _alts in _ALIASES.items():
    ALIAS[_canon] = _canon
    for _a in _alts:
        ALIAS[_a] = _canon

# (from, to) -> (scale, offset); the inverse direction is derived automatically.
_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("K", "degC"): (1.0, -273.15),
    ("degF", "degC"): (5.0 / 9.0, -32.0 * 5.0 / 9.0),
    ("fraction", "%"): (100.0, 0.0),
    ("L/h", "mL/min"): (1000.0 / 60.0, 0.0),
    ("L/min", "mL/min"): (1000.0, 0.0),
    ("mL/h", "mL/min"): (1.0 / 60.0, 0.0),
    ("L/h", "L/min"): (1.0 / 60.0, 0.0),
    ("m3/h", "L/min"): (1000.0 / 60.0, 0.0),
    ("L", "mL"): (1000.0, 0.0),
    ("g", "kg"): (0.001, 0.0),
    ("mbar", "bar"): (0.001, 0.0),
    ("kPa", "bar"): (0.01, 0.0),
    ("psi", "bar"): (0.0689475729, 0.0),
    ("mA", "A"): (0.001, 0.0),
    ("mg/mL", "g/L"): (1.0, 0.0),
    ("mg/L", "g/L"): (0.001, 0.0),
    ("1e5 cells/mL", "1e6 cells/mL"): (0.1, 0.0),
    ("cells/mL", "1e6 cells/mL"): (1e-6, 0.0),
}


class UnitError(ValueError):
    """A unit that cannot be converted to the canonical unit of its parameter."""

    pass


def normalise_unit(unit: str | None) -> str | None:
    """A unit string in its canonical spelling (case, spaces, aliases); ``None`` stays ``None``."""
    if unit is None:
        return None
    u = str(unit).strip()
    return ALIAS.get(u, u)


@dataclass(frozen=True)
class Conversion:
    """A linear unit conversion ``canonical = value * scale + offset``."""

    scale: float = 1.0
    offset: float = 0.0

    @property
    def identity(self) -> bool:
        """True when the conversion changes nothing."""
        return self.scale == 1.0 and self.offset == 0.0


def conversion(from_unit: str, to_unit: str) -> Conversion:
    """The affine conversion ``from_unit`` → ``to_unit`` (raises :class:`UnitError`)."""
    f, t = normalise_unit(from_unit), normalise_unit(to_unit)
    if f == t:
        return Conversion()
    if (f, t) in _CONVERSIONS:
        return Conversion(*_CONVERSIONS[(f, t)])
    if (t, f) in _CONVERSIONS:
        s, o = _CONVERSIONS[(t, f)]
        return Conversion(1.0 / s, -o / s)
    # chains (e.g. m3/h -> L/min -> mL/min): breadth-first search over the conversion graph
    edges: dict[str, list[tuple[str, float, float]]] = {}
    for (a, b), (s_, o_) in _CONVERSIONS.items():
        edges.setdefault(a, []).append((b, s_, o_))
        edges.setdefault(b, []).append((a, 1.0 / s_, -o_ / s_))
    frontier = [(f, 1.0, 0.0)]
    seen = {f}
    while frontier:
        nxt = []
        for node, s_, o_ in frontier:
            for other, s2, o2 in edges.get(node, []):
                if other in seen:
                    continue
                comp = (s_ * s2, o_ * s2 + o2)
                if other == t:
                    return Conversion(*comp)
                seen.add(other)
                nxt.append((other, *comp))
        frontier = nxt
    raise UnitError(f"no conversion from {from_unit!r} to {to_unit!r}")


def convert(values, from_unit: str, to_unit: str):
    """Convert a number / numpy array / pyarrow array (float) between units."""
    c = conversion(from_unit, to_unit)
    if c.identity:
        return values
    return values * c.scale + c.offset
