"""The ``harness run`` command's arguments, and the :class:`~harness.run.RunOptions` they make.

Kept apart from :mod:`harness.cli.parser` because ``run`` has the most options (backends,
replicas, devices, subsets, signing) and the parser module must stay readable.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.run import RunOptions


DEFAULT_PACKAGE = "mini-safety"


def positive_int(text: str) -> int:
    """An argparse type: a whole number above 0 (``--limit 0`` used to mean "everything")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not above 0 (leave the option out to run every sample)")
    return value


def add_run_command(sub: Any, fmt: type[argparse.HelpFormatter]) -> argparse.ArgumentParser:
    """Register ``harness run`` on the subparsers ``sub``."""
    run: argparse.ArgumentParser = sub.add_parser(
        "run", help="run a sealed package against a model and record the result",
        description="Check the package seal, verify its data, generate an answer per sample, score, "
        "sign the run record and append it to the package's dossier.",
        epilog="examples:\n  harness run\n  harness run packages/mini-safety --model path/to/hf-model\n"
        "  harness run mini-safety --seed 7 --max-tokens 32 --json\n"
        "  harness run xstest --mirror ../shared/data\n"
        "  harness run mini-safety --serve vllm --vllm-python .venv-vllm/bin/python --engine-arg=--enforce-eager\n"
        "  harness run mini-safety --endpoint http://127.0.0.1:8000/v1 --model my-model\n"
        "  harness run mini-safety --endpoint http://10.0.0.1:8000/v1 --endpoint http://10.0.0.2:8000/v1 --model m\n"
        "  harness run mini-safety --model models/llama-1b --device cuda --batch-size 8\n"
        "  harness run mini-safety --limit 24 --filter language=hi --no-gate\n\n"
        "exit codes: 0 ok, 7 a baseline FAILed the gate (see docs/statistics.md), 3 run incomplete, 2 bad input",
        formatter_class=fmt,
    )
    run.add_argument("package", nargs="?", default=DEFAULT_PACKAGE, help=f"package folder or name (default: {DEFAULT_PACKAGE})")
    run.add_argument("--model", help="local model folder (default: the embedded tiny-chat model), or the served "
                     "model name with --endpoint")
    run.add_argument("--backend", default="transformers", choices=["transformers"], help="in-process backend")
    run.add_argument("--endpoint", metavar="URL", action="append",
                     help="an existing OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1; give it more than once "
                     "to spread one run over identical replicas (same model and engine version, checked; "
                     "deterministic assignment and failover, recorded)")
    run.add_argument("--serve", choices=["vllm"], help="launch a vLLM server for this run on 127.0.0.1 and stop it afterwards")
    run.add_argument("--engine-arg", action="append", default=[], metavar="ARG",
                     help="extra vLLM argument(s), repeatable, e.g. --engine-arg='--tensor-parallel-size 2'")
    run.add_argument("--vllm-python", metavar="PATH", help="python of the environment with vLLM (or HARNESS_VLLM_PYTHON)")
    run.add_argument("--deterministic", action="store_true", help="ask vLLM for batch-invariant kernels; the record says whether it took")
    run.add_argument("--concurrency", type=int, default=16, help="requests in flight for servers (default 16)")
    run.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR",
                     help="environment variable holding the endpoint's API key (never recorded)")
    run.add_argument("--mirror", type=Path, help="folder mirroring upstream data files (or set HARNESS_DATA_MIRROR)")
    run.add_argument("--seed", type=int, help="override the package's run seed (recorded as an override)")
    run.add_argument("--max-tokens", type=int, help="override max tokens (recorded)")
    run.add_argument("--temperature", type=float, help="override temperature (recorded)")
    run.add_argument("--top-p", type=float, help="override top_p (recorded)")
    run.add_argument("--threads", type=int, default=1, help="CPU threads for the transformers backend (default 1: reproducible)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                     help="transformers backend: auto (a CUDA GPU when torch sees one, default), cpu or cuda; recorded")
    run.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto",
                     help="transformers backend: auto (bfloat16 on a GPU that supports it, float32 on the CPU); recorded")
    run.add_argument("--batch-size", type=positive_int, default=1, metavar="N",
                     help="transformers backend: prompts generated at once, left padded (default 1: answers do not "
                     "depend on batching); batching changes the arithmetic, so it is recorded")
    run.add_argument("--limit", type=positive_int, metavar="N",
                     help="a stratified sample of N prompts (language x category x expected), drawn from the run "
                     "seed; recorded, and marked as a subset everywhere")
    run.add_argument("--sample-ids", type=Path, metavar="FILE", help="run only the ids in FILE (one per line; recorded)")
    run.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                     help="run only samples with this language, category, expected or id; repeatable "
                     "(e.g. --filter language=hi); recorded")
    run.add_argument("--no-gate", action="store_true",
                     help="exit 0 even when a baseline FAILs (exploratory runs); the verdicts are still recorded")
    run.add_argument("--judge-model", metavar="PATH", help="local folder of a judge scorer's model (judge packages)")
    run.add_argument("--judge-endpoint", metavar="URL", help="server of a judge scorer whose backend is 'openai'")
    run.add_argument("--sign", choices=["key", "sigstore"], default="key",
                     help="key: the local P-256 key (offline, default); sigstore: keyless, with an OIDC identity "
                     "from the environment (SIGSTORE_ID_TOKEN or a CI's ambient credential)")
    run.add_argument("--sigstore-staging", action="store_true", help="sign with Sigstore's staging instance (tests)")
    run.add_argument("--dossiers", type=Path, help="dossiers folder (default: ./dossiers or HARNESS_DOSSIERS)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the unfinished run of this configuration, and fail if there is none "
                       "(without either flag, an unfinished run is continued when there is one)")
    again.add_argument("--fresh", action="store_true", help="discard an unfinished run of this configuration and start over")
    run.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    return run


def endpoints_of(given: list[str] | None) -> str | tuple[str, ...] | None:
    """``--endpoint`` once (a server) or more (replicas of one)."""
    if not given:
        return None
    return given[0] if len(given) == 1 else tuple(given)


def run_options(args: argparse.Namespace, progress: bool) -> RunOptions:
    """The options ``harness run`` was given, as what :func:`harness.run.run_package` takes."""
    from harness.run import RunOptions

    return RunOptions(
        package=args.package, model=args.model, backend=args.backend, mirror=args.mirror, seed=args.seed,
        max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p, threads=args.threads,
        endpoint=endpoints_of(args.endpoint), serve=args.serve, engine_args=tuple(args.engine_arg),
        concurrency=args.concurrency, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
        api_key_env=args.api_key_env, deterministic=args.deterministic, vllm_python=args.vllm_python,
        dossiers_dir=args.dossiers, limit=args.limit, progress=progress, sign=args.sign,
        sample_ids=args.sample_ids, filters=tuple(args.filter),
        sigstore_staging=args.sigstore_staging, judge_model=args.judge_model, judge_endpoint=args.judge_endpoint,
        resume="require" if args.resume else "fresh" if args.fresh else "auto",
    )
