"""The validated envelope of a model and the evidence floor of the promotion gate.

``config/ml/envelope.yaml`` (or ``$LAKEHOUSE_ML_ENVELOPE_CONFIG``) defines, per model (defaults +
``models.<name>`` overrides):

* **evidence floor** (``evidence``): held-out batches / rows / positives a gate needs before it
  can promote at all — below it the candidate is rejected;
* **envelope**: the applicability domain a retrain may cover (explicit ``ranges`` and at most
  ``max_range_expansion`` beyond the validated champion's training ranges, the same feature
  list, ``min_training_batches``), the performance floor against the baseline
  (``min_improvement_vs_baseline``) and the drift limits for the champion in service (``drift``);
* **approvals**: role separation (``separation_of_duties``, ``approvers``).

:func:`assess` is pure: the gate's decision and the candidate's (and champion's) metadata in,
``{"inside": bool, "violations": [...], ...}`` out. The file's sha256 and ``version`` go with
every assessment, so a decision names the envelope it was taken under.
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ml.config import PROJECT_ROOT

DEFAULT_ENVELOPE_CONFIG = PROJECT_ROOT / "config" / "ml" / "envelope.yaml"
ENVELOPE_ENV = "LAKEHOUSE_ML_ENVELOPE_CONFIG"
FIRST_VERSION = ("automatic", "approval")
_ENVELOPE_KEYS = {
    "first_version",
    "max_range_expansion",
    "same_features",
    "ranges",
    "min_training_batches",
    "min_improvement_vs_baseline",
    "drift",
}


@dataclass(frozen=True)
class EnvelopeConfig:
    """The parsed envelope file.

    Attributes
    ----------
    version : int
        The file's own version number.
    sha256 : str
        sha256 of the file's bytes (what decisions and the audit trail record).
    path : str
        Where it was read from.
    evidence : dict
        ``min_heldout_batches``, ``min_heldout_rows``, ``min_heldout_positives``.
    defaults : dict
        Envelope of every model.
    models : dict
        Per-model overrides of ``defaults``.
    approvals : dict
        ``separation_of_duties`` (bool), ``approvers`` (list of identities; empty: anyone but the trainer).
    """

    version: int
    sha256: str
    path: str
    evidence: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    approvals: dict = field(default_factory=dict)

    def for_model(self, name: str) -> dict:
        """The envelope of model ``name`` (defaults with its overrides; ``drift`` merged key by key)."""
        out = copy.deepcopy(self.defaults)
        over = self.models.get(name) or {}
        for k, v in over.items():
            out[k] = (out.get(k) or {}) | v if k == "drift" and isinstance(v, dict) else v
        return out


def load_envelope(path: str | Path | None = None) -> EnvelopeConfig:
    """Read and check an envelope file (``path``, else ``$LAKEHOUSE_ML_ENVELOPE_CONFIG``, else
    ``config/ml/envelope.yaml``); a wrong key or value is a one-line ``ValueError``."""
    p = Path(path or os.environ.get(ENVELOPE_ENV) or DEFAULT_ENVELOPE_CONFIG)
    raw = p.read_bytes()
    doc = yaml.safe_load(raw) or {}
    unknown = set(doc) - {"version", "evidence", "defaults", "models", "approvals"}
    if unknown:
        raise ValueError(f"{p}: unknown envelope keys {sorted(unknown)}")
    for where, env in [("defaults", doc.get("defaults") or {})] + [
        (f"models.{n}", m or {}) for n, m in (doc.get("models") or {}).items()
    ]:
        bad = set(env) - _ENVELOPE_KEYS
        if bad:
            raise ValueError(f"{p}: unknown keys {sorted(bad)} in {where}")
        if env.get("first_version", "automatic") not in FIRST_VERSION:
            raise ValueError(f"{p}: {where}.first_version must be one of {FIRST_VERSION}")
        for feat, rng in (env.get("ranges") or {}).items():
            if not (isinstance(rng, list | tuple) and len(rng) == 2 and float(rng[0]) <= float(rng[1])):
                raise ValueError(f"{p}: {where}.ranges.{feat} must be [low, high] with low <= high")
    appr = doc.get("approvals") or {}
    return EnvelopeConfig(
        version=int(doc.get("version", 0)),
        sha256=hashlib.sha256(raw).hexdigest(),
        path=str(p),
        evidence={"min_heldout_batches": 3, "min_heldout_rows": 3, "min_heldout_positives": 2}
        | (doc.get("evidence") or {}),
        defaults=doc.get("defaults") or {},
        models=doc.get("models") or {},
        approvals={"separation_of_duties": True, "approvers": []} | appr,
    )


def evidence_floor(cfg: EnvelopeConfig, kind: str, n_rows: int, n_batches: int | None, n_positive: int | None) -> dict:
    """Whether the held-out evidence reaches the floor: ``{"met": bool, "shortfalls": [...], ...}``."""
    ev = cfg.evidence
    short = []
    if n_rows < int(ev["min_heldout_rows"]):
        short.append(f"{n_rows} held-out rows < {ev['min_heldout_rows']}")
    if kind == "regression" and n_batches is not None and n_batches < int(ev["min_heldout_batches"]):
        short.append(f"{n_batches} held-out batches < {ev['min_heldout_batches']}")
    if kind == "classifier" and n_positive is not None and n_positive < int(ev["min_heldout_positives"]):
        short.append(f"{n_positive} held-out positives < {ev['min_heldout_positives']}")
    return {
        "met": not short,
        "shortfalls": short,
        "n_heldout_rows": n_rows,
        "n_heldout_batches": n_batches,
        "n_heldout_positives": n_positive,
        "floor": dict(ev),
    }


def training_ranges(meta: dict) -> dict[str, tuple[float, float]]:
    """Feature -> (low, high) of the model's training data (its applicability-domain ranges)."""
    dom = meta.get("domain") or {}
    out = {}
    for f, lo, hi in zip(dom.get("features") or [], dom.get("lo") or [], dom.get("hi") or [], strict=False):
        if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
            out[f] = (float(lo), float(hi))
    return out


