"""Governed promotion on a real MLflow store and the lake's audit trail: evidence floor, relative
references (a moved lake loads), the validated envelope, approvals with role separation, demotion
on an envelope breach, and an audit trail that names an edited entry."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from deltalake import DeltaTable

from lakehouse.audit import AUDIT_SCHEMA, AuditLog
from lakehouse.storage import Lake
from ml import approvals, pipeline
from ml.envelope import DEFAULT_ENVELOPE_CONFIG, load_envelope
from ml.registry import ModelRegistry

NAME = "titer_softsensor"


def _envelope(tmp_path: Path, tag: str, **changes) -> object:
    """A copy of config/ml/envelope.yaml with ``changes`` ({"evidence.min_heldout_batches": 99})."""
    doc = yaml.safe_load(DEFAULT_ENVELOPE_CONFIG.read_text())
    for dotted, value in changes.items():
        node = doc
        *path, last = dotted.split(".")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = value
    p = tmp_path / f"envelope-{tag}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return load_envelope(p)


def _train(lake, ss_cfg):
    pipeline.materialize_softsensor_features(lake, ss_cfg)
    ((_, rec),) = pipeline.train_softsensor_models(lake, ss_cfg, targets=["titer"]).values()
    return rec


def test_evidence_floor_and_a_moved_lake(gold_lake_local, ss_cfg, tmp_path):
    lake = gold_lake_local
    rec = _train(lake, ss_cfg)
    thin = pipeline.gate(
        lake, NAME, rec.version, envelope=_envelope(tmp_path, "thin", **{"evidence.min_heldout_batches": 99})
    )
    assert thin["decision"] == "rejected" and not thin["promoted"] and not thin["has_champion_after"]
    assert thin["reason"].startswith("below the evidence floor") and "held-out batches < 99" in thin["reason"]
    n_batches = thin["evidence_floor"]["n_heldout_batches"]
    assert 3 <= n_batches == len(ModelRegistry(lake).load(NAME, rec.version)[1]["split"]["test_batches"])

    d = pipeline.gate(lake, NAME, rec.version)  # the default floor (3 batches) is met
    assert d["decision"] == "promoted" and d["envelope"]["inside"] and d["evidence_floor"]["met"]
    assert d["envelope"]["envelope_sha256"] == load_envelope().sha256
    scores, _ = pipeline.score_titer_table(lake, ss_cfg, explain="none")

    # every stored reference is relative: copy the lake elsewhere, remove the original, it still loads
    moved_root = tmp_path / "elsewhere" / "lake"
    shutil.copytree(lake.root, moved_root)
    shutil.rmtree(lake.root)
    moved = Lake(str(moved_root))
    reg = ModelRegistry(moved)
    booster, meta, champ = reg.load(NAME)
    assert champ.version == rec.version and champ.artifact_uri.startswith(str(moved_root))
    assert reg.table()["artifact_uri"].str.starts_with("models/").all()
    again, _ = pipeline.score_titer_table(moved, ss_cfg, explain="none")
    assert again["prediction"].to_list() == scores["prediction"].to_list()


def test_outside_the_envelope_waits_for_a_signature_by_someone_else(gold_lake_local, ss_cfg, tmp_path, monkeypatch):
    lake = gold_lake_local
    monkeypatch.setenv("LAKEHOUSE_IDENTITY", "trainer@lab")
    rec = _train(lake, ss_cfg)
    assert rec.trained_by == "trainer@lab"
    env = _envelope(tmp_path, "strict", **{"models.titer_softsensor.first_version": "approval"})
    d = pipeline.gate(lake, NAME, rec.version, envelope=env)
    reg = ModelRegistry(lake)
    assert d["decision"] == "awaiting_approval" and "first_version = approval" in d["reason"]
    assert reg.get(NAME, rec.version).status == "awaiting_approval" and reg.champion(NAME) is None
    assert reg.table()["status"].to_list() == ["awaiting_approval"]  # visible in the registry view

    # promotion outside the envelope without an approval is refused
    with pytest.raises(approvals.ApprovalError, match="no approval bound to its evidence"):
        approvals.promote(lake, NAME, rec.version)
    # the trainer cannot sign their own model; a reason is required
    with pytest.raises(approvals.ApprovalError, match="separation of duties: trainer@lab trained"):
        approvals.approve(lake, NAME, rec.version, "approved", "looks fine", env)
    monkeypatch.setenv("LAKEHOUSE_IDENTITY", "qa.reviewer@lab")
    with pytest.raises(approvals.ApprovalError, match="reason is required"):
        approvals.approve(lake, NAME, rec.version, "approved", "  ", env)
    only_boss = _envelope(
        tmp_path, "boss", **{"models.titer_softsensor.first_version": "approval", "approvals.approvers": ["boss@lab"]}
    )
    with pytest.raises(approvals.ApprovalError, match="not an approver"):
        approvals.approve(lake, NAME, rec.version, "approved", "ok", only_boss)

    sig = approvals.approve(lake, NAME, rec.version, "approved", "validation report VR-7 reviewed", env)
    assert sig["signed_by"] == "qa.reviewer@lab" and sig["status"] == "champion"
    assert sig["evidence_sha256"] == d["evidence_sha256"] and sig["signed_at"].endswith("+00:00")
    assert reg.champion(NAME).version == rec.version

    # a breach of the envelope's drift limits demotes the champion through the audit trail
    breach = {"rolling_rmse": 9.0, "heldout_rmse": 1.0, "n_results": 12, "psi_drifted": []}
    keep = approvals.check_in_service(lake, NAME, breach, env)
    assert keep["breaches"] and not keep["demoted"] and reg.champion(NAME) is not None  # demote_on_breach: false
    demoting = _envelope(tmp_path, "demote", **{"defaults.drift.demote_on_breach": True})
    out = approvals.check_in_service(lake, NAME, breach, demoting)
    assert out["demoted"] and "rolling RMSE 9 > 3.0" in out["breaches"][0] and reg.champion(NAME) is None

    log = AuditLog(lake)
    trail = [(e.action, e.subject, e.actor) for e in log.entries()]
    subject = f"model:{NAME}:{rec.version}"
    assert trail == [
        ("envelope_change", "envelope:config/ml/envelope.yaml", "trainer@lab"),
        ("approval", subject, "qa.reviewer@lab"),
        ("promotion", subject, "qa.reviewer@lab"),
        ("demotion", subject, "system:verification"),
    ]
    approval = log.entries()[1].details
    assert approval["evidence_sha256"] == d["evidence_sha256"] and approval["artifact_sha256"] == rec.artifact_sha256
    assert approval["reason"] == "validation report VR-7 reviewed" and approval["trained_by"] == "trainer@lab"
    assert log.verify().ok

    # someone edits the approval's reason in the table's files: verify names entry 2
    table = DeltaTable(log.uri)
    files = table.file_uris()
    for f in files:
        rows = pq.read_table(f).to_pylist()
        if any(r["seq"] == 2 for r in rows):
            for r in rows:
                if r["seq"] == 2:
                    r["details_json"] = r["details_json"].replace("VR-7 reviewed", "VR-8 reviewed")
            os.remove(f)
            pq.write_table(pa.Table.from_pylist(rows, schema=AUDIT_SCHEMA), f)
    bad = log.verify()
    assert not bad.ok and bad.first_bad_seq == 2 and "edited" in bad.problem


def test_envelope_file_is_checked_and_its_changes_are_audited(lake_local, tmp_path):
    a = _envelope(tmp_path, "a")
    assert approvals.record_envelope(lake_local, a) and not approvals.record_envelope(lake_local, a)
    b = _envelope(tmp_path, "b", **{"defaults.max_range_expansion": 0.1})
    assert approvals.record_envelope(lake_local, b)
    changes = [e.details for e in AuditLog(lake_local).entries()]
    assert [c["sha256"] for c in changes] == [a.sha256, b.sha256] and changes[1]["previous_sha256"] == a.sha256
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: {first_version: sometimes}\n")
    with pytest.raises(ValueError, match="first_version must be one of"):
        load_envelope(bad)
    bad.write_text("defaults: {ranges: {ph: [7.5, 6.5]}}\n")
    with pytest.raises(ValueError, match=r"ranges.ph must be \[low, high\]"):
        load_envelope(bad)
