"""Plain dense retrieval: FAISS top-k, hydrated from SQLite, inactive rows dropped, write-backs capped.

A chunk can leave SQLite's active set a moment before it leaves the index (the two
are updated in that order), so hits are re-checked against SQLite. Write-backs beyond
the cap are skipped and the search deepens until k passages are found or the index is
exhausted, so a corpus flooded with write-backs still returns its ingested sources.
"""

from __future__ import annotations

import numpy as np

from bragserve.generation.base import Passage
from bragserve.store.corpus import ChunkRow, Corpus
from bragserve.store.live_index import LiveIndex


def admit(rows: dict[int, ChunkRow], order: list[int], want: int,
          max_generated: int | None) -> list[ChunkRow]:
    """Active chunks in the given order, at most ``want``, with at most max_generated write-backs."""
    out: list[ChunkRow] = []
    generated = 0
    for vid in order:
        row = rows.get(vid)
        if row is None or row.status != "active":
            continue
        if row.source == "writeback":
            if max_generated is not None and generated >= max_generated:
                continue
            generated += 1
        out.append(row)
        if len(out) == want:
            break
    return out


def dense_rows(index: LiveIndex, corpus: Corpus, query_vector: np.ndarray, k: int,
               max_generated: int | None = None) -> list[tuple[ChunkRow, float]]:
    """Admitted chunks with their cosine to the query, best first."""
    fetch = k + 8
    total = index.count()
    while True:
        scores, ids = index.search(query_vector, fetch)
        score_of = {int(v): float(s) for s, v in zip(scores, ids)}
        rows = admit(corpus.chunks_by_vids(list(score_of)), [int(v) for v in ids], k, max_generated)
        if len(rows) == k or fetch >= total:
            return [(r, score_of[r.vid]) for r in rows]
        fetch = min(total, fetch * 4)


def dense_search(index: LiveIndex, corpus: Corpus, query_vector: np.ndarray, k: int,
                 max_generated: int | None = None) -> list[Passage]:
    return [Passage(r.id, r.doc_id, r.text, round(score, 6), r.source, i + 1)
            for i, (r, score) in enumerate(dense_rows(index, corpus, query_vector, k, max_generated))]
