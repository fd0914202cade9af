"""The generator contract: given a query and retrieved passages, an answer whose sentences cite chunk ids.

Every generator returns the same shape so the write-back gates can check any of them
the same way: the answer text with ``[chunk_id]`` after each sentence, and the
sentence-to-citation mapping the generator intended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    doc_id: str
    text: str
    score: float
    source: str
    rank: int


@dataclass(frozen=True)
class AnswerSentence:
    text: str
    citations: tuple[str, ...]
    score: float


@dataclass(frozen=True)
class Answer:
    text: str
    sentences: tuple[AnswerSentence, ...]
    generator: str
    details: dict = field(default_factory=dict)

    @property
    def cited(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.sentences:
            for c in s.citations:
                seen.setdefault(c, None)
        return list(seen)


class Generator(Protocol):
    name: str

    def answer(self, query: str, query_vector: np.ndarray, passages: list[Passage]) -> Answer:
        """Answer the query from the passages only; every sentence cites the passage it came from."""
        ...
