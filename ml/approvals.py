"""Governed promotion: the gate's conclusion (evidence floor → envelope → promote or wait for an
approval), approvals / e-signatures, and demotion on an envelope breach — every step an entry of
the audit trail (:mod:`lakehouse.audit`).

* :func:`conclude` takes the gate's comparison (:func:`ml.promotion.decide` with ``record=False``):
  below the evidence floor → ``rejected``; better than champion and baseline and inside the
  envelope → promoted (audit ``promotion`` by ``system:promotion-gate`` with the evidence);
  outside the envelope → status ``awaiting_approval``. The decision's evidence is stored with the
  version (tag ``lakehouse.gate_evidence``) and hashed (``lakehouse.evidence_sha256``).
* :func:`approve` — ``lakehouse approve MODEL VERSION --meaning approved|rejected --reason ...``:
  the signer is :func:`lakehouse.audit.current_identity` (``LAKEHOUSE_IDENTITY`` or the OS user;
  never an argument), the time is the audit entry's UTC time, the signature is bound to the
  model version, its artifact sha256 and the evidence hash. The identity that trained the
  version cannot sign it (``approvals.separation_of_duties``); ``approvals.approvers`` limits
  who can.
* :func:`promote` refuses a version outside its envelope unless an approval bound to its current
  evidence is in the audit trail.
"""

from __future__ import annotations

import hashlib
import json

import polars as pl

from lakehouse.audit import AuditLog, canonical_json, current_identity
from lakehouse.storage import Lake
from ml.envelope import EnvelopeConfig, assess, drift_breach, evidence_floor
from ml.registry import TAG, ModelRegistry, RegisteredModel

MEANINGS = ("approved", "rejected")
GATE_ACTOR = "system:promotion-gate"


class ApprovalError(PermissionError):
    """An approval or a promotion that the rules do not allow (one line says why)."""


def _subject(name: str, version: int) -> str:
    return f"model:{name}:{int(version)}"


def evidence_hash(evidence: dict) -> str:
    """sha256 of the canonical JSON of a gate decision's evidence."""
    return hashlib.sha256(canonical_json(evidence).encode("utf-8")).hexdigest()


def gate_evidence(reg: ModelRegistry, name: str, version: int) -> tuple[dict, str | None]:
    """The stored gate evidence of a version and its hash (``({}, None)`` before any gate)."""
    tags = reg.client.get_model_version(name, str(int(version))).tags or {}
    raw = tags.get(f"{TAG}gate_evidence")
    return (json.loads(raw), tags.get(f"{TAG}evidence_sha256")) if raw else ({}, None)


# ----------------------------------------------------------------------------- envelope versions
def record_envelope(lake: Lake, cfg: EnvelopeConfig) -> bool:
    """Append an ``envelope_change`` audit entry when the envelope file differs from the last one
    recorded (its first use included). Returns True when an entry was written."""
    log = AuditLog(lake)
    subject = "envelope:config/ml/envelope.yaml"
    last = [e for e in log.entries() if e.action == "envelope_change" and e.subject == subject]
    before = last[-1].details.get("sha256") if last else None
    if before == cfg.sha256:
        return False
    log.append(
        "envelope_change",
        subject,
        {"sha256": cfg.sha256, "previous_sha256": before, "version": cfg.version, "path": cfg.path},
    )
    return True


# ----------------------------------------------------------------------------- the gate
def _heldout_counts(rows: pl.DataFrame, kind: str, champion_meta: dict | None) -> tuple[int, int | None, int | None]:
    """(rows, batches, positives) of the held-out rows the comparison used (rows the champion
    trained on removed, as :func:`ml.promotion.decide` does)."""
    if champion_meta is not None and rows.height:
        if kind == "regression" and "batch_id" in rows.columns:
            rows = rows.filter(~pl.col("batch_id").is_in(list(champion_meta["split"]["train_batches"])))
        elif "date" in rows.columns and champion_meta["split"].get("validation_end"):
            from datetime import date

            rows = rows.filter(pl.col("date") > date.fromisoformat(champion_meta["split"]["validation_end"]))
    batches = int(rows["batch_id"].n_unique()) if "batch_id" in rows.columns else None
    positives = int(rows["label__failure_within_h"].sum()) if "label__failure_within_h" in rows.columns else None
    return rows.height, batches, positives


