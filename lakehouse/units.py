"""Engineering units: the project's unit registry (pint) and unit conversion — defined once.

Every unit ``pint`` knows converts; this module adds the process units it lacks and the
spellings plants export:

* ``pH`` and ``code`` (a state/step code) as units of their own dimension (``[acidity]``,
  ``[state_code]``): they never convert to anything else;
* ``fraction`` (dimensionless, ``1 fraction = 100 %``), ``cell`` (``1e6 cells/mL``),
  ``osmole`` (``mOsm/kg``), ``gpm`` (US gal/min);
* gauge pressures ``barg``, ``mbarg``, ``kPag``, ``psig`` (offset by one standard atmosphere:
  ``psig`` → ``barg`` is a pure scale, ``barg`` → ``bar`` adds 1.01325);
* exact-string aliases first (:data:`ALIASES`: ``°C`` → ``degC``, ``l/min`` → ``L/min``,
  ``SLPM`` / ``NL/min`` → ``L/min`` (standard litres), ``RPM`` / ``1/min`` → ``rpm``,
  ``% air sat`` → ``%`` …), then ``m3``/``m³`` → ``m**3``, then pint.

Conversions are compiled to affine ``canonical = value * scale + offset``
(:class:`Conversion`) so that ingestion converts whole Arrow columns at once. A dimension
mismatch (``mg/L`` → ``%``) raises :class:`UnitError` naming both units and their dimensions.
``rpm`` is a rotational frequency here (``60 rpm = 1 Hz``), not pint's angular velocity.

Also here: the preferred canonical unit of each dimension (:func:`preferred_unit`), used when a
tag map declares a signal without a canonical unit.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

# Exact spellings -> the project's spelling of the same unit (checked before pint parses).
_ALIASES: dict[str, list[str]] = {
    "degC": ["°C", "ºC", "C", "deg C", "degc", "Cel", "celsius", "Celsius"],
    "K": ["kelvin", "Kelvin"],
    "degF": ["°F", "F", "deg F", "degf"],
    "%": ["pct", "percent", "% air sat", "%sat", "% sat", "%air", "%vol", "vol%", "mol%"],
    "fraction": ["frac", "ratio", "1"],
    "L/min": ["l/min", "lpm", "LPM", "slpm", "SLPM", "sL/min", "NL/min", "nL/min", "Nl/min", "NLPM"],
    "mL/min": ["ml/min", "mlpm"],
    "L/h": ["l/h", "L/hr", "l/hr", "lph"],
    "mL/h": ["ml/h", "mL/hr", "ml/hr"],
    "m3/h": ["m³/h", "m3/hr"],
    "mL": ["ml"],
    "L": ["l"],
    "kg": ["KG", "Kg"],
    "kg/h": ["kg/hr"],
    "g/h": ["g/hr"],
    "barg": ["bar(g)", "bar g", "bar_g"],
    "psig": ["PSIG", "psi(g)"],
    "psi": ["PSI"],
    "kPa": ["kpa"],
    "rpm": ["RPM", "1/min", "min-1"],
    "pH": ["ph", "PH"],
    "pF/cm": ["pf/cm"],
    "A": ["amp", "amps"],
    "g/L": ["g/l"],
    "mg/mL": ["mg/ml"],
    "mg/L": ["mg/l"],
    "mM": ["mmol/L", "mmol/l"],
    "mOsm/kg": ["mosm/kg", "mOsmol/kg"],
    "1e6 cells/mL": ["1e6/mL", "10^6 cells/mL", "e6 cells/mL", "x10^6 cells/mL", "1e6 cells/ml", "MVC/mL"],
    "1e5 cells/mL": ["10^5 cells/mL", "1e5/mL"],
    "cells/mL": ["cells/ml"],
    "gpm": ["GPM", "gal/min", "USgpm"],
    "code": ["step", "state"],
}
ALIASES: dict[str, str] = {}
for _canon, _alts in _ALIASES.items():
    ALIASES[_canon] = _canon
    for _a in _alts:
        ALIASES[_a] = _canon

# What pint parses for a project spelling, where it differs from the spelling itself.
_PINT_EXPR: dict[str, str] = {
    "rpm": "1 / minute",  # rotational frequency: 60 rpm = 1 Hz (pint's rpm is 2π rad/min)
    "%": "percent",
}

# The registry's additions, in pint's definition syntax.
_DEFINITIONS = """
pH = [acidity]
code = [state_code]
fraction = [] = frac
cell = [cell_count] = cells
osmole = [osmotic_amount] = Osm = osmol
gpm = gallon / minute
barg = 100000 * pascal; offset: 101325
mbarg = 100 * pascal; offset: 101325
kPag = 1000 * pascal; offset: 101325
psig = 6894.757293168361 * pascal; offset: 101325
"""

_GAUGE = ("barg", "mbarg", "kPag", "psig")

# Preferred canonical unit per dimension (a tag map may declare a signal without its canonical
# unit: it is inferred from the exported unit's dimension).
_PREFERRED: tuple[str, ...] = (
    "degC",
    "bar",
    "L/min",
    "kg/h",
    "kg",
    "L",
    "g/L",
    "mM",
    "mmol/L/h",
    "%",
    "A",
    "mm/s",
    "pH",
    "code",
    "pF/cm",
    "1e6 cells/mL",
    "mOsm/kg",
    "kW",
    "mS/cm",
    "rpm",
)


class UnitError(ValueError):
    """A unit that is unknown, or that cannot be converted to the unit asked for (one line)."""


@functools.cache
def registry():
    """The project's ``pint.UnitRegistry`` (built on first use; importing pint takes ~1 s)."""
    import pint

    reg = pint.UnitRegistry(autoconvert_offset_to_baseunit=False, on_redefinition="raise")
    for line in _DEFINITIONS.strip().splitlines():
        reg.define(line)
    return reg


