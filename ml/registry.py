"""Model registry: MLflow's model registry, with the model files also in the lake.

* **MLflow is the source of truth** (:mod:`ml.mlflow_store`: a SQLite file in the lake by
  default, any MLflow server by ``MLFLOW_TRACKING_URI``). One registered model per model name,
  one MLflow experiment per name; every registration is an MLflow run (params, CV/test metrics,
  baselines, training-data Delta versions, git SHA, feature list, who trained it) whose model
  is logged with the ``xgboost`` flavour in UBJ (``model_format="ubj"``, never pickle) and
  registered as a model version. The champion is the alias ``champion``; the other states
  (``candidate``, ``awaiting_approval``, ``rejected``, ``retired``) are the version tag
  ``lakehouse.status``. An ML user opens the champion with
  ``mlflow.xgboost.load_model("models:/titer_softsensor@champion")``.
* The pipeline loads the lake's own copy: ``models/<name>/<version>-<token>.ubj``
  (``Booster.save_raw("ubj")``) and ``.meta.json`` (features, split, interval calibration,
  applicability domain, PSI reference). Both are referenced **relative to the lake root**
  (a moved lake still loads) and their sha256 is registered with the version and checked on
  every load: a swapped or corrupted file is refused. Non-XGBoost models (a JSON document)
  are stored the same way as ``.json`` and logged to MLflow as a plain artifact.
* Versions are MLflow's: unique under concurrent registration (the version row is inserted in
  one transaction, MLflow retries a clash). The version is reserved first; a registration
  that dies before its files are written never gets a ``lakehouse.status`` and is ignored.
* ``registry/models`` (Delta) is a **view** of MLflow's registry, rewritten after every change
  (for SQL/BI users); nothing reads it back. ``registry/promotions`` (Delta, append-only) keeps
  every gate decision with its evidence; promotions and demotions also go to the audit trail.
* Model names are plain identifiers (``lakehouse/identifiers.py``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import xgboost as xgb

from lakehouse.identifiers import check_identifier
from lakehouse.provenance import code_version
from lakehouse.retry import retrying
from lakehouse.storage import Lake
from ml import mlflow_store
from ml.domain import dumps

STATUSES = ("candidate", "awaiting_approval", "champion", "rejected", "retired")
CHAMPION_ALIAS = "champion"
TAG = "lakehouse."  # prefix of the model-version tags this registry writes

REGISTRY_SCHEMA = pa.schema(
    [
        ("model_name", pa.string()),
        ("version", pa.int64()),
        ("kind", pa.string()),
        ("target", pa.string()),
        ("artifact_uri", pa.string()),
        ("meta_uri", pa.string()),
        ("params_json", pa.string()),
        ("metrics_json", pa.string()),
        ("training_data_json", pa.string()),
        ("code_version", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("status", pa.string()),
        ("artifact_sha256", pa.string()),
        ("meta_sha256", pa.string()),
        ("model_uri", pa.string()),
        ("trained_by", pa.string()),
        ("mlflow_run_id", pa.string()),
    ]
)

PROMOTION_SCHEMA = pa.schema(
    [
        ("model_name", pa.string()),
        ("candidate_version", pa.int64()),
        ("champion_version", pa.int64()),
        ("decision", pa.string()),
        ("promoted", pa.bool_()),
        ("metric", pa.string()),
        ("candidate_value", pa.float64()),
        ("champion_value", pa.float64()),
        ("baseline_value", pa.float64()),
        ("n_eval_rows", pa.int64()),
        ("evidence_json", pa.string()),
        ("decided_at", pa.timestamp("us", tz="UTC")),
    ]
)


class ModelIntegrityError(RuntimeError):
    """A model file does not match the sha256 registered with its version."""


@dataclass(frozen=True)
class RegisteredModel:
    """One registered model version.

    ``artifact_uri``/``meta_uri`` are resolved against the lake's current root;
    ``artifact_path``/``meta_path`` are what is stored (relative to the lake root).
    ``model_uri`` is MLflow's ``models:/<name>/<version>``."""

    name: str
    version: int
    status: str
    artifact_uri: str
    meta_uri: str
    metrics: dict
    params: dict
    training_data: dict
    code_version: str
    created_at: datetime
    artifact_sha256: str | None = None
    meta_sha256: str | None = None
    kind: str = ""
    target: str = ""
    artifact_path: str = ""
    meta_path: str = ""
    trained_by: str = ""
    run_id: str = ""
    model_format: str = "ubj"

    @property
    def model_uri(self) -> str:
        """MLflow's URI of this version (``models:/<name>/<version>``)."""
        return f"models:/{self.name}/{self.version}"


