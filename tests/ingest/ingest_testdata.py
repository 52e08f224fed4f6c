"""Small landing zones written byte-exact per docs/contracts.md, good and bad variants."""

from __future__ import annotations

import datetime as dt
import json

from lakehouse.ingest.tagmap import TagMap
from lakehouse.storage import Lake

T0 = dt.datetime(2026, 1, 3, tzinfo=dt.UTC)
# the twin's historian contract: suffix -> (signal, unit), from its tag map
SUFFIXES: dict[str, tuple[str, str]] = TagMap.contract_default().suffix_table()


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _nominal(param: str) -> float:
    return {
        "temperature": 36.8,
        "temperature_sp": 36.8,
        "ph": 7.0,
        "dissolved_oxygen": 40.0,
        "agitation": 120.0,
        "pressure": 0.3,
        "weight": 1900.0,
    }.get(param, 1.0)


def historian_csv(unit_id: str, day: dt.date, minutes: int = 30, tags: list[str] | None = None) -> tuple[bytes, int]:
    """A historian day file: ``minutes`` samples of every tag. Returns (bytes, data rows)."""
    suffixes = tags or list(SUFFIXES)
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    lines = ["timestamp,tag,value,unit,quality"]
    for m in range(minutes):
        ts = iso(start + dt.timedelta(minutes=m, milliseconds=7 * m))
        for suf in suffixes:
            p, unit = SUFFIXES[suf]
            lines.append(f"{ts},{unit_id}.{suf},{_nominal(p) + 0.01 * (m % 7):.3f},{unit},192")
    return ("\n".join(lines) + "\n").encode(), len(lines) - 1


def lims_csv(day: dt.date, batch_id: str = "BR101-0001", n_days: int = 3) -> tuple[bytes, int]:
    lines = ["sample_id,batch_id,sample_time,result_time,analyte,value,unit,method"]
    for d in range(n_days):
        st = dt.datetime(day.year, day.month, day.day, 8, tzinfo=dt.UTC) + dt.timedelta(days=d)
        rt = st + dt.timedelta(hours=3)
        sid = f"S-{batch_id.replace('-', '')}-D{d:02d}"
        for analyte, value, unit, method in [
            ("vcd", 5.5 + d, "1e6 cells/mL", "Vi-CELL"),
            ("viability", 97.5, "%", "Vi-CELL"),
            ("glucose", 4.2, "g/L", "BGA"),
            ("titer", 1.1 + d, "g/L", "ProA-HPLC"),
        ]:
            lines.append(f"{sid},{batch_id},{iso(st)},{iso(rt)},{analyte},{value},{unit},{method}")
    return ("\n".join(lines) + "\n").encode(), len(lines) - 1


def mes_json(
    batch_id: str = "BR101-0001", unit_id: str = "BR-101", start: dt.datetime = T0
) -> tuple[bytes, dict[str, int]]:
    phases = ["Prepare", "Inoculate", "Batch", "Fed-Batch", "Production", "Harvest"]
    hours = [12, 2, 70, 72, 170, 6]
    proc, t = [], start
    for ph, h in zip(phases, hours):
        proc.append(
            {
                "unit_procedure": "Production Culture",
                "operation": "Cell Culture",
                "phase": ph,
                "start": iso(t),
                "end": iso(t + dt.timedelta(hours=h)),
            }
        )
        t += dt.timedelta(hours=h)
    rec = {
        "record_type": "bioreactor",
        "batch_id": batch_id,
        "product": "mAb-A",
        "unit_id": unit_id,
        "recipe_id": "FB-14D-v3",
        "status": "complete",
        "start": iso(start),
        "end": iso(t),
        "setpoints": {
            "temperature_c": 36.8,
            "temp_shift_day": 6.0,
            "temp_shift_c": 33.0,
            "ph": 7.0,
            "do_pct": 40.0,
            "feed_rate_pct_per_day": 3.0,
            "seed_density_e6_per_ml": 0.5,
            "working_volume_l": 2000,
        },
        "procedure": proc,
        "materials": [
            {"lot_id": "MED-0001", "material": "basal medium", "role": "input", "quantity": 1800, "unit": "L"},
            {"lot_id": f"HCCF-{batch_id}", "material": "HCCF", "role": "output", "quantity": 1950, "unit": "L"},
        ],
        "output_lot": f"HCCF-{batch_id}",
        "input_lots": [],
    }
    return json.dumps(rec, indent=1).encode(), {
        "mes_batches": 1,
        "mes_phases": 6,
        "mes_materials": 2,
        "mes_genealogy": 0,
    }


