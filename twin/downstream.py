"""Downstream unit operations: Protein A capture (per cycle) and UF/DF by TFF (per run).

Both return the curves a skid controller exports (column-wise numpy arrays, one row per
logging interval) and a run summary; ``twin.site`` writes them as ``curves.csv``/``run.json``.

Protein A capture (UNICORN-like), volumes in column volumes (CV):
    Equilibrate 5 CV -> Load (harvest, to a target load density) -> Wash 6 CV (3 CV
    equilibration buffer, 3 CV 0.5 M NaCl) -> Elute 3 CV (pH 3.6) -> Strip 2 CV (pH 2.9) ->
    CIP 5 CV (3 CV 0.1 M NaOH at half flow, 2 CV re-equilibration).
    * breakthrough during the load: logistic in the loaded mass around the dynamic binding
      capacity (DBC), which falls with column age -> losses and UV in the flow-through;
    * elution peak: gamma-shaped in volume, pooled between UV 300 mAU on the rise and on the
      tail; elution recovery falls with column age; yield = pooled / loaded product;
    * pressure: Darcy (proportional to flow and viscosity) x column fouling (rises with
      cycles, see ``twin.equipment.ColumnHealth``) + a rise during the load (particulates);
    * conductivity/pH: buffer steps smoothed by first-order mixing (0.3 CV).

UF/DF (TFF, constant TMP):
    UF1 concentrates the capture pool to 50 g/L, DF exchanges 7 diavolumes into the
    formulation buffer at constant volume, UF2 over-concentrates to ~1.1x the target, Recovery
    drains and flushes. Flux = min(pressure-limited Lp*TMP, mass-transfer-limited
    k*ln(Cgel/C)) x membrane permeability (irreversible fouling over uses); the feed-channel
    pressure drop rises with concentration (viscosity); conductivity washes out as
    exp(-diavolumes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.equipment import COLUMN_PRESSURE_LIMIT_BAR, ColumnHealth, MembraneHealth

# --------------------------------------------------------------------------- Protein A

COLUMN_DIAMETER_CM = 60.0
BED_HEIGHT_CM = 20.0
COLUMN_VOLUME_L = float(np.pi * (COLUMN_DIAMETER_CM / 2.0) ** 2 * BED_HEIGHT_CM / 1000.0)  # 56.5 L
DBC_NEW_G_L = 48.0  # dynamic binding capacity (10 % breakthrough) of new resin, g/L resin
LOAD_TARGET_G_L = 36.0  # target load density, g/L resin (75 % of new DBC)
LINEAR_VELOCITY_CM_H = 300.0
EXTINCTION_L_G_CM = 1.4  # mAb A280 extinction coefficient
UV_PATH_CM = 0.2
UV_SATURATION_MAU = 3200.0
CHROM_LOG_INTERVAL_S = 5.0

_CHROM_PHASES: tuple[tuple[str, float, float, float, float, float], ...] = (
    # phase, CV (load: None -> computed), flow factor, conductivity mS/cm, pH, viscosity factor
    ("Equilibrate", 5.0, 1.0, 15.0, 7.4, 1.0),
    ("Load", -1.0, 1.0, 13.0, 7.1, 1.15),
    ("Wash", 6.0, 1.0, 15.0, 7.4, 1.0),
    ("Elute", 3.0, 1.0, 1.6, 3.6, 1.0),
    ("Strip", 2.0, 1.0, 1.0, 2.9, 1.0),
    ("CIP", 5.0, 0.5, 22.0, 13.0, 1.1),
)


@dataclass
class CaptureCycle:
    """Result of one Protein A cycle: curve columns and the run summary (SI-ish units)."""

    curves: dict[str, np.ndarray]
    phase_bounds_s: list[tuple[str, float, float]]
    duration_s: float
    load_volume_l: float
    load_mass_g: float
    pool_volume_l: float
    pool_mass_g: float
    max_pressure_bar: float
    step_yield_pct: float
    result: str


def plan_capture_cycles(harvest_volume_l: float, titer_g_l: float, column: ColumnHealth) -> int:
    """Number of cycles so that each load stays at or below the target load density."""
    mass = harvest_volume_l * titer_g_l
    per_cycle = LOAD_TARGET_G_L * COLUMN_VOLUME_L * min(1.0, column.dbc_factor() + 0.1)
    return max(1, int(np.ceil(mass / per_cycle)))


def _smooth_steps(v_cv: np.ndarray, bounds_cv: np.ndarray, levels: np.ndarray, tau_cv: float = 0.3) -> np.ndarray:
    """Piecewise-constant levels with first-order mixing at each step change (in CV)."""
    out = np.full_like(v_cv, levels[0], dtype=float)
    for b, hi in zip(bounds_cv[1:-1], levels[1:], strict=False):
        x = np.clip(v_cv - b, 0.0, None)
        # the level reached at the step is frozen (out), then relaxes towards the new level
        out = np.where(v_cv >= b, hi + (out - hi) * np.exp(-x / tau_cv), out)
    return out


def simulate_capture_cycle(
    rng: np.random.Generator, load_volume_l: float, titer_g_l: float, column: ColumnHealth, hcp_mau: float = 700.0
) -> CaptureCycle:
    """One Protein A cycle on ``column`` (its ``cycles`` is the count *before* this cycle)."""
    cv = COLUMN_VOLUME_L
    area_cm2 = np.pi * (COLUMN_DIAMETER_CM / 2.0) ** 2
    flow_l_min = LINEAR_VELOCITY_CM_H * area_cm2 / 1000.0 / 60.0  # 14.1 L/min
    load_cv = load_volume_l / cv
    # phase table -> volume / time bounds
    names, cvs, flows, conds, phs, visc = [], [], [], [], [], []
    for name, vol, ff, cond, ph, vf in _CHROM_PHASES:
        names.append(name)
        cvs.append(load_cv if vol < 0 else vol)
        flows.append(ff)
        conds.append(cond)
        phs.append(ph)
        visc.append(vf)
    cvs_a = np.array(cvs)
    flows_a = np.array(flows)
    dur_s = cvs_a * cv / (flow_l_min * flows_a) * 60.0
    t_bounds = np.concatenate([[0.0], np.cumsum(dur_s)])
    v_bounds = np.concatenate([[0.0], np.cumsum(cvs_a)])
    total_s = float(t_bounds[-1])
    t = np.arange(0.0, total_s, CHROM_LOG_INTERVAL_S)
    ph_idx = np.clip(np.searchsorted(t_bounds, t, side="right") - 1, 0, len(names) - 1)
    # volume (CV) along time: piecewise linear with per-phase flow
    v_cv = v_bounds[ph_idx] + (t - t_bounds[ph_idx]) * (flow_l_min * flows_a[ph_idx]) / 60.0 / cv

    # ---- load and breakthrough
    dbc = DBC_NEW_G_L * column.dbc_factor()
    c0 = titer_g_l
    loaded_g_l = np.clip(v_cv - v_bounds[1], 0.0, load_cv) * c0  # g/L resin offered so far
    width = 0.09 * dbc
    bt = 1.0 / (1.0 + np.exp(-(loaded_g_l - dbc) / width))  # c/c0 in the flow-through
    # mass lost in breakthrough (integrate over the load phase)
    vv = np.linspace(0.0, load_cv, 400)
    bt_v = 1.0 / (1.0 + np.exp(-(vv * c0 - dbc) / width))
    lost_bt = float(np.trapezoid(bt_v, vv) * c0 * cv)
    load_mass = c0 * load_volume_l
    bound = max(load_mass - lost_bt, 0.0)
    recovery = column.recovery() * float(rng.normal(1.0, 0.004))
    eluted = bound * min(recovery, 0.995)
    stripped = bound - eluted

    uv = np.zeros_like(t)
    in_load = ph_idx == 1
    ft_rise = 1.0 - np.exp(-np.clip(v_cv - v_bounds[1], 0.0, None) / 0.6)
    uv_mab_per_gl = EXTINCTION_L_G_CM * UV_PATH_CM * 1000.0
    uv = np.where(in_load, ft_rise * (hcp_mau + bt * c0 * uv_mab_per_gl), uv)
    # wash-out of flow-through during the wash
    in_wash = ph_idx == 2
    end_load_uv = hcp_mau + float(bt_v[-1]) * c0 * uv_mab_per_gl
    uv = np.where(in_wash, end_load_uv * np.exp(-(v_cv - v_bounds[2]) / 0.7) + 15.0, uv)
    # elution peak: gamma shape in volume from the start of elution (delay 0.4 CV)
    in_el = ph_idx == 3
    x = np.clip(v_cv - v_bounds[3] - 0.4, 0.0, None)
    k_shape, scale = 3.0, 0.22
    shape = np.where(x > 0, x ** (k_shape - 1.0) * np.exp(-x / scale), 0.0)
    norm = scale**k_shape * 2.0  # Gamma(3) = 2
    conc_el = eluted / (cv * norm) * shape  # g/L in the eluate
    uv_el = np.minimum(conc_el * uv_mab_per_gl, UV_SATURATION_MAU)
    uv = np.where(in_el, uv_el, uv)
    # strip: residual protein
    in_st = ph_idx == 4
    xs = np.clip(v_cv - v_bounds[4] - 0.3, 0.0, None)
    conc_st = stripped / (cv * 0.25**2) * xs * np.exp(-xs / 0.25) if stripped > 0 else 0.0 * xs
    uv = np.where(in_st, np.minimum(conc_st * uv_mab_per_gl + 20.0, UV_SATURATION_MAU), uv)
    in_cip = ph_idx == 5
    uv = np.where(in_cip, 40.0 * np.exp(-(v_cv - v_bounds[5]) / 1.0) + 5.0, uv)
    uv = uv + rng.normal(0.0, 1.5, t.shape)

    # ---- pool by UV cut (300 mAU) on the noise-free elution profile
    xe = np.linspace(0.0, 3.0, 3001)
    ce = eluted / (cv * norm) * np.where(xe > 0.4, (xe - 0.4) ** 2 * np.exp(-(xe - 0.4) / scale), 0.0)
    above = np.minimum(ce * uv_mab_per_gl, UV_SATURATION_MAU) >= 300.0
    if above.any():
        i0, i1 = int(np.argmax(above)), len(above) - int(np.argmax(above[::-1])) - 1
        pool_mass = float(np.trapezoid(ce[i0 : i1 + 1], xe[i0 : i1 + 1]) * cv)
        pool_volume = float((xe[i1] - xe[i0]) * cv)
    else:
        pool_mass, pool_volume = 0.0, 0.0

    # ---- conductivity, pH (mixing-smoothed steps in CV)
    cond_levels = np.array(conds)
    cond = _smooth_steps(v_cv, v_bounds, cond_levels)
    # intermediate high-salt wash in the second half of the wash
    hs = (v_cv >= v_bounds[2] + 3.0) & (v_cv < v_bounds[3])
    cond = np.where(hs, 45.0 + (cond - 45.0) * np.exp(-(v_cv - v_bounds[2] - 3.0) / 0.3), cond)
    cond = np.where(ph_idx == 3, 1.6 + (cond - 1.6), cond)
    re_eq = v_cv >= v_bounds[5] + 3.0
    cond = np.where(re_eq, 15.0 + (22.0 - 15.0) * np.exp(-(v_cv - v_bounds[5] - 3.0) / 0.3), cond)
    ph = _smooth_steps(v_cv, v_bounds, np.array(phs), tau_cv=0.45)
    ph = np.where(re_eq, 7.4 + (13.0 - 7.4) * np.exp(-(v_cv - v_bounds[5] - 3.0) / 0.45), ph)
    cond = cond * (1.0 + rng.normal(0.0, 0.003, t.shape))
    ph = ph + rng.normal(0.0, 0.01, t.shape)

    # ---- pressure: Darcy x fouling, rising during the load
    foul = column.fouling()
    dp_clean = 1.05  # bar at 300 cm/h in buffer, new column
    visc_a = np.array(visc)
    load_rise = np.where(in_load, 0.12 * np.clip((v_cv - v_bounds[1]) / max(load_cv, 1e-9), 0.0, 1.0), 0.0)
    pressure = 0.25 + dp_clean * flows_a[ph_idx] * visc_a[ph_idx] * foul * (1.0 + load_rise)
    pressure = pressure + rng.normal(0.0, 0.01, t.shape)
    max_p = float(pressure.max())
    result = "pressure_alarm" if max_p > COLUMN_PRESSURE_LIMIT_BAR else "pass"
    volume_ml = v_cv * cv * 1000.0
    curves = {
        "volume_ml": volume_ml,
        "time_s": t,
        "uv280_mau": uv,
        "conductivity_ms_cm": cond,
        "ph": ph,
        "pressure_bar": pressure,
        "phase": np.array(names, dtype=object)[ph_idx],
    }
    bounds = [(names[i], float(t_bounds[i]), float(t_bounds[i + 1])) for i in range(len(names))]
    return CaptureCycle(
        curves=curves,
        phase_bounds_s=bounds,
        duration_s=total_s,
        load_volume_l=load_volume_l,
        load_mass_g=load_mass,
        pool_volume_l=pool_volume,
        pool_mass_g=pool_mass,
        max_pressure_bar=max_p,
        step_yield_pct=100.0 * pool_mass / max(load_mass, 1e-9),
        result=result,
    )


# --------------------------------------------------------------------------- UF/DF

MEMBRANE_AREA_M2 = 20.0
UF1_TARGET_G_L = 50.0
DS_TARGET_G_L = 100.0
DIAVOLUMES = 7.0
TMP_SETPOINT_BAR = 1.0
LP_NEW_LMH_BAR = 95.0  # water-like permeability of a new cassette (LMH/bar) with protein
K_MASS_LMH = 22.0  # mass-transfer coefficient
C_GEL_G_L = 320.0
TFF_LOG_INTERVAL_S = 10.0
BUFFER_COND_MS_CM = 1.2


@dataclass
class UfdfRun:
    """One UF/DF (TFF) run: its curves, phase bounds, duration, final volume and concentration,
    step yield, mean flux and result.
    """

    curves: dict[str, np.ndarray]
    phase_bounds_s: list[tuple[str, float, float]]
    duration_s: float
    final_volume_l: float
    final_concentration_g_l: float
    step_yield_pct: float
    mean_flux_lmh: float
    result: str


def _flux(c: np.ndarray | float, perm: float, tmp: float = TMP_SETPOINT_BAR) -> np.ndarray:
    c = np.asarray(c, dtype=float)
    return np.minimum(LP_NEW_LMH_BAR * perm * tmp, K_MASS_LMH * (0.6 + 0.4 * perm) * np.log(C_GEL_G_L / c))


def simulate_ufdf(
    rng: np.random.Generator,
    pool_volume_l: float,
    pool_conc_g_l: float,
    membrane: MembraneHealth,
    pool_cond_ms_cm: float = 4.5,
) -> UfdfRun:
    """One UF/DF run on ``membrane`` (its ``uses`` is the count *before* this run)."""
    perm = membrane.permeability() * float(rng.normal(1.0, 0.02))
    area = MEMBRANE_AREA_M2
    dt = TFF_LOG_INTERVAL_S
    mass0 = pool_volume_l * pool_conc_g_l
    t_list: list[np.ndarray] = []
    v_list: list[np.ndarray] = []
    c_list: list[np.ndarray] = []
    j_list: list[np.ndarray] = []
    k_list: list[np.ndarray] = []
    ph_list: list[str] = []
    bounds: list[tuple[str, float, float]] = []
    t_now = 0.0

    def concentrate(v0: float, c_target: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # integrate dV/dt = -J(C) A, C = mass / V on a fine grid, sample every dt
        v_end = mass0 / c_target
        vs = np.linspace(v0, v_end, 2000)
        cs = mass0 / vs
        js = _flux(cs, perm)
        dt_dv = 1.0 / (js * area / 3600.0)  # s per L
        ts = np.concatenate([[0.0], np.cumsum(0.5 * (dt_dv[1:] + dt_dv[:-1]) * (vs[:-1] - vs[1:]))])
        tg = np.arange(0.0, ts[-1], dt)
        vg = np.interp(tg, ts, vs)
        return tg, vg, mass0 / vg

    # UF1
    tg, vg, cg = concentrate(pool_volume_l, UF1_TARGET_G_L)
    bounds.append(("UF1", t_now, t_now + float(tg[-1] + dt)))
    t_list.append(t_now + tg), v_list.append(vg), c_list.append(cg), j_list.append(_flux(cg, perm))
    k_list.append(np.full_like(tg, pool_cond_ms_cm))
    ph_list += ["UF1"] * len(tg)
    t_now = bounds[-1][2]
    # DF at constant volume
    v_df = mass0 / UF1_TARGET_G_L
    j_df = float(_flux(UF1_TARGET_G_L, perm))
    t_df = DIAVOLUMES * v_df / (j_df * area) * 3600.0
    tg = np.arange(0.0, t_df, dt)
    n_dv = tg * j_df * area / 3600.0 / v_df
    bounds.append(("DF", t_now, t_now + float(tg[-1] + dt)))
    t_list.append(t_now + tg), v_list.append(np.full_like(tg, v_df)), c_list.append(np.full_like(tg, UF1_TARGET_G_L))
    j_list.append(np.full_like(tg, j_df))
    k_list.append(BUFFER_COND_MS_CM + (pool_cond_ms_cm - BUFFER_COND_MS_CM) * np.exp(-n_dv))
    ph_list += ["DF"] * len(tg)
    t_now = bounds[-1][2]
    # UF2 to 1.1x target
    tg, vg, cg = concentrate(v_df, DS_TARGET_G_L * 1.1)
    bounds.append(("UF2", t_now, t_now + float(tg[-1] + dt)))
    t_list.append(t_now + tg), v_list.append(vg), c_list.append(cg), j_list.append(_flux(cg, perm))
    k_final = BUFFER_COND_MS_CM + (pool_cond_ms_cm - BUFFER_COND_MS_CM) * np.exp(-DIAVOLUMES)
    k_list.append(np.full_like(tg, k_final))
    ph_list += ["UF2"] * len(tg)
    t_now = bounds[-1][2]
    # Recovery: drain + buffer flush to the target concentration, 15 min
    tg = np.arange(0.0, 900.0, dt)
    v_end = float(v_list[-1][-1])
    c_end = float(c_list[-1][-1])
    bounds.append(("Recovery", t_now, t_now + 900.0))
    t_list.append(t_now + tg), v_list.append(v_end * np.clip(1.0 - tg / 600.0, 0.0, 1.0))
    c_list.append(np.full_like(tg, c_end)), j_list.append(np.zeros_like(tg))
    k_list.append(np.full_like(tg, k_final))
    ph_list += ["Recovery"] * len(tg)

    t = np.concatenate(t_list)
    vol = np.concatenate(v_list)
    conc = np.concatenate(c_list)
    flux = np.concatenate(j_list)
    cond = np.concatenate(k_list)
    phase = np.array(ph_list, dtype=object)
    rec = phase == "Recovery"
    # pressures: crossflow channel drop rises with viscosity; TMP held at setpoint
    visc = np.exp(conc / 110.0)
    dp_ch = 0.55 * visc / (0.75 + 0.25 * membrane.permeability())
    dp_ch = np.minimum(dp_ch, 2.2)
    p_perm = 0.05 + 0.02 * (flux / 60.0)
    feed_p = TMP_SETPOINT_BAR + p_perm + dp_ch / 2.0
    ret_p = np.maximum(TMP_SETPOINT_BAR + p_perm - dp_ch / 2.0, 0.05)
    feed_p = np.where(rec, 0.3 * np.exp(-(t - bounds[-1][1]) / 120.0), feed_p)
    ret_p = np.where(rec, 0.1 * np.exp(-(t - bounds[-1][1]) / 120.0), ret_p)
    p_perm = np.where(rec, 0.0, p_perm)
    tmp = (feed_p + ret_p) / 2.0 - p_perm
    noise = lambda sd: rng.normal(0.0, sd, t.shape)
    flux_meas = np.maximum(flux * (1.0 + noise(0.015)), 0.0)
    yield_frac = float(np.clip(rng.normal(0.975, 0.006), 0.94, 0.995))
    final_volume = mass0 * yield_frac / DS_TARGET_G_L
    final_conc = DS_TARGET_G_L * float(rng.normal(1.0, 0.01))
    mean_flux = float(flux[~rec].mean())
    min_perm_ok = membrane.permeability() >= 0.55
    curves = {
        "time_s": t,
        "feed_pressure_bar": np.maximum(feed_p + noise(0.01), 0.0),
        "retentate_pressure_bar": np.maximum(ret_p + noise(0.01), 0.0),
        "permeate_pressure_bar": np.maximum(p_perm + noise(0.004), 0.0),
        "tmp_bar": np.maximum(tmp + noise(0.008), 0.0),
        "permeate_flux_lmh": flux_meas,
        "conductivity_ms_cm": cond * (1.0 + noise(0.004)),
        "retentate_volume_l": np.maximum(vol + noise(0.2), 0.0),
        "phase": phase,
    }
    return UfdfRun(
        curves=curves,
        phase_bounds_s=bounds,
        duration_s=float(t[-1] + dt),
        final_volume_l=final_volume,
        final_concentration_g_l=final_conc,
        step_yield_pct=100.0 * yield_frac,
        mean_flux_lmh=mean_flux,
        result="pass" if min_perm_ok else "low_flux",
    )
