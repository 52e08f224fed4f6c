"""Fed-batch CHO bioreactor: a mechanistic, vectorised ODE model of a mAb production culture.

Many batches are integrated at once: every state is an array over a batch axis and a
fixed-step classical Runge-Kutta (RK4) scheme advances all of them together, so 1000 in-silico
batches cost about as much Python overhead as one. The model is deterministic; ``seed`` only
drives the assay noise of the noisy harvest CQAs.

Model summary (units in ``docs/twin.md``)
-----------------------------------------
States are *amounts* in the vessel (concentration x volume) so that feeding, base addition and
sample withdrawals are exact mass balances:

* ``V`` culture volume [L] - grows with feed and base, drops with samples;
* ``Xv``/``Xd`` viable / dead cells [1e6 cells/mL]: Monod growth limited by glucose,
  glutamine (weakly; GS-type cell line), a lumped amino-acid pool and dissolved oxygen,
  inhibited by lactate, ammonia, osmolality, pH away from 7.0 and temperature below 37 C;
  death rate rising with ammonia, lactate, osmolality, nutrient starvation, anoxia, high
  temperature and culture age; dead cells lyse slowly;
* glucose [g/L] (growth-associated uptake + maintenance, Q10 temperature dependence);
* lactate [g/L] produced from glucose (Warburg) in the growth phase, consumed after the
  metabolic shift (glucose low, late culture, or after the temperature shift);
* glutamine [mM] (uptake + spontaneous degradation to ammonia), ammonia [mM];
* lumped amino acids [mM] (consumed with growth and maintenance, replenished by the feed:
  this is what makes the feed rate matter for peak VCD);
* osmolality [mOsm/kg] = other osmolytes (feed salts, Na+ from base) + glucose + lactate +
  glutamine + ammonia + amino acids;
* product (titer) [g/L] with specific productivity ``qp`` raised by the temperature shift and
  osmolality, lowered by ammonia; product-weighted glycosylation (galactosylation index, Man5,
  afucosylation) and a first-order aggregation (HMW) so that harvest CQAs are a mechanistic
  consequence of the conditions *when* the product was made;
* acid-base excess [meq] -> pH; the pH controller adds 1 M Na2CO3 base on the acid side and
  sparges CO2 on the alkaline side (dead band around the setpoint).

Dissolved oxygen is algebraic (gas-liquid transfer is minutes, the culture is days): the DO
cascade first raises agitation between its limits, then enriches the sparge gas with O2; air
flow follows the CO2 evolution rate (CO2 stripping). When the cascade saturates, or the
agitator fails, DO falls to the equilibrium of kLa(C* - C) = OUR(C). Off-gas O2/CO2 come from
a gas balance (inert N2 conserved) on air + O2 + CO2 inflows, the oxygen uptake rate and the
CO2 evolution rate (respiration + CO2 released by carbonate base).

Public API (stable; other engineers' DoE and calibration code depend on it)
--------------------------------------------------------------------------
``Recipe``, ``DESIGN_SPACE``, ``NOMINAL_RECIPE``, ``KineticParams``, ``QualityParams``,
``Medium``, ``Vessel``, ``Faults``, ``simulate_batches`` -> ``BatchResult``,
``recipes_to_arrays``, ``SERIES_UNITS``, ``HARVEST_UNITS``, ``INPUT_KEYS``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from twin import deviations as dev
from twin import equipment as eq

__all__ = [
    "DESIGN_SPACE",
    "HARVEST_UNITS",
    "INPUT_KEYS",
    "NOMINAL_RECIPE",
    "SERIES_UNITS",
    "BatchResult",
    "Faults",
    "KineticParams",
    "Medium",
    "QualityParams",
    "Recipe",
    "Vessel",
    "recipes_to_arrays",
    "simulate_batches",
]

FloatOrArray = float | np.ndarray

# --------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class Recipe:
    """Setpoints of one fed-batch production culture (the MES ``setpoints`` block).

    ``working_volume_l`` is the culture volume right after inoculation; feeds and base add to
    it. The feed is ``feed_rate_pct_per_day`` % of the working volume per day, continuous from
    ``feed_start_day`` (or, with ``feed_bolus``, one bolus a day delivered over one hour).
    ``temp_shift_day``/``temp_shift_c`` define the hypothermic shift (set ``temp_shift_c`` equal
    to ``temperature_c`` for no shift).
    """

    temperature_c: float = 36.8
    temp_shift_day: float = 6.0
    temp_shift_c: float = 33.0
    ph: float = 7.0
    do_pct: float = 40.0
    feed_rate_pct_per_day: float = 3.0
    seed_density_e6_per_ml: float = 0.5
    working_volume_l: float = 2000.0
    duration_days: float = 14.0
    feed_start_day: float = 3.0
    feed_bolus: bool = False

    def setpoints(self) -> dict[str, float]:
        """The eight contract setpoints (docs/contracts.md, MES ``setpoints``)."""
        return {k: float(getattr(self, k)) for k in SETPOINT_KEYS}


SETPOINT_KEYS: tuple[str, ...] = (
    "temperature_c",
    "temp_shift_day",
    "temp_shift_c",
    "ph",
    "do_pct",
    "feed_rate_pct_per_day",
    "seed_density_e6_per_ml",
    "working_volume_l",
)
RECIPE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Recipe))

#: The validated design space: (low, high) per setpoint. In-silico DoE samples inside it and
#: models are only trusted inside it.
DESIGN_SPACE: dict[str, tuple[float, float]] = {
    "temperature_c": (35.5, 37.5),
    "temp_shift_day": (4.0, 8.0),
    "temp_shift_c": (31.0, 36.0),
    "ph": (6.8, 7.2),
    "do_pct": (20.0, 60.0),
    "feed_rate_pct_per_day": (1.5, 5.0),
    "seed_density_e6_per_ml": (0.3, 1.0),
    "working_volume_l": (1500.0, 2000.0),
    "duration_days": (12.0, 16.0),
}

#: The site's nominal recipe ``FB-14D-v3``.
NOMINAL_RECIPE = Recipe()


def recipes_to_arrays(recipes: Recipe | Sequence[Recipe] | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Struct-of-arrays view of recipes: ``{field: float array (n_batches,)}``.

    Accepts one ``Recipe``, a list of them, or a mapping of field -> scalar/array (missing
    fields take the ``Recipe`` defaults; scalars broadcast).
    """
    if isinstance(recipes, Recipe):
        recipes = [recipes]
    if isinstance(recipes, Mapping):
        lengths = {np.size(v) for v in recipes.values() if np.ndim(v) > 0}
        if len(lengths) > 1:
            raise ValueError(f"recipe arrays have different lengths: {sorted(lengths)}")
        n = lengths.pop() if lengths else 1
        unknown = set(recipes) - set(RECIPE_FIELDS)
        if unknown:
            raise ValueError(f"unknown recipe fields: {sorted(unknown)}")
        default = Recipe()
        return {
            k: np.broadcast_to(np.asarray(recipes.get(k, getattr(default, k)), dtype=float), (n,)).copy()
            for k in RECIPE_FIELDS
        }
    recipes = list(recipes)
    if not recipes:
        raise ValueError("no recipes")
    return {k: np.array([float(getattr(r, k)) for r in recipes]) for k in RECIPE_FIELDS}


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class KineticParams:
    """Cell-culture kinetics (what calibration fits). Rates per day, yields per 1e9 cells.

    Every field may be a float or an array of shape (n_batches,) - e.g. batch-to-batch
    biological variability or a calibration sweep in one vectorised call.
    """

    mu_max: FloatOrArray = 0.95  # 1/d, max specific growth rate at 37 C
    theta_temp: FloatOrArray = 3.0  # C, width of the growth temperature optimum around 37 C
    ks_glc: FloatOrArray = 0.15  # g/L, Monod glucose
    ks_gln: FloatOrArray = 0.3  # mM, Monod glutamine
    gln_dependence: FloatOrArray = 0.2  # fraction of growth that needs glutamine (GS cell line)
    ks_aa: FloatOrArray = 1.0  # mM, Monod lumped amino acids
    ki_lac: FloatOrArray = 5.0  # g/L, lactate inhibition (1/(1+(L/ki)^2))
    ki_amm: FloatOrArray = 14.0  # mM, ammonia inhibition (1/(1+(A/ki)^2))
    k_do: FloatOrArray = 2.0  # % air sat., DO half saturation
    osm_crit: FloatOrArray = 480.0  # mOsm/kg, growth collapses above
    yx_glc: FloatOrArray = 1.6  # 1e9 cells / g glucose
    m_glc: FloatOrArray = 0.13  # g glucose / 1e9 cells / d, maintenance
    y_lac_glc: FloatOrArray = 0.55  # g lactate / g glucose in the growth phase
    q_lac_cons: FloatOrArray = 0.055  # g lactate / 1e9 cells / d, max consumption after the shift
    lac_switch_glc: FloatOrArray = 0.8  # g/L, glucose below which lactate is consumed
    lac_switch_day: FloatOrArray = 4.5  # d, culture age of the metabolic shift
    q_gln: FloatOrArray = 0.45  # mmol glutamine / 1e9 new cells
    m_gln: FloatOrArray = 0.03  # mmol / 1e9 cells / d
    k_gln_deg: FloatOrArray = 0.08  # 1/d, spontaneous glutamine degradation (-> NH3)
    y_amm_gln: FloatOrArray = 0.7  # mmol NH3 / mmol glutamine taken up
    y_amm_aa: FloatOrArray = 0.06  # mmol NH3 / mmol amino acids catabolised
    q_aa: FloatOrArray = 1.0  # mmol amino acids / 1e9 new cells
    m_aa: FloatOrArray = 0.22  # mmol / 1e9 cells / d
    y_osm_aa: FloatOrArray = 0.6  # mOsm of secreted by-products (alanine, ...) per mmol amino acids used
    kd0: FloatOrArray = 0.01  # 1/d basal death
    kd_starv: FloatOrArray = 0.4  # 1/d at full glucose / amino-acid starvation
    kd_amm: FloatOrArray = 0.12  # 1/d at ammonia >> 15 mM
    kd_lac: FloatOrArray = 0.04  # 1/d at lactate >> 4 g/L
    kd_osm: FloatOrArray = 0.3  # 1/d per 100 mOsm/kg above 420
    kd_age: FloatOrArray = 0.07  # 1/d late-culture (apoptosis) death
    age_mid_day: FloatOrArray = 12.5  # d, culture age of half late-culture death
    kd_anoxia: FloatOrArray = 3.0  # 1/d at DO = 0 (half at 1 % air saturation)
    kd_heat: FloatOrArray = 0.6  # 1/d per C above 38.5
    k_lysis: FloatOrArray = 0.04  # 1/d dead-cell lysis
    qp: FloatOrArray = 21.0  # pg/cell/d at 37 C
    qp_shift_gain: FloatOrArray = 0.9  # relative qp increase per 4 C below 37 C
    qp_osm_gain: FloatOrArray = 0.35  # relative qp increase per 100 mOsm/kg above 300
    ki_amm_qp: FloatOrArray = 25.0  # mM, ammonia inhibition of qp
    qo2: FloatOrArray = 4.8  # pmol O2 / cell / d at 37 C
    rq: FloatOrArray = 0.95  # respiratory quotient (CO2 / O2)
    q10: FloatOrArray = 2.0  # temperature coefficient of metabolic rates
    cell_diam_um: FloatOrArray = 14.0  # um, viable cell diameter (grows after the shift)