def capture_json(batch_id: str = "CAP-0001", harvest_lot: str = "HCCF-BR101-0001") -> tuple[bytes, dict[str, int]]:
    rec = {
        "record_type": "capture",
        "batch_id": batch_id,
        "product": "mAb-A",
        "unit_id": "AKTA-01",
        "recipe_id": "PA-v1",
        "status": "complete",
        "start": iso(T0 + dt.timedelta(days=15)),
        "end": iso(T0 + dt.timedelta(days=15, hours=8)),
        "setpoints": {},
        "procedure": [
            {
                "unit_procedure": "Capture",
                "operation": "Protein A",
                "phase": "Load",
                "start": iso(T0 + dt.timedelta(days=15)),
                "end": iso(T0 + dt.timedelta(days=15, hours=8)),
            }
        ],
        "materials": [],
        "output_lot": f"CAP-{batch_id}",
        "input_lots": [harvest_lot],
    }
    return json.dumps(rec).encode(), {"mes_batches": 1, "mes_phases": 1, "mes_materials": 0, "mes_genealogy": 1}


def chrom_run(skid: str = "AKTA-01", run_id: str = "PA-0001") -> tuple[bytes, bytes, int]:
    run = {
        "run_id": run_id,
        "skid_id": skid,
        "column_id": "COL-PA-01",
        "column_cycle": 12,
        "batch_id": "BR101-0001",
        "input_lot": "HCCF-BR101-0001",
        "output_lot": "CAP-0001",
        "start": iso(T0 + dt.timedelta(days=15)),
        "end": iso(T0 + dt.timedelta(days=15, hours=6)),
        "load_volume_l": 1900.0,
        "load_titer_g_l": 3.1,
        "column_volume_l": 80.0,
        "pool_volume_l": 240.0,
        "pool_concentration_g_l": 22.0,
        "step_yield_pct": 92.5,
        "max_pressure_bar": 2.1,
        "result": "pass",
    }
    lines = ["volume_ml,time_s,uv280_mau,conductivity_ms_cm,ph,pressure_bar,phase"]
    phases = ["Equilibrate", "Load", "Wash", "Elute", "Strip", "CIP"]
    for i in range(60):
        lines.append(f"{i * 1000.0},{i * 30.0},{50 + i},{15.0},{7.2},{1.1},{phases[i // 10]}")
    return json.dumps(run).encode(), ("\n".join(lines) + "\n").encode(), len(lines) - 1


def filt_run(skid: str = "TFF-01", run_id: str = "UFDF-0001") -> tuple[bytes, bytes, int]:
    run = {
        "run_id": run_id,
        "skid_id": skid,
        "membrane_id": "MEM-01",
        "membrane_use": 4,
        "input_lot": "CAP-0001",
        "output_lot": "DS-0001",
        "start": iso(T0 + dt.timedelta(days=16)),
        "end": iso(T0 + dt.timedelta(days=16, hours=5)),
        "diavolumes": 8.0,
        "final_concentration_g_l": 100.0,
        "step_yield_pct": 97.0,
        "mean_flux_lmh": 45.0,
        "result": "pass",
    }
    lines = [
        "time_s,feed_pressure_bar,retentate_pressure_bar,permeate_pressure_bar,tmp_bar,permeate_flux_lmh,conductivity_ms_cm,retentate_volume_l,phase"
    ]
    phases = ["UF1", "DF", "UF2", "Recovery"]
    for i in range(40):
        lines.append(f"{i * 60.0},2.0,1.0,0.1,1.4,45.0,12.0,{200 - i},{phases[i // 10]}")
    return json.dumps(run).encode(), ("\n".join(lines) + "\n").encode(), len(lines) - 1


def cmms_csv(day: dt.date) -> tuple[bytes, int]:
    lines = [
        "work_order_id,equipment_id,equipment_type,work_type,failure_mode,priority,opened_at,closed_at,description"
    ]
    t = dt.datetime(day.year, day.month, day.day, 9, tzinfo=dt.UTC)
    lines.append(
        f'WO-0001,BR-101-AGT,agitator,corrective,bearing wear,1,{iso(t)},{iso(t + dt.timedelta(hours=5))},"Replace bearing, check seal"'
    )
    lines.append(f"WO-0002,BR-101-DO,do_probe,calibration,,3,{iso(t)},,DO probe calibration")
    return ("\n".join(lines) + "\n").encode(), 2


def write(lake: Lake, rel: str, data: bytes) -> None:
    fs = lake.filesystem()
    path = lake.fs_path(lake.uri("landing", rel))
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, data)


