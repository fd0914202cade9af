"""What a gate says: passed or not, its score, and a reason a reviewer can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from bragserve.generation.base import Passage
from bragserve.text import CitedSentence

Decision = Literal["accepted", "rejected", "review"]


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    score: float | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "score": self.score, "message": self.message,
                "details": self.details}


@dataclass(frozen=True)
class Candidate:
    """An answer proposed for write-back, with the passages retrieved for its query."""

    query: str
    answer: str
    generator: str
    retrieved: dict[str, Passage]
    default_citations: tuple[str, ...] = ()
    flagged: frozenset[str] = frozenset()  # chunks RAGMask or the flood filter flagged for this query
    # Chunks RAGMask flagged when it screened only what the answer cites (screening.ragmask), with the character
    # spans whose masking collapsed their similarity: no support unless the answer quotes the span itself.
    masked: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    # Cited chunks the write-back's screen of citations found suspicious (a planted flood around them in the corpus,
    # text that reads as optimised tokens), each with the reason: no support.
    suspect: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str | None
    message: str
    gates: list[GateResult]
    sentences: list[CitedSentence]
    depth: int
    answer_text: str
    answer_vector: np.ndarray | None
    cited_vids: list[int]

    def scores(self) -> dict[str, float | None]:
        return {g.name: g.score for g in self.gates}
