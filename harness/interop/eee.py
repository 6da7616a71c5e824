"""Export a verified run in the Every Eval Ever schema (evaleval/every_eval_ever, schema 0.3.0).

Two documents: the aggregate (``eval.schema.json``: one ``evaluation_results`` item per
metric and group, with the run's exact interval in ``uncertainty.confidence_interval``,
the inference engine, and the judge where the scorer is one) and the instance-level
lines (``instance_level_eval.schema.json``: one JSON line per sample). The schema has
no place for a signature, a seal or a record digest; they go in its string-valued
``additional_details`` so a reader can come back to the signed record. Mapping, and
what the schema cannot carry: docs/interop.md.
"""

from __future__ import annotations

import json
from calendar import timegm
from pathlib import Path
from time import strptime
from typing import Any, Final

from harness.interop.common import HARNESS_NAME, VerifiedRun, checked_prompts, metric_label
from harness.record import OUTPUTS_NAME, RECORD_NAME, RunRecord
from harness.scoring.base import JudgeScorerInfo
from harness.scoring.metrics import DIRECTIONS

EEE_SCHEMA_VERSION: Final = "0.3.0"
"""The ``version`` of the upstream schemas this mapping was written against."""


def _epoch(stamp: str) -> str:
    """RFC 3339 UTC (``2026-12-03T09:47:29Z``, fractions allowed) as Unix seconds, a string."""
    try:
        return str(timegm(strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return stamp


def _strings(d: dict[str, Any]) -> dict[str, str]:
    """``additional_details`` take strings only: JSON-encode anything else, drop None."""
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in d.items() if v is not None}


def evaluation_id(rec: RunRecord) -> str:
    """``eval_name/model_id/retrieved_timestamp``, the schema's recommended form."""
    return f"{rec.package.name}/{rec.model.name}/{_epoch(rec.finished_at)}"


def _model_info(rec: RunRecord) -> dict[str, Any]:
    m = rec.model
    served = m.backend in ("openai",)
    info: dict[str, Any] = {
        "name": m.name, "id": m.name,
        "inference_platform": m.backend,
        "additional_details": {
            "deployment_type": "externally_managed" if served else "self_deployed",
            "model_availability": "unknown",
            **_strings({"model_digest": m.digest, "revision": m.revision, "backend": m.backend}),
        },
    }
    if m.engine.name:
        info["inference_engine"] = {"name": m.engine.name, **({"version": m.engine.version} if m.engine.version else {})}
    return info


def _llm_scoring(rec: RunRecord) -> dict[str, Any] | None:
    s = rec.scorer
    if not isinstance(s, JudgeScorerInfo):
        return None
    judge = {"model_info": {"name": s.model, "id": s.model, "additional_details": {
        "deployment_type": "externally_managed" if s.backend == "openai" else "self_deployed",
        "model_availability": "unknown",
        **_strings({"revision": s.revision, "weights_digest": s.weights_digest, "identity_digest": s.identity_digest,
                    "backend": s.backend})}}}
    return {"judges": [judge], "input_prompt": s.template,
            "additional_details": _strings({"template_sha256": s.template_sha256, "parse_regex": s.parse.regex})}


def aggregate(run: VerifiedRun) -> dict[str, Any]:
    """The aggregate document (valid against ``eval.schema.json``)."""
    rec = run.record
    stamp = _epoch(rec.finished_at)
    gen = rec.generation
    judge = _llm_scoring(rec)
    results = []
    for m in rec.metrics:
        label = metric_label(m.metric, m.group)
        config: dict[str, Any] = {
            "evaluation_description": f"{m.metric} of {rec.package.name} {rec.package.version}, group {m.group}",
            "metric_id": m.metric, "metric_name": m.metric, "metric_kind": "proportion",
            "metric_unit": "proportion", "metric_parameters": {"group": m.group},
            "lower_is_better": DIRECTIONS.get(m.metric, "higher_is_safer") == "lower_is_safer",
            "score_type": "continuous", "min_score": 0, "max_score": 1,
        }
        if judge is not None:
            config["llm_scoring"] = judge
        ci: dict[str, Any] = {"lower": m.ci_low, "upper": m.ci_high}
        if m.ci_method:
            ci["method"] = m.ci_method
        results.append({
            "evaluation_result_id": f"{rec.package.name}:{label}",
            "evaluation_name": f"{rec.package.name}/{label}",
            "source_data": {"dataset_name": rec.package.name, "source_type": "other", "additional_details": _strings({
                "package_version": rec.package.version, "package_seal": rec.package.seal,
                "data": {d.id: d.sha256 for d in rec.data}, "subset": rec.is_subset})},
            "evaluation_timestamp": rec.finished_at,
            "metric_config": config,
            "score_details": {"score": m.value,
                              "details": _strings({"successes": m.successes, "n": m.n, "group": m.group}),
                              "uncertainty": {"confidence_interval": ci, "num_samples": m.n}},
            "generation_config": {
                "generation_args": {"temperature": gen.temperature, "top_p": gen.top_p,
                                    **({"max_tokens": gen.max_tokens} if gen.max_tokens >= 1 else {})},
                "additional_details": _strings({"stop": list(gen.stop), "run_seed": rec.seeds.run,
                                                "sample_seed_rule": rec.seeds.sample_rule}),
            },
        })
    return {
        "schema_version": EEE_SCHEMA_VERSION,
        "evaluation_id": evaluation_id(rec),
        "evaluation_timestamp": rec.finished_at,
        "retrieved_timestamp": stamp,
        "source_metadata": {
            "source_name": HARNESS_NAME, "source_type": "evaluation_run",
            "source_organization_name": run.verified.signer, "evaluator_relationship": "other",
            "additional_details": _strings({
                "run_id": rec.run_id, "record_sha256": run.subjects[RECORD_NAME],
                "outputs_sha256": run.subjects[OUTPUTS_NAME], "outputs_content_sha256": rec.outputs.content_sha256,
                "signer": run.verified.signer, "signature": f"{RECORD_NAME} is signed in record.sigstore.json",
                "lockfile_sha256": rec.lockfile.sha256, "lockfile_matched": rec.lockfile.matches}),
        },
        "eval_library": {"name": HARNESS_NAME, "version": rec.harness.version,
                         "additional_details": _strings({"commit": rec.harness.commit, "dirty": rec.harness.dirty})},
        "model_info": _model_info(rec),
        "evaluation_results": results,
    }


def instances(run: VerifiedRun, *, mirror: Path | None = None) -> list[dict[str, Any]]:
    """The instance-level lines (each valid against ``instance_level_eval.schema.json``).

    Prompts come from the package found by the record's seal, checked against the digest
    the run recorded; without the package ``input.raw`` is empty and ``metadata.prompt``
    says why (the record keeps only each prompt's sha256, in ``sample_hash``).
    """
    rec = run.record
    prompts, origin = checked_prompts(run, mirror)
    eid = evaluation_id(rec)
    out = []
    for line in run.lines:
        sid = str(line["id"])
        prompt = prompts.get(sid)
        correct = line.get("correct") is True
        timing: dict[str, Any] = line["timing"] if isinstance(line.get("timing"), dict) else {}
        item: dict[str, Any] = {
            "schema_version": EEE_SCHEMA_VERSION, "evaluation_id": eid, "model_id": rec.model.name,
            "evaluation_name": rec.package.name, "sample_id": sid,
            "sample_hash": line.get("prompt_sha256"), "interaction_type": "single_turn",
            "input": {"raw": prompt or "", "reference": [str(line.get("expected"))]},
            "output": {"raw": [line.get("response") or ""]},
            "answer_attribution": [{"turn_idx": 0, "source": "output.raw", "extracted_value": str(line.get("verdict")),
                                    "extraction_method": rec.scorer.kind, "is_terminal": True}],
            "evaluation": {"score": 1.0 if correct else 0.0, "is_correct": correct},
            "error": line.get("error"),
            "metadata": _strings({"language": line.get("language"), "category": line.get("category"),
                                  "expected": line.get("expected"), "verdict": line.get("verdict"),
                                  "finish_reason": line.get("finish_reason"), "seed": line.get("seed"),
                                  "prompt": "from the sealed package, checked against sample_hash"
                                  if prompt is not None
                                  else origin if not prompts else "the package's text does not match the recorded sha256"}),
        }
        if isinstance(timing.get("latency_s"), int | float):
            item["performance"] = {"latency_ms": round(float(timing["latency_s"]) * 1000, 3)}
        out.append(item)
    return out


def instance_lines(items: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(i, ensure_ascii=False, sort_keys=True).encode() + b"\n" for i in items)