def normalise_unit(unit: str | None) -> str | None:
    """A unit string in the project's spelling (exact aliases); ``None`` stays ``None``."""
    if unit is None:
        return None
    u = str(unit).strip()
    return ALIASES.get(u, u)


_POWER = re.compile(r"(?<=[A-Za-z])([23])(?![\d.eE])")


def _pint_expression(unit: str) -> str:
    u = normalise_unit(unit) or ""
    u = _PINT_EXPR.get(u, u)
    return _POWER.sub(r"**\1", u.replace("³", "3").replace("²", "2"))


@functools.lru_cache(maxsize=1024)
def parse_unit(unit: str) -> Any:
    """The unit as a pint quantity (magnitude = its numeric prefix: ``1e6 cells/mL`` → 1e6).

    Raises
    ------
    UnitError
        Empty, or not a unit pint (with the project's additions) knows.
    """
    import pint

    expr = _pint_expression(unit)
    if not expr:
        raise UnitError("empty unit")
    try:
        q = registry().parse_expression(expr)
    except (pint.errors.PintError, AttributeError, TypeError, SyntaxError, ValueError) as exc:
        raise UnitError(f"unknown unit {unit!r} ({str(exc)[:80]})") from None
    if not isinstance(q, registry().Quantity):  # a bare number ("1e6")
        raise UnitError(f"unknown unit {unit!r} (a number, not a unit)")
    return q


def dimension(unit: str) -> str:
    """The dimension of ``unit`` as pint writes it (``[mass] / [length] ** 3``; ``dimensionless``)."""
    dim = parse_unit(unit).dimensionality
    return str(dim) if len(dim) else "dimensionless"


def time_exponent(unit: str) -> int:
    """Power of ``[time]`` in the unit's dimension (-1 for a flow or a rate, 0 for an amount)."""
    return int(parse_unit(unit).dimensionality.get("[time]", 0))


def is_known(unit: str | None) -> bool:
    """True when pint (with the project's additions) parses ``unit``."""
    if unit is None:
        return False
    try:
        parse_unit(unit)
    except UnitError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def unit_key(unit: str | None) -> str | None:
    """A comparison key: two unit strings with the same key are the same unit (``l/min`` and
    ``L/min``); strings pint cannot parse compare by their normalised spelling."""
    if unit is None:
        return None
    norm = normalise_unit(unit)
    try:
        q = parse_unit(norm)
    except UnitError:
        return norm
    return f"{float(q.magnitude)!r} {q.units}"


@dataclass(frozen=True)
class Conversion:
    """A linear unit conversion ``canonical = value * scale + offset``."""

    scale: float = 1.0
    offset: float = 0.0

    @property
    def identity(self) -> bool:
        """True when the conversion changes nothing."""
        return self.scale == 1.0 and self.offset == 0.0


@functools.lru_cache(maxsize=4096)
def conversion(from_unit: str, to_unit: str) -> Conversion:
    """The affine conversion ``from_unit`` → ``to_unit``, compiled from pint.

    Raises
    ------
    UnitError
        A unit pint does not know, or a dimension mismatch (the message names both units and
        their dimensions).
    """
    f, t = normalise_unit(from_unit), normalise_unit(to_unit)
    if f == t:
        return Conversion()
    qf, qt = parse_unit(f), parse_unit(t)
    if qf.dimensionality != qt.dimensionality:
        raise UnitError(
            f"cannot convert {from_unit!r} ({dimension(f)}) to {to_unit!r} ({dimension(t)}): different dimensions"
        )
    Q = registry().Quantity

    def fn(x: float) -> float:
        return float(Q(x * qf.magnitude, qf.units).to(qt.units).magnitude / qt.magnitude)

    offset = fn(0.0)
    scale = (fn(1.0e6) - fn(-1.0e6)) / 2.0e6
    for x in (1.0, 37.0, -273.0):  # affine? (pint's logarithmic units are not)
        if not math.isclose(fn(x), scale * x + offset, rel_tol=1e-9, abs_tol=1e-9):
            raise UnitError(f"cannot convert {from_unit!r} to {to_unit!r}: not an affine conversion")
    if math.isclose(scale, 1.0, rel_tol=1e-13, abs_tol=0.0):
        scale = 1.0
    if abs(offset) < 1e-12 * max(1.0, abs(scale)):
        offset = 0.0
    return Conversion(scale, offset)


def convert(values, from_unit: str, to_unit: str):
    """Convert a number / numpy array / pyarrow array (float) between units."""
    c = conversion(from_unit, to_unit)
    if c.identity:
        return values
    return values * c.scale + c.offset


def preferred_unit(unit: str) -> str:
    """The project's canonical unit for the dimension of ``unit`` (``degF`` → ``degC``,
    ``gpm`` → ``L/min``, ``psig`` → ``barg``, ``g/h`` → ``kg/h``); ``unit`` itself (normalised)
    when no preferred unit has its dimension."""
    norm = normalise_unit(unit) or ""
    dim = parse_unit(norm).dimensionality
    if norm in _GAUGE:
        return "barg"
    for cand in _PREFERRED:
        if parse_unit(cand).dimensionality == dim:
            return cand
    return norm
