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

Linked groups alone also take in an encyclopedia's articles: SQuAD's paragraphs on one subject
chain into groups at 0.75 (A near B, B near C) without saying the same thing, and leaving them
out cost honest questions 4 points of SR and re-asks 6 points of recall@5 (``bench flood``).
A planted flood is several texts saying the same thing, so with ``core_similarity`` a group
counts only when it holds ``min_documents`` chunks of different documents that are all that
close to each other. At 0.8, of the 127 groups that held an honest question's passage, 16 still
count; of the 150 paraphrase floods, 143 do. Off in the shipped policies: in ``bench poison`` it
also let 10% of paraphrase targets (3.3% without) and one more HotFlip target through.

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


def find_floods(doc_ids: list[str], vectors: np.ndarray, similarity: float, min_documents: int,
                pool: int | None = None, core_similarity: float = 0.0) -> list[Flood]:
    """Connected groups of chunks (edges: different documents, cosine >= ``similarity``) from at least
    ``min_documents`` distinct documents, holding a core of ``min_documents`` chunks of different documents
    pairwise at ``core_similarity`` or more (0: any group). ``vectors`` are the stored, normalised chunk
    embeddings, best first.

    Groups are found among the first ``pool`` chunks only (all when None), so that a chunk's verdict does not depend
    on how many candidates a caller fetched: a query asking for 3 passages and one asking for 20 see the same floods
    in the same pool. A chunk after the pool that links directly to a flood's member joins that flood: it is the
    rest of the same planted text, and without it a flood larger than the pool would refill the top k."""
    n = len(doc_ids)
    pool = n if pool is None else min(pool, n)
    if pool < min_documents:
        return []
    docs = np.asarray(doc_ids)
    cosine = vectors[:pool] @ vectors.T  # pool x n
    other = docs[:pool, None] != docs[None, :]
    linked = (cosine >= similarity) & other
    parent = list(range(pool))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in np.argwhere(np.triu(linked[:, :pool], 1)):
        parent[root(int(i))] = root(int(j))
    groups: dict[int, list[int]] = {}
    for i in range(pool):
        groups.setdefault(root(i), []).append(i)
    close = (cosine[:, :pool] >= core_similarity) & other[:, :pool] if core_similarity > 0 else None
    out = []
    for members in groups.values():
        if len(set(docs[members])) < min_documents:
            continue
        if close is not None and not _has_core(members, close, min_documents):
            continue
        later = [pool + int(j) for j in np.flatnonzero(linked[members, pool:].any(axis=0))]
        members = members + later
        out.append(Flood(members, len(set(docs[members]))))
    return sorted(out, key=lambda f: f.members[0])


def _has_core(members: list[int], close: np.ndarray, size: int) -> bool:
    """Whether ``size`` of ``members`` are pairwise ``close`` (which already implies different documents).

    A clique search, but over one group of a pool of at most a few dozen candidates, pruned to members with
    enough close neighbours in the group: the whole filter took 0.12 ms per query in ``bench flood``'s corpus."""
    inner = close[np.ix_(members, members)]
    alive = [i for i in range(len(members)) if inner[i].sum() >= size - 1]

    def extend(chosen: list[int], rest: list[int]) -> bool:
        if len(chosen) == size:
            return True
        return any(extend(chosen + [j], [r for r in rest[n + 1:] if inner[j, r]]) for n, j in enumerate(rest)
                   if len(chosen) + len(rest) - n >= size)

    return extend([], alive)
