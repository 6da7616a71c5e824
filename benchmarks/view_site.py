"""`harness view` at scale: a dossier of 1,000 signed runs, and one run of 20,000 samples.

Goal (issue 16): building the site for a dossier of 1,000 runs takes under 10 s, and every
page stays under 2 MB.

    uv run python benchmarks/view_site.py [--runs 1000] [--big 20000] [--json]

How the dossier is made: one real run of the default package (mini-safety, 120 samples)
on the embedded model, then 999 more runs cloned from it, each a real signed run record
(local key) whose verdicts differ from the one before in about 5% of the samples (seeded),
with its metrics and baseline verdicts recomputed by the harness's own functions, chained
into the log and covered by a signed checkpoint at the end, so the viewer does everything
it does for real runs: verify every signature and digest, find the package by seal and
check each prompt against its digest, diff every consecutive pair, plot, page. The
"big" case is a second dossier whose one run has 20,000 samples (the package's 120 over and
over, under new ids), for the per-sample pages. Timed: :func:`harness.report.site.build_site`
(median of 3), and the whole `harness view` process once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LIMIT_S = 10.0
LIMIT_BYTES = 2_000_000


def _env(ws: Path) -> dict[str, str]:
    return {"HARNESS_CONFIG_DIR": str(ws / "config"), "HARNESS_DOSSIERS": str(ws / "dossiers"),
            "HARNESS_CHECKPOINTS_DIR": str(ws / "checkpoints"), "HARNESS_PACKAGES": str(ws / "packages"),
            "HARNESS_CACHE_DIR": str(ws / "cache")}


def _clone_runs(ws: Path, dossiers: Path, template_dir: Path, runs: int, flip: float, seed: int,
                repeat: int = 1) -> None:
    """Append ``runs`` signed runs cloned from the run in ``template_dir`` to its package's dossier in ``dossiers``."""
    from harness import signing as sign
    from harness._internal.hashing import sha256_bytes
    from harness.dossier.log import GENESIS, Dossier, Entry, FileRef
    from harness.packages.package import load_package
    from harness.record import (
        BUNDLE_NAME,
        OUTPUTS_NAME,
        PREDICATE_TYPE_RUN,
        RECORD_NAME,
        OutputsRef,
        content_digest,
        output_line,
        parse_record,
        read_outputs,
    )
    from harness.scoring.metrics import Scored, check_baselines, compute_metrics
    from harness.signing.signers import KeySigner

    template = parse_record(template_dir / RECORD_NAME)
    base_lines = list(read_outputs(template_dir / OUTPUTS_NAME))
    if repeat > 1:
        base_lines = [{**x, "id": f"{x['id']}-r{k:05d}"} for k in range(repeat) for x in base_lines]
    manifest = load_package(ws / "packages" / template.package.name).manifest
    names = list(dict.fromkeys(m.metric for m in template.metrics))
    key = sign.load_or_create_key(ws / "config")
    rng = random.Random(seed)
    dossier = Dossier.for_package(template.package.name, dossiers)
    dossier.root.mkdir(parents=True, exist_ok=True)
    prev, seq = dossier.head()[1], dossier.head()[0]
    lines = [dict(x) for x in base_lines]
    with open(dossier.log, "ab") as log:
        for i in range(runs):
            for x in lines:
                if rng.random() < flip:
                    x["verdict"] = "compliance" if x["verdict"] == "refusal" else "refusal"
                    x["correct"] = (x["verdict"] == "refusal") == (x["expected"] == "refuse")
            outputs = b"".join(output_line(x) for x in lines)
            scored = [Scored(x["id"], x["language"], x["category"], x["expected"], x["verdict"]) for x in lines]
            metrics = compute_metrics(scored, names)
            run_id = f"20270101T{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}Z-{rng.getrandbits(32):08x}"
            record = template.model_copy(update={
                "run_id": run_id, "metrics": metrics, "previous_entry": prev if seq else None,
                "baselines": check_baselines(manifest.baselines, metrics, [template.model.name], manifest.gate_rule),
                "outputs": OutputsRef(path=OUTPUTS_NAME, sha256=sha256_bytes(outputs), content_sha256=content_digest(lines),
                                      samples=len(lines), errors=0),
            })
            rec = record.to_bytes()
            summary = {"run_id": run_id, "package": record.package.name, "version": record.package.version,
                       "seal": record.package.seal, "model_digest": record.model.digest,
                       "outputs_content_sha256": record.outputs.content_sha256}
            bundle = sign.sign_statement({RECORD_NAME: sha256_bytes(rec), OUTPUTS_NAME: sha256_bytes(outputs)},
                                         PREDICATE_TYPE_RUN, summary, key)
            run_dir = dossier.run_dir(run_id)
            run_dir.mkdir(parents=True)
            for name, data in ((RECORD_NAME, rec), (BUNDLE_NAME, bundle), (OUTPUTS_NAME, outputs)):
                (run_dir / name).write_bytes(data)
            rel = f"runs/{run_id}"
            entry = Entry(seq=seq + 1, prev=prev if seq else GENESIS, run_id=run_id, time=record.finished_at,
                          package=record.package.name, package_version=record.package.version,
                          seal=record.package.seal, model_digest=record.model.digest, status=record.status,
                          record=FileRef(path=f"{rel}/{RECORD_NAME}", sha256=sha256_bytes(rec)),
                          bundle=FileRef(path=f"{rel}/{BUNDLE_NAME}", sha256=sha256_bytes(bundle)),
                          outputs=FileRef(path=f"{rel}/{OUTPUTS_NAME}", sha256=sha256_bytes(outputs)))
            line = entry.line()
            log.write(line + b"\n")
            prev, seq = sha256_bytes(line), seq + 1
    dossier.sign_checkpoint(KeySigner(ws / "config"))