@dataclass(frozen=True)
class QualityParams:
    """Harvest product-quality model (glycosylation, aggregation) and assay noise (1 SD, abs %)."""

    gal0: FloatOrArray = 0.40  # galactosylation probability per antenna, nominal conditions
    k_gal_amm: FloatOrArray = 0.45  # logit drop per 4 mM ammonia above 4 mM
    k_gal_starv: FloatOrArray = 1.0  # logit drop under full glucose starvation
    k_gal_viab: FloatOrArray = 0.8  # logit drop as viability falls to 0 (late culture)
    man5_0: FloatOrArray = 0.025  # Man5 fraction at 320 mOsm/kg, no ammonia
    k_man5_osm: FloatOrArray = 0.7  # log-increase per 100 mOsm/kg
    k_man5_amm: FloatOrArray = 0.06  # relative increase per mM ammonia
    afuc_complex0: FloatOrArray = 0.03  # afucosylated complex glycans (besides Man5)
    k_afuc_osm: FloatOrArray = 0.35  # relative increase per 100 mOsm/kg
    other_glycans: FloatOrArray = 0.02  # hybrid/sialylated species not reported
    hmw_secreted: FloatOrArray = 0.45  # % HMW in freshly secreted product
    k_agg: FloatOrArray = 0.004  # 1/d aggregation of product in the vessel at 37 C
    agg_temp_scale: FloatOrArray = 2.0  # C per e-fold of the aggregation rate
    k_agg_dead: FloatOrArray = 2.0  # relative aggregation increase at 0 % viability
    sd_g0f: float = 0.8
    sd_g1f: float = 0.8
    sd_g2f: float = 0.3
    sd_man5: float = 0.25
    sd_afuc: float = 0.3
    sd_hmw: float = 0.08


@dataclass(frozen=True)
class Medium:
    """Basal medium, feed and base composition (fields may be per-batch arrays too)."""

    glc_basal: float = 6.5  # g/L
    gln_basal: float = 4.0  # mM
    aa_basal: float = 12.0  # mM lumped amino acids
    osm_basal: float = 295.0  # mOsm/kg
    glc_feed: float = 110.0  # g/L
    gln_feed: float = 20.0  # mM
    aa_feed: float = 260.0  # mM
    osm_feed_other: float = 360.0  # mOsm/kg of feed solutes other than glc/gln/aa
    base_meq_per_l: float = 2000.0  # 1 M Na2CO3
    ph_uncontrolled: float = 7.35  # pH of the medium with zero acid excess
    buffer_meq_per_l_ph: float = 18.0  # buffer capacity
    ph_initial: float = 7.04  # pH right after inoculation
    inoculum_viability: float = 0.97
    sample_volume_l: float = 0.25  # daily sample incl. purge


