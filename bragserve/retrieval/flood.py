"""Planted floods: near-identical candidates from several ingested documents at once.

PoisonedRAG plants k poisons per target so that they fill the top k, and they are
variations of one text: on the attack benchmark's corpus, 100% of its query-as-poison and
98% of its paraphrase poisons have two or more other documents at cosine >= 0.75, against
4.0% of the 2,923 clean documents (and of SQuAD dev's paragraphs: paragraphs of one
article, mirrored pages). Those clean groups cost something only when three of them are
among one query's candidates, which is what ``bench poison`` measures as benign SR. TrustRAG
(Zhou et al., 2025) filters retrieved poisons by the same signature. An attacker who
plants diverse texts is not caught (the Contriever HotFlip poisons sit at 0.64 to each
other); this defence is for the flood, the others for the single poison.

Only ingested chunks take part: write-backs restate their sources by design, and two
answers about one popular fact must not make their source look planted (nor link two
sources into one group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Flood:
    members: list[int]  # candidate positions, best first
    documents: int  # distinct documents among them


def find_floods(doc_ids: list[str], vectors: np.ndarray, similarity: float, min_documents: int) -> list[Flood]:
    """Connected groups of chunks (edges: different documents, cosine >= ``similarity``) from at least
    ``min_documents`` distinct documents. ``vectors`` are the stored, normalised chunk embeddings."""
    n = len(doc_ids)
    if n < min_documents:
        return []
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    close = (vectors @ vectors.T) >= similarity
    for i in range(n):
        for j in range(i + 1, n):
            if close[i, j] and doc_ids[i] != doc_ids[j]:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        documents = len({doc_ids[i] for i in members})
        if documents >= min_documents:
            out.append(Flood(sorted(members), documents))
    return sorted(out, key=lambda f: f.members[0])
