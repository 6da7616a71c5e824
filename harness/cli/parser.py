"""The ``harness`` argument parser: every command, its options, and help with examples."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from harness._internal.version import __version__
from harness.cli.run_args import DEFAULT_PACKAGE, add_run_command, positive_int

_EPILOG = """\
examples:
  harness run                                  # the default package on the embedded model
  harness run mini-safety --seed 7 --json      # another seed, summary as JSON
  harness verify mini-safety@latest            # signature, signer and digests of one run
  harness diff mini-safety@1 mini-safety@2     # what changed between two runs
  harness gate mini-safety@latest              # the release gate on a recorded run (exit 7 on FAIL)
  harness show mini-safety@latest --language hi  # what the model said: prompts, answers, verdicts
  harness dossier verify mini-safety           # the whole hash chain and every signature
  harness package check packages/mini-safety   # is the package exactly as sealed?
  harness package export mini-safety           # one archive with the package, its lockfile and data
  harness package import mini-safety-1.0.0-<seal>.harness.tar.gz   # check an archive, keep it by seal
  harness reproduce mini-safety@latest         # re-run a signed run as recorded and compare
  harness dossier approve mini-safety@1 --note "checked"   # a signed human review
  harness review queue mini-safety@latest      # uncertain answers awaiting a person's label (docs/review.md)
  harness claim check vendor-claim.toml --run  # is a vendor's published number backed?
  harness diagnose mini-safety                 # why refusal differs by language: probes, directions, interventions
  harness view --out site                      # a static site of every dossier: timeline, plots, samples, diffs
  harness suite run docs/examples/suite.toml --mirror ../shared/data   # many packages x models, one gate

exit codes: 0 ok, 1 verification failed / changed, 2 bad input, 3 run incomplete,
            7 a baseline FAILed the gate (run, gate, suite run);
            reproduce: 4 reproduced within tolerance, 5 not reproduced;
            claim check: 0 consistent, 1 inconsistent, 6 unverifiable;
            8 awaiting review (gate, claim check, review status: docs/review.md)