@dataclass(frozen=True)
class Vessel:
    """Bioreactor hardware: DO cascade limits, mass transfer, gas flows (per working volume)."""

    agit_min_rpm: float = 55.0
    agit_max_rpm: float = 115.0
    kla_ref_per_h: float = 9.0  # kLa at 100 rpm and the reference gas flow
    kla_exp_agit: float = 1.8
    kla_exp_gas: float = 0.45
    kla_failed_per_h: float = 0.4  # surface + bubble transfer with the agitator stopped
    gas_ref_vvm: float = 0.02
    air_min_vvm: float = 0.01
    air_max_vvm: float = 0.04
    air_per_cer: float = 14.0  # SL/min air per SL/min CO2 evolved (CO2 stripping ramp)
    o2_max_vvm: float = 0.03
    co2_max_vvm: float = 0.003
    co2_absorption: float = 0.15  # fraction of sparged CO2 that dissolves (pH control)
    ph_deadband: float = 0.05
    ph_gain_per_h: float = 4.0
    csat_air_mm_37c: float = 0.214  # mM O2 at 100 % air saturation, 37 C
    backpressure_bar: float = 0.15
    density_kg_l: float = 1.02


# --------------------------------------------------------------------------- faults


@dataclass
class Faults:
    """Per-batch fault/deviation inputs, arrays of shape (n_batches,). ``inf`` = never.

    Times are hours since inoculation. Built by :func:`Faults.none` and filled by the site
    simulator from ``twin.equipment`` (agitator, feed pump, DO probe) and ``twin.deviations``.
    """

    agitator_fail_h: np.ndarray
    agitator_down_h: np.ndarray
    pump_run_h0: np.ndarray
    pump_life_h: np.ndarray
    pump_down_h: np.ndarray
    pump_wear_max: np.ndarray
    do_drift_per_day: np.ndarray
    do_restd_h: np.ndarray
    dev_type: np.ndarray
    dev_onset_h: np.ndarray
    dev_magnitude: np.ndarray
    dev_duration_h: np.ndarray

    @classmethod
    def none(cls, n: int) -> Faults:
        """Fault settings of ``n`` batches without any fault."""
        inf = np.full(n, np.inf)
        return cls(
            agitator_fail_h=inf.copy(),
            agitator_down_h=inf.copy(),
            pump_run_h0=np.zeros(n),
            pump_life_h=inf.copy(),
            pump_down_h=np.full(n, 6.0),
            pump_wear_max=np.full(n, eq.PUMP_WEAR_AT_FAILURE),
            do_drift_per_day=np.zeros(n),
            do_restd_h=inf.copy(),
            dev_type=np.zeros(n, dtype=np.int64),
            dev_onset_h=inf.copy(),
            dev_magnitude=np.zeros(n),
            dev_duration_h=np.zeros(n),
        )

    def __len__(self) -> int:
        return len(self.agitator_fail_h)


# --------------------------------------------------------------------------- result

#: Units of :attr:`BatchResult.series` (see docs/twin.md for the meaning of each).
SERIES_UNITS: dict[str, str] = {
    "volume": "L",
    "vcd": "1e6 cells/mL",
    "dead_cells": "1e6 cells/mL",
    "viability": "%",
    "glucose": "g/L",
    "glutamine": "mM",
    "lactate": "g/L",
    "ammonia": "mM",
    "amino_acids": "mM",
    "osmolality": "mOsm/kg",
    "titer": "g/L",
    "ph": "pH",
    "do_true": "%",
    "ivcd": "1e6 cells*d/mL",
    "temperature": "degC",
    "temperature_sp": "degC",
    "dissolved_oxygen": "%",
    "agitation": "rpm",
    "air_flow": "L/min",
    "o2_flow": "L/min",
    "co2_flow": "L/min",
    "offgas_o2": "%",
    "offgas_co2": "%",
    "our": "mmol/L/h",
    "cer": "mmol/L/h",
    "capacitance": "pF/cm",
    "base_total": "mL",
    "feed_flow_sp": "mL/min",
    "feed_flow": "mL/min",
    "feed_total": "mL",
    "weight": "kg",
    "pressure": "bar",
    "vibration": "mm/s",
    "motor_current": "A",
    "sample_total": "mL",
    "glucose_fed_g": "g",
    "glucose_consumed_g": "g",
    "glucose_sampled_g": "g",
}

#: Units of :attr:`BatchResult.harvest` / ``harvest_noisy``.
HARVEST_UNITS: dict[str, str] = {
    "titer": "g/L",
    "viability": "%",
    "vcd": "1e6 cells/mL",
    "peak_vcd": "1e6 cells/mL",
    "volume": "L",
    "ivcd": "1e6 cells*d/mL",
    "ammonia": "mM",
    "lactate": "g/L",
    "osmolality": "mOsm/kg",
    "g0f": "%",
    "g1f": "%",
    "g2f": "%",
    "man5": "%",
    "afucosylation": "%",
    "hmw": "%",
    "end_h": "h",
}

CQA_KEYS: tuple[str, ...] = ("g0f", "g1f", "g2f", "man5", "afucosylation", "hmw")


@dataclass
class BatchResult:
    """Output of :func:`simulate_batches`.

    * ``t_h``: (n_rec,) hours since inoculation, common to all batches;
    * ``series``: name -> (n_batches, n_rec) arrays (units in :data:`SERIES_UNITS`), NaN after
      each batch's end; online signals carry their contract names (``temperature``,
      ``dissolved_oxygen`` = probe reading, ...), plus the true states;
    * ``harvest`` / ``harvest_noisy``: name -> (n_batches,) at each batch's end, noise-free and
      with assay noise (CQAs only; other entries are copied);
    * ``recipes``: struct-of-arrays of the recipes; ``end_h``: (n_batches,) end of culture;
    * ``events``: ``pump_fail_h`` (feed tubing rupture) and ``agitator_fail_h``, hours since
      inoculation, inf where none happened before the end.
    """

    t_h: np.ndarray
    series: dict[str, np.ndarray]
    harvest: dict[str, np.ndarray]
    harvest_noisy: dict[str, np.ndarray]
    recipes: dict[str, np.ndarray]
    end_h: np.ndarray
    dt_h: float
    events: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_batches(self) -> int:
        """Number of simulated batches."""
        return int(self.end_h.shape[0])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.series[name]

    def harvest_table(self, noisy: bool = True):
        """Harvest values (noisy CQAs by default) and recipe setpoints as a pandas DataFrame."""
        import pandas as pd

        h = self.harvest_noisy if noisy else self.harvest
        cols = {k: self.recipes[k] for k in RECIPE_FIELDS}
        cols.update({k: v for k, v in h.items()})
        return pd.DataFrame(cols)


# --------------------------------------------------------------------------- model core

# state indices (amount states: concentration x volume)
_V, _XV, _XD, _GLC, _GLN, _LAC, _AMM, _AA, _P, _S, _H = range(11)
_VFEED, _VBASE, _VSAMP, _GFED, _GCONS, _GSAMP = range(11, 17)
_PGAL, _PMAN5, _PAFUC, _PAGG, _IVC = range(17, 22)
_NS = 22
# amount states scaled by a sample withdrawal
_AMOUNTS = np.array([_XV, _XD, _GLC, _GLN, _LAC, _AMM, _AA, _P, _S, _H, _PGAL, _PMAN5, _PAFUC, _PAGG])
_NONNEG = np.array([_XV, _XD, _GLN, _LAC, _AMM, _AA])

