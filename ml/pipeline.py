"""Lake-level steps (read gold → write features → train/register → gate → score → verify).

Plain Python on a :class:`lakehouse.storage.Lake`; the Dagster assets, the ``lakehouse train``
CLI and ``bench/bench_ml.py`` all call these.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import polars as pl
import pyarrow as pa

from lakehouse.storage import Lake
from lakehouse.tables import read_table, write_table
from ml import promotion
from ml.batches import batch_conditions
from ml.config import PdMConfig, SoftSensorConfig
from ml.features import build_equipment_health_features, build_softsensor_features, raw_signals
from ml.registry import ModelRegistry, RegisteredModel
from ml.scoring import score_harvest, score_pdm, score_softsensor
from ml.train import InsufficientData, TrainedModel, pdm_data_problem, train_harvest, train_pdm, train_titer
from ml.verification import recent_batches, recent_days, verify

SOFTSENSOR = ("features", "softsensor")
EQUIPMENT = ("features", "equipment_health")
GOLD_SOFTSENSOR_INPUTS = ("fct_process_readings", "dim_batches", "fct_assay_results")
GOLD_PDM_INPUTS = ("fct_equipment_health_daily", "fct_work_orders")


# ----------------------------------------------------------------------------- features
def features_config_digest(features_cfg) -> str:
    """Fingerprint of a feature config (``FeatureConfig`` / ``EquipmentFeatureConfig``), stored in the
    feature table's commit metadata so that a table built with another config is not reused."""
    blob = json.dumps(dataclasses.asdict(features_cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def features_config_mismatch(lake: Lake, layer: str, name: str, features_cfg) -> str | None:
    """Why the latest version of a feature table does not fit ``features_cfg`` (None: it fits)."""
    uri = lake.uri(layer, name)
    hist = lake.delta_table(uri).history(1) if lake.delta_exists(uri) else []
    built = hist[0].get("features_config") if hist else None
    want = features_config_digest(features_cfg)
    if built == want:
        return None
    return f"built with another feature config ({built or 'unknown'} != {want})"


def materialize_softsensor_features(lake: Lake, cfg: SoftSensorConfig) -> tuple[pl.DataFrame, int, dict]:
    """Build ``features/softsensor`` from the gold marts and write it (overwrite).

    Returns
    -------
    (features, version, inputs)
        The feature frame, its Delta version and the gold table versions it was built from.
    """
    needed = ["batch_id", "unit_id", "ts", "culture_age_h", "phase"]
    # only the columns the features use are read: the wide readings mart holds every signal
    # of the plant (and lineage), most of which the soft sensor never looks at
    wanted = list(dict.fromkeys([*needed, *raw_signals(cfg.features)]))
    readings = read_table(lake, "gold", "fct_process_readings", columns=wanted, only_existing_columns=True)
    batches = read_table(lake, "gold", "dim_batches")
    assays = read_table(lake, "gold", "fct_assay_results")
    feats = build_softsensor_features(readings.df, batches.df, cfg.features, assays.df)
    inputs = {
        "gold/fct_process_readings": readings.version,
        "gold/dim_batches": batches.version,
        "gold/fct_assay_results": assays.version,
    }
    version = write_table(
        lake, *SOFTSENSOR, feats, metadata={"inputs": inputs, "features_config": features_config_digest(cfg.features)}
    )
    return feats, version, inputs


def materialize_equipment_features(lake: Lake, cfg: PdMConfig) -> tuple[pl.DataFrame, int, dict]:
    """Build ``features/equipment_health`` from the gold marts and write it (overwrite).

    Returns
    -------
    (features, version, inputs)
        The feature frame, its Delta version and the gold table versions it was built from.
    """
    health = read_table(lake, "gold", "fct_equipment_health_daily")
    wos = read_table(lake, "gold", "fct_work_orders")
    feats = build_equipment_health_features(health.df, wos.df, cfg.features)
    inputs = {"gold/fct_equipment_health_daily": health.version, "gold/fct_work_orders": wos.version}
    version = write_table(
        lake, *EQUIPMENT, feats, metadata={"inputs": inputs, "features_config": features_config_digest(cfg.features)}
    )
    return feats, version, inputs


# ----------------------------------------------------------------------------- features on Spark
def _gold_spark(lake: Lake, spark, name: str, wanted: set[str] | None = None):
    """``gold/<name>`` as a Spark DataFrame through the Delta bridge, pinned to its current version."""
    from lakehouse.spark.delta_bridge import read_delta

    uri = lake.uri("gold", name)
    dt = lake.delta_table(uri)
    version = int(dt.version())
    cols = [c for c in pa.schema(dt.schema().to_arrow()).names if wanted is None or c in wanted]
    return read_delta(spark, uri, lake.delta_storage_options(), version=version, columns=cols), version


def _write_features_spark(lake: Lake, layer: str, name: str, built, order: list[str], metadata: dict) -> int:
    from lakehouse.spark.delta_bridge import write_delta

    res = write_delta(
        built.orderBy(*order),
        lake.uri(layer, name),
        lake.delta_storage_options(),
        mode="overwrite",
        commit_metadata={k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()},
    )
    return int(res.version)


def materialize_softsensor_features_spark(lake: Lake, cfg: SoftSensorConfig, spark) -> tuple[dict, int, dict]:
    """``features/softsensor`` built on Spark (:func:`build_softsensor_features_spark`) from the gold tables
    read through the Delta bridge and written through it: the same table (rows, schema, order, commit
    metadata) as :func:`materialize_softsensor_features`. Returns a summary instead of the frame."""
    from lakehouse.spark.features import build_softsensor_features_spark

    needed = {"batch_id", "unit_id", "ts", "culture_age_h", "phase"} | set(raw_signals(cfg.features))
    readings, rv = _gold_spark(lake, spark, "fct_process_readings", needed)
    batches, bv = _gold_spark(lake, spark, "dim_batches")
    assays, av = _gold_spark(lake, spark, "fct_assay_results")
    inputs = {"gold/fct_process_readings": rv, "gold/dim_batches": bv, "gold/fct_assay_results": av}
    built = build_softsensor_features_spark(readings, batches, cfg.features, assays, spark=spark).persist()
    try:
        version = _write_features_spark(
            lake,
            *SOFTSENSOR,
            built,
            ["batch_id", "ts", "row_type"],
            {"inputs": inputs, "features_config": features_config_digest(cfg.features), "compute_engine": "spark"},
        )
        counts = {r["row_type"]: int(r["count"]) for r in built.groupBy("row_type").count().collect()}
        summary = {
            "rows": sum(counts.values()),
            "row_types": counts,
            "columns": list(built.columns),
            "batches": built.select("batch_id").distinct().count(),
        }
    finally:
        built.unpersist()
    return summary, version, inputs


def materialize_equipment_features_spark(lake: Lake, cfg: PdMConfig, spark) -> tuple[dict, int, dict]:
    """``features/equipment_health`` on Spark = :func:`materialize_equipment_features` (summary instead of frame)."""
    from pyspark.sql import functions as F

    from lakehouse.spark.features import build_equipment_health_features_spark

    health, hv = _gold_spark(lake, spark, "fct_equipment_health_daily")
    wos, wv = _gold_spark(lake, spark, "fct_work_orders")
    inputs = {"gold/fct_equipment_health_daily": hv, "gold/fct_work_orders": wv}
    built = build_equipment_health_features_spark(health, wos, cfg.features, spark=spark).persist()
    try:
        version = _write_features_spark(
            lake,
            *EQUIPMENT,
            built,
            ["equipment_id", "date"],
            {"inputs": inputs, "features_config": features_config_digest(cfg.features), "compute_engine": "spark"},
        )
        row = built.agg(
            F.count(F.lit(1)).alias("rows"),
            F.countDistinct("equipment_id").alias("equipment"),
            F.sum(F.col("label__failure_within_h").cast("long")).alias("positive_rows"),
        ).first()
        summary = {
            "rows": int(row["rows"]),
            "equipment": int(row["equipment"]),
            "positive_rows": int(row["positive_rows"] or 0),
        }
    finally:
        built.unpersist()
    return summary, version, inputs


def _feature_inputs(lake: Lake, layer: str, name: str, version: int) -> dict:
    """The gold versions a feature-table version was built from (from its commit metadata)."""
    uri = lake.uri(layer, name)
    if not lake.delta_exists(uri):
        return {}
    for h in lake.delta_table(uri).history():
        if int(h.get("version", -1)) == version and "inputs" in h:
            return json.loads(h["inputs"])
    return {}


# ----------------------------------------------------------------------------- training
def register(lake: Lake, model: TrainedModel, training_data: dict) -> RegisteredModel:
    """Register a trained model as a candidate (booster as UBJ + registry row) with its training data versions."""
    return ModelRegistry(lake).register(
        model.name,
        model.booster,
        model.meta,
        params=model.params,
        metrics=model.metrics,
        training_data=training_data,
        kind=model.kind,
        target=model.meta["target"],
    )


def lake_deviations(lake: Lake) -> pl.DataFrame | None:
    """The plant's recorded deviations as ``batch_id, recorded_onset_ts`` (the earliest onset QA
    recorded), from ``gold/dim_batches`` (``n_recorded_deviations``, ``first_deviation_onset_ts``:
    the import's deviation list); None when the lake has no such columns."""
    if not lake.delta_exists(lake.uri("gold", "dim_batches")):
        return None
    b = read_table(
        lake,
        "gold",
        "dim_batches",
        only_existing_columns=True,
        columns=["batch_id", "n_recorded_deviations", "first_deviation_onset_ts"],
    ).df
    if "n_recorded_deviations" not in b.columns:
        return None
    onset = pl.col("first_deviation_onset_ts") if "first_deviation_onset_ts" in b.columns else pl.lit(None)
    return b.filter(pl.col("n_recorded_deviations") > 0).select(
        "batch_id", onset.cast(pl.Datetime("us", "UTC")).alias("recorded_onset_ts")
    )


def analyte_unit(lake: Lake, analyte: str) -> str | None:
    """The unit the lab reports ``analyte`` in (``gold/fct_assay_results``; its most frequent one),
    for axis labels; None when the lake has no result of it."""
    if not lake.delta_exists(lake.uri("gold", "fct_assay_results")):
        return None
    a = read_table(lake, "gold", "fct_assay_results", columns=["analyte", "unit"]).df
    units = a.filter(pl.col("analyte") == analyte)["unit"].drop_nulls()
    return str(units.mode().sort()[0]) if units.len() else None


def lake_conditions(lake: Lake, cfg: SoftSensorConfig) -> pl.DataFrame | None:
    """Normal / fault per batch (:func:`ml.batches.batch_conditions`) from ``gold/dim_batches`` and the
    recorded deviations; None when the lake has no ``dim_batches``."""
    if not lake.delta_exists(lake.uri("gold", "dim_batches")):
        return None
    return batch_conditions(read_table(lake, "gold", "dim_batches").df, lake_deviations(lake), cfg.batches)


def train_softsensor_models(
    lake: Lake,
    cfg: SoftSensorConfig,
    *,
    targets: list[str] | None = None,
    do_register: bool = True,
    engine: str = "default",
    spark=None,
    num_workers: int = 2,
    conditions: pl.DataFrame | None = None,
) -> dict[str, tuple[TrainedModel, RegisteredModel | None]]:
    """Train the titer soft sensor and the harvest-CQA models on the latest ``features/softsensor``.

    Fault batches (``cfg.batches``: status, recorded deviations — :func:`lake_conditions` unless
    ``conditions`` is given) are kept out of training and reported separately.

    ``engine="spark"`` (with a SparkSession ``spark``) trains the titer model's boosters with
    ``xgboost.spark`` — same rows, features, split and parameters; the registry row's params
    record ``engine``/``num_workers``. The harvest models (one row per batch) stay single-node.
    """
    if engine not in ("default", "spark"):
        raise ValueError(f"engine must be 'default' or 'spark', got {engine!r}")
    if engine == "spark" and spark is None:
        raise ValueError("engine='spark' needs a SparkSession (spark=...)")
    feats = read_table(lake, *SOFTSENSOR)
    td = {"features/softsensor": feats.version} | _feature_inputs(lake, *SOFTSENSOR, feats.version)
    if conditions is None:
        conditions = lake_conditions(lake, cfg)
    out: dict[str, tuple[TrainedModel, RegisteredModel | None]] = {}
    wanted = targets or ["titer", *cfg.harvest.targets]
    if "titer" in wanted or cfg.titer.target in wanted:
        if engine == "spark":
            from lakehouse.spark.train import spark_booster_fitter

            m = train_titer(
                feats.df, cfg, fit=spark_booster_fitter(spark, num_workers=num_workers), conditions=conditions
            )
            m.params = m.params | {"engine": "spark", "num_workers": int(num_workers)}
        else:
            m = train_titer(feats.df, cfg, conditions=conditions)
        out[m.name] = (m, register(lake, m, td) if do_register else None)
    for t in dict.fromkeys(wanted):
        if t not in ("titer", cfg.titer.target):
            m = train_harvest(feats.df, cfg, t, conditions=conditions)
            out[m.name] = (m, register(lake, m, td) if do_register else None)
    return out


def pdm_skip_reason(lake: Lake, cfg: PdMConfig) -> str | None:
    """Why PdM is skipped for this lake (None: it can run): disabled in the plant's pdm.yaml, the
    gold CMMS / equipment-health marts missing or empty, too few failures or days
    (:func:`ml.train.pdm_data_problem`)."""
    if not cfg.enabled:
        return pdm_data_problem(None, None, cfg)
    missing = [n for n in GOLD_PDM_INPUTS if not lake.delta_exists(lake.uri("gold", n))]
    if missing:
        return f"insufficient data: no {', '.join('gold/' + n for n in missing)} (a plant without CMMS data)"
    health = read_table(lake, "gold", "fct_equipment_health_daily").df
    wos = read_table(lake, "gold", "fct_work_orders").df
    # the mart has no in_repair flag (the feature table adds it): judge rows, failures and days as they are
    return pdm_data_problem(health.with_columns(pl.lit(False).alias("in_repair")) if health.height else None, wos, cfg)


def train_pdm_model(
    lake: Lake, cfg: PdMConfig, *, do_register: bool = True
) -> tuple[TrainedModel, RegisteredModel | None]:
    """Train (and register) the PdM model; :class:`~ml.train.InsufficientData` with the reason when it
    cannot be (see :func:`pdm_skip_reason`)."""
    reason = pdm_skip_reason(lake, cfg)
    if reason:
        raise InsufficientData(reason)
    feats = read_table(lake, *EQUIPMENT)
    wos = read_table(lake, "gold", "fct_work_orders")
    m = train_pdm(feats.df, wos.df, cfg)
    td = {"features/equipment_health": feats.version, "gold/fct_work_orders": wos.version}
    return m, (register(lake, m, td) if do_register else None)


# ----------------------------------------------------------------------------- promotion gate
def holdout(lake: Lake, rec: RegisteredModel, meta: dict) -> tuple[pl.DataFrame, object]:
    """A model version's held-out rows (rebuilt from the feature-table version it was trained on)
    and the baseline predictions/scores aligned with them."""
    if "features/softsensor" in rec.training_data:
        feats = read_table(lake, *SOFTSENSOR, version=rec.training_data["features/softsensor"]).df
        if meta.get("feature_day") is not None:
            return promotion.harvest_holdout(feats, meta)
        return promotion.softsensor_holdout(feats, meta)
    feats = read_table(lake, *EQUIPMENT, version=rec.training_data["features/equipment_health"]).df
    return promotion.pdm_holdout(feats, meta)


def gate(lake: Lake, name: str, version: int | None = None, *, min_improvement: float = 0.0, envelope=None) -> dict:
    """Promotion decision for ``name`` (default: its latest candidate) on the candidate's held-out set,
    concluded by :func:`ml.approvals.conclude` (evidence floor, validated envelope ``envelope``,
    default :func:`ml.envelope.load_envelope`): promoted, awaiting approval or rejected."""
    reg = ModelRegistry(lake)
    rec = reg.get(name, version) if version is not None else reg.latest(name, "candidate")
    if rec is None:
        champ = reg.champion(name)
        return {
            "model_name": name,
            "promoted": False,
            "decision": "no candidate",
            "reason": "no candidate to gate",
            "has_champion_after": champ is not None,
            "champion_version": champ.version if champ else None,
        }
    _, meta, _ = reg.load(name, rec.version)
    rows, base = holdout(lake, rec, meta)
    from ml.approvals import conclude
    from ml.envelope import load_envelope

    d = promotion.decide(reg, name, rec.version, rows, base, min_improvement=min_improvement, record=False)
    return conclude(lake, name, rec.version, d, rows, envelope or load_envelope())


# ----------------------------------------------------------------------------- scoring
def with_input_versions(lake: Lake, scores: pl.DataFrame, table: tuple[str, str], version: int) -> pl.DataFrame:
    """``scores`` with ``input_versions_json``: the feature-table version scored and the gold
    versions it was built from — the data a score row read."""
    inputs = {"/".join(table): int(version)} | _feature_inputs(lake, *table, version)
    return scores.with_columns(pl.lit(json.dumps(inputs, sort_keys=True)).alias("input_versions_json"))


def score_titer_table(lake: Lake, cfg: SoftSensorConfig, *, explain: str = "exact") -> tuple[pl.DataFrame, int]:
    """Score every feature row with the titer champion and write ``scores/titer``; returns the scores and version."""
    reg = ModelRegistry(lake)
    booster, meta, rec = reg.load(cfg.titer.name)
    feats = read_table(lake, *SOFTSENSOR)
    scores = score_softsensor(feats.df, booster, meta, rec, feats.version, explain=explain)
    scores = with_input_versions(lake, scores, SOFTSENSOR, feats.version)
    return scores, write_table(lake, "scores", "titer", scores)


def score_harvest_table(lake: Lake, cfg: SoftSensorConfig, *, explain: str = "exact") -> tuple[pl.DataFrame, int]:
    """Score every batch with each harvest CQA champion and write ``scores/harvest_cqa``; returns the scores and version."""
    reg = ModelRegistry(lake)
    feats = read_table(lake, *SOFTSENSOR)
    models = []
    for t in cfg.harvest.targets:
        name = f"{cfg.harvest.name_prefix}{t}"
        if reg.champion(name) is not None:
            models.append(reg.load(name))
    scores = score_harvest(feats.df, models, cfg.harvest.day, feats.version, explain=explain)
    scores = with_input_versions(lake, scores, SOFTSENSOR, feats.version)
    return scores, write_table(lake, "scores", "harvest_cqa", scores)


def score_pdm_table(lake: Lake, cfg: PdMConfig, *, explain: str = "exact") -> tuple[pl.DataFrame, int]:
    """Score every equipment-day with the PdM champion and write ``scores/pdm``; returns the scores and version."""
    reg = ModelRegistry(lake)
    booster, meta, rec = reg.load(cfg.model.name)
    feats = read_table(lake, *EQUIPMENT)
    scores = score_pdm(feats.df, booster, meta, rec, feats.version, explain=explain)
    scores = with_input_versions(lake, scores, EQUIPMENT, feats.version)
    return scores, write_table(lake, "scores", "pdm", scores)


# ----------------------------------------------------------------------------- verification
def verify_titer(lake: Lake, cfg: SoftSensorConfig) -> dict:
    """Verification of the titer champion: rolling error against arrived titer results and PSI drift."""
    scores = read_table(lake, "scores", "titer").df
    reg = ModelRegistry(lake)
    version = int(scores["model_version"][0])
    _, meta, _ = reg.load(cfg.titer.name, version)
    feats = read_table(lake, *SOFTSENSOR, version=int(scores["feature_table_version"][0])).df
    # only predictions of batches the model did not train on count as verification evidence
    unseen = scores.filter(~pl.col("batch_id").is_in(meta["split"]["train_batches"]) & (pl.col("row_type") == "sample"))
    return verify(unseen, meta, recent_batches(feats, cfg.verification.psi_recent_batches), cfg.verification)


def verify_harvest(lake: Lake, cfg: SoftSensorConfig) -> dict:
    """Verification of the harvest CQA champions: error against arrived harvest assays and PSI drift."""
    scores = read_table(lake, "scores", "harvest_cqa").df
    reg = ModelRegistry(lake)
    out: dict = {"passed": True, "targets": {}}
    if scores.height == 0:
        return out | {"state": "not_evaluated", "reason": "no harvest scores to verify", "failures": []}
    feats = read_table(lake, *SOFTSENSOR, version=int(scores["feature_table_version"][0])).df
    from ml.config import HarvestModelConfig
    from ml.features import build_harvest_dataset

    for name in scores["model_name"].unique().to_list():
        s = scores.filter(pl.col("model_name") == name)
        _, meta, _ = reg.load(name, int(s["model_version"][0]))
        ds = build_harvest_dataset(feats, HarvestModelConfig(targets=(meta["target"],), day=meta["feature_day"]))
        recent = ds.sort("ts").tail(cfg.verification.psi_recent_batches)
        unseen = s.filter(~pl.col("batch_id").is_in(meta["split"]["train_batches"])).rename({"features_ts": "ts"})
        r = verify(unseen, meta, recent, cfg.verification)
        out["targets"][meta["target"]] = r
        out["passed"] = out["passed"] and r["passed"]
    states = [r["state"] for r in out["targets"].values()]
    out["failures"] = [f"{t}: {f}" for t, r in out["targets"].items() for f in r["failures"]]
    out["state"] = "failed" if "failed" in states else ("passed" if "passed" in states else "not_evaluated")
    out["reason"] = "; ".join(f"{t}: {r['reason']}" for t, r in out["targets"].items())
    return out


def verify_pdm(lake: Lake, cfg: PdMConfig, days: int = 30) -> dict:
    """Verification of the PdM champion: PSI drift of the last ``days`` days' inputs."""
    scores = read_table(lake, "scores", "pdm").df
    reg = ModelRegistry(lake)
    _, meta, _ = reg.load(cfg.model.name, int(scores["model_version"][0]))
    feats = read_table(lake, *EQUIPMENT, version=int(scores["feature_table_version"][0])).df
    return verify(scores, meta, recent_days(feats, days), cfg.verification, check_error=False)
