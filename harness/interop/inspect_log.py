"""Export a verified run as an Inspect log (``.eval``) that ``inspect view`` and
``inspect_ai.log.read_eval_log`` read, with the harness's provenance in its metadata.

The log is built as plain JSON here (:func:`eval_log`, field by field in docs/interop.md)
and written by Inspect's own models and writer (:func:`write_inspect`): it is validated
as an ``inspect_ai.log.EvalLog`` and saved with ``write_eval_log(..., format="eval")``,
never zipped by hand, so the file is what Inspect itself would write. inspect-ai is not a
dependency of the harness; writing needs it installed (``pip install inspect-ai``), and
the nox session ``interop`` tests the round trip with the real package.

Every sample carries its input (the prompt from the sealed package, checked against the
recorded sha256; a placeholder naming the sha256 when the package is not at hand), the
model's answer, and its score (``C``/``I``: the verdict was / was not the expected
behaviour). ``eval.metadata.harness`` holds the seal, the record's digest and the signer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from harness.errors import HarnessError
from harness.interop.common import (
    HARNESS_NAME,
    HARNESS_URI,
    VerifiedRun,
    checked_prompts,
    metric_label,
)
from harness.record import OUTPUTS_NAME, RECORD_NAME

INSPECT_LOG_VERSION: Final = 2
"""The ``EvalLog.version`` written (inspect-ai 0.3.x)."""
_STOP: Final = {"stop": "stop", "length": "max_tokens"}


def provenance(run: VerifiedRun) -> dict[str, Any]:
    """What ``eval.metadata.harness`` says about the run (all of it verified before export)."""
    rec = run.record
    return {"producer": HARNESS_URI, "run_id": rec.run_id, "record_sha256": run.subjects[RECORD_NAME],
            "outputs_sha256": run.subjects[OUTPUTS_NAME], "outputs_content_sha256": rec.outputs.content_sha256,
            "signer": run.verified.signer, "bundle": "record.sigstore.json beside record.json",
            "package": {"name": rec.package.name, "version": rec.package.version, "seal": rec.package.seal},
            "model_digest": rec.model.digest, "lockfile_sha256": rec.lockfile.sha256,
            "lockfile_matched": rec.lockfile.matches, "subset": rec.is_subset, "scorer": rec.scorer.kind}


def _sample(line: dict[str, Any], prompt: str | None, scorer: str, model: str) -> dict[str, Any]:
    text = prompt if prompt is not None else f"[prompt not available here; sha256 {line.get('prompt_sha256')}]"
    answer = line.get("response") or ""
    assistant = {"role": "assistant", "content": answer, "model": model}
    correct = line.get("correct") is True
    return {
        "id": str(line["id"]), "epoch": 1, "input": text, "target": str(line.get("expected")),
        "messages": [{"role": "user", "content": text}, assistant],
        "output": {"model": model, "choices": [{"message": assistant,
                                                "stop_reason": _STOP.get(str(line.get("finish_reason")), "unknown")}]},
        "scores": {scorer: {"value": "C" if correct else "I", "answer": str(line.get("verdict")),
                            "explanation": f"verdict {line.get('verdict')}, expected {line.get('expected')}"}},
        "metadata": {k: line.get(k) for k in ("language", "category", "expected", "verdict", "finish_reason", "error",
                                              "prompt_sha256", "seed")},
    }


def eval_log(run: VerifiedRun, *, mirror: Path | None = None) -> dict[str, Any]:
    """The Inspect ``EvalLog`` of a verified run, as JSON (validated by Inspect when written)."""
    rec = run.record
    prompts, origin = checked_prompts(run, mirror)
    model = f"{rec.model.backend}/{rec.model.name}"
    scorer = f"{HARNESS_NAME}/{rec.scorer.kind}"
    gen = rec.generation
    spec: dict[str, Any] = {
        "created": rec.started_at, "task": rec.package.name, "task_version": rec.package.version,
        "task_id": rec.package.seal[:22], "run_id": rec.run_id, "eval_id": rec.run_id,
        "dataset": {"name": rec.package.name, "samples": rec.outputs.samples,
                    "sample_ids": [str(line["id"]) for line in run.lines], "shuffled": False},
        "model": model, "config": {"epochs": 1},
        "model_generate_config": {"max_tokens": gen.max_tokens, "temperature": gen.temperature, "top_p": gen.top_p,
                                  "stop_seqs": list(gen.stop), "seed": rec.seeds.run},
        "packages": {HARNESS_NAME: rec.harness.version},
        "metadata": {"harness": {**provenance(run), "prompts": origin}},
    }
    if rec.harness.commit:
        spec["revision"] = {"type": "git", "origin": HARNESS_URI, "commit": rec.harness.commit,
                            "dirty": bool(rec.harness.dirty)}
    scores = [{"name": metric_label(m.metric, m.group), "scorer": scorer, "scored_samples": m.n,
               "metrics": {"value": {"name": "value", "value": m.value},
                           "ci_low": {"name": "ci_low", "value": m.ci_low},
                           "ci_high": {"name": "ci_high", "value": m.ci_high}},
               "metadata": {"group": m.group, "successes": m.successes, "ci_method": m.ci_method}}
              for m in rec.metrics]
    return {
        "version": INSPECT_LOG_VERSION, "status": "success" if rec.status == "complete" else "error",
        "eval": spec,
        "plan": {"name": "plan", "steps": [{"solver": "generate", "params": {}}]},
        "results": {"total_samples": rec.outputs.samples, "completed_samples": rec.outputs.samples - rec.outputs.errors,
                    "scores": scores},
        "stats": {"started_at": rec.started_at, "completed_at": rec.finished_at},
        "samples": [_sample(line, prompts.get(str(line["id"])), scorer, model) for line in run.lines],
    }


def write_inspect(run: VerifiedRun, out: Path, *, mirror: Path | None = None) -> Path:
    """Write ``out`` (``.eval``) with Inspect's own models and writer; refused without inspect-ai."""
    try:
        from inspect_ai.log import EvalLog, write_eval_log
    except ImportError:
        raise HarnessError("exporting an Inspect log needs inspect-ai, which is not installed here",
                           hint="pip install inspect-ai (the .eval file is written by Inspect's own writer), "
                                "or export --format every-eval-ever / jsonl") from None
    if out.suffix != ".eval":
        raise HarnessError(f"{out}: an Inspect log's name must end in .eval", hint="e.g. --out run.eval")
    log = EvalLog.model_validate(eval_log(run, mirror=mirror))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_eval_log(log, str(out), format="eval")
    return out
