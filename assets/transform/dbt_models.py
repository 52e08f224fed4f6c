"""The dbt project as Dagster assets (dagster-dbt).

Every dbt model is an asset keyed by its model name (``["fct_process_readings"]``), group
``dbt``; the dbt sources map to the bronze assets ``["bronze", table]`` through
``meta.dagster.asset_key`` in the source YAML, so each staging model sits downstream of its
bronze table. dbt data tests attached to a model become Dagster asset checks.

Nothing happens at import: :func:`dbt_project` is the cached ``DbtProject``, and
:func:`build_dbt_assets` prepares its manifest on first use (``dbt parse`` when it is missing
or older than the project files — a fresh clone needs no committed manifest — and on every
load under ``dagster dev``, like ``DbtProject.prepare_if_dev``), once per process, then defines
the ``@dbt_assets`` (which need the manifest at definition time).
"""

import functools
import hashlib
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._utils import run_with_concurrent_update_guard
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.dbt_project import using_dagster_dev

from assets.resources import LakeResource, SparkResource
from lakehouse.warehouse import (
    DBT_PROJECT_DIR,
    dbt_env,
    missing_bronze_tables,
    needs_full_refresh,
    patched_environ,
    plant_model_code,
    record_build,
)


def _dbt_executable() -> str:
    """The dbt next to this interpreter (a venv that is not activated), else the one on PATH."""
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else (shutil.which("dbt") or "dbt")


@functools.cache
def dbt_project() -> DbtProject:
    """The project's ``DbtProject`` (cached; its manifest is prepared by :func:`prepare_manifest`)."""
    return DbtProject(project_dir=DBT_PROJECT_DIR)


_PROJECT_INPUTS = ("models", "macros", "tests", "plugins", "dbt_project.yml", "profiles.yml")


def _manifest_is_stale(project: DbtProject) -> bool:
    manifest = Path(project.manifest_path)
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    for name in _PROJECT_INPUTS:
        path = Path(project.project_dir, name)
        files = [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file())
        if any(f.stat().st_mtime > built for f in files):
            return True
    return False


def prepare_manifest(project: DbtProject | None = None) -> Path:
    """Run ``dbt parse`` if the manifest is missing or stale (always under ``dagster dev``)."""
    project = project or dbt_project()
    if using_dagster_dev() or _manifest_is_stale(project):

        def parse(project: DbtProject) -> None:
            with patched_environ({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}):
                DbtCliResource(project_dir=project, dbt_executable=_dbt_executable()).cli(
                    ["parse", "--quiet"], target_path=project.target_path
                ).wait()

        # processes importing this module at the same time parse once, not over each other
        Path(project.manifest_path).parent.mkdir(parents=True, exist_ok=True)
        run_with_concurrent_update_guard(Path(project.manifest_path), parse, guard_timeout_seconds=600, project=project)
    return Path(project.manifest_path)


@functools.cache
def prepared_manifest() -> Path:
    """The manifest, prepared once per process (:func:`prepare_manifest`)."""
    return prepare_manifest(dbt_project())


class LakehouseDbtTranslator(DagsterDbtTranslator):
    """Models keyed by their bare model name (not schema-prefixed), all in group ``dbt``."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "dbt"


TRANSLATOR = LakehouseDbtTranslator()


def dbt_cli_resource() -> DbtCliResource:
    """The ``dbt`` resource for ``orchestration/definitions.py``."""
    return DbtCliResource(project_dir=dbt_project(), dbt_executable=_dbt_executable())


def run_target_path(lake_root: str, warehouse: Path) -> Path:
    """A stable dbt target folder per (lake, warehouse): successive runs against the same lake
    reuse dbt's partial parse (a fresh folder per run would re-parse the whole project)."""
    digest = hashlib.sha1(f"{lake_root}|{warehouse}".encode()).hexdigest()[:12]
    return Path(DBT_PROJECT_DIR, "target", "runs", digest)


# The alignment of the historian to the grid and everything downstream of it: a dbt build of
# its own, so that with the Spark engine the Spark alignment runs between the two builds.
ALIGNED_SELECTION = "int_process_readings__aligned+"
ALIGNED_MODEL_KEY = dg.AssetKey(["int_process_readings__aligned"])


