"""RAGPart retrieval (ALGORITHMS.md §2): C(N, k) views of mean fragment embeddings, ranked by vote.

The views live in memory only and are rebuilt from the fragment embeddings stored in
SQLite, so they can never disagree with the corpus after a crash and a change of k
costs no re-encoding. Each view is a FAISS index keyed by chunk vid; the compact
encodings (float16, 8-bit scalar quantisation) trade a little recall for 2-4x less
memory, and the benchmark measures how little.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

import numpy as np

from bragserve.store.corpus import Corpus

_SQ = {"fp16": "QT_fp16", "sq8": "QT_8bit"}


@dataclass(frozen=True)
class Vote:
    vid: int
    votes: int
    best_rank: int  # 1-based, best over the views that retrieved it
    rank_sum: int  # over the views that retrieved it


def view_vectors(fragments: np.ndarray, subset: tuple[int, ...]) -> np.ndarray:
    """Normalised mean of the chosen fragments, one row per chunk."""
    mean = fragments[:, list(subset), :].astype(np.float32).mean(axis=1)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def rank_votes(hits: list[list[int]], *, intersection: bool) -> list[Vote]:
    """Majority vote over the views' ranked lists; or only chunks every view retrieved.

    Ties are broken by the sum of ranks, then the best rank. The paper breaks ties by best
    rank alone, but when the views retrieve deeper than the corpus is varied (a small corpus,
    or alpha*k candidates for RAGMask) most chunks get every vote, and one lucky view would
    then decide the order; the rank sum keeps it a vote across views."""
    votes: dict[int, int] = {}
    best: dict[int, int] = {}
    total: dict[int, int] = {}
    for ranked in hits:
        for rank, vid in enumerate(ranked, start=1):
            votes[vid] = votes.get(vid, 0) + 1
            best[vid] = min(best.get(vid, rank), rank)
            total[vid] = total.get(vid, 0) + rank
    out = [Vote(v, votes[v], best[v], total[v]) for v in votes if not intersection or votes[v] == len(hits)]
    return sorted(out, key=lambda v: (-v.votes, v.rank_sum, v.best_rank, v.vid))


class RagPartViews:
    """Views for every k asked so far, kept in step with the corpus by the writer lane."""

    def __init__(self, corpus: Corpus, *, fragments: int, dim: int, encoding: str) -> None:
        self.corpus, self.n, self.dim, self.encoding = corpus, fragments, dim, encoding
        self._views: dict[int, list] = {}  # k -> one FAISS index per subset
        self._lock = threading.RLock()

    def _new_index(self):
        import faiss

        if self.encoding == "fp32":
            base = faiss.IndexFlatIP(self.dim)
        else:
            base = faiss.IndexScalarQuantizer(self.dim, getattr(faiss.ScalarQuantizer, _SQ[self.encoding]),
                                              faiss.METRIC_INNER_PRODUCT)
        return faiss.IndexIDMap2(base)

    def _build(self, k: int) -> list:
        vids, frags = self.corpus.active_fragments(self.n, self.dim)
        views = []
        for subset in itertools.combinations(range(self.n), k):
            index = self._new_index()
            if len(vids):
                vecs = view_vectors(frags, subset)
                if not index.is_trained:
                    index.train(vecs)
                index.add_with_ids(vecs, vids)
            views.append(index)
        return views

    def views(self, k: int) -> list:
        with self._lock:
            if k not in self._views:
                self._views[k] = self._build(k)
            return self._views[k]

    def count(self) -> int:
        with self._lock:
            return next(iter(self._views.values()))[0].ntotal if self._views else 0

    def memory_bytes(self) -> int:
        """Bytes of view codes held (vectors only, not FAISS bookkeeping)."""
        per = {"fp32": 4, "fp16": 2, "sq8": 1}[self.encoding] * self.dim
        with self._lock:
            return sum(v.ntotal * per for views in self._views.values() for v in views)

    def add(self, vids: list[int]) -> None:
        """Add chunks (their fragments are read from SQLite; chunks stored without fragments are skipped)."""
        with self._lock:
            if not vids or not self._views:
                return
            stored = self.corpus.fragments(vids, self.dim)
            keep = [v for v in vids if v in stored and len(stored[v]) == self.n]
            if not keep:
                return
            frags = np.stack([stored[v] for v in keep])
            ids = np.asarray(keep, dtype=np.int64)
            for k, views in self._views.items():
                for subset, index in zip(itertools.combinations(range(self.n), k), views):
                    if not index.is_trained:  # an sq8 view built on an empty corpus trains on its first data
                        index.train(view_vectors(frags, subset))
                    index.remove_ids(ids)
                    index.add_with_ids(view_vectors(frags, subset), ids)

    def remove(self, vids: list[int]) -> None:
        with self._lock:
            if vids:
                ids = np.asarray(vids, dtype=np.int64)
                for views in self._views.values():
                    for index in views:
                        index.remove_ids(ids)

    def search(self, query: np.ndarray, k: int, depth: int) -> list[list[int]]:
        """Each view's ranked vids for the query."""
        views = self.views(k)
        q = np.asarray(query, dtype=np.float32).reshape(1, -1)
        out = []
        for index in views:
            if index.ntotal == 0:
                out.append([])
                continue
            _, ids = index.search(q, min(depth, index.ntotal))
            out.append([int(v) for v in ids[0] if v >= 0])
        return out
