"""A reproducible harness for LLM safety benchmarks: sealed packages, signed run records,
a hash-chained dossier.

The public surface, usable from a notebook without knowing the internal modules::

    import harness

    pkg = harness.check_package("mini-safety")              # refuses a package that changed
    result = harness.run_package(harness.RunOptions(package="mini-safety"))
    print(result.record.metric("refusal_rate"))
    harness.verify_record("mini-safety@latest")             # signature, signer, digests
    report = harness.verify_dossier("mini-safety")          # the whole chain, every signature
    change = harness.diff_refs("mini-safety@1", "mini-safety@latest")
    gate = harness.gate_run("mini-safety@latest")            # PASS / FAIL / INCONCLUSIVE per baseline
    said = harness.show_run("mini-safety@latest", harness.Filters(language="hi"))
    rows = harness.to_rows(change)                           # list of dicts; to_dataframe() with pandas
    site = harness.build_site(harness.ViewOptions(out=Path("site")))   # the static site of `harness view`

A run is a :class:`RunPlan` (from a package, or from a signed record) executed with a
backend and a scorer that are passed in (:func:`execute`); :func:`run_package` does the
usual thing. Verification uses the user's own trust policy or trust store unless a
``trusted`` policy or list of keys is given. Every error the harness raises on purpose
is a :class:`HarnessError` with a ``hint``.

Names are imported on first use, so ``import harness`` (and ``harness --help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._internal.lazy import lazy_exports
from harness._internal.version import __version__

if TYPE_CHECKING:
    from harness.audit.gate import GateResult, gate_run
    from harness.audit.show import Filters, ShowResult, show_run
    from harness.backends.base import Backend, GenerationRequest, GenerationResult, ModelIdentity
    from harness.backends.load import load_backend, open_backend
    from harness.diagnose.diagnosis import DiagnoseOptions, DiagnosisResult, diagnose
    from harness.diff import DiffReport, diff_refs, diff_runs
    from harness.dossier.log import Dossier
    from harness.dossier.runs import VerifyResult, verify_record
    from harness.dossier.verify import DossierReport, verify_dossier
    from harness.errors import HarnessError
    from harness.packages.package import Package, list_packages, load_package, resolve_package
    from harness.packages.seal import check_package, seal_package
    from harness.plan import RunPlan
    from harness.record import RunRecord, parse_record
    from harness.report.rows import to_dataframe, to_rows
    from harness.report.site.build import SiteResult, ViewOptions, build_site
    from harness.run import RunOptions, RunResult, execute, run_package, run_plan
    from harness.scoring.base import Judgement, Scorer
    from harness.scoring.factory import make_scorer
    from harness.signing.policy import TrustPolicy, load_trust_policy, resolve_trust
    from harness.suite.record import SuiteRecord
    from harness.suite.run import SuiteOptions, SuiteResult, run_suite
    from harness.suite.verify import SuiteVerification, verify_suite

_HOMES = {
    "Backend": "harness.backends.base",
    "GenerationRequest": "harness.backends.base",
    "GenerationResult": "harness.backends.base",
    "ModelIdentity": "harness.backends.base",
    "load_backend": "harness.backends.load",
    "open_backend": "harness.backends.load",
    "DiagnoseOptions": "harness.diagnose.diagnosis",
    "DiagnosisResult": "harness.diagnose.diagnosis",
    "diagnose": "harness.diagnose.diagnosis",
    "GateResult": "harness.audit.gate",
    "gate_run": "harness.audit.gate",
    "Filters": "harness.audit.show",
    "ShowResult": "harness.audit.show",
    "show_run": "harness.audit.show",
    "to_rows": "harness.report.rows",
    "to_dataframe": "harness.report.rows",
    "ViewOptions": "harness.report.site.build",
    "SiteResult": "harness.report.site.build",
    "build_site": "harness.report.site.build",
    "DiffReport": "harness.diff",
    "diff_refs": "harness.diff",
    "diff_runs": "harness.diff",
    "Dossier": "harness.dossier.log",
    "verify_record": "harness.dossier.runs",
    "VerifyResult": "harness.dossier.runs",
    "DossierReport": "harness.dossier.verify",
    "verify_dossier": "harness.dossier.verify",
    "HarnessError": "harness.errors",
    "Package": "harness.packages.package",
    "list_packages": "harness.packages.package",
    "load_package": "harness.packages.package",
    "resolve_package": "harness.packages.package",
    "check_package": "harness.packages.seal",
    "seal_package": "harness.packages.seal",
    "RunPlan": "harness.plan",
    "RunRecord": "harness.record",
    "parse_record": "harness.record",
    "RunOptions": "harness.run",
    "RunResult": "harness.run",
    "execute": "harness.run",
    "run_package": "harness.run",
    "run_plan": "harness.run",
    "Judgement": "harness.scoring.base",
    "Scorer": "harness.scoring.base",
    "make_scorer": "harness.scoring.factory",
    "TrustPolicy": "harness.signing.policy",
    "load_trust_policy": "harness.signing.policy",
    "resolve_trust": "harness.signing.policy",
    "SuiteRecord": "harness.suite.record",
    "SuiteOptions": "harness.suite.run",
    "SuiteResult": "harness.suite.run",
    "run_suite": "harness.suite.run",
    "SuiteVerification": "harness.suite.verify",
    "verify_suite": "harness.suite.verify",
}

__all__ = [
    "__version__",
    "Backend",
    "DiagnoseOptions",
    "DiagnosisResult",
    "DiffReport",
    "Dossier",
    "Filters",
    "GateResult",
    "ShowResult",
    "SiteResult",
    "ViewOptions",
    "SuiteOptions",
    "SuiteRecord",
    "SuiteResult",
    "SuiteVerification",
    "DossierReport",
    "GenerationRequest",
    "GenerationResult",
    "HarnessError",
    "Judgement",
    "ModelIdentity",
    "Package",
    "RunOptions",
    "RunPlan",
    "RunRecord",
    "RunResult",
    "Scorer",
    "TrustPolicy",
    "VerifyResult",
    "build_site",
    "check_package",
    "diagnose",
    "diff_refs",
    "diff_runs",
    "execute",
    "gate_run",
    "show_run",
    "run_suite",
    "verify_suite",
    "to_dataframe",
    "to_rows",
    "list_packages",
    "load_backend",
    "load_package",
    "load_trust_policy",
    "make_scorer",
    "open_backend",
    "parse_record",
    "resolve_package",
    "resolve_trust",
    "run_package",
    "run_plan",
    "seal_package",
    "verify_dossier",
    "verify_record",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