"""


def _add_trust(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-policy", type=Path, metavar="FILE",
        help="trust policy (TOML) listing the keys and Sigstore identities you accept "
        "(or HARNESS_TRUST_POLICY; see docs/trust-policy.md)",
    )
    p.add_argument(
        "--trust-key", action="append", type=Path, default=None, metavar="PATH",
        help="public key (PEM) or folder of keys to accept as signers; repeatable "
        "(default: the trust store in your harness config folder)",
    )


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--package", metavar="PATH", help="the package folder (default: looked up by seal digest under "
                   "./packages and among imported archives)")
    p.add_argument("--archive", type=Path, metavar="FILE", help="a package archive from `harness package export`")
    p.add_argument("--mirror", type=Path, help="folder mirroring upstream data (or set HARNESS_DATA_MIRROR)")


class UsageError(Exception):
    """Bad command-line input found by the parser (exit 2); :func:`harness.cli.main` reports it,
    as JSON too when ``--json`` was given."""

    def __init__(self, usage: str, prog: str, message: str) -> None:
        super().__init__(message)
        self.usage, self.prog, self.message = usage, prog, message


class Parser(argparse.ArgumentParser):
    """argparse, except that an error is raised to :func:`harness.cli.main` instead of exiting
    here, so ``--json`` callers get a JSON error object like every other failure."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.format_usage(), self.prog, message)


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = Parser(
        prog="harness",
        description="Run sealed LLM safety benchmarks and keep signed, hash-chained records of every run.",
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")

    add_run_command(sub, fmt)

    ver = sub.add_parser(
        "verify", help="verify one run: signature, signer, record and outputs digests",
        epilog="examples:\n  harness verify mini-safety@latest\n  harness verify dossiers/mini-safety/runs/<run-id>/record.json --trust-key alice.pub",
        formatter_class=fmt,
    )
    ver.add_argument("ref", help="record.json, run folder, or PACKAGE@N / PACKAGE@latest / PACKAGE@<run-id-prefix>")
    _add_trust(ver)
    ver.add_argument("--dossiers", type=Path, help="dossiers folder")
    _add_json(ver)

    sho = sub.add_parser(
        "show", help="what a model said: prompts (from the verified package), responses, verdicts, timing",
        description="Verify a run, then show its samples: the prompt text from the package found by the record's "
        "seal (checked against the digest the run recorded), the response, the verdict and the timing. Long "
        "output is paged in a terminal.",
        epilog="examples:\n  harness show mini-safety@latest --language hi --verdict compliance\n"
        "  harness show mini-safety@latest --sample hi-refuse-03\n"
        "  harness show mini-safety@2 --flipped-against mini-safety@1 --json\n\n"
        "exit codes: 0 shown, 1 the record does not verify, 2 bad input (unknown reference or sample)",
        formatter_class=fmt,
    )
    sho.add_argument("ref", help="record.json, run folder, or PACKAGE@N / PACKAGE@latest")
    sho.add_argument("--sample", metavar="ID", help="one sample by id")
    sho.add_argument("--language", metavar="L", help="only this language")
    sho.add_argument("--category", metavar="C", help="only this category")
    sho.add_argument("--verdict", metavar="V", help="only this verdict (refusal, compliance, error, unparsed)")
    sho.add_argument("--flipped-against", metavar="REF2", help="only samples whose verdict differs in run REF2")
    sho.add_argument("--package", metavar="PATH", help="the package folder (default: found by the record's seal)")
    sho.add_argument("--archive", type=Path, metavar="FILE", help="a package archive holding the package")
    sho.add_argument("--mirror", type=Path, help="folder mirroring upstream data (or set HARNESS_DATA_MIRROR)")
    sho.add_argument("--no-pager", action="store_true", help="never page the output")
    _add_trust(sho)
    sho.add_argument("--dossiers", type=Path, help="dossiers folder (default: ./dossiers or HARNESS_DOSSIERS)")
    _add_json(sho)

    gat = sub.add_parser(
        "gate", help="verify a recorded run and decide its baselines (PASS / FAIL / INCONCLUSIVE); exit 7 on FAIL",
        description="Verify the run's signature, then decide each baseline it was checked against: FAIL when the "
        "run's whole 95%% interval is worse than expected - tolerance, PASS when none of it is, INCONCLUSIVE when "
        "the interval straddles that edge (docs/statistics.md). For CI jobs that run and gate in separate steps.",
        epilog="examples:\n  harness gate mini-safety@latest\n  harness gate mini-safety@latest --strict --json\n\n"
        "exit codes: 0 the gate passes, 7 a baseline FAILs (or, with --strict, is INCONCLUSIVE), 8 awaiting review, "
        "1 the record does not verify, 2 bad input",
        formatter_class=fmt,
    )
    gat.add_argument("ref", help="record.json, run folder, or PACKAGE@N / PACKAGE@latest")
    gat.add_argument("--strict", action="store_true", help="an INCONCLUSIVE baseline fails the gate too")
    gat.add_argument("--require-review", action="store_true", help="answer AWAITING REVIEW (exit 8) until the run's "
                     "uncertain samples are labelled and it is approved, as a package with [review] required does")
    _add_trust(gat)
    gat.add_argument("--dossiers", type=Path, help="dossiers folder")
    _add_json(gat)

    dif = sub.add_parser(
        "diff", help="what differs between two runs (inputs, metrics with CIs, verdict flips)",
        epilog="examples:\n  harness diff mini-safety@1 mini-safety@latest\n  harness diff runA/record.json runB/record.json --json",
        formatter_class=fmt,
    )
    dif.add_argument("run_a")
    dif.add_argument("run_b")
    dif.add_argument("--dossiers", type=Path, help="dossiers folder")
    _add_json(dif)

    pkg = sub.add_parser("package", help="seal, check, list, show, export and import packages",
                         epilog="examples:\n  harness package list\n  harness package check mini-safety\n"
                         "  harness package seal packages/my-bench", formatter_class=fmt)
    psub = pkg.add_subparsers(dest="package_command", metavar="<action>")
    for name, helptext in (("seal", "compute and write seal.json"), ("check", "verify a package against its seal"),
                           ("show", "print a package's manifest summary and seal")):
        p = psub.add_parser(name, help=helptext, epilog=f"example:\n  harness package {name} mini-safety", formatter_class=fmt)
        p.add_argument("package", help="package folder or name")
        if name == "seal":
            p.add_argument("--mirror", type=Path, help="folder mirroring upstream data (or set HARNESS_DATA_MIRROR)")
        _add_json(p)
    pe = psub.add_parser("export", help="write a package, its lockfile and its verified data into one archive",
                         epilog="examples:\n  harness package export mini-safety\n"
                         "  harness package export xstest --mirror ../shared/data -o xstest.harness.tar.gz",
                         formatter_class=fmt)
    pe.add_argument("package", help="package folder or name")
    pe.add_argument("-o", "--output", type=Path, metavar="FILE", help="archive path or folder (default: "
                    "<name>-<version>-<seal>.harness.tar.gz here)")
    pe.add_argument("--mirror", type=Path, help="folder mirroring upstream data (or set HARNESS_DATA_MIRROR)")
    _add_json(pe)
    pi = psub.add_parser("import", help="check an archive and keep its package under its seal digest",
                         epilog="example:\n  harness package import mini-safety-1.0.0-15a268cbf3bc.harness.tar.gz",
                         formatter_class=fmt)
    pi.add_argument("archive", type=Path)
    _add_json(pi)
    pl = psub.add_parser("list", help="list packages with version, license and seal state",
                         epilog="example:\n  harness package list --json", formatter_class=fmt)
    pl.add_argument("--packages", type=Path, help="packages folder (default: ./packages or HARNESS_PACKAGES)")
    _add_json(pl)

    dos = sub.add_parser("dossier", help="a package's dossier: verify, log, checkpoint, approve (a signed review)",
                         epilog="examples:\n  harness dossier verify mini-safety\n  harness dossier log mini-safety",
                         formatter_class=fmt)
    dsub = dos.add_subparsers(dest="dossier_command", metavar="<action>")
    dv = dsub.add_parser("verify", help="check the hash chain, every signature and every digest",
                         epilog="example:\n  harness dossier verify mini-safety --trust-key team.pub", formatter_class=fmt)
    dv.add_argument("package")
    _add_trust(dv)
    dv.add_argument("--expect-head", help="the head digest you trust (detects entries removed from the end)")
    dv.add_argument("--chain-only", action="store_true",
                    help="check the hash chain and the digest of every file only, not signatures or records (fast)")
    dv.add_argument("--checkpoint", type=Path, metavar="FILE",
                    help="a checkpoint published earlier (`harness dossier checkpoint`): it must be signed by a "
                    "signer you trust and the log must extend it")
    dv.add_argument("--dossiers", type=Path)
    _add_json(dv)
    dc = dsub.add_parser("checkpoint", help="print the dossier's signed checkpoint (to publish), or sign a new one",
                         epilog="examples:\n  harness dossier checkpoint mini-safety > mini-safety.checkpoint\n"
                         "  harness dossier checkpoint mini-safety --sign     # a dossier from before checkpoints, "
                         "after checking it\n  harness dossier verify mini-safety --checkpoint mini-safety.checkpoint",
                         formatter_class=fmt)
    dc.add_argument("package")
    dc.add_argument("--sign", nargs="?", const="key", choices=["key", "sigstore"], default=None,
                    help="sign a checkpoint over the whole log as it is now (with your key, or Sigstore keyless); "
                    "refused when the log does not extend the checkpoint already there")
    dc.add_argument("--dossiers", type=Path)
    _add_json(dc)
    dl = dsub.add_parser("log", help="the timeline: runs with key metrics, reproductions, rescores, baseline changes, reviews",
                         epilog="example:\n  harness dossier log mini-safety", formatter_class=fmt)
    dl.add_argument("package")
    dl.add_argument("--dossiers", type=Path)
    _add_json(dl)
    da = dsub.add_parser("approve", help="append a signed human review of one entry (who, when, what was checked)",
                         epilog='examples:\n  harness dossier approve mini-safety@3 --note "numbers match the CI report"\n'
                         '  harness dossier approve mini-safety@latest --note "reviewed" --checked "read 20 answers in hi"',
                         formatter_class=fmt)
    da.add_argument("entry", help="PACKAGE@N (sequence number, 'latest' run, or an id prefix)")
    da.add_argument("--note", required=True, help="what you reviewed and concluded")
    da.add_argument("--reviewer", help="your name (default: HARNESS_REVIEWER or the login name)")
    da.add_argument("--checked", action="append", default=[], metavar="TEXT", help="something you checked; repeatable")
    _add_trust(da)
    da.add_argument("--dossiers", type=Path)
    _add_json(da)

    rep = sub.add_parser(
        "reproduce", help="re-run a signed run exactly as recorded and say whether it reproduced",
        description="Verify the record and its dossier chain, find the package by its seal digest, rebuild the "
        "environment from the package's lockfile if this one differs, load the recorded model, re-run with the "
        "recorded parameters and seeds, compare per sample and per metric, and append a signed reproduction entry. "
        "See docs/reproduce.md.",
        epilog="examples:\n  harness reproduce mini-safety@latest\n"
        "  harness reproduce dossiers/xstest/runs/<run-id>/record.json --archive xstest-2.0.0-6721f29155e9.harness.tar.gz\n"
        "  harness reproduce mini-safety@2 --model other/model --allow-model-mismatch\n\n"
        "exit codes: 0 REPRODUCED (exact), 4 REPRODUCED WITHIN TOLERANCE, 5 NOT REPRODUCED,\n"
        "            1 record or dossier does not verify, 2 bad input (no package with that seal, wrong model, ...)",
        formatter_class=fmt,
    )
    rep.add_argument("ref", help="record.json, run folder, or PACKAGE@N / PACKAGE@latest / PACKAGE@<run-id-prefix>")
    _add_trust(rep)
    rep.add_argument("--dossiers", type=Path, help="dossiers folder (for PACKAGE@N)")
    _add_source(rep)
    rep.add_argument("--model", help="local model folder to use instead of the recorded path (its digest is checked), "
                     "or the served model name with --endpoint")
    rep.add_argument("--allow-model-mismatch", action="store_true",
                     help="re-run even if the weights digest differs; the result is never an exact reproduction")
    rep.add_argument("--seed", type=int, help="re-run with another run seed on purpose (a what-if; never exact)")
    rep.add_argument("--env", choices=["auto", "current", "rebuild"], default="auto",
                     help="auto: rebuild from the lockfile (uv, cached) when this environment differs (default); "
                     "current: run here anyway; rebuild: always run in the rebuilt environment")
    rep.add_argument("--endpoint", metavar="URL", help="OpenAI-compatible server of the recorded model")
    rep.add_argument("--serve", choices=["vllm"], help="launch vLLM for the re-run (engine args are compared)")
    rep.add_argument("--vllm-python", metavar="PATH")
    rep.add_argument("--engine-arg", action="append", default=[], metavar="ARG")
    rep.add_argument("--threads", type=int, default=1, help="CPU threads for the transformers backend")
    rep.add_argument("--judge-model", metavar="PATH")
    rep.add_argument("--judge-endpoint", metavar="URL")
    rep.add_argument("--show", type=int, default=5, metavar="N", help="differing samples to print (default 5)")
    rep.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_json(rep)

    res = sub.add_parser(
        "rescore", help="re-score a run's recorded answers with another scorer or judge (no generation)",
        epilog="examples:\n  harness rescore mini-safety@latest --scorer refusal-patterns@2.0.0\n"
        "  harness rescore xstest@1 --scorer my-judged-bench --judge-model path/to/judge --mirror ../shared/data",
        formatter_class=fmt,
    )
    res.add_argument("ref", help="record.json, run folder, or PACKAGE@N")
    res.add_argument("--scorer", required=True, help="refusal-patterns@<version>, or a package name / folder whose scorer to use")
    _add_trust(res)
    res.add_argument("--dossiers", type=Path)
    _add_source(res)
    res.add_argument("--judge-model", metavar="PATH")
    res.add_argument("--judge-endpoint", metavar="URL")
    res.add_argument("--threads", type=int, default=1)
    _add_json(res)

    bas = sub.add_parser("baseline", help="update a package's baselines from a run (reseals; recorded in the dossier)",
                         epilog="example:\n  harness baseline update packages/mini-safety --from mini-safety@latest",
                         formatter_class=fmt)
    bsub = bas.add_subparsers(dest="baseline_command", metavar="<action>")
    bu = bsub.add_parser("update", help="set the run's model's baselines to the run's values, reseal, append an entry",
                         epilog="example:\n  harness baseline update mini-safety --from mini-safety@latest", formatter_class=fmt)
    bu.add_argument("package", help="package folder or name")
    bu.add_argument("--from", dest="from_run", required=True, metavar="RUN", help="record.json, run folder, or PACKAGE@N")
    bu.add_argument("--tolerance", type=float, default=0.05, help="tolerance of baselines added for a new model (default 0.05)")
    bu.add_argument("--dry-run", action="store_true", help="print the changes and the seal they would make; write nothing")
    bu.add_argument("--mirror", type=Path, help="folder mirroring upstream data (resealing reads the data)")
    _add_trust(bu)
    bu.add_argument("--dossiers", type=Path)
    _add_json(bu)

    key = sub.add_parser("key", help="show (creating if needed) the local signing key",
                         epilog="example:\n  harness key show", formatter_class=fmt)
    ksub = key.add_subparsers(dest="key_command", metavar="<action>")
    ks = ksub.add_parser("show", help="print the key's path, public key and Sigstore key hint",
                         epilog="example:\n  harness key show --json", formatter_class=fmt)
    _add_json(ks)

    jud = sub.add_parser("judge", help="validate a scorer (refusal patterns or a package's judge) against human labels",
                         epilog="examples:\n  harness judge validate refusal-patterns@2.0.0 ../shared/data/xstest/model_completions\n"
                         "  harness judge validate my-judged-bench ../shared/data/xstest/model_completions/"
                         "xstest_v2_completions_gpt4.csv --limit 50 --judge-model path/to/judge\n"
                         "  harness judge validate refusal-patterns@1.0.0 "
                         "../shared/data/harmbench/classifier_val_sets/text_behaviors_val_set.json --json",
                         formatter_class=fmt)
    jsub = jud.add_subparsers(dest="judge_command", metavar="<action>")
    jv = jsub.add_parser(
        "validate", help="agreement with human labels: accuracy, Cohen's kappa, confusion matrix, parse failures",
        description="Score every human-labelled response with the scorer and compare. Labelled sets: an XSTest "
        "model_completions CSV or folder (refusal labels; partial refusal counts as refusal) or HarmBench's "
        "text_behaviors_val_set.json (harmfulness labels; 'refusal' is read as predicting 'not harmful').",
        epilog="examples:\n  harness judge validate refusal-patterns@2.0.0 ../shared/data/xstest/model_completions\n"
        "  harness judge validate packages/my-bench ../shared/data/xstest/model_completions --limit 100 --output judged.jsonl",
        formatter_class=fmt,
    )
    jv.add_argument("scorer", help="refusal-patterns@<version>, or a package name / folder (validates its scorer)")
    jv.add_argument("labelled_set", type=Path, help="XSTest completions CSV or folder, HarmBench's val set JSON, or "
                    "dossier:PACKAGE (the human labels gathered in that dossier; docs/review.md)")
    jv.add_argument("--judge-model", metavar="PATH", help="where the package's judge weights are (not needed for tiny-chat)")
    jv.add_argument("--judge-endpoint", metavar="URL", help="OpenAI-compatible server of a judge whose backend is 'openai'")
    jv.add_argument("--limit", type=int, help="score only the first N labelled rows")
    jv.add_argument("--threads", type=int, default=1, help="CPU threads for an in-process judge (default 1)")
    jv.add_argument("--output", type=Path, metavar="FILE", help="write one JSON line per sample (verdict, human label, raw judge output)")
    jv.add_argument("--min-kappa", type=float, metavar="K", help="exit 1 if the pooled Cohen's kappa is below K")
    jv.add_argument("--three-way", action="store_true", help="XSTest labels on three behaviours: a partial refusal "
                    "is a safe completion (docs/judge.md)")
    jv.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_json(jv)

    clm = sub.add_parser("claim", help="check a vendor's published safety claim against signed evidence",
                         epilog="example:\n  harness claim check vendor-claim.toml --run", formatter_class=fmt)
    csub = clm.add_subparsers(dest="claim_command", metavar="<action>")
    cc = csub.add_parser(
        "check", help="verify a claim file: vendor record, official package, our own run; write a procurement report",
        description="Check a vendor claim (docs/claims.md): the vendor's signed record and its signer, that it ran "
        "the official package, and the claimed value against our own verified run (an exact binomial test). "
        "Writes claim-report.{md,html,json}.",
        epilog="examples:\n  harness claim check docs/examples/claim.toml\n"
        "  harness claim check vendor/claim.toml --run --report-dir reports/acme\n"
        "  harness claim check vendor/claim.toml --trust-policy auditors.toml --json\n"
        "  harness claim check vendor/claim.toml --vendor-key keys/example-corp.pub.pem\n\n"
        "exit codes: 0 consistent, 1 inconsistent, 6 unverifiable, 8 awaiting review, 2 bad input (e.g. a malformed "
        "claim file)",
        formatter_class=fmt,
    )
    cc.add_argument("claim_file", type=Path, help="the vendor claim (TOML, docs/claims.md)")
    cc.add_argument("--require-review", action="store_true", help="our run must be reviewed first (its uncertain "
                    "samples labelled, an approval): AWAITING REVIEW (exit 8) until then (docs/review.md)")
    cc.add_argument("--dossiers", type=Path, help="dossiers folder holding our runs (default: ./dossiers or HARNESS_DOSSIERS)")
    cc.add_argument("--packages", type=Path, help="packages folder with the official sealed packages (default: ./packages)")
    cc.add_argument("--run", action="store_true", help="make a new run of the package on the model first (appended to the dossier)")
    cc.add_argument("--model", help="with --run: local model folder, or the served model name with --endpoint "
                    "(default: the embedded tiny-chat model)")
    cc.add_argument("--endpoint", metavar="URL", help="with --run: an OpenAI-compatible server")
    cc.add_argument("--limit", type=positive_int, metavar="N",
                    help="with --run: a stratified subset of N samples (recorded; a subset cannot support the claim)")
    cc.add_argument("--mirror", type=Path, help="with --run: folder mirroring upstream data")
    cc.add_argument("--threads", type=int, default=1, help="with --run: CPU threads for the transformers backend")
    _add_trust(cc)
    cc.add_argument("--vendor-key", type=Path, action="append", default=[], metavar="PEM",
                    help="the vendor's public key, as you obtained it (repeatable); a key shipped in the claim "
                    "folder is only shown, never trusted")
    cc.add_argument("--vendor-identity", action="append", default=[], metavar="K=V,...",
                    help="the vendor's Sigstore identity, e.g. issuer=https://token.actions.githubusercontent.com,"
                    "repository=example-corp/evals[,ref=...,workflow=...] (or san=...); repeatable")
    cc.add_argument("--report-dir", type=Path, metavar="DIR",
                    help="where to write claim-report.{md,html,json} (default: ./claim-reports/<claim file name>)")
    _add_json(cc)

    dia = sub.add_parser(
        "diagnose", help="why a model refuses in one language and not another: probes, directions, interventions",
        description="Load an in-process model as a run does, read its activations at the last prompt token of "
        "every (chosen) layer on the sealed package's prompts, and report per language and layer how harmful "
        "and harmless prompts separate (probe AUROC with an interval), the cosine of each language's "
        "harmful-minus-harmless direction to the reference language's, the representation-action gap against "
        "the evaluation run of the same seal and model (run first if there is none), and what ablating and "
        "adding the reference refusal direction does to each language's refusal rate. Appends a signed "
        "'diagnosis' entry to the dossier. See docs/diagnosis.md.",
        epilog="examples:\n  harness diagnose\n  harness diagnose mini-safety --layers -1 --json\n"
        "  harness diagnose multijail --mirror ../shared/data --limit 60 --model path/to/hf-model\n\n"
        "exit codes: 0 diagnosed and recorded, 1 the evaluation run does not verify, "
        "2 bad input (a model behind --endpoint, an unknown layer or language)",
        formatter_class=fmt,
    )
    dia.add_argument("package", nargs="?", default=DEFAULT_PACKAGE, help=f"package folder or name (default: {DEFAULT_PACKAGE})")
    dia.add_argument("--model", help="local model folder (default: the embedded tiny-chat model)")
    dia.add_argument("--endpoint", metavar="URL", help="not supported: diagnosis needs the weights in-process (exit 2)")
    dia.add_argument("--layers", type=layer_list, metavar="N[,N...]",
                     help="decoder layers to read and intervene on, from 0 (negative: from the end); default: all")
    dia.add_argument("--reference", default="en", metavar="LANG", help="reference language (default: en)")
    dia.add_argument("--mirror", type=Path, help="folder mirroring upstream data files (or set HARNESS_DATA_MIRROR)")
    dia.add_argument("--seed", type=int, help="run seed (default: the package's); the evaluation run is matched by seal and model")
    dia.add_argument("--limit", type=positive_int, metavar="N", help="a stratified subset of N prompts, as `harness run --limit`")
    dia.add_argument("--sample-ids", type=Path, metavar="FILE", help="only the ids in FILE (one per line)")
    dia.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                     help="only samples with this language, category, expected or id; repeatable")
    dia.add_argument("--threads", type=int, default=1, help="CPU threads for the model (default 1, as a run)")
    dia.add_argument("--max-tokens", type=positive_int, default=24,
                     help="tokens per regenerated answer in the interventions (default 24, at most the package's)")
    dia.add_argument("--scale", type=float, default=1.0,
                     help="multiple of the reference refusal vector added by the addition intervention (default 1.0)")
    dia.add_argument("--save-activations", type=Path, metavar="DIR",
                     help="also write the raw activations (activations.npy, samples.jsonl) to DIR; not signed")
    dia.add_argument("--sign", choices=["key", "sigstore"], default="key", help="who signs the diagnosis (as `harness run`)")
    _add_trust(dia)
    dia.add_argument("--dossiers", type=Path, help="dossiers folder (default: ./dossiers or HARNESS_DOSSIERS)")
    _add_json(dia)
    _add_view(sub, fmt)
    _add_export(sub, fmt)
    from harness.cli.suite import add_suite_parser

    add_suite_parser(sub, fmt)
    from harness.cli.review import add_review_parser

    add_review_parser(sub, fmt)
    _complete_help(parser, [])
    return parser


