"""The labels gathered in a dossier as a labelled set, to validate a scorer where people checked it.

Scorer validation used to rest on English sets only (XSTest, HarmBench); the labels people
give uncertain answers of multilingual runs are exactly the missing evidence.
``harness judge validate SCORER dossier:PACKAGE`` reads them: the dossier is verified first
(only signed, trusted labels count), and every labelled sample of every run becomes one row
(its prompt checked against the run's digest, its answer, its language, and the latest
human label), for :func:`harness.scoring.validation.validate`, which reports agreement
overall and per language.
"""

from __future__ import annotations

from pathlib import Path

from harness._internal.hashing import sha256_bytes, sha256_file
from harness.audit.labels import histories, labels_of, run_lines
from harness.audit.show import _prompts
from harness.dossier.log import Dossier
from harness.dossier.refs import dossier_named
from harness.dossier.verify import require_verified
from harness.errors import DataError
from harness.scoring.validation import LabelledRow, LabelledSet
from harness.signing.verify import Trusted

PREFIX = "dossier:"
"""How a labelled set names a dossier on the command line: ``dossier:mini-safety``."""


def dossier_labelled_set(name: str, *, trusted: Trusted | None = None, dossiers_dir: Path | None = None,
                         mirror: Path | None = None) -> LabelledSet:
    """Every labelled sample of the dossier ``name`` (``dossier:`` prefix allowed) as a labelled set."""
    name = name.removeprefix(PREFIX)
    dossier: Dossier = dossier_named(name, dossiers_dir, what="a dossier")
    require_verified(dossier, trusted, "its labels validate nothing")
    rows: list[LabelledRow] = []
    three_way = False
    for entry in dossier.runs():
        hist = histories(labels_of(dossier, entry))
        if not hist:
            continue
        record = dossier.record_of(entry)
        texts, _ = _prompts(record, None, None, mirror)
        for line in run_lines(dossier, entry):
            h = hist.get(line["id"])
            response = line.get("response")
            if not h or not isinstance(response, str) or line.get("verdict") == "error":
                continue
            prompt = texts.get(line["id"], "")
            if prompt and sha256_bytes(prompt.encode()) != line.get("prompt_sha256"):
                prompt = ""  # never pair an answer with a prompt the model was not asked
            label = h[-1].label
            three_way = three_way or label == "safe_completion"
            rows.append(LabelledRow(id=f"{record.run_id}/{line['id']}", source=record.package.name,
                                    prompt=prompt, response=response, human=label,
                                    raw_label=label, language=line["language"], group=line["category"]))
    if not rows:
        raise DataError(f"the dossier {name} holds no human labels",
                        hint="label answers first: `harness review queue` / `harness review label`")
    return LabelledSet(name=f"{PREFIX}{name}", kind="three_way" if three_way else "refusal",
                       files={f"{name}/log.jsonl": sha256_file(dossier.log)}, rows=tuple(rows))
