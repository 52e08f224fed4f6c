"""dbt build inside a real Dagster materialization, on local disk and on the S3 server:
alignment coverage, genealogy, as-of joins, deduplication, incremental days, gold read-back."""

from __future__ import annotations

import datetime as dt
import itertools

import bronze_fixture as bf
import duckdb
import polars as pl
import pytest
from transform_helpers import FIRST_DAY, N_DAYS, PLANT, materialize_transform

LATE_SYSTEMS = ("filtration_runs", "filtration_curves", "cmms_work_orders")


def _failures(result) -> list[str]:
    out = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    for e in result.all_events:
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed:
            ev = e.event_specific_data
            out.append(f"check failed: {ev.asset_key.to_user_string()}::{ev.check_name}")
    return out


def _checks(result) -> list:
    return [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]


def _write_bronze(lake, days: range, skip: tuple[str, ...] = ()) -> None:
    """Append the plant exports of the given day offsets, one commit per table per day."""
    for i in days:
        for name, table in bf.day_tables(PLANT, FIRST_DAY + dt.timedelta(days=i)).items():
            if name in skip:
                continue
            kwargs = {"partition_by": ["date"]} if name == "historian_readings" else {}
            lake.write_delta(lake.uri("bronze", name), table, mode="append", **kwargs)


