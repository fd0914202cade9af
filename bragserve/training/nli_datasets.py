"""Readers for the NLI sets in ``shared/data/nli`` and which of them we may train on.

Each reader maps its file's own label convention onto one vocabulary
(entailment / neutral / contradiction) so that nothing downstream has to know
that SciTail says ``not_entailment`` or ANLI says ``c``. The split between
TRAIN_SETS and EVAL_SETS is a licence decision (a shipped model may only be
derived from data whose licence allows it) and a hygiene decision (the held-out
sets never touch training).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

LABELS = ("entailment", "neutral", "contradiction")

_ALIASES = {
    "entailment": "entailment", "e": "entailment", "0": "entailment", "supports": "entailment",
    "neutral": "neutral", "n": "neutral", "1": "neutral", "not_entailment": "neutral",
    "contradiction": "contradiction", "c": "contradiction", "2": "contradiction",
    "refutes": "contradiction",
}


@dataclass(frozen=True)
class NLIPair:
    premise: str
    hypothesis: str
    label: str  # one of LABELS
    source: str


def _norm_label(raw: str) -> str | None:
    return _ALIASES.get(str(raw).strip().lower())


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _pairs(rows: Iterator[tuple[str, str, str]], source: str) -> list[NLIPair]:
    out = []
    for premise, hypothesis, raw in rows:
        label = _norm_label(raw)
        if label and premise and hypothesis and premise.strip() and hypothesis.strip():
            out.append(NLIPair(premise.strip(), hypothesis.strip(), label, source))
    return out


def _tsv(path: Path, header: bool) -> Iterator[tuple[str, str, str]]:
    with path.open(encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        if header:
            next(reader, None)
        for row in reader:
            if len(row) >= 3:
                yield row[0], row[1], row[2]


def snli_dev(root: Path) -> list[NLIPair]:
    rows = ((r["premise"], r["hypothesis"], r["label"]) for r in _jsonl(root / "snli/generative-nli/dev.jsonl"))
    return _pairs(rows, "snli_dev")


def snli_test(root: Path) -> list[NLIPair]:
    """Complete SNLI test (lower-cased, punctuation stripped by its publisher)."""
    return _pairs(_tsv(root / "snli/rmib/test.tsv", header=False), "snli_test")


def snli_test_cased(root: Path) -> list[NLIPair]:
    """The first 1,277 SNLI test rows with their original text."""
    rows = ((r["sentence1"], r["sentence2"], r["gold_label"])
            for r in _jsonl(root / "snli/sbimpm/snli_1.0_test.partial.jsonl"))
    return _pairs(rows, "snli_test_cased")


def cad_snli(root: Path) -> list[NLIPair]:
    out: list[NLIPair] = []
    for split in ("train", "dev", "test"):
        out += _pairs(_tsv(root / f"cad-snli/all_combined/{split}.tsv", header=True), "cad_snli")
    return out


def breaking_nli(root: Path, max_contradictions: int = 2000) -> list[NLIPair]:
    """Breaking NLI is 87% contradiction; cap that class so it teaches word swaps, not a prior."""
    rows = ((r["sentence1"], r["sentence2"], r["gold_label"]) for r in _jsonl(root / "breaking_nli/dataset.jsonl"))
    pairs = _pairs(rows, "breaking_nli")
    contradictions = [p for p in pairs if p.label == "contradiction"][:max_contradictions]
    return [p for p in pairs if p.label != "contradiction"] + contradictions


def scitail(root: Path) -> list[NLIPair]:
    out = _pairs(_tsv(root / "scitail/rmib/dev.tsv", header=False), "scitail")
    rows = ((r["premise"], r["hypothesis"], r["label"]) for r in _jsonl(root / "scitail/generative-nli/test.jsonl"))
    return out + _pairs(rows, "scitail")


def fever_symmetric(root: Path) -> list[NLIPair]:
    out: list[NLIPair] = []
    for split in ("dev", "test"):
        rows = ((r["evidence"], r["claim"], r["gold_label"])
                for r in _jsonl(root / f"fever_symmetric/fever_symmetric_{split}.jsonl"))
        out += _pairs(rows, "fever_symmetric")
    return out


def wanli_sample(root: Path) -> list[NLIPair]:
    rows = ((r["premise"], r["hypothesis"], r["gold"]) for r in _jsonl(root / "wanli/train_sample.jsonl"))
    return _pairs(rows, "wanli")


def mnli_dev_matched(root: Path) -> list[NLIPair]:
    rows = ((r["premise"], r["hypothesis"], r["label"]) for r in _jsonl(root / "mnli/generative-nli/dev_matched.jsonl"))
    return _pairs(rows, "mnli_dev_matched")


def anli_test(root: Path) -> list[NLIPair]:
    rows = ((r["premise"], r["hypothesis"], r["label"]) for r in _jsonl(root / "anli/generative-nli/test_r1-r3.jsonl"))
    return _pairs(rows, "anli_test")


def control(root: Path) -> list[NLIPair]:
    out: list[NLIPair] = []
    for split in ("dev", "test"):
        rows = ((r["premise"], r["hypothesis"], r["label"]) for r in _jsonl(root / f"control/{split}.jsonl"))
        out += _pairs(rows, "control")
    return out


# Licences allow shipping a derived model: CC BY-SA 4.0 (SNLI, CAD-SNLI's SNLI text,
# Breaking NLI), Apache-2.0 (SciTail, CAD-SNLI), CC BY-SA 3.0 (FEVER-Symmetric), CC BY 4.0 (WANLI).
TRAIN_SETS: dict[str, Callable[[Path], list[NLIPair]]] = {
    "snli_dev": snli_dev,
    "cad_snli": cad_snli,
    "breaking_nli": breaking_nli,
    "scitail": scitail,
    "fever_symmetric": fever_symmetric,
    "wanli": wanli_sample,
}

# Held out: never trained on. ANLI and ConTRoL are non-commercial, evaluation only.
EVAL_SETS: dict[str, Callable[[Path], list[NLIPair]]] = {
    "snli_test": snli_test,
    "snli_test_cased": snli_test_cased,
    "mnli_dev_matched": mnli_dev_matched,
    "anli_test": anli_test,
    "control": control,
}

LICENCES = {
    "snli_dev": "CC BY-SA 4.0",
    "cad_snli": "Apache-2.0 (annotations); SNLI text CC BY-SA 4.0",
    "breaking_nli": "CC BY-SA 4.0",
    "scitail": "Apache-2.0",
    "fever_symmetric": "CC BY-SA 3.0",
    "wanli": "CC BY 4.0",
    "squad_pairs": "CC BY-SA 4.0 (derived from SQuAD v1.1 dev)",
}