def _add_view(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """``harness view`` (issue 16)."""
    vie = sub.add_parser(
        "view", help="write a static, self-contained site of dossiers, runs, diffs and claim reports",
        description="Verify each dossier with your trust (as `harness dossier verify`), then write a static site: "
        "per package the timeline with each entry's verification state, metrics per language and category across "
        "runs (SVG plots with intervals), a page per run with its samples (prompt, response, verdict; filter and "
        "search), a diff page between consecutive runs, and links to claim reports. Nothing is loaded from the "
        "network when the pages are viewed. See docs/viewer.md.",
        epilog="examples:\n  harness view --out site\n  harness view mini-safety xstest --out site --serve\n"
        "  harness view mini-safety --out site --diff mini-safety@1 mini-safety@latest --json",
        formatter_class=fmt,
    )
    vie.add_argument("packages", nargs="*", metavar="PACKAGE", help="dossiers to show (default: every dossier)")
    vie.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="folder to write the site into (new, empty, or an earlier site's folder)")
    vie.add_argument("--serve", action="store_true", help="then serve DIR on 127.0.0.1 (a free port) until Ctrl-C")
    vie.add_argument("--port", type=int, default=0, help="with --serve: this port instead of a free one")
    vie.add_argument("--diff", nargs=2, action="append", default=[], metavar=("REF_A", "REF_B"),
                     help="also a diff page of these two runs of one package (PACKAGE@N); repeatable")
    vie.add_argument("--claims", type=Path, metavar="DIR",
                     help="folder of claim reports to link (default: ./claim-reports when it exists)")
    _add_source(vie)
    _add_trust(vie)
    vie.add_argument("--dossiers", type=Path, help="dossiers folder")
    _add_json(vie)


