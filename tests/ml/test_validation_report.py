"""The validation report of a model version (HTML + PDF rendered to PNG by pdftoppm) and the
``lakehouse approve`` / ``lakehouse report model`` command lines on a real MLflow store."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from bioprocess_cli.main import main
from lakehouse.audit import AuditLog
from ml import pipeline
from ml.envelope import DEFAULT_ENVELOPE_CONFIG
from ml.registry import ModelRegistry

NAME = "titer_softsensor"


def test_approve_on_the_command_line_then_the_report_of_that_version(
    gold_lake_local, ss_cfg, tmp_path, monkeypatch, capsys
):
    lake = gold_lake_local
    env = yaml.safe_load(DEFAULT_ENVELOPE_CONFIG.read_text())
    env["models"][NAME]["first_version"] = "approval"
    env_path = tmp_path / "envelope.yaml"
    env_path.write_text(yaml.safe_dump(env))
    monkeypatch.setenv("LAKEHOUSE_ML_ENVELOPE_CONFIG", str(env_path))
    monkeypatch.setenv("LAKEHOUSE_IDENTITY", "trainer@lab")
    pipeline.materialize_softsensor_features(lake, ss_cfg)
    ((model, rec),) = pipeline.train_softsensor_models(lake, ss_cfg, targets=["titer"]).values()
    d = pipeline.gate(lake, NAME, rec.version)
    assert d["decision"] == "awaiting_approval"

    argv = ["approve", NAME, str(rec.version), "--lake", lake.root, "--meaning", "approved", "--reason", "VR reviewed"]
    assert main(argv) == 1  # the trainer signs their own model: refused, one line
    assert "refused: separation of duties" in capsys.readouterr().err
    monkeypatch.setenv("LAKEHOUSE_IDENTITY", "qa.reviewer@lab")
    assert main(argv) == 0
    sig = json.loads(capsys.readouterr().out)
    assert sig["signed_by"] == "qa.reviewer@lab" and sig["status"] == "champion" and sig["reason"] == "VR reviewed"
    assert ModelRegistry(lake).champion(NAME).version == rec.version

    assert main(["report", "model", NAME, str(rec.version), "--lake", lake.root]) == 0
    files = json.loads(capsys.readouterr().out)
    html = Path(files["html"]).read_text()
    # what a reviewer signs: identity, lineage, CV vs baseline, intervals, domain, drift, gate, approvals
    assert f"models:/{NAME}/{rec.version}" in html and rec.artifact_sha256 in html
    for table, version in rec.training_data.items():
        assert re.search(rf"<td>{re.escape(table)}</td><td>{version}</td>", html), table
    assert "cross-validation (GroupKFold by batch)" in html and "baseline on held-out test" in html
    assert f"{model.metrics['cv']['rmse']:.5g}" in html
    assert "coverage_heldout_recomputed" in html and "heldout_out_of_domain_fraction" in html
    assert "batch-resampled null" in html or "psi_limit only" in html  # drift evaluated on current data
    assert "awaiting_approval" in html and "first_version = approval" in html  # the gate's decision
    assert "qa.reviewer@lab" in html and "VR reviewed" in html and "audit trail: intact" in html
    assert html.count("data:image/png;base64,") == 2  # predicted-vs-actual and residuals
    entries = [e.action for e in AuditLog(lake).entries()]
    assert entries == ["envelope_change", "approval", "promotion"]

    pdf = Path(files["pdf"])
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-png", "-r", "30", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    pngs = list(tmp_path.glob("page*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pngs[0].stat().st_size > 2000