def _sizes(out: Path) -> tuple[int, int, int, str]:
    files = [p for p in out.rglob("*.html")]
    sizes = {p: p.stat().st_size for p in files}
    big = max(sizes, key=lambda p: sizes[p])
    return len(files), sum(sizes.values()), sizes[big], str(big.relative_to(out))


def measure(ws: Path, runs: int, big: int) -> dict[str, Any]:
    from harness.report.site import ViewOptions, build_site
    from harness.signing.policy import resolve_trust

    shutil.copytree(REPO / "packages" / "mini-safety", ws / "packages" / "mini-safety")
    shutil.copytree(REPO / "lockfiles", ws / "lockfiles")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "run", str(ws / "packages" / "mini-safety"), "--no-progress",
                    "--no-gate", "--json"], check=True, capture_output=True, env={**os.environ, **_env(ws)}, cwd=ws)
    first_run = time.perf_counter() - t
    runs_dir = ws / "dossiers" / "mini-safety" / "runs"
    template = next(runs_dir.iterdir())
    t = time.perf_counter()
    _clone_runs(ws, ws / "dossiers", template, runs - 1, 0.05, 1)
    cloned = time.perf_counter() - t
    out: dict[str, Any] = {"runs": runs, "samples_per_run": 120, "make_first_run_s": round(first_run, 1),
                           "make_clones_s": round(cloned, 1)}
    trusted = resolve_trust()
    times = []
    for _ in range(3):
        res = build_site(ViewOptions(out=ws / "site", packages=("mini-safety",), trusted=trusted, claims=ws / "none"))
        assert res.ok, res.packages
        times.append(res.seconds)
    pages, total, largest, where = _sizes(ws / "site")
    out.update({"build_s_median": round(statistics.median(times), 2), "build_s_all": [round(x, 2) for x in times],
                "pages": pages, "total_mb": round(total / 1e6, 1), "largest_page_bytes": largest,
                "largest_page": where})
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "view", "mini-safety", "--out", str(ws / "site-cli"),
                    "--claims", str(ws / "none")], check=True, capture_output=True, env={**os.environ, **_env(ws)},
                   cwd=ws)
    out["cli_process_s"] = round(time.perf_counter() - t, 2)
    if big:
        _clone_runs(ws, ws / "big-dossiers", template, 1, 0.05, 2, repeat=max(1, big // 120))
        res = build_site(ViewOptions(out=ws / "site-big", dossiers_dir=ws / "big-dossiers", trusted=trusted,
                                     claims=ws / "none"))
        assert res.ok, res.packages
        bp, btotal, blargest, bwhere = _sizes(ws / "site-big")
        out["big"] = {"samples": max(1, big // 120) * 120, "build_s": round(res.seconds, 2), "pages": bp,
                      "total_mb": round(btotal / 1e6, 1), "largest_page_bytes": blargest, "largest_page": bwhere}
    out["met"] = out["build_s_median"] < LIMIT_S and largest < LIMIT_BYTES and (
        not big or out["big"]["largest_page_bytes"] < LIMIT_BYTES)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--big", type=int, default=20000, help="samples of the one large run (0: skip)")
    ap.add_argument("--workdir", type=Path, help="keep the scratch dossier and sites here")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-view-bench-") as tmp:
        ws = args.workdir or Path(tmp)
        ws.mkdir(parents=True, exist_ok=True)
        os.environ.update(_env(ws))
        os.chdir(ws)
        res = measure(ws, args.runs, args.big)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"dossier: {res['runs']} signed runs x {res['samples_per_run']} samples (first run {res['make_first_run_s']} s, "
          f"clones {res['make_clones_s']} s)")
    print(f"build_site: median {res['build_s_median']} s of {res['build_s_all']} (goal < {LIMIT_S:.0f} s); "
          f"`harness view` whole process {res['cli_process_s']} s")
    print(f"pages: {res['pages']}, {res['total_mb']} MB in all; largest {res['largest_page_bytes']:,} bytes "
          f"({res['largest_page']}; goal < 2 MB)")
    if "big" in res:
        b = res["big"]
        print(f"one run of {b['samples']:,} samples: {b['build_s']} s, {b['pages']} pages, largest "
              f"{b['largest_page_bytes']:,} bytes ({b['largest_page']})")
    print("goal met" if res["met"] else "GOAL NOT MET")


if __name__ == "__main__":
    main()