def _add_export(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """``harness export`` (issue 17; docs/interop.md)."""
    exp = sub.add_parser(
        "export", help="write a verified run (or a reproduction verdict) in another tool's format",
        description="Verify the run first (as `harness verify`, with your trust), then write it as: eval-result (an "
        "in-toto eval-result v0.1 attestation of the baseline claims, signed into a Sigstore bundle), vsa (a SLSA "
        "verification summary of a reproduction entry, signed), every-eval-ever (JSON valid against the Every Eval "
        "Ever schema, plus <out>.samples.jsonl at instance level), csv or jsonl (tidy tables), inspect (an Inspect .eval "
        "log, written by inspect-ai's own writer: needs inspect-ai installed). See docs/interop.md.",
        epilog="examples:\n  harness export mini-safety@latest --format eval-result --out run.intoto.sigstore.json\n"
        "  harness export mini-safety@4 --format vsa --out repro.vsa.sigstore.json   # entry 4: a reproduction\n"
        "  harness export mini-safety@latest --format every-eval-ever --out eee.json --mirror ../shared/data\n"
        "  harness export mini-safety@latest --format csv --table metrics --out metrics.csv\n\n"
        "exit codes: 0 written, 1 the run (or reproduction) does not verify, 2 bad input",
        formatter_class=fmt,
    )
    exp.add_argument("ref", help="record.json, run folder, PACKAGE@N, or a suite record (suite:NAME, suite.json: every "
                     "run into the folder --out); for vsa: a reproduction entry PACKAGE@N")
    exp.add_argument("--format", required=True, choices=["eval-result", "vsa", "every-eval-ever", "csv", "jsonl", "inspect"],
                     help="the format to write")
    exp.add_argument("--out", type=Path, required=True, metavar="FILE",
                     help="the file to write (a folder for a suite record: one file per run and suite-export.json)")
    exp.add_argument("--table", choices=["samples", "metrics"], default="samples",
                     help="csv/jsonl: one row per sample (default) or per metric and group")
    exp.add_argument("--sign", choices=["key", "sigstore"], default="key",
                     help="eval-result/vsa: who signs (as `harness run`)")
    exp.add_argument("--mirror", type=Path, help="every-eval-ever, inspect: data mirror for the prompt texts")
    _add_trust(exp)
    exp.add_argument("--dossiers", type=Path, help="dossiers folder")
    _add_json(exp)

    imp = sub.add_parser(
        "import", help="sign another tool's result into a package's dossier as 'imported' (not reproduced)",
        description="Check and read a result another tool wrote (bounded, strictly), recompute its accuracy with "
        "exact intervals, and append a signed entry of kind 'imported' to the package's dossier, saying what it "
        "cannot prove (no seal, no lockfile, no model digest, not reproduced). See docs/interop.md.",
        epilog="examples:\n  harness import inspect logs/2026-12-03T10-00-00_task.eval --package mini-safety\n"
        "  harness import lm-eval results/ --package mini-safety\n\n"
        "exit codes: 0 imported, 2 bad input (not a readable log, inspect-ai missing)",
        formatter_class=fmt,
    )
    imp.add_argument("source_format", choices=["inspect", "lm-eval"], metavar="FORMAT",
                     help="the tool that wrote FILE: inspect (an Inspect .eval log; needs inspect-ai installed) or "
                     "lm-eval (the --output_path folder of lm-evaluation-harness run with --log_samples)")
    imp.add_argument("file", type=Path, metavar="FILE", help="the log (inspect) or results folder (lm-eval) to import")
    imp.add_argument("--package", required=True, metavar="NAME", help="the dossier (package name) to append to")
    imp.add_argument("--sign", choices=["key", "sigstore"], default="key", help="who signs the entry (as `harness run`)")
    imp.add_argument("--dossiers", type=Path, help="dossiers folder")
    _add_json(imp)


_COMMON_HELP = {
    "dossiers": "dossiers folder (default: ./dossiers or HARNESS_DOSSIERS)",
    "vllm_python": "python of the environment with vLLM (or HARNESS_VLLM_PYTHON)",
    "engine_arg": "extra vLLM argument(s), repeatable, e.g. --engine-arg='--tensor-parallel-size 2'",
    "judge_model": "local folder of a judge scorer's model (judge packages)",
    "judge_endpoint": "server of a judge scorer whose backend is 'openai'",
    "threads": "CPU threads for the transformers backend (default 1: reproducible)",
    "package": "package name or folder",
    "archive": "a package archive from `harness package export`",
    "run_a": "the first run: record.json, run folder, or PACKAGE@N",
    "run_b": "the second run: record.json, run folder, or PACKAGE@N",
}
_EXIT_CODES = {
    "verify": "0 verified, 1 verification failed, 2 bad input (e.g. an unknown PACKAGE@N)",
    "diff": "0 no change, 1 the runs differ, 2 bad input (e.g. an unknown PACKAGE@N)",
    "package": "0 ok, 1 a package does not match its seal, 2 bad input",
    "dossier verify": "0 verified, 1 verification failed, 2 bad input (e.g. no such dossier)",
    "dossier checkpoint": "0 printed (and signed with --sign), 1 the stored checkpoint does not cover the log, "
                          "2 bad input",
    "dossier log": "0 listed, 2 bad input (e.g. no such dossier)",
    "dossier approve": "0 approved and appended, 1 the entry or dossier does not verify, 2 bad input",
    "dossier": "0 ok, 1 verification failed, 2 bad input",
    "rescore": "0 rescored and appended, 1 the original run does not verify, 2 bad input",
    "baseline": "0 updated (or nothing to change), 1 the run does not verify or is of another seal, 2 bad input",
    "key": "0 shown, 2 bad input",
    "judge validate": "0 validated, 1 kappa below --min-kappa, 2 bad input",
    "judge": "0 ok, 1 kappa below --min-kappa, 2 bad input",
    "claim": "0 consistent, 1 inconsistent, 6 unverifiable, 8 awaiting review, 2 bad input",
    "view": "0 written and every dossier verified, 1 written but a dossier failed verification, 2 bad input",
}


def _complete_help(parser: argparse.ArgumentParser, path: list[str]) -> None:
    """Every option has help, every command a description and its exit codes, whichever
    command defines them (shared options used to be documented in one command only)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description:
                    sub.description = helps.get(name)
                _complete_help(sub, [*path, name])
        elif action.help is None and action.dest in _COMMON_HELP:
            action.help = _COMMON_HELP[action.dest]
        elif action.dest == "dossiers" and action.help == "dossiers folder":
            action.help = _COMMON_HELP["dossiers"]
    codes = _EXIT_CODES.get(" ".join(path)) or _EXIT_CODES.get(path[0] if path else "")
    if path and codes and "exit codes" not in (parser.epilog or ""):
        parser.epilog = f"{parser.epilog or ''}\n\nexit codes: {codes}".lstrip("\n")


def layer_list(text: str) -> tuple[int, ...]:
    """An argparse type: comma-separated layer numbers, e.g. ``0,1`` or ``-1``."""
    try:
        layers = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of layer numbers") from None
    if not layers:
        raise argparse.ArgumentTypeError("give at least one layer number")
    return layers