def assess(
    cfg: EnvelopeConfig,
    name: str,
    decision: dict,
    candidate_meta: dict,
    champion_meta: dict | None = None,
) -> dict[str, Any]:
    """Is a candidate that passed the gate inside its validated envelope?

    Parameters
    ----------
    cfg : EnvelopeConfig
    name : str
        Model name (selects ``models.<name>`` overrides).
    decision : dict
        The gate's decision (``candidate_value``, ``baseline_value``, ``higher_is_better``).
    candidate_meta, champion_meta : dict
        Model metadata (``features``, ``domain``, ``split``); ``champion_meta`` None: first version.

    Returns
    -------
    dict
        ``inside``, ``violations`` (one line each), ``envelope_version``, ``envelope_sha256``,
        ``envelope`` (the model's envelope as applied).
    """
    env = cfg.for_model(name)
    v: list[str] = []
    cand = training_ranges(candidate_meta)
    for feat, (lo, hi) in (env.get("ranges") or {}).items():
        if feat in cand and (cand[feat][0] < float(lo) or cand[feat][1] > float(hi)):
            v.append(f"training range of {feat} [{cand[feat][0]:.4g}, {cand[feat][1]:.4g}] outside [{lo}, {hi}]")
    if champion_meta is None:
        if env.get("first_version", "automatic") == "approval":
            v.append("first version of the model (envelope: first_version = approval)")
    else:
        if env.get("same_features", True) and list(candidate_meta.get("features") or []) != list(
            champion_meta.get("features") or []
        ):
            v.append("feature list differs from the validated champion's")
        f = float(env.get("max_range_expansion", 0.25))
        champ = training_ranges(champion_meta)
        for feat, (lo, hi) in cand.items():
            if feat not in champ:
                continue
            c_lo, c_hi = champ[feat]
            span = max(c_hi - c_lo, 1e-12)
            if lo < c_lo - f * span or hi > c_hi + f * span:
                v.append(
                    f"training range of {feat} [{lo:.4g}, {hi:.4g}] exceeds the champion's [{c_lo:.4g}, {c_hi:.4g}] by more than {f:g}× its span"
                )
    n_train = len((candidate_meta.get("split") or {}).get("train_batches") or [])
    min_train = env.get("min_training_batches")
    if candidate_meta.get("kind") == "regression" and min_train and n_train < int(min_train):
        v.append(f"{n_train} training batches < {min_train}")
    imp = improvement(decision)
    floor = float(env.get("min_improvement_vs_baseline", 0.0))
    if imp is not None and imp < floor:
        v.append(f"improvement vs baseline {imp:.3g} < performance floor {floor:g}")
    return {
        "inside": not v,
        "violations": v,
        "improvement_vs_baseline": imp,
        "envelope_version": cfg.version,
        "envelope_sha256": cfg.sha256,
        "envelope": env,
    }


def improvement(decision: dict) -> float | None:
    """Relative improvement of the candidate over the baseline (positive = better)."""
    c, b = decision.get("candidate_value"), decision.get("baseline_value")
    if c is None or b is None or not b:
        return None
    return (c - b) / abs(b) if decision.get("higher_is_better") else (b - c) / abs(b)


def drift_breach(cfg: EnvelopeConfig, name: str, verification: dict) -> list[str]:
    """Envelope drift limits a verification result (:func:`ml.verification.verify`) breaches."""
    lim = cfg.for_model(name).get("drift") or {}
    out = []
    rmse, ref = verification.get("rolling_rmse"), verification.get("heldout_rmse")
    has_error = lim.get("max_rmse_ratio") and rmse is not None and ref and verification.get("n_results")
    if has_error and rmse > float(lim["max_rmse_ratio"]) * ref:
        out.append(f"rolling RMSE {rmse:.4g} > {lim['max_rmse_ratio']} × held-out RMSE {ref:.4g}")
    drifted = verification.get("psi_drifted") or []
    if lim.get("max_drifted_features") is not None and len(drifted) > int(lim["max_drifted_features"]):
        out.append(f"{len(drifted)} drifted features > {lim['max_drifted_features']}: {', '.join(drifted)}")
    return out
