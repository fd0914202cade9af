"""Novelty: an answer that restates an existing chunk adds nothing but weight to the loop."""

from __future__ import annotations

import numpy as np

from bragserve.gates.report import GateResult
from bragserve.store.corpus import Corpus, chunk_id
from bragserve.store.live_index import LiveIndex


def novelty_gate(answer_vector: np.ndarray, index: LiveIndex, corpus: Corpus, max_similarity: float) -> GateResult:
    scores, ids = index.search(answer_vector, 4)
    rows = corpus.chunks_by_vids([int(v) for v in ids])
    for score, vid in zip(scores, ids):
        row = rows.get(int(vid))
        if row is None or row.status != "active":
            continue
        nearest = float(score)
        details = {"nearest": chunk_id(int(vid)), "nearest_doc": row.doc_id, "similarity": round(nearest, 4),
                   "max_similarity": max_similarity}
        if nearest >= max_similarity:
            return GateResult("novelty", False, round(nearest, 4),
                              f"near-duplicate of {chunk_id(int(vid))} (cosine {nearest:.3f} >= {max_similarity})",
                              details)
        return GateResult("novelty", True, round(nearest, 4), None, details)
    return GateResult("novelty", True, 0.0, None, {"nearest": None})