_MW_GLC = 180.16  # g/mol
_MW_LAC = 90.08
_SL_PER_MOL = 22.414  # standard L per mol
_Y_O2_AIR = 0.2095
_Y_CO2_AIR = 0.0004


def param_arrays(params: Any, n: int) -> dict[str, np.ndarray | float]:
    """Dataclass fields as floats or (n,) arrays (validated): per-batch parameters of a vectorised model."""
    out: dict[str, np.ndarray | float] = {}
    for f in fields(params):
        v = getattr(params, f.name)
        if np.ndim(v) == 0:
            out[f.name] = float(v)
        else:
            a = np.asarray(v, dtype=float)
            if a.shape != (n,):
                raise ValueError(f"{type(params).__name__}.{f.name} has shape {a.shape}, expected ({n},)")
            out[f.name] = a
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _csat(T: np.ndarray, ves: Vessel) -> np.ndarray:
    """O2 solubility at 100 % air saturation [mM] (about +1.7 %/C below 37 C)."""
    return ves.csat_air_mm_37c * (1.0 + 0.017 * (37.0 - T))


class _Model:
    """Right-hand side and algebraic (cascade, pH, gas) relations; all arrays over batches."""

    def __init__(
        self, kp: KineticParams, qp: QualityParams, med: Medium, ves: Vessel, rec: dict[str, np.ndarray]
    ) -> None:
        n = rec["ph"].shape[0]
        self.k = param_arrays(kp, n)
        self.q = param_arrays(qp, n)
        self.med = med
        self.ves = ves
        self.rec = rec
        self.v0 = rec["working_volume_l"]
        beta = med.buffer_meq_per_l_ph
        self.beta = beta
        # acid-excess band edges [meq/L] for the pH dead band
        self.h_lo = beta * (med.ph_uncontrolled - (rec["ph"] - ves.ph_deadband))
        self.h_hi = beta * (med.ph_uncontrolled - (rec["ph"] + ves.ph_deadband))
        self.air_min = ves.air_min_vvm * self.v0  # SL/min
        self.air_max = ves.air_max_vvm * self.v0
        self.o2_max = ves.o2_max_vvm * self.v0
        self.gas_ref = ves.gas_ref_vvm * self.v0
        # max CO2 absorbed [meq/h] at the max CO2 sparge
        self.co2_abs_max = ves.co2_max_vvm * self.v0 / _SL_PER_MOL * 60.0 * 1000.0 * ves.co2_absorption
        k = self.k
        self.gln_a = 1.0 - k["gln_dependence"]
        self.inv_ki_lac = 1.0 / k["ki_lac"]
        self.inv_ki_amm = 1.0 / k["ki_amm"]
        self.inv_mu_max_h = 24.0 / k["mu_max"]
        self.inv_2ks_glc = 1.0 / (2.0 * k["ks_glc"])
        self.inv_15ks_aa = 1.0 / (1.5 * k["ks_aa"])
        self.inv_yx_glc = 1.0 / k["yx_glc"]
        self.inv_lac_switch = 1.0 / k["lac_switch_glc"]
        self.logit_gal0 = np.log(self.q["gal0"] / (1.0 - self.q["gal0"]))

    # -- per-step terms (depend on time and inputs only, not on the state) --------------
    def step_terms(
        self,
        t: float,
        T: np.ndarray,
        feed_lph: np.ndarray,
        kla_mult: np.ndarray,
        contam: np.ndarray,
        do_sp_true: np.ndarray,
    ) -> dict[str, Any]:
        """Everything in the right-hand side that does not depend on the state (held over a step)."""
        k, q, med, ves = self.k, self.q, self.med, self.ves
        age_d = t / 24.0
        dT = T - 37.0
        q10 = k["q10"] ** (dT / 10.0)
        cold = np.minimum(dT, 0.0) / k["theta_temp"]
        hot = np.maximum(T - 37.5, 0.0) / 2.0
        f_t = np.exp(-(cold * cold + hot * hot))
        csat = _csat(T, ves)
        c_sp = do_sp_true / 100.0 * csat
        running = kla_mult > 0.5
        return dict(
            T=T,
            feed=feed_lph,
            contam=contam,
            running=running,
            csat=csat,
            c_sp=c_sp,
            drive=np.maximum(csat - c_sp, 1e-6),
            ko=k["k_do"] / 100.0 * csat,
            mu_pre=k["mu_max"] / 24.0 * f_t * (1.0 - contam),
            qo2_h=k["qo2"] / 24.0 * q10,
            our_contam=dev.CONTAM_OUR_MMOL_L_H * contam,
            kd_pre=(
                k["kd0"]
                + k["kd_age"] * _sigmoid((age_d - k["age_mid_day"]) / 1.2)
                + k["kd_heat"] * np.maximum(T - 38.5, 0.0)
                + dev.CONTAM_DEATH_PER_D * contam
            )
            / 24.0,
            m_glc_h=k["m_glc"] / 24.0 * q10,
            m_gln_h=k["m_gln"] / 24.0 * q10,
            m_aa_h=k["m_aa"] / 24.0 * q10,
            gln_deg_h=k["k_gln_deg"] / 24.0 * q10,
            glc_contam=dev.CONTAM_GLC_G_L_H * contam,
            s_rest=(1.0 - _sigmoid((age_d - k["lac_switch_day"]) / 0.8))
            * (1.0 - np.minimum(np.maximum((36.5 - T) * 0.4, 0.0), 1.0)),
            qp_h=k["qp"] * 1e-3 / 24.0 * (1.0 + k["qp_shift_gain"] * np.minimum(np.maximum(-dT * 0.25, 0.0), 1.5)),
            kagg_h=q["k_agg"] / 24.0 * np.exp(dT / q["agg_temp_scale"]),
            glc_in=feed_lph * med.glc_feed,
            gln_in=feed_lph * med.gln_feed,
            aa_in=feed_lph * med.aa_feed,
            s_in=feed_lph * med.osm_feed_other,
        )

    # -- algebraic relations ------------------------------------------------------
    def cascade(self, our: np.ndarray, V: np.ndarray, st: dict[str, Any]) -> tuple[np.ndarray, ...]:
        """DO cascade: agitation -> O2 enrichment; air flow follows the CO2 evolution.

        ``our`` is the oxygen demand at non-limiting DO [mmol/L/h]. Returns (agitation rpm,
        air SL/min, O2 SL/min, true DO %, actual OUR mmol/L/h).
        """
        ves = self.ves
        csat, c_sp, running = st["csat"], st["c_sp"], st["running"]
        cer_slpm = self.k["rq"] * our * V * (_SL_PER_MOL / 60000.0)
        air = np.minimum(self.air_min + ves.air_per_cer * cer_slpm, self.air_max)
        kla100 = ves.kla_ref_per_h * (air / self.gas_ref) ** ves.kla_exp_gas
        n_req = 100.0 * (our / (kla100 * st["drive"])) ** (1.0 / ves.kla_exp_agit)
        agit = np.where(running, np.minimum(np.maximum(n_req, ves.agit_min_rpm), ves.agit_max_rpm), 0.0)
        kla = np.where(running, kla100 * (agit * 0.01) ** ves.kla_exp_agit, ves.kla_failed_per_h)
        # stage 2: O2 enrichment so that kLa (C* - C_sp) = OUR
        y_req = np.minimum(np.maximum(_Y_O2_AIR * (our / kla + c_sp) / csat, _Y_O2_AIR), 0.999)
        o2 = np.minimum(air * (y_req - _Y_O2_AIR) / (1.0 - y_req), self.o2_max)
        cstar = csat * ((_Y_O2_AIR * air + o2) / (air + o2)) / _Y_O2_AIR
        # DO = controller setpoint if the capacity suffices, else the equilibrium with a Monod OUR
        # normalised so that OUR(C_sp) = demand:  kla (c* - c)(ko + c) = our_m c
        ko = st["ko"]
        our_m = our * (ko + c_sp) / c_sp
        b = our_m + kla * (ko - cstar)
        c_eq = (-b + np.sqrt(b * b + 4.0 * kla * kla * cstar * ko)) / (2.0 * kla)
        c = np.minimum(c_sp, c_eq)
        do_true = 100.0 * c / csat
        our_act = np.minimum(our_m * c / (ko + c), our)
        return agit, air, o2, do_true, our_act

    # -- derivatives -----------------------------------------------------------
    def rates(self, y: np.ndarray, st: dict[str, Any], aux: bool = False) -> Any:
        """d(state)/dt [per hour]; ``st`` from :meth:`step_terms`."""
        k, q, med = self.k, self.q, self.med
        V = y[_V]
        inv_v = 1.0 / V
        amt = np.maximum(y[_XV : _P + 1], 0.0)  # XV XD GLC GLN LAC AMM AA P (amounts)
        XV, XD, _, GLN = amt[0], amt[1], amt[2], amt[3]
        conc = amt * inv_v
        xv, xd, G, Q, L, A, N, P = conc
        h = y[_H] * inv_v
        ph = med.ph_uncontrolled - h / self.beta
        osm = y[_S] * inv_v + G * (1000.0 / _MW_GLC) + L * (1000.0 / _MW_LAC) + Q + A + N

        # growth (before the DO factor) -> oxygen demand -> DO -> growth
        f_glc = G / (k["ks_glc"] + G)
        f_gln = self.gln_a + k["gln_dependence"] * Q / (k["ks_gln"] + Q)
        f_aa = N / (k["ks_aa"] + N)
        rl = L * self.inv_ki_lac
        ra = A * self.inv_ki_amm
        dph = (ph - 7.0) * (1.0 / 0.45)
        f_x = (
            f_glc
            * f_gln
            * f_aa
            / ((1.0 + rl * rl) * (1.0 + ra * ra))
            * _sigmoid((k["osm_crit"] - osm) * (1.0 / 15.0))
            * np.exp(-dph * dph)
        )
        mu_nodo = st["mu_pre"] * f_x
        our = st["qo2_h"] * xv * (0.8 + 0.2 * mu_nodo * self.inv_mu_max_h) + st["our_contam"]
        agit, air, o2, do_true, our_act = self.cascade(our, V, st)
        mu = mu_nodo * do_true / (k["k_do"] + do_true)

        # death [1/h]
        rg = G * self.inv_2ks_glc
        rn = N * self.inv_15ks_aa
        starv = np.maximum(1.0 / (1.0 + rg * rg * rg), 1.0 / (1.0 + rn * rn * rn))
        a2 = np.square(A * (1.0 / 15.0))
        l2 = np.square(L * 0.25)
        d2 = np.square(do_true)
        kd = st["kd_pre"] + (
            k["kd_starv"] * starv
            + k["kd_amm"] * a2 / (1.0 + a2)
            + k["kd_lac"] * l2 / (1.0 + l2)
            + k["kd_osm"] * 0.01 * np.maximum(osm - 420.0, 0.0)
            + k["kd_anoxia"] / (1.0 + d2)
        ) * (1.0 / 24.0)

        # glucose uptake [g/h per 1e9 cells], contaminant uptake [g/h]
        q_glc = (mu * self.inv_yx_glc + st["m_glc_h"]) * G / (0.05 + G)
        glc_contam = st["glc_contam"] * G / (0.2 + G) * V
        # lactate: production (growth phase) vs consumption after the metabolic shift
        rs = G * self.inv_lac_switch
        rs2 = rs * rs
        s = 1.0 - st["s_rest"] * (rs2 * rs2 / (1.0 + rs2 * rs2))
        q_lac = (
            k["y_lac_glc"] * q_glc * (1.0 - 0.85 * s) * np.exp(1.5 * (ph - 7.0))
            - k["q_lac_cons"] / 24.0 * L / (0.3 + L) * s
        )
        lac_contam = dev.CONTAM_LAC_YIELD * glc_contam
        # glutamine, amino acids, ammonia
        q_gln = (mu * k["q_gln"] + st["m_gln_h"]) * Q / (0.1 + Q)
        q_aa = (mu * k["q_aa"] + st["m_aa_h"]) * N / (0.2 + N)
        gln_deg = st["gln_deg_h"] * GLN
        amm_rate = (k["y_amm_gln"] * q_gln + k["y_amm_aa"] * q_aa) * XV + gln_deg  # mmol/h
        # product and its quality
        r_p = (
            st["qp_h"]
            * (1.0 + k["qp_osm_gain"] * np.minimum(np.maximum((osm - 300.0) * 0.01, 0.0), 1.5))
            * k["ki_amm_qp"]
            / (k["ki_amm_qp"] + A)
            * (0.3 + 0.7 * N / (0.5 + N))
        ) * XV  # g/h
        # product quality weights: passive accumulators, evaluated once per step (first stage)
        qual = None if aux else st.get("_qual")
        if qual is None:
            viab = xv / np.maximum(xv + xd, 1e-9)
            rgs = G * 2.5
            gal = _sigmoid(
                self.logit_gal0
                - q["k_gal_amm"] * 0.25 * (A - 4.0)
                - q["k_gal_starv"] / (1.0 + rgs * rgs * rgs)
                - q["k_gal_viab"] * (1.0 - viab)
            )
            dosm = (osm - 320.0) * 0.01
            man5 = q["man5_0"] * np.exp(q["k_man5_osm"] * dosm) * (1.0 + q["k_man5_amm"] * A)
            afuc = man5 + q["afuc_complex0"] * (1.0 + q["k_afuc_osm"] * dosm)
            k_agg = st["kagg_h"] * (1.0 + q["k_agg_dead"] * (1.0 - viab))
            qual = (viab, gal, man5, afuc, k_agg)
            if not aux:
                st["_qual"] = qual
        viab, gal, man5, afuc, k_agg = qual
        # acid-base: lactate (1 meq/mmol) acidifies, NH3 formation neutralises, contaminant acids
        acid = (q_lac * XV + lac_contam) * (1000.0 / _MW_LAC) - amm_rate
        gv = self.ves.ph_gain_per_h * V
        u_base = gv * np.maximum(h - self.h_lo, 0.0)  # meq/h
        u_co2 = np.minimum(gv * np.maximum(self.h_hi - h, 0.0), self.co2_abs_max)
        base_lph = u_base * (1.0 / med.base_meq_per_l)
        feed = st["feed"]

        dy = np.empty_like(y)
        dy[_V] = feed + base_lph
        dy[_XV] = (mu - kd) * XV
        dy[_XD] = kd * XV - k["k_lysis"] / 24.0 * XD
        glc_cons = q_glc * XV + glc_contam
        dy[_GLC] = st["glc_in"] - glc_cons
        dy[_GLN] = st["gln_in"] - q_gln * XV - gln_deg
        dy[_LAC] = q_lac * XV + lac_contam
        dy[_AMM] = amm_rate
        dy[_AA] = st["aa_in"] - q_aa * XV
        dy[_P] = r_p
        dy[_S] = st["s_in"] + u_base + k["y_osm_aa"] * q_aa * XV
        dy[_H] = acid - u_base + u_co2
        dy[_VFEED] = feed
        dy[_VBASE] = base_lph
        dy[_VSAMP] = 0.0
        dy[_GFED] = st["glc_in"]
        dy[_GCONS] = glc_cons
        dy[_GSAMP] = 0.0
        dy[_PGAL] = r_p * gal
        dy[_PMAN5] = r_p * man5
        dy[_PAFUC] = r_p * afuc
        dy[_PAGG] = k_agg * np.maximum(y[_P] - y[_PAGG], 0.0)
        dy[_IVC] = xv * (1.0 / 24.0)
        if not aux:
            return dy
        return dict(
            agitation=agit,
            air_flow=air,
            o2_flow=o2,
            do_true=do_true,
            our=our_act,
            u_base=u_base,
            u_co2=u_co2,
            ph=ph,
            osmolality=osm,
            viability=100.0 * viab,
            vcd=xv,
            dead_cells=xd,
            glucose=G,
            glutamine=Q,
            lactate=L,
            ammonia=A,
            amino_acids=N,
            titer=P,
        )


