"""Plain dense retrieval: FAISS top-k, hydrated from SQLite, inactive rows dropped.

A chunk can leave SQLite's active set a moment before it leaves the index (the two
are updated in that order), so hits are re-checked against SQLite and the search
over-fetches a little to still return k.
"""

from __future__ import annotations

import numpy as np

from bragserve.generation.base import Passage
from bragserve.store.corpus import Corpus
from bragserve.store.live_index import LiveIndex


def dense_search(index: LiveIndex, corpus: Corpus, query_vector: np.ndarray, k: int) -> list[Passage]:
    scores, ids = index.search(query_vector, k + 8)
    rows = corpus.chunks_by_vids([int(v) for v in ids])
    out: list[Passage] = []
    for score, vid in zip(scores, ids):
        row = rows.get(int(vid))
        if row is None or row.status != "active":
            continue
        out.append(Passage(row.id, row.doc_id, row.text, round(float(score), 6), row.source, len(out) + 1))
        if len(out) == k:
            break
    return out
