"""Extractive generation: the passage sentences most similar to the query, each with its citation.

Offline and deterministic, so it is the default and the baseline every abstractive
generator is measured against. It can only say what a passage says, which is what
makes its answers safe to verify and write back.
"""

from __future__ import annotations

import numpy as np

from bragserve.embedding import Embedder
from bragserve.generation.base import Answer, AnswerSentence, Passage
from bragserve.policy import GenerationPolicy
from bragserve.text import split_sentences

_NEAR_DUPLICATE = 0.92


class ExtractiveGenerator:
    name = "extractive"

    def __init__(self, embedder: Embedder, policy: GenerationPolicy) -> None:
        self.embedder = embedder
        self.policy = policy

    def answer(self, query: str, query_vector: np.ndarray, passages: list[Passage]) -> Answer:
        candidates: list[tuple[int, int, str, Passage]] = []  # (passage rank, sentence position, text, passage)
        for passage in passages:
            for pos, sentence in enumerate(split_sentences(passage.text)):
                if len(sentence.text.split()) >= 3:
                    candidates.append((passage.rank, pos, sentence.text, passage))
        if not candidates:
            return Answer("", (), self.name, {"reason": "no passages"})
        vectors = self.embedder.encode_cached([c[2] for c in candidates])
        scores = vectors @ query_vector
        # Best first; ties broken by passage rank then position, so the output is deterministic.
        order = sorted(range(len(candidates)), key=lambda i: (-round(float(scores[i]), 6), candidates[i][:2]))
        best = float(scores[order[0]])
        floor = max(self.policy.min_similarity, best - self.policy.relative_margin)
        chosen: list[int] = []
        for i in order:
            if len(chosen) >= self.policy.max_sentences or float(scores[i]) < floor:
                break
            if any(float(vectors[i] @ vectors[j]) >= _NEAR_DUPLICATE for j in chosen):
                continue  # overlapping chunks repeat sentences
            chosen.append(i)
        if not chosen:
            return Answer("", (), self.name, {"reason": "no sentence similar enough", "best": best})
        # Readable order: the best passage's sentences first, each passage in its own order.
        chosen.sort(key=lambda i: candidates[i][:2])
        sentences = tuple(
            AnswerSentence(candidates[i][2], (candidates[i][3].chunk_id,), round(float(scores[i]), 4)) for i in chosen)
        text = " ".join(f"{s.text} [{s.citations[0]}]" for s in sentences)
        return Answer(text, sentences, self.name)