def conclude(
    lake: Lake,
    name: str,
    version: int,
    decision: dict,
    rows: pl.DataFrame,
    envelope: EnvelopeConfig,
) -> dict:
    """Finish a gate decision: evidence floor, envelope, then promote / await approval / reject.

    Parameters
    ----------
    lake : Lake
    name, version : str, int
        The candidate.
    decision : dict
        :func:`ml.promotion.decide` with ``record=False``.
    rows : polars.DataFrame
        The held-out rows given to ``decide``.
    envelope : EnvelopeConfig

    Returns
    -------
    dict
        ``decision`` extended with ``evidence_floor``, ``envelope`` (the assessment),
        ``status`` and ``evidence_sha256``; ``decision`` is ``promoted``, ``awaiting_approval``
        or ``rejected``.
    """
    reg = ModelRegistry(lake)
    record_envelope(lake, envelope)
    _, cand_meta, rec = reg.load(name, version)
    champ = reg.champion(name)
    champ_meta = reg.load(name, champ.version)[1] if champ is not None and champ.version != version else None
    n_rows, n_batches, n_pos = _heldout_counts(rows, cand_meta["kind"], champ_meta)
    floor = evidence_floor(envelope, cand_meta["kind"], n_rows, n_batches, n_pos)
    out = dict(decision) | {"evidence_floor": floor, "artifact_sha256": rec.artifact_sha256, "model_uri": rec.model_uri}
    if decision.get("promoted") and not floor["met"]:
        out |= {
            "promoted": False,
            "decision": "rejected",
            "reason": "below the evidence floor: " + "; ".join(floor["shortfalls"]),
        }
    if out.get("promoted"):
        assessment = assess(envelope, name, decision, cand_meta, champ_meta)
        out["envelope"] = assessment
        if not assessment["inside"]:
            out |= {
                "promoted": False,
                "decision": "awaiting_approval",
                "reason": "outside the validated envelope: " + "; ".join(assessment["violations"]),
            }
    else:
        out["envelope"] = {"envelope_version": envelope.version, "envelope_sha256": envelope.sha256}
    ev_hash = evidence_hash(out)
    reg.client.set_model_version_tag(name, str(version), f"{TAG}gate_evidence", canonical_json(out))
    reg.client.set_model_version_tag(name, str(version), f"{TAG}evidence_sha256", ev_hash)
    if out["decision"] == "promoted":
        promote(lake, name, version)
    elif out["decision"] == "awaiting_approval":
        reg.set_status(name, version, "awaiting_approval")
    reg.record_promotion(
        {k: out.get(k) for k in ("model_name", "candidate_version", "champion_version", "decision", "promoted")}
        | {k: out.get(k) for k in ("metric", "candidate_value", "champion_value", "baseline_value", "n_eval_rows")}
        | {"evidence_json": json.dumps(out, default=str), "decided_at": None}
    )
    out["status"] = reg.get(name, version).status
    out["evidence_sha256"] = ev_hash
    out["has_champion_after"] = reg.champion(name) is not None
    return out


# ----------------------------------------------------------------------------- promotion
def _approval_for(log: AuditLog, rec: RegisteredModel, ev_hash: str | None):
    """The latest approval/rejection entry bound to this version's artifact and evidence, or None."""
    signed = [
        e
        for e in log.entries()
        if e.action in ("approval", "rejection")
        and e.subject == _subject(rec.name, rec.version)
        and e.details.get("evidence_sha256") == ev_hash
        and e.details.get("artifact_sha256") == rec.artifact_sha256
    ]
    return signed[-1] if signed else None


