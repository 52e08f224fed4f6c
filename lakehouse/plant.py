"""Plant bundles: one plant = one folder of YAML (``config/plants/<name>/``).

A bundle says everything the product needs to know about a plant, with no Python::

    config/plants/pichia/
      plant.yaml        # name, grid, phases from a state signal, equipment signals, file names
      tagmap.yaml       # historian tags -> its signals (the signal catalog is declared here
                        #   or in a catalog file the tag map names)
      import.yaml       # where the exports are and how to read them (historian, batch list
                        #   with status mapping, recorded deviations, lab sheet); timezone
      softsensor.yaml   # model configs (optional; the ML layer reads them)
      golden.yaml
      pdm.yaml

``plant.yaml``::

    name: pichia                     # a plain identifier
    description: free text
    grid: 10 min                     # alignment grid, 1 s … 15 min (default 1 min)
    tagmap: tagmap.yaml              # default tagmap.yaml; paths relative to the folder
    import: import.yaml              # default import.yaml if it exists
    timezone: UTC                    # only for a bundle without import config
    phases:                          # optional: phase of each grid step from a state signal
      signal: process_step           #   a signal of kind `state` in the catalog
      codes: {2: Batch, 3: Transition, 4: Induction, 5: Harvest}
    equipment:                       # optional: signals behind the equipment-health marts
      agitator_vibration: vibration  #   role -> signal (roles: EQUIPMENT_ROLES)
    models: {softsensor: softsensor.yaml, golden: golden.yaml, pdm: pdm.yaml}   # optional

:func:`load_plant` checks the whole bundle and fails with one line naming the file and the
problem. :meth:`PlantBundle.dbt_env` is what the dbt build needs (the plant's signal columns,
grid, phase signal, equipment signals as environment variables of the dbt process).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lakehouse.catalog import DEFAULT_PLANT_DIR, PROJECT_ROOT, SignalCatalog
from lakehouse.identifiers import InvalidIdentifierError, check_identifier
from lakehouse.units import UnitError, conversion

if TYPE_CHECKING:  # pragma: no cover
    from lakehouse.ingest.tagmap import TagMap

PLANTS_DIR = PROJECT_ROOT / "config" / "plants"
DEFAULT_PLANT = DEFAULT_PLANT_DIR.name
MIN_GRID_S, MAX_GRID_S = 1, 900
#: roles of the equipment-health models (dbt int_equipment__*): agitator bearing vibration and
#: motor current, feed pump delivered and commanded flow, the online DO probe (all signals of the
#: catalog) and the offline analyte the DO probe is compared with (a LIMS analyte, same unit)
EQUIPMENT_ROLES: tuple[str, ...] = (
    "agitator_vibration",
    "agitator_motor_current",
    "feed_pump_flow",
    "feed_pump_setpoint",
    "do_probe",
    "do_probe_reference",
)
_KEYS = {"name", "description", "grid", "grid_seconds", "tagmap", "import", "timezone", "phases", "equipment", "models"}
_MODEL_KEYS = ("softsensor", "golden", "pdm")
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]+)\s*")


class PlantBundleError(ValueError):
    """A plant bundle that cannot be used (one-line reason naming the file)."""


@dataclass(frozen=True)
class PhaseSignal:
    """Phases from a state signal: the grid step's phase is ``codes[round(value)]``.

    Attributes
    ----------
    signal : str
        A catalog signal of kind ``state``.
    codes : dict of int to str
        State code -> phase name; codes not listed give no phase (null).
    """

    signal: str
    codes: Mapping[int, str]

    def as_json(self) -> str:
        """``{"signal": …, "codes": {"2": "Batch", …}}`` (what the dbt model reads)."""
        return json.dumps({"signal": self.signal, "codes": {str(k): v for k, v in sorted(self.codes.items())}})


@dataclass(frozen=True)
class PlantBundle:
    """A plant's configuration, loaded and checked (see the module docstring).

    Attributes
    ----------
    name, description : str
        From ``plant.yaml``.
    root : Path
        The bundle folder.
    tagmap_path : Path
        Its tag map; ``tagmap`` is the loaded :class:`~lakehouse.ingest.tagmap.TagMap`.
    catalog : SignalCatalog
        The tag map's signal catalog.
    import_path : Path or None
        Its import config (``import_config``: the parsed YAML), None for a plant whose data
        arrive through the landing zone (the CHO twin).
    grid_seconds : int
        Alignment grid step.
    timezone : str
        Zone of timestamps without offset in its exports.
    phase_signal : PhaseSignal or None
        Phases from a state signal (else: MES phases / the batch list's synthetic phases).
    equipment : dict
        Equipment-health role -> signal (or analyte for ``do_probe_reference``).
    models : dict
        ``softsensor`` / ``golden`` / ``pdm`` -> path of the config file (only existing ones).
    """

    name: str
    root: Path
    tagmap_path: Path
    tagmap: TagMap = field(repr=False)
    catalog: SignalCatalog = field(repr=False)
    import_path: Path | None = None
    import_config: Mapping[str, Any] | None = field(default=None, repr=False)
    grid_seconds: int = 60
    timezone: str = "UTC"
    phase_signal: PhaseSignal | None = None
    equipment: Mapping[str, str] = field(default_factory=dict)
    models: Mapping[str, Path] = field(default_factory=dict)
    description: str = ""

    @property
    def grid_minutes(self) -> float:
        """The grid step in minutes (may be fractional)."""
        return self.grid_seconds / 60.0

    def fingerprint(self) -> str:
        """sha256 (16 hex) of what shapes the process data model: catalog, grid, phases,
        equipment roles. A warehouse built with another fingerprint is rebuilt from scratch."""
        blob = json.dumps(
            {
                "catalog": self.catalog.fingerprint(),
                "grid_s": self.grid_seconds,
                "phases": self.phase_signal.as_json() if self.phase_signal else None,
                "equipment": dict(sorted(self.equipment.items())),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def dbt_env(self) -> dict[str, str]:
        """Environment variables of the dbt process for this plant (read by the project's
        macros ``process_parameters``, ``state_parameters``, ``grid_seconds``, ``phase_signal``,
        ``equipment_signal``):

        ``LAKEHOUSE_SIGNALS`` (comma-separated signal names, column order),
        ``LAKEHOUSE_STATE_SIGNALS`` (those of kind ``state``: last reading per step, not the mean),
        ``LAKEHOUSE_GRID_SECONDS``, ``LAKEHOUSE_PHASE_SIGNAL`` (JSON or empty),
        ``LAKEHOUSE_EQUIPMENT_SIGNALS`` (JSON role -> signal).
        """
        return {
            "LAKEHOUSE_SIGNALS": ",".join(self.catalog.names()),
            "LAKEHOUSE_STATE_SIGNALS": ",".join(s.name for s in self.catalog.of_kind("state")),
            "LAKEHOUSE_GRID_SECONDS": str(self.grid_seconds),
            "LAKEHOUSE_PHASE_SIGNAL": self.phase_signal.as_json() if self.phase_signal else "",
            "LAKEHOUSE_EQUIPMENT_SIGNALS": json.dumps(dict(sorted(self.equipment.items()))),
        }


def parse_grid(value: Any, where: str) -> int:
    """Grid step in whole seconds from ``"10 min"``, ``"30 s"``, ``"1 h"`` or a number of seconds."""
    if isinstance(value, bool):
        raise PlantBundleError(f"{where}: grid must be a duration like '1 min' or '30 s', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION.fullmatch(str(value))
        try:
            seconds = float(m.group(1)) * conversion(m.group(2), "s").scale if m else None
        except UnitError:
            seconds = None
        if seconds is None:
            raise PlantBundleError(f"{where}: grid must be a duration like '1 min' or '30 s', got {value!r}")
    if seconds != round(seconds) or not MIN_GRID_S <= seconds <= MAX_GRID_S:
        raise PlantBundleError(
            f"{where}: grid {value!r} must be a whole number of seconds from {MIN_GRID_S} s to {MAX_GRID_S // 60} min"
        )
    return int(round(seconds))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlantBundleError(f"{path}: not found") from None
    except yaml.YAMLError as exc:
        raise PlantBundleError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(d, dict):
        raise PlantBundleError(f"{path}: expected a YAML mapping")
    return d


def _resolve(root: Path, value: Any, where: str, required: bool = True) -> Path | None:
    if value is None:
        return None
    p = Path(str(value))
    p = p if p.is_absolute() else (root / p)
    if required and not p.exists():
        raise PlantBundleError(f"{where}: file not found: {p}")
    return p.resolve() if p.exists() else p


def _phase_signal(d: Any, catalog: SignalCatalog, where: str) -> PhaseSignal | None:
    if d is None:
        return None
    if not isinstance(d, Mapping) or "signal" not in d or not isinstance(d.get("codes"), Mapping):
        raise PlantBundleError(f"{where}: phases needs `signal:` (a state signal) and `codes:` {{code: phase}}")
    sig = str(d["signal"])
    if sig not in catalog:
        raise PlantBundleError(f"{where}: phases.signal {sig!r} is not a signal of the catalog {catalog.source}")
    if catalog.get(sig).kind != "state":
        raise PlantBundleError(f"{where}: phases.signal {sig!r} is a {catalog.get(sig).kind}, not a state signal")
    codes: dict[int, str] = {}
    for k, v in d["codes"].items():
        try:
            code = int(k)
        except (TypeError, ValueError):
            raise PlantBundleError(f"{where}: phases.codes: {k!r} is not an integer code") from None
        if not isinstance(v, str) or not v.strip() or "'" in v:
            raise PlantBundleError(f"{where}: phases.codes.{k}: a phase name (text without quotes)")
        codes[code] = v.strip()
    if not codes:
        raise PlantBundleError(f"{where}: phases.codes is empty")
    return PhaseSignal(sig, codes)


def _equipment(d: Any, catalog: SignalCatalog, where: str) -> dict[str, str]:
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise PlantBundleError(f"{where}: equipment is a mapping role -> signal")
    out = {}
    for role, value in d.items():
        if role not in EQUIPMENT_ROLES:
            raise PlantBundleError(f"{where}: equipment.{role}: unknown role (one of {sorted(EQUIPMENT_ROLES)})")
        name = str(value)
        try:
            check_identifier(name, f"equipment.{role}")
        except InvalidIdentifierError as exc:
            raise PlantBundleError(f"{where}: {exc}") from None
        if role != "do_probe_reference" and name not in catalog:
            raise PlantBundleError(f"{where}: equipment.{role}: {name!r} is not a signal of the catalog")
        out[str(role)] = name
    if ("do_probe" in out) != ("do_probe_reference" in out):
        raise PlantBundleError(f"{where}: equipment: do_probe and do_probe_reference go together")
    return out


def plant_dir(plant: str | Path | None) -> Path:
    """The bundle folder of ``plant``: a path, or a name under ``config/plants/`` (None: the default)."""
    if plant is None:
        return PLANTS_DIR / DEFAULT_PLANT
    p = Path(plant)
    if p.exists() or p.is_absolute() or len(p.parts) > 1:
        return p
    return PLANTS_DIR / str(plant)


def load_plant(plant: str | Path | None = None) -> PlantBundle:
    """Load and check a plant bundle (a folder, or a bundle name under ``config/plants/``).

    Raises
    ------
    PlantBundleError
        Missing folder or file, invalid YAML, unknown keys, a bad grid, a phase or equipment
        signal not in the catalog — or a tag map / import config error (re-raised as one line).
    """
    from lakehouse.ingest.foreign import ImportConfigError, load_import_config
    from lakehouse.ingest.tagmap import TagMap, TagMapError

    root = plant_dir(plant)
    if not root.is_dir():
        raise PlantBundleError(f"plant bundle not found: {root} (a folder with plant.yaml)")
    root = root.resolve()
    manifest = root / "plant.yaml"
    d = _read_yaml(manifest)
    where = str(manifest)
    unknown = set(d) - _KEYS
    if unknown:
        raise PlantBundleError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(_KEYS)})")
    try:
        name = check_identifier(str(d.get("name") or root.name), "plant name")
    except InvalidIdentifierError as exc:
        raise PlantBundleError(f"{where}: {exc}") from None
    tagmap_path = _resolve(root, d.get("tagmap", "tagmap.yaml"), where)
    try:
        tagmap = TagMap.load(tagmap_path)
    except TagMapError as exc:
        raise PlantBundleError(str(exc)) from None
    import_path = _resolve(root, d.get("import", "import.yaml" if (root / "import.yaml").exists() else None), where)
    import_config = None
    timezone = str(d.get("timezone") or "UTC")
    if import_path is not None:
        try:
            import_config = load_import_config(import_path)
        except ImportConfigError as exc:
            raise PlantBundleError(str(exc)) from None
        tz = import_config.get("timezone")
        if tz and d.get("timezone") and str(tz) != str(d["timezone"]):
            raise PlantBundleError(f"{where}: timezone {d['timezone']!r} differs from {tz!r} in {import_path}")
        timezone = str(tz or timezone)
        hist = import_config.get("historian") or {}
        if hist.get("tagmap"):
            declared = _resolve(import_path.parent, hist["tagmap"], str(import_path))
            if declared != tagmap_path:
                raise PlantBundleError(
                    f"{import_path}: historian.tagmap {declared} is not the bundle's tag map {tagmap_path}"
                )
    _check_timezone(timezone, where)
    if "grid" in d and "grid_seconds" in d:
        raise PlantBundleError(f"{where}: give `grid` or `grid_seconds`, not both")
    grid = parse_grid(d.get("grid", d.get("grid_seconds", 60)), where)
    models = d.get("models") or {}
    if not isinstance(models, Mapping) or set(models) - set(_MODEL_KEYS):
        raise PlantBundleError(f"{where}: models is a mapping with keys among {list(_MODEL_KEYS)}")
    model_paths = {}
    for key in _MODEL_KEYS:
        p = _resolve(root, models.get(key, f"{key}.yaml"), where, required=key in models)
        if p is not None and p.exists():
            model_paths[key] = p
    return PlantBundle(
        name=name,
        root=root,
        tagmap_path=tagmap_path,
        tagmap=tagmap,
        catalog=tagmap.catalog,
        import_path=import_path,
        import_config=import_config,
        grid_seconds=grid,
        timezone=timezone,
        phase_signal=_phase_signal(d.get("phases"), tagmap.catalog, where),
        equipment=_equipment(d.get("equipment"), tagmap.catalog, where),
        models=model_paths,
        description=str(d.get("description") or ""),
    )


def _check_timezone(tz: str, where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise PlantBundleError(f"{where}: unknown timezone {tz!r} (an IANA zone like Europe/Berlin)") from None


@functools.cache
def default_plant() -> PlantBundle:
    """The default bundle (``config/plants/cho-twin``: the CHO twin site), loaded once."""
    return load_plant(None)
