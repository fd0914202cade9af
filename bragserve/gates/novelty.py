"""Novelty: an answer that restates an existing chunk adds nothing but weight to the loop.

Two tests: the paper's (cosine of the answer to its nearest active chunk at or above a
threshold), and a stricter one for extractive answers that cosine misses: every
sentence copied verbatim from one and the same chunk is a restatement of that chunk,
however different the shorter text embeds.
"""

from __future__ import annotations

import re

import numpy as np

from bragserve.gates.report import GateResult
from bragserve.store.corpus import Corpus, chunk_id
from bragserve.store.live_index import LiveIndex
from bragserve.text import CitedSentence


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def restates_one_chunk(sentences: list[CitedSentence], chunk_text: dict[str, str]) -> str | None:
    """The chunk id when every sentence is a verbatim copy from that single chunk."""
    cited = {c for s in sentences for c in s.citations}
    if len(cited) != 1:
        return None
    only = next(iter(cited))
    body = _norm(chunk_text[only])
    return only if all(_norm(s.text).rstrip(".") in body for s in sentences) else None


def novelty_gate(answer_vector: np.ndarray, sentences: list[CitedSentence], chunk_text: dict[str, str],
                 index: LiveIndex, corpus: Corpus, max_similarity: float) -> GateResult:
    copied = restates_one_chunk(sentences, chunk_text)
    if copied is not None:
        return GateResult("novelty", False, 1.0, f"restates {copied} verbatim", {"nearest": copied,
                                                                                 "problem": "verbatim_subset"})
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