def _build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    lake: LakeResource,
    extra_env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
):
    """``dbt build`` of the context's selection against the lake, streamed as Dagster events."""
    the_lake = lake.get_lake()
    plant = lake.get_plant()  # its signal catalog, grid, phase signal: the aligned models' shape
    warehouse = lake.get_warehouse_path()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    missing = missing_bronze_tables(the_lake)
    if missing:
        from assets.ingest import IMPORT_ONLY_TABLES

        # tables only a plant's own import writes (deviations) are absent on the twin: not news
        expected = [t for t in missing if t in IMPORT_ONLY_TABLES]
        unexpected = [t for t in missing if t not in IMPORT_ONLY_TABLES]
        if unexpected:
            context.log.warning(f"bronze tables not in the lake yet, read as empty: {unexpected}")
        if expected:
            context.log.info(f"bronze tables only a plant import writes, read as empty: {expected}")
    step = context.op_def.name
    args = list(extra_args or [])
    code = plant_model_code(Path(dbt_project().manifest_path), plant)
    reason = needs_full_refresh(warehouse, step, the_lake.root, code)
    if reason:
        # expected on a first build or after a lake switch: information, not an alarm
        context.log.info(f"{warehouse}: {reason}: dbt build --full-refresh from {the_lake.root}")
        args.append("--full-refresh")
    env = {**dbt_env(the_lake, warehouse, missing, plant), "LAKEHOUSE_ALIGNMENT_ENGINE": "duckdb", **(extra_env or {})}
    with patched_environ(env):
        invocation = dbt.cli(
            ["build", *args],
            context=context,  # the subprocess starts here
            target_path=run_target_path(the_lake.root, warehouse),
        )
    yield from invocation.stream()
    if set(context.selected_asset_keys) == set(context.assets_def.keys):  # every model of the step built
        record_build(warehouse, step, the_lake.root, code)


@functools.cache
def build_dbt_assets() -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """``dbt_process_model`` and ``dbt_aligned_readings`` (the manifest is prepared first; cached)."""
    project = dbt_project()
    manifest = prepared_manifest()

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=TRANSLATOR,
        name="dbt_process_model",
        exclude=ALIGNED_SELECTION,
    )
    def dbt_process_model(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource):
        """``dbt build`` of the process data model (all but the aligned readings) against the lake
        of the ``lake`` resource.

        The lake root, the S3 endpoint/credentials, the DuckDB file and the bronze tables that do
        not exist yet reach dbt as environment variables of the dbt subprocess (profiles.yml and
        the source YAML read them with ``env_var()``); nothing secret appears in the dbt args.
        """
        yield from _build(context, dbt, lake)

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=TRANSLATOR,
        name="dbt_aligned_readings",
        select=ALIGNED_SELECTION,
    )
    def dbt_aligned_readings(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource, spark: SparkResource
    ):
        """The historian aligned to the grid per batch (``int_process_readings__aligned``) and its
        downstream models (as-of assays, ``fct_process_readings``), with the engine switch.

        ``engine="default"``: dbt-duckdb aligns (incremental SQL). ``engine="spark"``: Spark
        brings ``silver/process_readings_aligned`` up to date from bronze (only batches with new
        inputs, one Delta commit), then dbt copies the new batches from it; the rows are the same
        (tests/spark/test_alignment_engine_switch.py).
        """
        the_lake = lake.get_lake()
        extra: dict[str, str] = {}
        args: list[str] = []
        info: dict[str, object] = {"engine": spark.engine}
        if spark.is_spark and ALIGNED_MODEL_KEY in context.selected_asset_keys:
            from lakehouse.spark.aligned_table import refresh_aligned_readings

            refresh = refresh_aligned_readings(
                the_lake,
                spark.get_session(),
                plant=lake.get_plant(),  # its catalog, grid, state and phase signals
                use_delta_spark_jars=spark.use_delta_spark_jars,
            )
            context.log.info(
                f"Spark alignment: {refresh.mode}, {len(refresh.batches_rebuilt)} of "
                f"{refresh.batches_total} batches rebuilt, {refresh.rows_written} rows, "
                f"{refresh.uri} version {refresh.version}"
            )
            extra["LAKEHOUSE_ALIGNMENT_ENGINE"] = "spark"
            # the model's unit tests exercise its DuckDB SQL on mock inputs, not the Spark copy
            args = ["--exclude", "test_type:unit,int_process_readings__aligned"]
            info.update(
                {
                    "spark_table": dg.MetadataValue.path(refresh.uri),
                    "spark_table_version": refresh.version,
                    "spark_refresh_mode": refresh.mode,
                    "spark_batches_rebuilt": len(refresh.batches_rebuilt),
                    "spark_rows_written": refresh.rows_written,
                }
            )
        for event in _build(context, dbt, lake, extra, args):
            if _is_aligned_model(event):
                event = event.with_metadata({**(event.metadata or {}), **info})
            yield event

    return dbt_process_model, dbt_aligned_readings


def _is_aligned_model(event) -> bool:
    """The materialization event of ``int_process_readings__aligned`` (an Output named after the key)."""
    if isinstance(event, dg.Output):
        return event.output_name == ALIGNED_MODEL_KEY.to_python_identifier()
    return isinstance(event, dg.AssetMaterialization) and event.asset_key == ALIGNED_MODEL_KEY
