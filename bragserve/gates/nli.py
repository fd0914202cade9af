"""Natural-language-inference scoring with any Hugging Face sequence-classification checkpoint.

The label order of NLI checkpoints is not standard (cross-encoder/nli-deberta-v3-base
is contradiction, entailment, neutral; others differ), and reading a probability by
position is the bug the Bidirectional RAG code shipped with. So every index here comes
from the checkpoint's own ``config.id2label``, matched by name.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from bragserve import precision as precision_

log = logging.getLogger(__name__)

BUNDLED_NLI = Path(__file__).resolve().parent.parent / "models" / "nli-minilm-l6"


@dataclass(frozen=True)
class NLIScore:
    entailment: float
    neutral: float
    contradiction: float

    @property
    def label(self) -> str:
        scores = {"entailment": self.entailment, "neutral": self.neutral, "contradiction": self.contradiction}
        return max(scores, key=scores.__getitem__)

    def as_dict(self) -> dict[str, float]:
        return {"entailment": self.entailment, "neutral": self.neutral, "contradiction": self.contradiction}


class NLIError(RuntimeError):
    """The checkpoint cannot be used as a 3-way (or 2-way) NLI classifier."""


def label_indices(id2label: dict) -> dict[str, int | None]:
    """Map entailment/neutral/contradiction to the checkpoint's class indices by name.

    Two-class checkpoints (entailment / not_entailment) are accepted: the second
    class counts as neutral, and contradiction is then unknown (probability 0).
    """
    found: dict[str, int | None] = {"entailment": None, "neutral": None, "contradiction": None}
    for raw_idx, raw_name in id2label.items():
        name = str(raw_name).strip().lower()
        idx = int(raw_idx)
        if name.startswith("not") or name.startswith("non"):
            found["neutral"] = idx
        elif name.startswith("entail"):
            found["entailment"] = idx
        elif name.startswith("contradict"):
            found["contradiction"] = idx
        elif name.startswith("neutral"):
            found["neutral"] = idx
    if found["entailment"] is None:
        raise NLIError(f"checkpoint labels {id2label!r} name no entailment class")
    return found


def resolve_nli_path(name_or_path: str | None) -> str:
    """The bundled model unless a path or hub id is configured."""
    if not name_or_path or name_or_path == "bundled":
        if not (BUNDLED_NLI / "config.json").exists():
            raise NLIError(f"the bundled NLI model is missing at {BUNDLED_NLI}; run `bragserve train-nli`")
        return str(BUNDLED_NLI)
    return name_or_path


class NLIModel:
    """Batched (premise, hypothesis) scoring that never truncates the hypothesis."""

    def __init__(self, name_or_path: str | None = None, *, max_length: int = 256, batch_size: int = 32,
                 precision: Literal["auto", "fp32", "bf16", "int8"] = "auto") -> None:
        import torch  # imported here: only processes that score NLI pay for torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name = resolve_nli_path(name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.name)
        model = AutoModelForSequenceClassification.from_pretrained(self.name)
        # fp16 is a storage format here: CPU matmuls are fastest in fp32.
        self.model = model.float().eval()
        self.indices = label_indices(model.config.id2label)
        self.max_length = min(max_length, getattr(self.tokenizer, "model_max_length", max_length) or max_length)
        self.batch_size = batch_size
        self._torch = torch
        self._lock = threading.Lock()
        # bf16 (bragserve.precision): 2.3x the fp32 throughput on CPUs with native bf16, with 99.9% of
        # decisions unchanged on held-out pairs (benchmarks/nli_throughput.py).
        self.precision = precision_.resolve(precision)
        if self.precision == "bf16":
            precision_.hold_linear_in_bf16(self.model)
        if precision == "int8":
            # Dynamic int8 Linear layers: the fastest option on CPUs without bf16 (and ~1.4x bf16 here), at a
            # measured cost of about a point of accuracy and 3% of decisions; chosen explicitly, never by auto.
            self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
            self.precision = "int8"

    @property
    def model_id(self) -> str:
        return self.name

    def _encode(self, premises: list[str], hypotheses: list[str]):
        # bf16 kernels are built per input shape: a first-seen width cost a gate-sized call ~10 ms more (p50 66
        # vs 57 ms for 1-4 SQuAD pairs). Widths padded to a multiple of 16 are all warm within a few requests
        # (cold p50 57 ms); the padding is masked, and no decision changed on those 80 calls.
        pad = {"padding": True, "return_tensors": "pt", "pad_to_multiple_of": 16 if self.precision == "bf16" else None}
        try:
            return self.tokenizer(premises, hypotheses, truncation="only_first", max_length=self.max_length, **pad)
        except Exception:  # a hypothesis longer than max_length on its own: nothing whole can be kept
            log.warning("hypothesis longer than %d tokens; truncating both sides", self.max_length)
            return self.tokenizer(premises, hypotheses, truncation="longest_first", max_length=self.max_length,
                                  **pad)

    def probabilities(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Rows of [P(entailment), P(neutral), P(contradiction)], in the order given."""
        out = np.zeros((len(pairs), 3), dtype=np.float32)
        if not pairs:
            return out
        # Length-sorted batches waste less compute on padding.
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        torch = self._torch
        with self._lock, torch.inference_mode(), precision_.compute(self.precision):
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self._encode([pairs[i][0] for i in idx], [pairs[i][1] for i in idx])
                probs = torch.softmax(self.model(**batch).logits.float(), dim=-1).numpy()
                for col, name in enumerate(("entailment", "neutral", "contradiction")):
                    class_idx = self.indices[name]
                    if class_idx is not None:
                        out[idx, col] = probs[:, class_idx]
        return out

    def score(self, pairs: list[tuple[str, str]]) -> list[NLIScore]:
        return [NLIScore(float(e), float(n), float(c)) for e, n, c in self.probabilities(pairs)]
