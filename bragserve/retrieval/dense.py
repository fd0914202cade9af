"""Plain dense retrieval: FAISS top-k, hydrated from SQLite, inactive rows dropped, write-backs capped.

A chunk can leave SQLite's active set a moment before it leaves the index (the two
are updated in that order), so hits are re-checked against SQLite. Write-backs beyond
the cap are skipped and the search deepens until k passages are found or the index is
exhausted, so a corpus flooded with write-backs still returns its ingested sources.
"""

from __future__ import annotations

import numpy as np

from bragserve.generation.base import Passage
from bragserve.store.corpus import Corpus
from bragserve.store.live_index import LiveIndex


def dense_search(index: LiveIndex, corpus: Corpus, query_vector: np.ndarray, k: int,
                 max_generated: int | None = None) -> list[Passage]:
    fetch = k + 8
    total = index.count()
    while True:
        scores, ids = index.search(query_vector, fetch)
        rows = corpus.chunks_by_vids([int(v) for v in ids])
        out: list[Passage] = []
        generated = 0
        for score, vid in zip(scores, ids):
            row = rows.get(int(vid))
            if row is None or row.status != "active":
                continue
            if row.source == "writeback":
                if max_generated is not None and generated >= max_generated:
                    continue
                generated += 1
            out.append(Passage(row.id, row.doc_id, row.text, round(float(score), 6), row.source, len(out) + 1))
            if len(out) == k:
                return out
        if fetch >= total:
            return out
        fetch = min(total, fetch * 4)
