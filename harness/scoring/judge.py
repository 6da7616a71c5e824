"""LLM-as-judge scoring.

A judge is a model like any other: it is loaded through a backend, and the identity of
what answered is checked against the pin in the package manifest before a single
sample is scored. Its prompt template is a file inside the package, so the seal covers
it. Every raw judge output is kept; an output that the parse rule cannot read is the
verdict "unparsed", counted and reported, never silently taken as a refusal or an answer.

Every judge marks uncertain verdicts (docs/uncertainty.md): an empty or truncated
answer, an output the parse rule cannot read, and, where the package states a
confidence rule, a stated confidence below its threshold (or none stated).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path

from harness._internal.hashing import sha256_bytes
from harness.backends.base import DEFAULT_MODEL_NAME, Backend, GenerationRequest
from harness.backends.load import load_backend
from harness.errors import HarnessError, ScorerError
from harness.packages.manifest import JudgeSpec
from harness.packages.package import safe_join
from harness.scoring.base import Judgement, JudgeParseInfo, JudgeScorerInfo, Scorer, Verdict
from harness.scoring.behaviours import BINARY, UncertainReason

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PLACEHOLDERS = ("prompt", "response", "language")
"""What a template may use: ``{{prompt}}`` (the sample's prompt), ``{{response}}``
(the answer being judged, required) and ``{{language}}`` (the sample's language)."""




def _template_fields(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


class JudgeScorer(Scorer):
    """An LLM judge: render the template, generate greedily, parse the verdict.

    ``judgements`` keeps every result in call order (verdict, raw output, error);
    ``counts`` tallies verdicts, so parse failures are always visible. Safe to call
    from several threads (a runner with concurrent requests): calls to a backend that
    does not declare ``concurrency`` > 1 are serialised, and the bookkeeping is locked;
    use the ``Judgement`` that ``assess`` returns, not the position in ``judgements``.
    """

    kind = "judge"
    calls_model = True

    def __init__(
        self,
        spec: JudgeSpec,
        template: str,
        backend: Backend,
        *,
        template_path: str | None = None,
        template_sha256: str | None = None,
    ) -> None:
        fields = _template_fields(template)
        unknown = sorted(fields - set(PLACEHOLDERS))
        if unknown:
            raise ScorerError(
                f"judge template {template_path or ''} uses unknown placeholders {unknown}",
                hint=f"allowed: {', '.join('{{' + p + '}}' for p in PLACEHOLDERS)}",
            )
        if "response" not in fields:
            raise ScorerError(
                f"judge template {template_path or ''} has no {{{{response}}}} placeholder",
                hint="the template must show the judge the response it is judging",
            )
        self.spec = spec
        self.template = template
        self.template_path = template_path or spec.template
        self.template_sha256 = template_sha256 or sha256_bytes(template.encode("utf-8"))
        self.backend = backend
        self._regex = re.compile(spec.parse.regex)
        self._confidence = re.compile(spec.parse.confidence) if spec.parse.confidence else None
        self.behaviours = spec.behaviours or BINARY
        self._groups = sorted(self._regex.groupindex, key=self._regex.groupindex.__getitem__)
        self.judgements: list[Judgement] = []
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        serial = backend.concurrency <= 1
        self._generate_lock = threading.Lock() if serial else None
        check_identity(spec, backend)

    @classmethod
    def from_spec(
        cls,
        spec: JudgeSpec,
        package_root: Path | None,
        *,
        model_path: str | Path | None = None,
        endpoint: str | None = None,
        backend: Backend | None = None,
        threads: int = 1,
    ) -> JudgeScorer:
        """Load the template from the package and the judge model, and check the pin."""
        if package_root is None:
            raise ScorerError(
                "a judge scorer needs its package folder (the prompt template is a package file)",
                hint="call make_scorer(spec, package_root)",
            )
        path = safe_join(Path(package_root), spec.template)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ScorerError(
                f"judge prompt template {spec.template} not found in {package_root}",
                hint="add the file, or fix scorer.template in manifest.toml and reseal",
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ScorerError(f"judge template {spec.template} is not UTF-8", hint="save it as UTF-8") from None
        if backend is None:
            backend = load_judge_backend(spec, model_path, endpoint=endpoint, threads=threads)
        return cls(spec, text, backend, template_path=spec.template, template_sha256=sha256_bytes(raw))

    def render(self, response: str, language: str, prompt: str | None) -> str:
        fields = _template_fields(self.template)
        if "prompt" in fields and prompt is None:
            raise ScorerError(
                "this judge's template shows the prompt ({{prompt}}) but classify() was not given one",
                hint="pass prompt= to classify()",
            )
        values = {"prompt": prompt or "", "response": response, "language": language}
        # One pass, so a response that itself contains "{{prompt}}" is not expanded.
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)

    def parse(self, raw: str) -> Verdict:
        m = self._regex.search(raw)
        if m is None:
            return "unparsed"
        for name in self._groups:
            if m.group(name) is not None:
                return name  # type: ignore[return-value]
        return "unparsed"

    @property
    def marks_uncertainty(self) -> bool:
        return True

    def stated_confidence(self, raw: str) -> float | None:
        """The confidence the judge stated, by the package's rule; None if it stated none."""
        m = self._confidence.search(raw) if self._confidence else None
        try:
            return float(m.group("confidence")) if m and m.group("confidence") else None
        except ValueError:
            return None

    def _uncertain(self, j: Judgement, response: str, finish_reason: str | None) -> UncertainReason | None:
        """The judge's part of the rule in docs/uncertainty.md, first reason that applies."""
        if j.verdict == "error":
            return None  # nothing was judged; errors count for nothing and are retried, not reviewed
        if not response.strip():
            return "empty-answer"
        if finish_reason == "length":
            return "truncated-answer"
        if j.verdict == "unparsed":
            return "judge-unparsed"
        threshold = self.spec.parse.min_confidence
        if threshold is not None and (j.confidence is None or j.confidence < threshold):
            return "judge-low-confidence"
        return None

    def assess(
        self, response: str, language: str, *, prompt: str | None = None, finish_reason: str | None = None
    ) -> Judgement:
        text = self.render(response, language, prompt)
        req = GenerationRequest(
            sample_id="judge", prompt=text, max_tokens=self.spec.max_tokens, temperature=0.0, top_p=1.0,
            stop=(), seed=int(sha256_bytes(text.encode("utf-8"))[:8], 16),
        )
        try:
            if self._generate_lock is not None:
                with self._generate_lock:
                    res = self.backend.generate(req)
            else:
                res = self.backend.generate(req)
        except HarnessError as e:
            j = Judgement("error", None, e.message, reason="judge-error")
        else:
            if res.error:
                j = Judgement("error", res.text, res.error, reason="judge-error")
            else:
                verdict = self.parse(res.text)
                j = Judgement(verdict, res.text, reason="judge-unparsed" if verdict == "unparsed" else "judge-parsed",
                              confidence=self.stated_confidence(res.text))
        j = replace(j, uncertain=self._uncertain(j, response, finish_reason))
        with self._lock:
            self.judgements.append(j)
            self.counts[j.verdict] += 1
        return j

    def classify(self, response: str, language: str, *, prompt: str | None = None) -> Verdict:
        return self.assess(response, language, prompt=prompt).verdict

    def describe(self) -> JudgeScorerInfo:
        ident = self.backend.identity
        return JudgeScorerInfo(
            backend=self.spec.backend, model=self.spec.model, revision=self.spec.revision,
            weights_digest=self.spec.weights_digest, identity_digest=ident.digest, identity=ident,
            template=self.template_path, template_sha256=self.template_sha256,
            parse=JudgeParseInfo(regex=self.spec.parse.regex, confidence=self.spec.parse.confidence,
                                 min_confidence=self.spec.parse.min_confidence),
            max_tokens=self.spec.max_tokens, behaviours=self.spec.behaviours, cross_check=self.cross_check_info(),
        )

    def close(self) -> None:
        super().close()
        self.backend.close()


def load_judge_backend(
    spec: JudgeSpec, model_path: str | Path | None, *, endpoint: str | None = None, threads: int = 1
) -> Backend:
    """The judge's backend.

    transformers: ``model_path`` is the local weights folder (the embedded tiny-chat
    model needs none). openai: ``endpoint`` is the OpenAI-compatible server, which must
    serve ``spec.model``; ``model_path``, if given, is the served weights' local folder,
    so that the identity digest covers the files (and can match ``weights_digest``).
    """
    if spec.backend == "openai":
        if not endpoint:
            raise ScorerError(
                f"the judge {spec.model!r} is served over HTTP; say where",
                hint="pass --judge-endpoint URL (an OpenAI-compatible server serving that model name)",
            )
        return load_backend("openai", spec.model, endpoint=endpoint, concurrency=1,
                            local_path=Path(model_path) if model_path else None)
    if model_path is None and spec.model != DEFAULT_MODEL_NAME:
        raise ScorerError(
            f"the judge model {spec.model!r} is not built in; say where its weights are",
            hint="pass --judge-model PATH (a local folder made by save_pretrained)",
        )
    return load_backend(spec.backend, str(model_path) if model_path else None, threads=threads)


def check_identity(spec: JudgeSpec, backend: Backend) -> None:
    """Refuse a judge whose loaded identity is not the one the manifest pins."""
    ident = backend.identity
    if ident.backend != spec.backend:
        raise ScorerError(
            f"judge backend is {ident.backend!r}, the manifest pins {spec.backend!r}",
            hint="load the judge with the pinned backend",
        )
    if spec.weights_digest is not None and ident.digest != spec.weights_digest:
        raise ScorerError(
            f"judge {spec.model!r}: loaded weights have digest {ident.digest}, "
            f"the manifest pins weights_digest {spec.weights_digest}",
            hint="point --judge-model at the pinned weights; if the judge change is intended, "
            "update scorer.weights_digest and reseal (scores will not be comparable)",
        )
    if spec.revision is not None and ident.revision != spec.revision:
        found = ident.revision or "no revision (this backend cannot report one)"
        raise ScorerError(
            f"judge {spec.model!r}: loaded {found}, the manifest pins revision {spec.revision}",
            hint="load the pinned revision, or pin weights_digest for local weights",
        )