class ModelRegistry:
    """The model registry of a lake: MLflow's registry (see the module docstring), the model
    files under ``models/<name>/`` (XGBoost UBJ, never pickled), ``registry/models`` as a Delta
    view of it and ``registry/promotions`` with the gate decisions.

    Parameters
    ----------
    lake : Lake
        The lake (its ``mlflow_tracking_uri``, else a SQLite file in it).
    """

    def __init__(self, lake: Lake):
        self.lake = lake
        self.models_uri = lake.uri("registry", "models")
        self.promotions_uri = lake.uri("registry", "promotions")
        self._client = None

    @property
    def client(self):
        """The ``mlflow.MlflowClient`` of this registry (created on first use)."""
        if self._client is None:
            self._client = mlflow_store.client(self.lake)
        return self._client

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking/registry URI."""
        return mlflow_store.tracking_uri(self.lake)

    # ------------------------------------------------------------------ read
    def _versions(self, name: str | None = None) -> list:
        """Complete MLflow model versions (of ``name``, or of every model)."""
        out, token = [], None
        flt = f"name = '{_sql_str(name)}'" if name else None
        while True:
            page = self.client.search_model_versions(flt, max_results=1000, page_token=token)
            out += [mv for mv in page if f"{TAG}status" in (mv.tags or {})]
            token = page.token
            if not token:
                return out

    def _champions(self) -> dict[str, int]:
        """Model name -> version holding the alias ``champion``."""
        out, token = {}, None
        while True:
            page = self.client.search_registered_models(max_results=1000, page_token=token)
            for rm in page:
                if CHAMPION_ALIAS in (rm.aliases or {}):
                    out[rm.name] = int(rm.aliases[CHAMPION_ALIAS])
            token = page.token
            if not token:
                return out

    def _record(self, mv, champions: dict[str, int] | None = None) -> RegisteredModel:
        t = mv.tags
        status = t[f"{TAG}status"]
        is_champion = (
            champions.get(mv.name) == int(mv.version) if champions is not None else CHAMPION_ALIAS in (mv.aliases or [])
        )
        if is_champion:
            status = "champion"
        elif status == "champion":  # the alias moved on: the tag is history
            status = "retired"
        art, meta = t.get(f"{TAG}artifact", ""), t.get(f"{TAG}meta", "")
        return RegisteredModel(
            mv.name,
            int(mv.version),
            status,
            self.lake.uri(art),
            self.lake.uri(meta),
            json.loads(t.get(f"{TAG}metrics", "{}")),
            json.loads(t.get(f"{TAG}params", "{}")),
            json.loads(t.get(f"{TAG}training_data", "{}")),
            t.get(f"{TAG}code_version", ""),
            datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
            t.get(f"{TAG}artifact_sha256"),
            t.get(f"{TAG}meta_sha256"),
            t.get(f"{TAG}kind", ""),
            t.get(f"{TAG}target", ""),
            art,
            meta,
            t.get(f"{TAG}trained_by", ""),
            mv.run_id or "",
            t.get(f"{TAG}format", "ubj"),
        )

    def records(self, name: str | None = None) -> list[RegisteredModel]:
        """Every complete registered version (of ``name``), oldest first."""
        champions = self._champions()
        return sorted((self._record(mv, champions) for mv in self._versions(name)), key=lambda r: (r.name, r.version))

    def table(self) -> pl.DataFrame:
        """All registered model versions, from MLflow (empty frame when there are none)."""
        rows = [_view_row(r) for r in self.records()]
        return pl.from_arrow(pa.Table.from_pylist(rows, schema=REGISTRY_SCHEMA))

    def promotions(self) -> pl.DataFrame:
        """The promotion decisions (empty frame when there are none)."""
        if not self.lake.delta_exists(self.promotions_uri):
            return pl.from_arrow(PROMOTION_SCHEMA.empty_table())
        return pl.from_arrow(self.lake.read_delta(self.promotions_uri))

    def get(self, name: str, version: int) -> RegisteredModel:
        """The registry entry of ``name`` version ``version``."""
        from mlflow.exceptions import MlflowException

        check_identifier(name, "model name")
        try:
            mv = self.client.get_model_version(name, str(int(version)))
        except MlflowException as exc:
            raise KeyError(f"model {name} v{version} is not registered") from exc
        if f"{TAG}status" not in (mv.tags or {}):
            raise KeyError(f"model {name} v{version} is not registered (its registration did not complete)")
        rm = self.client.get_registered_model(name)
        champ = (rm.aliases or {}).get(CHAMPION_ALIAS)
        return self._record(mv, {name: int(champ)} if champ is not None else {})

    def champion(self, name: str) -> RegisteredModel | None:
        """The current champion of ``name`` (alias ``champion``; ``None`` when there is none)."""
        from mlflow.exceptions import MlflowException

        check_identifier(name, "model name")
        try:
            mv = self.client.get_model_version_by_alias(name, CHAMPION_ALIAS)
        except MlflowException:
            return None
        return self._record(mv)

    def latest(self, name: str, status: str | None = None) -> RegisteredModel | None:
        """The newest version of ``name`` (with ``status``, if given), or ``None``."""
        recs = [r for r in self.records(check_identifier(name, "model name")) if not status or r.status == status]
        return recs[-1] if recs else None

    def next_version(self, name: str) -> int:
        """The version number the next registration of ``name`` gets (if no one else registers first)."""
        from mlflow.exceptions import MlflowException

        try:
            mvs = self.client.search_model_versions(f"name = '{_sql_str(check_identifier(name, 'model name'))}'")
        except MlflowException:
            return 1
        return max((int(mv.version) for mv in mvs), default=0) + 1

    # ------------------------------------------------------------------ artifacts
    def _write_bytes(self, uri: str, data: bytes) -> None:
        fs = self.lake.filesystem()
        path = self.lake.fs_path(uri)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(path, "wb") as fh:
            fh.write(data)

    def _read_bytes(self, uri: str) -> bytes:
        fs = self.lake.filesystem()
        with fs.open(self.lake.fs_path(uri), "rb") as fh:
            return fh.read()

    def load(self, name: str, version: int | None = None) -> tuple[xgb.Booster, dict, RegisteredModel]:
        """Load a model version (default: the champion) from the lake — UBJ bytes into a fresh
        Booster (a JSON model: its document as a dict), never unpickled; sha256-checked."""
        rec = self.get(name, version) if version is not None else self.champion(name)
        if rec is None:
            raise KeyError(f"no champion for model {name!r}")
        raw = self._read_bytes(rec.artifact_uri)
        meta_raw = self._read_bytes(rec.meta_uri)
        for what, data, expected in (("model file", raw, rec.artifact_sha256), ("metadata", meta_raw, rec.meta_sha256)):
            if expected and hashlib.sha256(data).hexdigest() != expected:
                raise ModelIntegrityError(
                    f"{what} of model {rec.name} v{rec.version} does not match its registered sha256 "
                    f"(swapped or corrupted): refusing to load it"
                )
        meta = json.loads(meta_raw.decode("utf-8"))
        if rec.model_format == "json":
            return json.loads(raw.decode("utf-8")), meta, rec
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        return booster, meta, rec

    # ------------------------------------------------------------------ write
    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        exp_name = f"lakehouse/{name}"
        exp = self.client.get_experiment_by_name(exp_name)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.client.create_experiment(
                exp_name, artifact_location=f"{mlflow_store.artifact_root(self.lake)}/{name}"
            )
        except MlflowException:  # a concurrent registration created it
            return self.client.get_experiment_by_name(exp_name).experiment_id

    def _ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(name, tags={f"{TAG}managed": "true"})
            except MlflowException:
                self.client.get_registered_model(name)  # created concurrently: fine

    def register(
        self,
        name: str,
        booster: xgb.Booster | dict,
        meta: dict,
        *,
        params: dict,
        metrics: dict,
        training_data: dict,
        kind: str,
        target: str,
        status: str = "candidate",
    ) -> RegisteredModel:
        """Register a model as a new version of ``name`` (default status ``candidate``).

        Parameters
        ----------
        booster : xgboost.Booster or dict
            The model: a Booster (logged with MLflow's xgboost flavour, UBJ) or a JSON document
            (a non-XGBoost model, e.g. ridge coefficients; logged as ``model/model.json``).
        meta : dict
            Features, split, calibration, domain … (stored as ``.meta.json``).
        params, metrics, training_data : dict
            Logged to the MLflow run (params, flattened numeric metrics, ``training_data.json``)
            and kept with the version.

        Returns
        -------
        RegisteredModel
        """
        from lakehouse.audit import current_identity

        if status not in STATUSES:
            raise ValueError(status)
        check_identifier(name, "model name")
        cv = code_version()
        who = current_identity()
        is_xgb = isinstance(booster, xgb.Booster)
        fmt = "ubj" if is_xgb else "json"
        features = list(meta.get("features") or [])

        def attempt() -> RegisteredModel:
            client = self.client
            self._ensure_registered_model(name)
            run = client.create_run(
                self._experiment_id(name),
                run_name=f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}",
                tags={
                    "mlflow.source.git.commit": cv,
                    "mlflow.user": who,
                    f"{TAG}kind": kind,
                    f"{TAG}target": target,
                    f"{TAG}features": json.dumps(features)[:7900],
                    f"{TAG}training_data": json.dumps(training_data, sort_keys=True)[:7900],
                },
            )
            run_id = run.info.run_id
            model_src = f"{run.info.artifact_uri}/model"
            # the version number is reserved first (MLflow's transaction keeps it unique); the
            # files carry it, and the version only counts once its status tag is set (last)
            mv = client.create_model_version(name, model_src, run_id=run_id)
            version = int(mv.version)
            token = secrets.token_hex(4)
            rel_art = f"models/{name}/{version}-{token}.{fmt}"
            rel_meta = f"models/{name}/{version}-{token}.meta.json"
            if is_xgb:
                booster.set_attr(model_name=name, model_version=str(version))
                raw = bytes(booster.save_raw(raw_format="ubj"))
            else:
                raw = dumps(booster).encode("utf-8")
            meta_raw = dumps(meta | {"model_name": name, "model_version": version}).encode("utf-8")
            self._write_bytes(self.lake.uri(rel_art), raw)
            self._write_bytes(self.lake.uri(rel_meta), meta_raw)
            self._log_run(
                run_id, run.info.artifact_uri, booster if is_xgb else raw, meta_raw, params, metrics, training_data
            )
            tags = {
                "kind": kind,
                "target": target,
                "format": fmt,
                "artifact": rel_art,
                "meta": rel_meta,
                "artifact_sha256": hashlib.sha256(raw).hexdigest(),
                "meta_sha256": hashlib.sha256(meta_raw).hexdigest(),
                "code_version": cv,
                "trained_by": who,
                "params": dumps(params),
                "metrics": dumps(metrics),
                "training_data": dumps(training_data),
                "status": status,  # last: from here on the version exists for the lakehouse
            }
            for k, v in tags.items():
                client.set_model_version_tag(name, str(version), f"{TAG}{k}", v)
            client.set_terminated(run_id)
            return self.get(name, version)

        rec = retrying(attempt, f"register model {name}", retry_if=_is_sqlite_busy)
        self.sync_view()
        return rec

    def _log_run(self, run_id, artifact_uri, model, meta_raw, params, metrics, training_data) -> None:
        """Params, flattened metrics and the artifacts (model in the xgboost flavour, metadata) of a run."""
        from mlflow.entities import Metric, Param

        now = int(datetime.now(UTC).timestamp() * 1000)
        flat_params = {k: str(v)[:500] for k, v in _flatten(params).items()}
        flat_metrics = {
            k: float(v)
            for k, v in _flatten(metrics).items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")
        }
        self.client.log_batch(
            run_id,
            metrics=[Metric(k[:250], v, now, 0) for k, v in list(flat_metrics.items())[:900]],
            params=[Param(k[:250], v) for k, v in list(flat_params.items())[:100]],
        )
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = Path(tmp, "model")
            if isinstance(model, xgb.Booster):
                import mlflow.xgboost

                mlflow.xgboost.save_model(
                    model, str(model_dir), model_format="ubj", pip_requirements=[f"xgboost=={xgb.__version__}"]
                )
            else:
                model_dir.mkdir()
                model_dir.joinpath("model.json").write_bytes(model)
            lh = Path(tmp, "lakehouse")
            lh.mkdir()
            lh.joinpath("meta.json").write_bytes(meta_raw)
            lh.joinpath("metrics.json").write_text(dumps(metrics))
            lh.joinpath("params.json").write_text(dumps(params))
            lh.joinpath("training_data.json").write_text(dumps(training_data))
            self._upload(Path(tmp), artifact_uri)

    def _upload(self, local: Path, artifact_uri: str) -> None:
        """Copy a local folder to a run's artifact location through the lake's filesystem."""
        base = mlflow_store.local_path(artifact_uri)
        for f in sorted(p for p in local.rglob("*") if p.is_file()):
            self._write_bytes(f"{base}/{f.relative_to(local).as_posix()}", f.read_bytes())

    def set_status(self, name: str, version: int, status: str) -> None:
        """Set the status of one version (``champion`` also moves the alias)."""
        if status not in STATUSES:
            raise ValueError(status)
        v = str(int(version))
        self.client.set_model_version_tag(name, v, f"{TAG}status", status)
        if status == "champion":
            self.client.set_registered_model_alias(name, CHAMPION_ALIAS, v)
        elif (champ := self.champion(name)) is not None and champ.version == int(version):
            self.client.delete_registered_model_alias(name, CHAMPION_ALIAS)
        self.sync_view()

    def promote(self, name: str, version: int, *, evidence: dict | None = None, actor: str | None = None) -> None:
        """Make ``version`` the champion (alias ``champion``); the previous champion is retired.
        Recorded in the audit trail (``promotion``) with ``evidence``."""
        from lakehouse.audit import AuditLog

        old = self.champion(name)
        if old is not None and old.version != version:
            self.client.set_model_version_tag(name, str(old.version), f"{TAG}status", "retired")
        self.set_status(name, version, "champion")
        AuditLog(self.lake).append(
            "promotion",
            f"model:{name}:{int(version)}",
            {"previous_champion": old.version if old else None, "model_uri": f"models:/{name}/{int(version)}"}
            | (evidence or {}),
            actor=actor or "system:promotion-gate",
        )

    def demote(self, name: str, version: int, reason: str, *, evidence: dict | None = None) -> None:
        """Take ``version`` out of service (status ``retired``, alias removed), through the audit trail."""
        from lakehouse.audit import AuditLog

        self.set_status(name, version, "retired")
        AuditLog(self.lake).append(
            "demotion",
            f"model:{name}:{int(version)}",
            {"reason": reason} | (evidence or {}),
            actor="system:verification",
        )

    def record_promotion(self, row: dict) -> None:
        """Append one promotion decision to ``registry/promotions``."""
        row = {k: row.get(k) for k in PROMOTION_SCHEMA.names}
        row["decided_at"] = row["decided_at"] or datetime.now(UTC)
        self.lake.write_delta(self.promotions_uri, pa.Table.from_pylist([row], schema=PROMOTION_SCHEMA), mode="append")

    def sync_view(self) -> None:
        """Rewrite ``registry/models`` (Delta) from MLflow's registry: a view for SQL users."""

        def attempt() -> None:
            data = pa.Table.from_pylist([_view_row(r) for r in self.records()], schema=REGISTRY_SCHEMA)
            self.lake.write_delta(
                self.models_uri,
                data,
                mode="overwrite",
                schema_mode="overwrite",
                commit_properties=_commit_props({"lakehouse.operation": "registry-view", "lakehouse.source": "mlflow"}),
            )

        retrying(attempt, "refresh registry/models from MLflow")


def _commit_props(meta: dict):
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata=meta)


def _view_row(r: RegisteredModel) -> dict:
    return {
        "model_name": r.name,
        "version": r.version,
        "kind": r.kind,
        "target": r.target,
        "artifact_uri": r.artifact_path,
        "meta_uri": r.meta_path,
        "params_json": dumps(r.params),
        "metrics_json": dumps(r.metrics),
        "training_data_json": dumps(r.training_data),
        "code_version": r.code_version,
        "created_at": r.created_at,
        "status": r.status,
        "artifact_sha256": r.artifact_sha256,
        "meta_sha256": r.meta_sha256,
        "model_uri": r.model_uri,
        "trained_by": r.trained_by,
        "mlflow_run_id": r.run_id,
    }


def _flatten(d, prefix: str = "") -> dict:
    out: dict = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out |= _flatten(v, f"{prefix}{k}.")
    elif not isinstance(d, list):
        out[prefix.rstrip(".")] = d
    return out


def _is_sqlite_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


def _sql_str(s: str) -> str:
    return s.replace("'", "''")
