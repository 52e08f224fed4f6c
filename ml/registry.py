"""Model registry in the lake.

* Artifacts: ``models/<name>/<version>-<token>.ubj`` — XGBoost's own UBJSON format
  (``Booster.save_raw("ubj")``), loaded with ``Booster().load_model(bytearray)``; plus
  ``models/<name>/<version>-<token>.meta.json`` (features, split, interval calibration,
  applicability domain, PSI reference — plain JSON). Nothing is ever pickled or unpickled. The
  sha256 of both files is registered with the version and checked on every load: a swapped or
  corrupted file is refused.
* Versions are unique under concurrent registration: the registry row of version N is
  committed together with a Delta app transaction ``registry:<name>`` = N, so two writers that
  both picked N conflict and the loser takes the next number (its files carry a random token,
  so nothing it wrote can replace the winner's).
* Model names are plain identifiers (``lakehouse/identifiers.py``): a name from a YAML file
  never writes outside ``models/``.
* ``registry/models`` (Delta): one row per model version — name, version, artifact URIs, target,
  params/metrics JSON, training-data Delta versions, code version, created_at, status
  (``candidate`` → ``champion`` → ``retired``).
* ``registry/promotions`` (Delta, append-only): every promotion decision with its evidence.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
import xgboost as xgb
from deltalake import CommitProperties, Transaction, write_deltalake

from lakehouse.identifiers import check_identifier
from lakehouse.provenance import code_version
from lakehouse.retry import retrying
from lakehouse.storage import Lake
from ml.domain import dumps

STATUSES = ("candidate", "champion", "retired")

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
    """One registry row: model name, version, status, artifact URI, metrics and training data."""

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


class ModelRegistry:
    """The model registry in the lake: ``registry/models`` and ``registry/promotions`` (Delta),
    boosters under ``models/<name>/<version>.ubj`` (XGBoost's own format, never pickled).
    """

    def __init__(self, lake: Lake):
        self.lake = lake
        self.models_uri = lake.uri("registry", "models")
        self.promotions_uri = lake.uri("registry", "promotions")

    # ------------------------------------------------------------------ read
    def table(self) -> pl.DataFrame:
        """All registered model versions (empty frame when there are none)."""
        if not self.lake.delta_exists(self.models_uri):
            return pl.from_arrow(REGISTRY_SCHEMA.empty_table())
        return pl.from_arrow(self.lake.read_delta(self.models_uri))

    def promotions(self) -> pl.DataFrame:
        """The promotion audit trail (empty frame when there is none)."""
        if not self.lake.delta_exists(self.promotions_uri):
            return pl.from_arrow(PROMOTION_SCHEMA.empty_table())
        return pl.from_arrow(self.lake.read_delta(self.promotions_uri))

    def _row(self, r: dict) -> RegisteredModel:
        return RegisteredModel(
            r["model_name"],
            int(r["version"]),
            r["status"],
            r["artifact_uri"],
            r["meta_uri"],
            json.loads(r["metrics_json"]),
            json.loads(r["params_json"]),
            json.loads(r["training_data_json"]),
            r["code_version"],
            r["created_at"],
            r.get("artifact_sha256"),
            r.get("meta_sha256"),
        )

    def get(self, name: str, version: int) -> RegisteredModel:
        """The registry entry of ``name`` version ``version``."""
        check_identifier(name, "model name")
        t = self.table().filter((pl.col("model_name") == name) & (pl.col("version") == version))
        if t.height == 0:
            raise KeyError(f"model {name} v{version} is not registered")
        return self._row(t.row(0, named=True))

    def champion(self, name: str) -> RegisteredModel | None:
        """The current champion of ``name`` (``None`` when there is none)."""
        t = self.table().filter((pl.col("model_name") == name) & (pl.col("status") == "champion")).sort("version")
        return self._row(t.row(-1, named=True)) if t.height else None

    def latest(self, name: str, status: str | None = None) -> RegisteredModel | None:
        """The newest version of ``name`` (with ``status``, if given), or ``None``."""
        t = self.table().filter(pl.col("model_name") == name)
        if status:
            t = t.filter(pl.col("status") == status)
        t = t.sort("version")
        return self._row(t.row(-1, named=True)) if t.height else None

    def next_version(self, name: str) -> int:
        """The version number the next registration of ``name`` gets."""
        t = self.table().filter(pl.col("model_name") == check_identifier(name, "model name"))
        return int(t["version"].max()) + 1 if t.height else 1

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
        """Load a model version (default: the champion) — UBJ bytes into a fresh Booster, never unpickled."""
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
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        meta = json.loads(meta_raw.decode("utf-8"))
        return booster, meta, rec

    # ------------------------------------------------------------------ write
    def register(
        self,
        name: str,
        booster: xgb.Booster,
        meta: dict,
        *,
        params: dict,
        metrics: dict,
        training_data: dict,
        kind: str,
        target: str,
        status: str = "candidate",
    ) -> RegisteredModel:
        """Store a booster and its metadata as a new ``candidate`` version of ``name``.

        Returns
        -------
        RegisteredModel
        """
        if status not in STATUSES:
            raise ValueError(status)
        check_identifier(name, "model name")
        cv = code_version()

        def attempt() -> RegisteredModel:
            # the number is taken from the snapshot the row is committed against: a concurrent
            # registration of the same number makes this commit conflict (txn registry:<name>)
            table = self._models_table()
            versions = pl.from_arrow(table.to_pyarrow_table(columns=["model_name", "version"])).filter(
                pl.col("model_name") == name
            )["version"]
            version = int(versions.max()) + 1 if len(versions) else 1
            token = secrets.token_hex(4)  # a racer for the same number never overwrites these files
            art = self.lake.uri("models", name, f"{version}-{token}.ubj")
            meta_uri = self.lake.uri("models", name, f"{version}-{token}.meta.json")
            booster.set_attr(model_name=name, model_version=str(version))
            raw = bytes(booster.save_raw(raw_format="ubj"))
            meta_raw = dumps(meta | {"model_name": name, "model_version": version}).encode("utf-8")
            self._write_bytes(art, raw)
            self._write_bytes(meta_uri, meta_raw)
            now = datetime.now(UTC)
            row = {
                "model_name": name,
                "version": version,
                "kind": kind,
                "target": target,
                "artifact_uri": art,
                "meta_uri": meta_uri,
                "params_json": dumps(params),
                "metrics_json": dumps(metrics),
                "training_data_json": dumps(training_data),
                "code_version": cv,
                "created_at": now,
                "status": status,
                "artifact_sha256": hashlib.sha256(raw).hexdigest(),
                "meta_sha256": hashlib.sha256(meta_raw).hexdigest(),
            }
            write_deltalake(
                table,
                pa.Table.from_pylist([row], schema=REGISTRY_SCHEMA),
                mode="append",
                schema_mode="merge",
                commit_properties=CommitProperties(
                    app_transactions=[Transaction(f"registry:{name}", version, int(now.timestamp() * 1000))],
                    custom_metadata={"lakehouse.operation": "register", "lakehouse.code_version": cv},
                ),
            )
            return RegisteredModel(
                name,
                version,
                status,
                art,
                meta_uri,
                metrics,
                params,
                training_data,
                cv,
                now,
                row["artifact_sha256"],
                row["meta_sha256"],
            )

        return retrying(attempt, f"register model {name}")

    def _models_table(self):
        """The registry table (created empty on first use; a concurrent creator is fine)."""
        from deltalake import DeltaTable

        opts = self.lake.delta_storage_options()
        if not self.lake.delta_exists(self.models_uri):
            try:
                DeltaTable.create(self.models_uri, REGISTRY_SCHEMA, mode="ignore", storage_options=opts)
            except Exception:
                if not self.lake.delta_exists(self.models_uri):
                    raise
        return DeltaTable(self.models_uri, storage_options=opts)

    def set_status(self, name: str, version: int, status: str) -> None:
        """Set the status (candidate, champion, retired, rejected) of one version."""
        if status not in STATUSES:
            raise ValueError(status)
        dt = self.lake.delta_table(self.models_uri)
        dt.update(
            new_values={"status": status}, predicate=f"model_name = '{_sql_str(name)}' AND version = {int(version)}"
        )

    def promote(self, name: str, version: int) -> None:
        """Make ``version`` the champion; the previous champion is retired."""
        old = self.champion(name)
        if old is not None and old.version != version:
            self.set_status(name, old.version, "retired")
        self.set_status(name, version, "champion")

    def record_promotion(self, row: dict) -> None:
        """Append one promotion decision to ``registry/promotions``."""
        row = {k: row.get(k) for k in PROMOTION_SCHEMA.names}
        row["decided_at"] = row["decided_at"] or datetime.now(UTC)
        self.lake.write_delta(self.promotions_uri, pa.Table.from_pylist([row], schema=PROMOTION_SCHEMA), mode="append")


def _sql_str(s: str) -> str:
    return s.replace("'", "''")