def promote(lake: Lake, name: str, version: int) -> None:
    """Make ``version`` the champion — only when its gate found it inside the envelope, or when an
    approval bound to its current evidence is in the audit trail (else :class:`ApprovalError`)."""
    reg = ModelRegistry(lake)
    rec = reg.get(name, version)
    evidence, ev_hash = gate_evidence(reg, name, version)
    if not evidence:
        raise ApprovalError(f"{rec.model_uri} has not been through the promotion gate: refusing to promote it")
    if evidence.get("decision") == "promoted":
        reg.promote(name, version, evidence={"evidence_sha256": ev_hash, "decision": "inside the envelope"})
        return
    log = AuditLog(lake)
    signed = _approval_for(log, rec, ev_hash)
    if evidence.get("decision") != "awaiting_approval" or signed is None or signed.action != "approval":
        raise ApprovalError(
            f"{rec.model_uri} is outside its validated envelope ({evidence.get('decision')}) and has no approval "
            "bound to its evidence: refusing to promote it"
        )
    reg.promote(
        name,
        version,
        evidence={"evidence_sha256": ev_hash, "approval_seq": signed.seq, "approved_by": signed.actor},
        actor=signed.actor,
    )


def approve(lake: Lake, name: str, version: int, meaning: str, reason: str, envelope: EnvelopeConfig) -> dict:
    """Sign a version awaiting approval (``meaning`` ``approved`` → it is promoted; ``rejected`` →
    status ``rejected``). The signer is :func:`lakehouse.audit.current_identity`.

    Returns
    -------
    dict
        ``signed_by``, ``signed_at`` (UTC), ``meaning``, ``reason``, ``model_uri``,
        ``evidence_sha256``, ``audit_seq``, ``status``.
    """
    if meaning not in MEANINGS:
        raise ApprovalError(f"meaning must be one of {MEANINGS}, got {meaning!r}")
    if not (reason or "").strip():
        raise ApprovalError("a reason is required for an approval or rejection")
    reg = ModelRegistry(lake)
    rec = reg.get(name, version)
    who = current_identity()
    if rec.status != "awaiting_approval":
        raise ApprovalError(f"{rec.model_uri} is {rec.status}, not awaiting approval")
    rules = envelope.approvals
    if rules.get("separation_of_duties", True) and who == rec.trained_by:
        raise ApprovalError(f"separation of duties: {who} trained {rec.model_uri} and cannot sign it")
    if rules.get("approvers") and who not in rules["approvers"]:
        raise ApprovalError(f"{who} is not an approver (envelope approvals.approvers)")
    _, ev_hash = gate_evidence(reg, name, version)
    entry = AuditLog(lake).append(
        "approval" if meaning == "approved" else "rejection",
        _subject(name, version),
        {
            "meaning": meaning,
            "reason": reason.strip(),
            "model_uri": rec.model_uri,
            "artifact_sha256": rec.artifact_sha256,
            "evidence_sha256": ev_hash,
            "trained_by": rec.trained_by,
            "envelope_sha256": envelope.sha256,
        },
        actor=who,
    )
    signature = {
        "signed_by": who,
        "signed_at": entry.at.isoformat(),
        "meaning": meaning,
        "reason": reason.strip(),
        "model_uri": rec.model_uri,
        "evidence_sha256": ev_hash,
        "audit_seq": entry.seq,
    }
    reg.client.set_model_version_tag(name, str(version), f"{TAG}signature", canonical_json(signature))
    if meaning == "approved":
        promote(lake, name, version)
    else:
        reg.set_status(name, version, "rejected")
    return signature | {"status": reg.get(name, version).status}


# ----------------------------------------------------------------------------- in service
def check_in_service(lake: Lake, name: str, verification: dict, envelope: EnvelopeConfig) -> dict:
    """Compare a champion's verification result with its envelope's drift limits; on a breach with
    ``drift.demote_on_breach`` the champion is demoted through the audit trail.

    Returns
    -------
    dict
        ``breaches`` (one line each), ``demoted`` (bool), ``version``.
    """
    breaches = drift_breach(envelope, name, verification)
    reg = ModelRegistry(lake)
    champ = reg.champion(name)
    demote = bool(breaches and champ and (envelope.for_model(name).get("drift") or {}).get("demote_on_breach"))
    if demote:
        reg.demote(name, champ.version, "; ".join(breaches), evidence={"verification": verification})
    return {"breaches": breaches, "demoted": demote, "version": champ.version if champ else None}