def good_landing(
    lake: Lake, days: int = 2, units: tuple[str, ...] = ("BR-101", "BR-102"), minutes: int = 30
) -> dict[str, int]:
    """Write a clean landing zone; returns the expected bronze row counts per table."""
    exp = {
        t: 0
        for t in [
            "historian_readings",
            "lims_results",
            "mes_batches",
            "mes_phases",
            "mes_materials",
            "mes_genealogy",
            "chrom_runs",
            "chrom_curves",
            "filtration_runs",
            "filtration_curves",
            "cmms_work_orders",
        ]
    }
    for d in range(days):
        day = (T0 + dt.timedelta(days=d)).date()
        for u in units:
            b, n = historian_csv(u, day, minutes)
            write(lake, f"historian/{u}/{day.isoformat()}.csv", b)
            exp["historian_readings"] += n
        b, n = lims_csv(day, n_days=1)
        write(lake, f"lims/{day.isoformat()}.csv", b.replace(b"D00", f"D{d:02d}".encode()))
        exp["lims_results"] += n
        b, n = cmms_csv(day)
        write(lake, f"cmms/{day.isoformat()}.csv", b.replace(b"WO-000", f"WO-{d}00".encode()))
        exp["cmms_work_orders"] += n
    for bid, (b, counts) in {"BR101-0001": mes_json("BR101-0001"), "CAP-0001": capture_json()}.items():
        write(lake, f"mes/{bid}.json", b)
        for t, n in counts.items():
            exp[t] += n
    rj, cc, n = chrom_run()
    write(lake, "chromatography/AKTA-01/PA-0001/run.json", rj)
    write(lake, "chromatography/AKTA-01/PA-0001/curves.csv", cc)
    exp["chrom_runs"] += 1
    exp["chrom_curves"] += n
    rj, cc, n = filt_run()
    write(lake, "filtration/TFF-01/UFDF-0001/run.json", rj)
    write(lake, "filtration/TFF-01/UFDF-0001/curves.csv", cc)
    exp["filtration_runs"] += 1
    exp["filtration_curves"] += n
    return exp


# ------------------------------------------------------------------ bad inputs
BAD_DAY = dt.date(2026, 1, 3)


def _replace_row(lines: list[str], tag_suffix: str, minute: int, fn) -> None:
    """Apply ``fn`` to the data line of tag ``*.<suffix>`` at ``minute``."""
    suffixes = list(SUFFIXES)
    idx = 1 + minute * len(suffixes) + suffixes.index(tag_suffix)
    lines[idx] = fn(lines[idx])


def bad_landing(lake: Lake) -> dict:
    """Bad rows of each kind (in one historian file + LIMS) and unreadable files of each kind.

    Returns expectations: {"rows": {table: bronze rows}, "quarantine": {reason substring: n},
    "whole_files": n}."""
    day = BAD_DAY
    b, n = historian_csv("BR-201", day, minutes=20)
    lines = b.decode().splitlines()
    _replace_row(lines, "TEMP.PV", 1, lambda l: l.replace(",degC,", ",K,"))  # wrong unit
    _replace_row(lines, "PH.PV", 2, lambda l: l.replace(",7.020,", ",17.020,"))  # out of range
    _replace_row(lines, "AGIT.PV", 3, lambda l: l.replace(",120.030,", ",12O.03,"))  # non-numeric
    _replace_row(lines, "DO.PV", 4, lambda l: l.replace("2026-01-03T00:04", "2026-13-03T00:04"))  # bad ts
    _replace_row(lines, "WEIGHT.PV", 5, lambda l: l.replace(",1900.050,", ",,"))  # missing value
    _replace_row(lines, "PRESS.PV", 6, lambda l: l.replace("2026-01-03", "2099-01-03"))  # far future
    _replace_row(lines, "TEMP.SP", 7, lambda l: l.replace("BR-201.TEMP.SP", "BR-201.TEMP.XX"))  # unknown tag
    lines.append(lines[1 + 8 * 19])  # duplicate (tag, ts) at minute 8 — second occurrence quarantined
    write(lake, f"historian/BR-201/{day}.csv", ("\n".join(lines) + "\n").encode())
    bad_rows = 8
    good = n + 1 - bad_rows
    # unreadable files
    write(lake, f"historian/BR-202/{day}.csv", b[: len(b) // 2 + 7])  # truncated
    write(lake, f"historian/BR-203/{day}.csv", b.replace(b",value,", b",val,", 1))  # missing column
    write(lake, f"historian/BR-204/{day}.csv", b"")  # empty
    write(
        lake,
        f"historian/BR-205/{day}.csv",
        b.replace(b"BR-205", b"BR-205").replace(b"BR-201.PH.PV", b"BR-20\xe9.PH.PV"),
    )  # latin-1
    write(lake, f"historian/BR-206/{day}.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")  # wrong format
    # LIMS: wrong unit for an analyte + result before sample
    lb, ln = lims_csv(day, batch_id="BR201-0001", n_days=1)
    llines = lb.decode().splitlines()
    llines[4] = llines[4].replace(",g/L,ProA", ",mg/mL,ProA")  # titer in mg/mL: wrong unit string
    write(lake, f"lims/{day}.csv", ("\n".join(llines) + "\n").encode())
    write(lake, "mes/BR201-0001.json", mes_json("BR201-0001", "BR-201")[0][:300])  # truncated JSON
    return {
        "rows": {"historian_readings": good, "lims_results": ln - 1},
        "row_reasons": {
            "unit does not match the tag map": 1,
            "outside the plausible range": 1,
            "far future": 1,
            "non-numeric value": 1,
            "unparseable timestamp": 1,
            "missing value": 1,
            "tag not in tag map": 1,
            "duplicate key": 1,
            "analyte's expected unit": 1,
        },
        "file_reasons": {"truncated": 2, "missing column": 1, "empty file": 1, "not UTF-8": 1},
        "whole_files": 6,
        "historian_read": n + 1,
    }