def _warehouse(path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone='UTC'")
    return con


def _data_end(n_days: int) -> dt.datetime:
    return dt.datetime.combine(FIRST_DAY + dt.timedelta(days=n_days), dt.time(), tzinfo=dt.UTC)


def _assert_alignment_asof_genealogy(
    con: duckdb.DuckDBPyConnection,
    data_end: dt.datetime,
    dsp_lag: dt.timedelta = dt.timedelta(days=2),
    min_batches: int = 3,
) -> None:
    """Contract properties that hold for any plant data (fixture or twin)."""
    grid = dt.timedelta(minutes=1)
    # --- every aligned batch covers inoculation..harvest on the 1-minute grid, no duplicates
    windows = con.execute("""
        select batch_id, inoculation_ts, harvest_ts from marts.dim_batches
        where inoculation_ts is not null and harvest_ts is not null order by batch_id""").fetchall()
    assert len(windows) >= min_batches
    for batch_id, inoc, harvest in windows:
        rows = con.execute(
            "select ts from marts.fct_process_readings where batch_id = ? order by ts", [batch_id]
        ).fetchall()
        ts = [r[0] for r in rows]
        first = inoc.replace(second=0, microsecond=0)
        expected_n = int((harvest - first) / grid) + 1
        assert ts[0] == first, batch_id
        assert ts[-1] <= harvest < ts[-1] + grid, batch_id
        assert len(ts) == len(set(ts)) == expected_n, batch_id
        assert all(b - a == grid for a, b in itertools.pairwise(ts)), batch_id
    # phase = the MES phase whose [start_ts, end_ts) contains the grid ts (range join as reference)
    wrong_phase = con.execute("""
        select count(*) from marts.fct_process_readings r
        left join marts.fct_batch_phases p
          on p.batch_id = r.batch_id and p.start_ts <= r.ts and r.ts < p.end_ts
        where r.phase is distinct from p.phase""").fetchone()[0]
    assert wrong_phase == 0
    assert con.execute("select count(distinct phase) from marts.fct_process_readings").fetchone()[0] >= 4

    # --- every harvested batch whose downstream had time to happen reaches a UF/DF (DS) lot
    harvested = [
        r[0]
        for r in con.execute(
            "select batch_id from marts.dim_batches where harvest_ts is not null and harvest_ts < ?",
            [data_end - dsp_lag],
        ).fetchall()
    ]
    assert harvested
    with_ds = {
        r[0]
        for r in con.execute("""
        select batch_id from marts.fct_lot_genealogy
        where ds_lot is not null and capture_lot is not null and harvest_lot is not null""").fetchall()
    }
    assert set(harvested) <= with_ds, set(harvested) - with_ds

    # --- as-of joined assays never look into the future, and do show up once released
    cols = [r[0] for r in con.execute("describe intermediate.int_process_readings__assays_asof").fetchall()]
    analytes = [c[: -len("_result_time")] for c in cols if c.endswith("_result_time")]
    assert {"vcd", "titer", "po2_offline"} <= set(analytes)
    for a in analytes:
        future = con.execute(f"""select count(*) from intermediate.int_process_readings__assays_asof
                                 where {a} is not null and ({a}_result_time is null or {a}_result_time > ts
                                                            or {a}_sample_time > {a}_result_time)""").fetchone()[0]
        assert future == 0, a
    # first visible vcd of a batch appears exactly at the first grid step at/after its result_time
    first_seen = con.execute("""
        with first_vcd as (
            select batch_id, min(ts) as ts from intermediate.int_process_readings__assays_asof
            where vcd is not null group by batch_id),
        first_result as (
            select l.batch_id, min(l.result_time) as rt from marts.fct_assay_results l
            join marts.dim_batches b using (batch_id)
            where l.analyte = 'vcd' and l.result_time >= b.inoculation_ts - interval 1 minute
              and l.result_time <= b.harvest_ts
            group by l.batch_id)
        select f.batch_id, f.ts, r.rt from first_vcd f join first_result r using (batch_id)""").fetchall()
    assert first_seen
    for batch_id, ts, rt in first_seen:
        assert rt <= ts < rt + dt.timedelta(minutes=1), batch_id


def _assert_fixture_specifics(con: duckdb.DuckDBPyConnection, n_days: int) -> None:
    """What the fixture plant was built to exercise: aborted batch, outage, missing probe,
    exactly the scheduled genealogy."""
    # the aborted batch has no Harvest phase -> no window, no aligned rows
    aborted = con.execute("select batch_id from marts.dim_batches where status = 'aborted'").fetchall()
    for (batch_id,) in aborted:
        assert (
            con.execute("select count(*) from marts.fct_process_readings where batch_id = ?", [batch_id]).fetchone()[0]
            == 0
        )
    # carried forward through the BR-101 historian outage (10:00-10:11 every day): never null
    # once the batch has its first reading (batches that started before the lake did are null)
    nulls = con.execute(
        """
        select count(*) from marts.fct_process_readings r join marts.dim_batches b using (batch_id)
        where r.unit_id = 'BR-101' and b.inoculation_ts >= ? and r.ts >= b.inoculation_ts + interval 1 hour
          and r.temperature is null""",
        [_data_end(0)],
    ).fetchone()[0]
    assert nulls == 0
    outage = con.execute(
        """
        select count(*), count(temperature) from marts.fct_process_readings
        where unit_id = 'BR-101' and hour(ts) = 10 and minute(ts) < 12 and ts >= ?""",
        [_data_end(0)],
    ).fetchone()
    assert outage[0] > 0 and outage[0] == outage[1]
    # BR-102 has no capacitance probe: the column is null there, filled on BR-101
    cap = dict(
        con.execute("""select unit_id, count(capacitance) from marts.fct_process_readings
                              group by unit_id""").fetchall()
    )
    assert cap["BR-102"] == 0 and cap["BR-101"] > 0
    # phases and maturity
    bad = con.execute("""select count(*) from marts.fct_process_readings
                         where phase is null or maturity_pct < -1 or maturity_pct > 100.0001""").fetchone()[0]
    assert bad == 0
    end = _data_end(n_days)
    schedule = {b.batch_id: b for b in PLANT.batches_overlapping(_data_end(0) - dt.timedelta(days=3), end)}
    harvested = [
        r[0] for r in con.execute("select batch_id from marts.dim_batches where harvest_ts is not null").fetchall()
    ]
    done = [b for b in harvested if schedule[b].ufdf_end < end]
    assert len(done) >= 3
    lots = dict(con.execute("select batch_id, ds_lot from marts.fct_lot_genealogy where ds_lot is not null").fetchall())
    for b in done:
        assert lots.get(b) == schedule[b].ds_lot, b


def _assert_model_properties(con: duckdb.DuckDBPyConnection, n_days: int) -> None:
    _assert_alignment_asof_genealogy(con, _data_end(n_days))
    _assert_fixture_specifics(con, n_days)


def _assert_parity_with_reference_alignment(lake, con: duckdb.DuckDBPyConnection) -> None:
    """dbt's fct_process_readings has exactly the rows of the reference implementation the
    Spark engine is checked against (lakehouse/transforms/alignment.py, DuckDB engine)."""
    import pyarrow.compute as pc

    alignment = pytest.importorskip("lakehouse.transforms.alignment")
    readings = lake.read_delta(lake.uri("bronze", "historian_readings"))
    phases = lake.read_delta(lake.uri("bronze", "mes_phases"))
    windows = alignment.batch_windows(lake.read_delta(lake.uri("bronze", "mes_batches")), phases)
    ref = alignment.align_readings(readings, windows, grid_minutes=1, phases=phases)
    cols = list(alignment.output_columns())
    ours = con.execute(
        f"select {', '.join(cols)} from marts.fct_process_readings order by batch_id, ts"
    ).fetch_arrow_table()
    ref = ref.select(cols).sort_by([("batch_id", "ascending"), ("ts", "ascending")])
    assert ours.num_rows == ref.num_rows > 0
    for c in cols:
        a, b = ours.column(c), ref.column(c)
        if pa_is_float(a.type):
            diff = pc.max(pc.abs(pc.subtract(pc.fill_null(a, 0.0), pc.fill_null(b, 0.0)))).as_py() or 0.0
            assert diff < 1e-9, c
            assert a.null_count == b.null_count, c
        else:
            assert a.to_pylist() == b.to_pylist(), c


def pa_is_float(t) -> bool:
    import pyarrow as pa

    return pa.types.is_floating(t)


def _assert_gold_readback(lake, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Every gold Delta table read by polars and by DuckDB's delta extension: same rows and
    schema as each other and as the warehouse mart."""
    import sys as _sys

    from lakehouse.warehouse import DBT_PROJECT_DIR, GOLD_MARTS

    _sys.path.insert(0, str(DBT_PROJECT_DIR / "plugins"))
    import lakehouse_duckdb

    reader = duckdb.connect()
    reader.execute("SET TimeZone='UTC'")
    lakehouse_duckdb.configure(
        reader,
        {
            "s3_endpoint_url": lake.s3.endpoint_url,
            "s3_access_key_id": lake.s3.access_key_id,
            "s3_secret_access_key": lake.s3.secret_access_key,
            "s3_region": lake.s3.region,
        }
        if lake.is_s3
        else {},
    )
    counts = {}
    for mart in GOLD_MARTS:
        uri = lake.uri("gold", mart)
        pl_df = pl.read_delta(uri, storage_options=lake.delta_storage_options() or None)
        duck = reader.execute(f"select * from delta_scan('{uri}')").fetch_arrow_table()
        wh = con.execute(f"select * from marts.{mart}").fetch_arrow_table()
        assert pl_df.height == duck.num_rows == wh.num_rows, mart
        assert pl_df.columns == duck.column_names == wh.column_names, mart
        # same types as seen through Arrow by both readers
        pl_arrow = pl_df.to_arrow()
        for f in duck.schema:
            t_pl = pl_arrow.schema.field(f.name).type
            norm = lambda t: "string" if str(t) in ("large_string", "string_view", "string") else str(t)
            assert norm(t_pl) == norm(f.type), (mart, f.name, t_pl, f.type)
        counts[mart] = pl_df.height
    # timestamps are UTC in the lake
    ts_type = pl.read_delta(
        lake.uri("gold", "fct_process_readings"), storage_options=lake.delta_storage_options() or None
    ).schema["ts"]
    assert ts_type == pl.Datetime("us", "UTC")
    return counts


def test_dbt_build_in_dagster_local_then_one_more_day(lake_local, warehouse):
    lake = lake_local
    # days 1-5; the filtration skid and the CMMS have not exported yet (their bronze tables
    # do not exist: dbt reads them as empty), and one historian day file is re-exported
    _write_bronze(lake, range(N_DAYS), skip=LATE_SYSTEMS)
    corrected = bf.reingest_readings(lake, FIRST_DAY + dt.timedelta(days=1))

    result = materialize_transform(lake, warehouse)
    assert result.success, _failures(result)
    assert not _failures(result)
    checks = _checks(result)
    assert len(checks) > 60 and all(c.passed for c in checks)
    keys = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert {
        "stg_historian__readings",
        "int_process_readings__aligned",
        "fct_process_readings",
        "gold/fct_process_readings",
        "gold/dim_batches",
    } <= keys

    with _warehouse(warehouse) as con:
        _assert_model_properties(con, N_DAYS)
        # the re-exported file wins: staging holds the corrected (+0.5) values, once
        sample = corrected.slice(0, 200).to_pylist()
        for row in sample:
            got = con.execute(
                """select value, count(*) over () from staging.stg_historian__readings
                                 where unit_id = ? and tag = ? and reading_ts = ?""",
                [row["unit_id"], row["tag"], row["ts"]],
            ).fetchall()
            assert len(got) == 1 and got[0][0] == pytest.approx(row["value"])
        assert con.execute("select count(*) from marts.fct_work_orders").fetchone()[0] == 0
        _assert_parity_with_reference_alignment(lake, con)
        before = dict(
            con.execute("""select batch_id, max(_source_ingested_at) from marts.fct_process_readings
                                     group by batch_id""").fetchall()
        )
        stg_before = dict(
            con.execute("""select reading_date, max(_ingested_at) from staging.stg_historian__readings
                                         group by reading_date""").fetchall()
        )
    _assert_gold_readback(lake, _warehouse(warehouse))

    # ---- one more day arrives, and the late systems deliver their backlog
    _write_bronze(lake, range(N_DAYS, N_DAYS + 1))
    _write_bronze(lake, range(N_DAYS), skip=tuple(t for t in bf.BRONZE_TABLES if t not in LATE_SYSTEMS))
    result = materialize_transform(lake, warehouse)
    assert result.success, _failures(result)
    assert not _failures(result)

    with _warehouse(warehouse) as con:
        _assert_model_properties(con, N_DAYS + 1)
        after = dict(
            con.execute("""select batch_id, max(_source_ingested_at) from marts.fct_process_readings
                                    group by batch_id""").fetchall()
        )
        # history untouched: every batch of the first build keeps its rows' lineage watermark
        assert {b: after[b] for b in before} == before
        new_batches = set(after) - set(before)
        assert new_batches == {"BR101-0102"}
        assert (
            con.execute("select status from marts.dim_batches where batch_id = 'BR102-0102'").fetchone()[0] == "aborted"
        )
        stg_after = dict(
            con.execute("""select reading_date, max(_ingested_at) from staging.stg_historian__readings
                                        group by reading_date""").fetchall()
        )
        assert {d: stg_after[d] for d in stg_before} == stg_before  # old days not rebuilt
        assert len(stg_after) == len(stg_before) + 1
        assert con.execute("select count(*) from marts.fct_work_orders").fetchone()[0] > 0
        assert (
            con.execute(
                "select count(*) from marts.fct_filtration_runs where bioreactor_batch_id is not null"
            ).fetchone()[0]
            >= 3
        )

    gold = {
        m.asset_key.path[-1]: m.materialization.metadata
        for m in result.get_asset_materialization_events()
        if m.asset_key.path[0] == "gold"
    }
    assert gold["fct_process_readings"]["publish_mode"].value == "incremental"
    assert gold["fct_process_readings"]["replaced_batches"].value == 1
    schema = gold["fct_process_readings"]["dagster/column_schema"].value
    assert [c.name for c in schema.columns][:6] == [
        "batch_id",
        "unit_id",
        "ts",
        "culture_age_h",
        "maturity_pct",
        "phase",
    ]
    # every column of every gold mart carries its dbt description
    for mart, md in gold.items():
        undocumented = [c.name for c in md["dagster/column_schema"].value.columns if not c.description]
        assert not undocumented, (mart, undocumented)
        assert md["dagster/row_count"].value >= 0
    assert "| batch_id |" in gold["dim_batches"]["preview"].value
    counts = _assert_gold_readback(lake, _warehouse(warehouse))
    assert counts["fct_process_readings"] == gold["fct_process_readings"]["dagster/row_count"].value


@pytest.mark.s3
def test_twin_to_ingestion_to_dbt_on_s3(lake_s3, warehouse):
    """The real path on the S3 server: the twin writes the landing zone, ingestion writes
    bronze, the dbt assets build the model and publish gold."""
    site = pytest.importorskip("twin.site")
    from lakehouse.ingest.writer import ingest_landing

    lake = lake_s3
    days = 18  # one 14-day fed-batch culture, harvested, captured and UF/DF'd
    cfg = site.SiteConfig(start="2026-01-01", days=days, bioreactors=1, write_trajectories=False)
    summary = site.simulate_site(lake.root, cfg, storage_options=lake.fsspec_storage_options())
    assert summary.batches_closed >= 1
    report = ingest_landing(lake)
    assert not report.files_rejected

    result = materialize_transform(lake, warehouse)
    assert result.success, _failures(result)
    assert not _failures(result)
    assert all(c.passed for c in _checks(result))
    data_end = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=days)
    with _warehouse(warehouse) as con:
        _assert_alignment_asof_genealogy(con, data_end, min_batches=1)
        from lakehouse.catalog import default_catalog

        PARAMETERS = default_catalog().names()

        filled = con.execute(
            "select " + ", ".join(f"count({p})" for p in PARAMETERS) + " from marts.fct_process_readings"
        ).fetchone()
        assert all(n > 0 for n in filled), dict(zip(PARAMETERS, filled))  # the twin logs all 19
        assert (
            con.execute(
                "select count(*) from marts.fct_chromatography_runs where bioreactor_batch_id is not null"
            ).fetchone()[0]
            >= 1
        )
        assert con.execute("select count(*) from marts.fct_equipment_health_daily").fetchone()[0] > days
    counts = _assert_gold_readback(lake, _warehouse(warehouse))
    assert counts["fct_process_readings"] > 10_000
    fs = lake.filesystem()
    assert fs.exists(lake.fs_path(lake.uri("gold", "fct_process_readings", "_delta_log")))