def _overlap(t0: np.ndarray, dt: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fraction of each step [t0, t0+dt) covered by the window [a, b)."""
    return np.clip((np.minimum(b, t0 + dt) - np.maximum(a, t0)) / dt, 0.0, 1.0)


def feed_command(rec: dict[str, np.ndarray], t: np.ndarray, dt: float, end_h: np.ndarray) -> np.ndarray:
    """Recipe feed command [L/h] per step (n_batches, n_steps), averaged over each step.

    Continuous: ``feed_rate_pct_per_day`` % of the working volume per day from
    ``feed_start_day``; bolus: the daily volume over the first hour of each feed day.
    """
    tb = np.asarray(t, dtype=float)[None, :]
    c = lambda a: np.asarray(a, dtype=float)[:, None]
    daily_l = c(rec["feed_rate_pct_per_day"]) / 100.0 * c(rec["working_volume_l"])
    fs = c(rec["feed_start_day"]) * 24.0
    endc = c(end_h)
    cont = _overlap(tb, dt, fs, endc) * daily_l / 24.0
    phase = tb - fs
    in_day = phase - 24.0 * np.floor(phase / 24.0)
    bolus_frac = np.clip((np.minimum(1.0, in_day + dt) - np.maximum(0.0, in_day)) / dt, 0.0, 1.0)
    bolus_frac = np.where((phase >= -dt) & (tb < endc), bolus_frac, 0.0)
    return np.where(c(rec["feed_bolus"]) > 0.5, bolus_frac * daily_l, cont)


def _exogenous(
    rec: dict[str, np.ndarray], faults: Faults, t: np.ndarray, dt: float, end_h: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-step inputs (n_batches, n_steps), zero-order hold over each step.

    Temperature setpoint and actual temperature, commanded and delivered feed [L/h], kLa
    multiplier (agitator), contaminant intensity, DO probe gain and the true-DO target.
    """
    tb = t[None, :]
    c = lambda a: np.asarray(a, dtype=float)[:, None]
    shift_h = c(rec["temp_shift_day"]) * 24.0
    t_sp = c(rec["temperature_c"]) + (c(rec["temp_shift_c"]) - c(rec["temperature_c"])) * np.clip(
        (tb + 0.5 * dt - shift_h) / 2.0, 0.0, 1.0
    )
    feed_nominal = feed_command(rec, t, dt, end_h)
    # process deviations (temperature excursion, feed error, contamination)
    t_act, feed_cmd, contam = dev.apply(faults, tb, dt, t_sp, feed_nominal)
    # feed pump wear and tubing rupture (running hours counted on the recipe feed schedule)
    eff = eq.pump_delivery_factor(
        feed_nominal > 0.0, dt, faults.pump_run_h0, faults.pump_life_h, faults.pump_down_h, faults.pump_wear_max
    )
    feed = feed_cmd * eff
    # agitator failure -> kLa collapses
    fail = c(faults.agitator_fail_h)
    kla_mult = 1.0 - _overlap(tb, dt, fail, fail + c(faults.agitator_down_h))
    kla_mult = np.where(kla_mult > 0.5, 1.0, 0.0)
    gain = eq.do_probe_gain(tb, faults.do_drift_per_day, faults.do_restd_h)
    return dict(
        t_sp=t_sp,
        t_act=t_act,
        feed_nominal=feed_nominal,
        feed_cmd=feed_cmd,
        feed=feed,
        kla_mult=kla_mult,
        contam=contam,
        do_gain=gain,
        do_sp_true=c(rec["do_pct"]) / gain,
    )


#: ``simulate_batches(inputs=...)`` keys -> the per-step exogenous array they replace
INPUT_KEYS: dict[str, str] = {"temperature": "t_act", "feed_lph": "feed"}


def _override_inputs(ex: dict[str, np.ndarray], inputs: Mapping[str, np.ndarray] | None, n: int) -> None:
    """Replace per-step exogenous inputs by the finite entries of ``inputs`` (in place)."""
    if not inputs:
        return
    unknown = set(inputs) - set(INPUT_KEYS)
    if unknown:
        raise ValueError(f"unknown inputs {sorted(unknown)}; expected a subset of {sorted(INPUT_KEYS)}")
    for key, target in INPUT_KEYS.items():
        if key not in inputs:
            continue
        a = np.asarray(inputs[key], dtype=float)
        if a.ndim != 2 or a.shape[0] != n:
            raise ValueError(f"inputs[{key!r}] has shape {a.shape}, expected ({n}, n_steps)")
        dst = ex[target]
        m = min(a.shape[1], dst.shape[1])
        part = dst[:, :m]
        ok = np.isfinite(a[:, :m])
        part[ok] = a[:, :m][ok]


def _initial_state(rec: dict[str, np.ndarray], med: Medium) -> np.ndarray:
    n = rec["ph"].shape[0]
    V0 = rec["working_volume_l"]
    y = np.zeros((_NS, n))
    y[_V] = V0
    y[_XV] = rec["seed_density_e6_per_ml"] * V0
    y[_XD] = y[_XV] * (1.0 - med.inoculum_viability) / med.inoculum_viability
    y[_GLC] = med.glc_basal * V0
    y[_GLN] = med.gln_basal * V0
    y[_AA] = med.aa_basal * V0
    other0 = med.osm_basal - med.glc_basal * 1000.0 / _MW_GLC - med.gln_basal - med.aa_basal
    y[_S] = other0 * V0
    y[_H] = med.buffer_meq_per_l_ph * (med.ph_uncontrolled - med.ph_initial) * V0
    return y


def simulate_batches(
    recipes: Recipe | Sequence[Recipe] | Mapping[str, Any],
    params: KineticParams | None = None,
    dt_h: float = 0.25,
    seed: int = 0,
    faults: Faults | None = None,
    record_every_h: float = 1.0,
    quality: QualityParams | None = None,
    medium: Medium | None = None,
    vessel: Vessel | None = None,
    sample_offset_h: float | np.ndarray = 2.0,
    end_h: np.ndarray | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> BatchResult:
    """Integrate many fed-batch cultures at once (RK4, fixed step ``dt_h``).

    Parameters
    ----------
    recipes: one ``Recipe``, a list, or a struct-of-arrays mapping (see :func:`recipes_to_arrays`).
    params: kinetic parameters; fields may be per-batch arrays.
    dt_h: integration step [h] (0.1-0.25 recommended).
    seed: seed of the assay noise on ``harvest_noisy``.
    faults: per-batch equipment faults and process deviations (:class:`Faults`); None = none.
    record_every_h: spacing of the recorded series [h]; rounded to a multiple of ``dt_h``.
    sample_offset_h: time of the first daily sample after inoculation [h] (scalar or per batch);
        daily samples of ``medium.sample_volume_l`` are withdrawn at offset + 24 k.
    end_h: actual end of each culture [h] (default: ``duration_days`` * 24); an aborted batch
        ends early. Series are NaN after it, harvest values are taken at it.
    inputs: measured (or planned) inputs that replace the recipe's, per integration step
        ``[k dt_h, (k+1) dt_h)``: ``temperature`` (actual culture temperature, degC) and/or
        ``feed_lph`` (delivered feed, L/h), arrays (n_batches, m) for steps ``k < m``; NaN (and
        every step ``k >= m``) = the recipe's value with its faults. This is how the live mirror
        (``twin.mirror``) replays what a running batch actually received.
    """
    kp = params or KineticParams()
    qpar = quality or QualityParams()
    med = medium or Medium()
    ves = vessel or Vessel()
    rec = recipes_to_arrays(recipes)
    n = rec["ph"].shape[0]
    faults = faults or Faults.none(n)
    if len(faults) != n:
        raise ValueError(f"faults has {len(faults)} batches, recipes {n}")
    dur_h = rec["duration_days"] * 24.0
    end_h = dur_h.copy() if end_h is None else np.minimum(np.asarray(end_h, dtype=float), dur_h)
    n_steps = int(math.ceil(float(end_h.max()) / dt_h - 1e-9))
    rec_every = max(1, int(round(record_every_h / dt_h)))
    t_steps = np.arange(n_steps + 1) * dt_h  # inputs also at the final time (for its record)
    ex = _exogenous(rec, faults, t_steps, dt_h, end_h)
    _override_inputs(ex, inputs, n)
    model = _Model(kp, qpar, med, ves, rec)

    # end-of-culture step per batch, sample events
    end_step = np.minimum(np.round(end_h / dt_h).astype(np.int64), n_steps)
    offs = np.broadcast_to(np.asarray(sample_offset_h, dtype=float), (n,))
    sample_step = np.round(offs / dt_h).astype(np.int64)  # first sample after this many steps
    every = int(round(24.0 / dt_h))

    y = _initial_state(rec, med)
    rec_idx = np.arange(0, n_steps + 1, rec_every)
    n_rec = rec_idx.shape[0]
    states = np.empty((n_rec, _NS, n))
    harvest_state = y.copy()
    peak_vcd = y[_XV] / y[_V]
    end_set = set(end_step.tolist())
    ri = 0
    h = dt_h
    t_sp, t_act, feed, klam, contam, dosp = (
        ex[k] for k in ("t_sp", "t_act", "feed", "kla_mult", "contam", "do_sp_true")
    )
    for s in range(n_steps + 1):
        if s == rec_idx[ri]:
            states[ri] = y
            ri = min(ri + 1, n_rec - 1)
        if s in end_set:
            m = end_step == s
            harvest_state[:, m] = y[:, m]
        if s == n_steps:
            break
        st = model.step_terms(s * h + 0.5 * h, t_act[:, s], feed[:, s], klam[:, s], contam[:, s], dosp[:, s])
        k1 = model.rates(y, st)
        k2 = model.rates(y + (0.5 * h) * k1, st)
        k3 = model.rates(y + (0.5 * h) * k2, st)
        k4 = model.rates(y + h * k3, st)
        y = y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        # glucose can be driven slightly negative by the step when depleted: book it as consumption
        neg = np.minimum(y[_GLC], 0.0)
        y[_GLC] -= neg
        y[_GCONS] += neg
        y[_NONNEG] = np.maximum(y[_NONNEG], 0.0)
        peak_vcd = np.maximum(peak_vcd, np.where(s + 1 <= end_step, y[_XV] / y[_V], 0.0))
        # daily sample withdrawal
        d = (s + 1) - sample_step
        m = (d >= 0) & (d % every == 0) & (s + 1 <= end_step)
        if m.any():
            vs = np.where(m, med.sample_volume_l, 0.0)
            frac = 1.0 - vs / y[_V]
            y[_GSAMP] += y[_GLC] * vs / y[_V]
            y[_AMOUNTS] *= frac
            y[_V] -= vs
            y[_VSAMP] += vs

    # ------------------------------------------------------------- series
    t_rec = rec_idx * dt_h
    ex_r = {k: v[:, rec_idx] for k, v in ex.items()}
    # algebraic outputs on (n_rec, n) so that per-batch (n,) parameters broadcast
    st = np.ascontiguousarray(np.moveaxis(states, 1, 0))  # (NS, n_rec, n)
    terms = model.step_terms(
        t_rec[:, None], ex_r["t_act"].T, ex_r["feed"].T, ex_r["kla_mult"].T, ex_r["contam"].T, ex_r["do_sp_true"].T
    )
    aux = model.rates(st, terms, aux=True)
    series: dict[str, np.ndarray] = {
        k: np.ascontiguousarray(v.T) for k, v in aux.items() if k not in ("u_base", "u_co2")
    }
    states = np.moveaxis(states, 0, 2)  # (NS, n, n_rec)
    V = states[_V]
    series["volume"] = V
    series["ivcd"] = states[_IVC]
    series["temperature"] = ex_r["t_act"]
    series["temperature_sp"] = ex_r["t_sp"]
    series["dissolved_oxygen"] = series["do_true"] * ex_r["do_gain"]
    series["feed_flow_sp"] = ex_r["feed_cmd"] * 1000.0 / 60.0
    series["feed_flow"] = ex_r["feed"] * 1000.0 / 60.0
    series["feed_total"] = states[_VFEED] * 1000.0
    series["base_total"] = states[_VBASE] * 1000.0
    series["sample_total"] = states[_VSAMP] * 1000.0
    series["glucose_fed_g"] = states[_GFED]
    series["glucose_consumed_g"] = states[_GCONS]
    series["glucose_sampled_g"] = states[_GSAMP]
    u_base = aux["u_base"].T
    u_co2 = aux["u_co2"].T
    series["co2_flow"] = u_co2 / 1000.0 / ves.co2_absorption * _SL_PER_MOL / 60.0
    gas = offgas(
        series["our"],
        V,
        u_base,
        u_co2,
        series["air_flow"],
        series["o2_flow"],
        series["co2_flow"],
        model.k["rq"] if np.ndim(model.k["rq"]) == 0 else model.k["rq"][:, None],
    )
    series.update(gas)
    series.update(
        mechanical_signals(series["agitation"], V, series["air_flow"] + series["o2_flow"] + series["co2_flow"], ves)
    )
    diam = cell_diameter_um(
        series["temperature"],
        t_rec[None, :],
        model.k["cell_diam_um"] if np.ndim(model.k["cell_diam_um"]) == 0 else model.k["cell_diam_um"][:, None],
    )
    series["capacitance"] = capacitance_pf_cm(series["vcd"], diam)
    after = t_rec[None, :] > end_h[:, None] + 1e-9
    for v in series.values():
        v[after] = np.nan

    # ------------------------------------------------------------- harvest
    hs = harvest_state
    Vh = hs[_V]
    P = np.maximum(hs[_P], 1e-12)
    g = hs[_PGAL] / P
    man5 = hs[_PMAN5] / P
    afuc = hs[_PAFUC] / P
    q = model.q
    cf = 1.0 - afuc - q["other_glycans"]
    xv_h, xd_h = hs[_XV] / Vh, hs[_XD] / Vh
    harvest = {
        "titer": hs[_P] / Vh,
        "viability": 100.0 * xv_h / np.maximum(xv_h + xd_h, 1e-12),
        "vcd": xv_h,
        "peak_vcd": peak_vcd,
        "volume": Vh,
        "ivcd": hs[_IVC],
        "ammonia": hs[_AMM] / Vh,
        "lactate": hs[_LAC] / Vh,
        "osmolality": (
            hs[_S] / Vh
            + hs[_GLC] / Vh * 1000.0 / _MW_GLC
            + hs[_LAC] / Vh * 1000.0 / _MW_LAC
            + hs[_GLN] / Vh
            + hs[_AMM] / Vh
            + hs[_AA] / Vh
        ),
        "g0f": 100.0 * cf * (1.0 - g) ** 2,
        "g1f": 100.0 * cf * 2.0 * g * (1.0 - g),
        "g2f": 100.0 * cf * g * g,
        "man5": 100.0 * man5,
        "afucosylation": 100.0 * afuc,
        "hmw": q["hmw_secreted"] + 100.0 * hs[_PAGG] / P,
        "end_h": end_h.copy(),
    }
    harvest = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy() for k, v in harvest.items()}
    rng = np.random.default_rng(seed)
    noisy = dict(harvest)
    for key, sd in (
        ("g0f", qpar.sd_g0f),
        ("g1f", qpar.sd_g1f),
        ("g2f", qpar.sd_g2f),
        ("man5", qpar.sd_man5),
        ("afucosylation", qpar.sd_afuc),
        ("hmw", qpar.sd_hmw),
    ):
        noisy[key] = np.maximum(harvest[key] + rng.normal(0.0, sd, n), 0.0)
    events = {
        "pump_fail_h": eq.pump_failure_time(ex["feed_nominal"] > 0.0, dt_h, faults.pump_run_h0, faults.pump_life_h),
        "agitator_fail_h": np.where(faults.agitator_fail_h < end_h, faults.agitator_fail_h, np.inf),
    }
    events["pump_fail_h"] = np.where(events["pump_fail_h"] < end_h, events["pump_fail_h"], np.inf)
    return BatchResult(
        t_h=t_rec,
        series=series,
        harvest=harvest,
        harvest_noisy=noisy,
        recipes=rec,
        end_h=end_h,
        dt_h=dt_h,
        events=events,
    )


# --------------------------------------------------------------------------- derived signals


def offgas(
    our: np.ndarray,
    V: np.ndarray,
    u_base: np.ndarray,
    u_co2: np.ndarray,
    air: np.ndarray,
    o2: np.ndarray,
    co2: np.ndarray,
    rq: float | np.ndarray,
) -> dict[str, np.ndarray]:
    """Exhaust gas composition (dry, %) and the net CO2 evolution rate from a gas balance.

    O2 out = O2 in - OUR*V; CO2 out = CO2 in - CO2 absorbed (pH control) + respiration CO2
    (RQ*OUR*V) + CO2 released by carbonate base (1 mol per 2 eq); inert gas is conserved.
    ``cer`` [mmol/L/h] is what an off-gas analyser computes: (CO2 out - CO2 in) / V.
    """
    mol_min = 1.0 / _SL_PER_MOL
    o2_in = (_Y_O2_AIR * air + o2) * mol_min
    co2_in = (_Y_CO2_AIR * air + co2) * mol_min
    inert = (1.0 - _Y_O2_AIR - _Y_CO2_AIR) * air * mol_min
    o2_used = our * V / 1000.0 / 60.0
    cer = rq * our
    co2_made = cer * V / 1000.0 / 60.0 + u_base / 2.0 / 1000.0 / 60.0 - u_co2 / 1000.0 / 60.0
    o2_out = np.maximum(o2_in - o2_used, 0.0)
    co2_out = np.maximum(co2_in + co2_made, 0.0)
    tot = np.maximum(inert + o2_out + co2_out, 1e-12)
    return {
        "offgas_o2": 100.0 * o2_out / tot,
        "offgas_co2": 100.0 * co2_out / tot,
        "cer": cer + (0.5 * u_base - u_co2) / np.maximum(V, 1e-9),
    }


def mechanical_signals(
    agit_rpm: np.ndarray, V: np.ndarray, gas_slpm: np.ndarray, ves: Vessel, bearing_severity: np.ndarray | float = 0.0
) -> dict[str, np.ndarray]:
    """Weight, headspace pressure, agitator vibration and motor current (noise-free)."""
    vib, cur = eq.agitator_signals(agit_rpm, bearing_severity)
    return {
        "weight": V * ves.density_kg_l,
        "pressure": ves.backpressure_bar + 0.0006 * gas_slpm,
        "vibration": vib,
        "motor_current": cur,
    }


def cell_diameter_um(T: np.ndarray, t_h: np.ndarray, d0: float | np.ndarray = 14.0) -> np.ndarray:
    """Viable cell diameter: cells swell in late culture and at low temperature."""
    return d0 * (1.0 + 0.10 * _sigmoid((t_h / 24.0 - 7.0) / 1.5) + 0.02 * np.clip(37.0 - T, 0.0, 5.0))


def capacitance_pf_cm(vcd: np.ndarray, diam_um: np.ndarray) -> np.ndarray:
    """Permittivity [pF/cm] proportional to viable biovolume (0.9 pF/cm per 1e6 cells/mL of 14 um)."""
    return 0.9 * vcd * (diam_um / 14.0) ** 3
