"""The whole asset graph at plant scale: wall time and peak memory per layer, and one more day.

``run()`` simulates the twin site (``BENCH_SCALE_UNITS`` bioreactors, ``BENCH_SCALE_DAYS`` + 1
days, 1-minute historian) into a local lake's landing zone, widens every historian day file
from the twin's 19 tags to ``BENCH_SCALE_TAGS`` (default 30) by configuration — extra tags of
redundant/auxiliary probes (:data:`EXTRA_TAGS`: each an affine copy of a twin signal, declared
as new signals in a tag map written next to the lake, the twin's tag map + these suffixes) —
then materializes the graph layer by layer, each layer (a set of asset groups, in dependency
order) in its own child process: ``bronze`` → ``dbt`` → ``gold`` → ``features`` →
``models`` → ``scoring`` → ``golden_batch`` → ``twin``. One child per layer gives each layer's
own peak resident memory (``ru_maxrss`` of the child and of its largest subprocess, e.g. the
dbt CLI) and keeps layers from inheriting each other's heap.

The historian partitions of the first ``BENCH_SCALE_DAYS`` days are built; the last simulated
day is held back. "One more day" then runs the daily path (``bronze`` → ``dbt`` → ``gold`` →
``features``: what a new day of data must go through; models, golden batch and twin
experiments are retrained on their own schedule, not per day) for that day's partition on

* the full lake, and
* a lake holding only the day before (the same landing files except the earlier historian
  days, built the same way): "an empty lake" plus the one day the new day's windows reach
  back into,

and ``scale_one_more_day_ratio`` = full ÷ small (goal ≤ 1.5: a new day must not rebuild
history). Both runs get identical new files.

Figures: ``scale_site_month_s`` (sum of the layer walls — each the ``execute_in_process``
of its child, imports and definitions excluded; simulation excluded: that is the twin, not
the lakehouse), ``scale_site_month_peak_rss_gb`` (max over layers) — named ``scale_site_s`` /
``scale_site_peak_rss_gb`` when the site is not the site-month or not every layer ran,
``scale_layer_<layer>_s`` / ``scale_layer_<layer>_peak_rss_gb``, ``scale_one_more_day_s``,
``scale_one_more_day_ratio``, ``scale_readings`` (historian rows in bronze), the simulation
time, and the 1-minute load average at start and end (the host is shared).

Environment: ``BENCH_SCALE_UNITS`` (default 2), ``BENCH_SCALE_DAYS`` (default 7),
``BENCH_SCALE_TAGS`` (30), ``BENCH_SCALE_FULL=1`` (the site-month: 10 units × 30 days × 30
tags × 1 min ≈ 13 M readings, every layer), ``BENCH_SCALE_ALL_LAYERS=1`` (every layer at
another size: models need >= 5 harvested batches, so >= ~20 days), ``BENCH_SCALE_KEEP`` (a
directory: keep the lake there), ``LAKEHOUSE_ENGINE=spark`` (and ``SPARK_*``: the Spark engine,
``scale_engine`` says which). The default (2 × 7 days, data path only: ``bronze`` →
``dbt`` → ``gold`` → ``features``) fits ``make bench``'s budget.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

START = "2026-01-01"
# (layer, asset groups) in dependency order; `landing` (the twin simulation) runs first, untimed
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("bronze", ("bronze",)),
    ("dbt", ("dbt",)),
    ("gold", ("gold",)),
    ("features", ("features",)),
    ("models", ("models",)),
    ("scoring", ("scoring",)),
    ("golden_batch", ("golden_batch",)),
    ("twin", ("twin",)),
    ("reports", ("reports",)),
]
DAILY_LAYERS = ["bronze", "dbt", "gold", "features"]
HISTORIAN_OP = "bronze__historian_readings"

# Extra historian tags (suffix, new signal, unit, source suffix, a, b): value = a·source + b —
# the redundant and auxiliary probes a real bioreactor logs next to the control loop's own.
EXTRA_TAGS: list[tuple[str, str, str, str, float, float]] = [
    ("TEMP2.PV", "temperature_probe2", "degC", "TEMP.PV", 1.0, 0.05),
    ("JACKET.TEMP", "jacket_temperature", "degC", "TEMP.PV", 1.0, -1.5),
    ("PH2.PV", "ph_probe2", "pH", "PH.PV", 1.0, 0.01),
    ("DO2.PV", "dissolved_oxygen_probe2", "%", "DO.PV", 1.0, 0.5),
    ("CAP2.PV", "capacitance_probe2", "pF/cm", "CAP.PV", 1.0, 0.1),
    ("INLET.PRESS", "inlet_pressure", "bar", "PRESS.PV", 1.0, 0.2),
    ("EXHAUST.TEMP", "exhaust_temperature", "degC", "TEMP.PV", 0.9, 2.0),
    ("AGIT.TORQUE", "agitator_torque", "N*m", "AGIT.CURRENT", 0.8, 0.0),
    ("MOTOR.TEMP", "motor_temperature", "degC", "AGIT.CURRENT", 2.0, 25.0),
    ("LOAD.CELL2", "weight_load_cell2", "kg", "WEIGHT.PV", 1.0, 0.3),
    ("OFFGAS.FLOW", "offgas_flow", "L/min", "AIR.FLOW", 1.0, 0.0),
]


SITE_MONTH = {"units": 10, "days": 30, "tags": 30}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def _knobs() -> dict:
    full = _flag("BENCH_SCALE_FULL")
    k = {
        "units": int(os.environ.get("BENCH_SCALE_UNITS", 10 if full else 2)),
        "days": int(os.environ.get("BENCH_SCALE_DAYS", 30 if full else 7)),
        "tags": int(os.environ.get("BENCH_SCALE_TAGS", 30)),
    }
    # models need >= 5 harvested batches (a batch runs ~14 days): the budget-sized default
    # measures the data path only, the site-month every layer
    k["all_layers"] = full or _flag("BENCH_SCALE_ALL_LAYERS")
    return k


def write_tagmap(path: Path, n_extra: int) -> Path:
    """The twin's tag map plus ``n_extra`` of :data:`EXTRA_TAGS` (declared as new signals)."""
    import yaml

    src = ROOT / "config" / "tagmaps" / "twin.yaml"
    doc = yaml.safe_load(src.read_text())
    doc["site"] = "twin-scale"
    doc["catalog"] = str((src.parent / doc["catalog"]).resolve())
    doc["signals"] = {
        sig: {"unit": unit, "kind": "process_value", "description": f"bench: {a}·{s} + {b}"}
        for _, sig, unit, s, a, b in EXTRA_TAGS[:n_extra]
    }
    doc["suffixes"] = {
        **doc["suffixes"],
        **{suf: {"parameter": sig, "unit": unit} for suf, sig, unit, *_ in EXTRA_TAGS[:n_extra]},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def widen_historian(landing: Path, n_extra: int) -> int:
    """Append the extra tags to every historian day file (same timestamps, quality, file
    layout). Returns the historian rows in the landing zone after widening."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    strings = pacsv.ConvertOptions(column_types={"timestamp": pa.string(), "value": pa.float64()})
    rows = 0
    for p in sorted((landing / "historian").rglob("*.csv")):
        tbl = pacsv.read_csv(p, convert_options=strings)
        parts = [tbl]
        for suf, _sig, unit, src, a, b in EXTRA_TAGS[:n_extra]:
            sel = tbl.filter(pc.ends_with(tbl.column("tag"), "." + src))
            prefix = pc.replace_substring(sel.column("tag"), "." + src, "")
            new = sel.set_column(1, "tag", pc.binary_join_element_wise(prefix, pa.scalar(suf), "."))
            new = new.set_column(2, "value", pc.round(pc.add(pc.multiply(sel.column("value"), a), b), 4))
            new = new.set_column(3, "unit", pa.array([unit] * new.num_rows, pa.string()))
            parts.append(new)
        out = pa.concat_tables(parts)
        out = out.take(pc.sort_indices(out, [("timestamp", "ascending")]))  # a historian export's order
        pacsv.write_csv(out, p, pacsv.WriteOptions(quoting_style="none"))
        rows += out.num_rows
    return rows


def _settings(lake_root: Path, units: int, days: int):
    from assets.resources import LakeResource, SiteResource
    from orchestration.settings import Settings, spark_resource

    return Settings(
        lake=LakeResource(root_uri=str(lake_root / "lake"), duckdb_path=str(lake_root / "warehouse.duckdb")),
        site=SiteResource(source="twin", start_date=START, days=days, bioreactors=units, interval_s=60.0, seed=7),
        spark=spark_resource(),  # LAKEHOUSE_ENGINE=spark (and SPARK_*) measure the Spark engine
    )


def child(args: dict) -> dict:
    """One layer in this (child) process: materialize the asset groups over the partition
    range; returns wall seconds, peak RSS of this process and of its largest subprocess."""
    import dagster as dg

    from orchestration.build import build_defs
    from orchestration.run import failed_steps

    settings = _settings(Path(args["root"]), args["units"], args["site_days"])
    job = dg.define_asset_job("scale_layer", selection=dg.AssetSelection.groups(*args["groups"]))
    defs = dg.Definitions.merge(build_defs(settings), dg.Definitions(jobs=[job]))
    instance = dg.DagsterInstance.from_config(args["home"])
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if "bronze" in args["groups"]:
        run_config["ops"] = {HISTORIAN_OP: {"config": {"tagmap": args["tagmap"]}}}
    t0 = time.perf_counter()
    result = defs.resolve_job_def("scale_layer").execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": args["start"], "dagster/asset_partition_range_end": args["end"]},
        run_config=run_config,
        raise_on_error=False,
    )
    wall = time.perf_counter() - t0
    groups = {defs.resolve_assets_def(key).get_asset_spec(key).group_name for key in defs.resolve_all_asset_keys()}
    # `landing` is the simulation (set-up); `live` (running-batch scoring) is not part of the
    # main job either: it follows the plant in real time, not the history
    unmeasured = groups - {g for _, gs in LAYERS for g in gs} - {"landing", "live"}
    if unmeasured:  # a new asset group must get a layer here, not be left out of the figures
        raise RuntimeError(f"asset groups without a layer in bench_scale.LAYERS: {sorted(unmeasured)}")
    # a rejected candidate is a WARN check result, not a failed step: any failed step fails it
    failed = sorted(failed_steps(result))
    if failed:
        raise RuntimeError(f"layer {args['groups']} failed steps: {failed}")
    kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {"wall_s": wall, "peak_rss_gb": kb / 1024**2}


def _layer(root: Path, home: Path, tagmap: Path, k: dict, groups, start: str, end: str) -> dict:
    args = {
        "root": str(root),
        "home": str(home),
        "tagmap": str(tagmap),
        "units": k["units"],
        "site_days": k["days"] + 1,
        "groups": list(groups),
        "start": start,
        "end": end,
    }
    proc = subprocess.run(
        [sys.executable, "-c", f"import json, bench.bench_scale as m; print('@@' + json.dumps(m.child({args!r})))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(home)},
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"layer {groups} {start}..{end} failed:\n{(proc.stderr or proc.stdout)[-3000:]}")
    return json.loads(lines[-1][2:])


def _home(path: Path) -> Path:
    from orchestration.run import dagster_home

    return dagster_home({"DAGSTER_HOME": str(path)})


def _day(i: int) -> str:
    return (dt.date.fromisoformat(START) + dt.timedelta(days=i)).isoformat()


def _log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run() -> dict:
    from twin.site import SiteConfig, simulate_site

    k = _knobs()
    n_extra = max(0, min(len(EXTRA_TAGS), k["tags"] - 19))
    keep = os.environ.get("BENCH_SCALE_KEEP")
    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    out: dict[str, object] = {
        "scale_units": k["units"],
        "scale_days": k["days"],
        "scale_tags": 19 + n_extra,
        "scale_engine": os.environ.get("LAKEHOUSE_ENGINE", "default"),
    }
    try:
        big, small = tmp / "full", tmp / "small"
        landing = big / "lake" / "landing"
        tagmap = write_tagmap(tmp / "tagmap-scale.yaml", n_extra)
        t0 = time.perf_counter()
        _log(f"simulating {k['units']} bioreactors × {k['days'] + 1} days ...")
        cfg = SiteConfig(
            start=START,
            days=k["days"] + 1,
            bioreactors=k["units"],
            interval_s=60.0,
            full_resolution_days=None,  # every day at 1 minute
            seed=7,
        )
        simulate_site(str(big / "lake"), cfg)
        out["scale_simulate_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        widen_historian(landing, n_extra)
        out["scale_widen_s"] = round(time.perf_counter() - t0, 1)
        # the small lake: the same landing zone without the historian days before the last built one
        shutil.copytree(landing, small / "lake" / "landing")
        for p in (small / "lake" / "landing" / "historian").rglob("*.csv"):
            if p.stem < _day(k["days"] - 1):
                p.unlink()

        last, new = _day(k["days"] - 1), _day(k["days"])
        total, peak = 0.0, 0.0
        home = _home(tmp / "home-full")
        layers = LAYERS if k["all_layers"] else [(n, g) for n, g in LAYERS if n in DAILY_LAYERS]
        out["scale_layers"] = [n for n, _ in layers]
        # the figures carry the site-month's name only when the site is one
        site = "scale_site_month" if {x: k[x] for x in SITE_MONTH} == SITE_MONTH and k["all_layers"] else "scale_site"
        for name, groups in layers:
            _log(f"full lake: layer {name} ({START}..{last}) ...")
            r = _layer(big, home, tagmap, k, groups, START, last)
            out[f"scale_layer_{name}_s"] = round(r["wall_s"], 1)
            out[f"scale_layer_{name}_peak_rss_gb"] = round(r["peak_rss_gb"], 2)
            total += r["wall_s"]
            peak = max(peak, r["peak_rss_gb"])
        out[f"{site}_s"] = round(total, 1)
        out[f"{site}_peak_rss_gb"] = round(peak, 2)
        from lakehouse.storage import Lake

        lake = Lake(str(big / "lake"))
        out["scale_readings"] = lake.read_delta(lake.uri("bronze", "historian_readings"), columns=["quality"]).num_rows

        home_s = _home(tmp / "home-small")
        for name in DAILY_LAYERS:  # the small lake: the day before, built the same way (untimed)
            _layer(small, home_s, tagmap, k, dict(LAYERS)[name], last, last)
        timings = {}
        for label, root, h in (("full", big, home), ("small", small, home_s)):
            wall, rss = 0.0, 0.0
            for name in DAILY_LAYERS:
                _log(f"{label} lake: one more day ({new}), layer {name} ...")
                r = _layer(root, h, tagmap, k, dict(LAYERS)[name], new, new)
                out[f"scale_one_more_day_{label}_{name}_s"] = round(r["wall_s"], 1)
                wall += r["wall_s"]
                rss = max(rss, r["peak_rss_gb"])
            timings[label] = wall
            out[f"scale_one_more_day_{label}_peak_rss_gb"] = round(rss, 2)
        out["scale_one_more_day_s"] = round(timings["full"], 1)
        out["scale_one_more_day_empty_lake_s"] = round(timings["small"], 1)
        out["scale_one_more_day_ratio"] = round(timings["full"] / timings["small"], 3)
        out["scale_load_average_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
        out["scale_cpus"] = os.cpu_count()
        return out
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
