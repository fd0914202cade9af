"""RAGPart retrieval (ALGORITHMS.md §2): C(N, k) views of mean fragment embeddings, ranked by vote.

Both searches live in memory only and are rebuilt from the fragment embeddings stored
in SQLite, so they can never disagree with the corpus after a crash and a change of k
costs no re-encoding.

``FragmentScores`` (the default) never builds a view: a view's vector is the normalised
sum of k fragments, so its cosine to the query is the sum of those fragments' cosines
divided by the sum's norm. One matrix-vector product scores the N fragments of every
chunk; each view's score is then a sum and a division, exact, for any k, with N vectors
per chunk in memory instead of C(N, k) (5 instead of 10 at the default N=5, k=3).

``RagPartViews`` keeps one FAISS index per view, as the paper describes; its compact
encodings (float16, 8-bit scalar quantisation) trade recall for memory, and
``bragserve bench ragpart`` measures both searches' latency, memory and recall.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

import numpy as np

from bragserve.store.corpus import Corpus
from bragserve.store.vectors import one_thread

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


def stored_fragments(corpus: Corpus, vids: list[int], n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(vids, (len, n, dim) float32 fragments) of the given chunks that stored exactly n fragments; the others
    (stored without fragments, or with another N) are left out."""
    stored = corpus.fragments(vids, dim)
    keep = [v for v in vids if v in stored and len(stored[v]) == n]
    frags = np.stack([stored[v] for v in keep]).astype(np.float32) if keep else np.zeros((0, n, dim), np.float32)
    return np.asarray(keep, dtype=np.int64), frags


class RagPartViews:
    """Views for every k asked so far, kept in step with the corpus by the writer lane."""

    kind = "views"

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

    def prepare(self, k: int) -> None:
        """Build what a search with this k needs now rather than on the first query."""
        self.views(k)

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
            ids, frags = stored_fragments(self.corpus, vids, self.n, self.dim)
            if not len(ids):
                return
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
        with one_thread():
            for index in views:
                if index.ntotal == 0:
                    out.append([])
                    continue
                _, ids = index.search(q, min(depth, index.ntotal))
                out.append([int(v) for v in ids[0] if v >= 0])
        return out


def _subset_matrix(n: int, k: int) -> np.ndarray:
    """(n, C(n, k)) 0/1 matrix: column j sums the fragments of the j-th subset, in ``combinations`` order."""
    subsets = list(itertools.combinations(range(n), k))
    out = np.zeros((n, len(subsets)), dtype=np.float32)
    for j, subset in enumerate(subsets):
        out[list(subset), j] = 1.0
    return out


class FragmentScores:
    """Every view's exact cosine, from one product with the chunks' N fragment vectors (no view index).

    Rows are kept dense (a removed chunk's row is filled by the last one) so a search is one
    matrix-vector product over contiguous memory; per k, the norm of every view's fragment sum
    is kept beside the rows, so a view score is ``(fragment scores @ subsets) / norms``."""

    kind = "fragments"

    def __init__(self, corpus: Corpus, *, fragments: int, dim: int) -> None:
        self.corpus, self.n, self.dim = corpus, fragments, dim
        self._lock = threading.RLock()
        self._loaded = False
        self._size = 0
        self._vids = np.zeros(0, dtype=np.int64)
        self._frags = np.zeros((0, fragments, dim), dtype=np.float32)
        self._row: dict[int, int] = {}
        self._subsets: dict[int, np.ndarray] = {}  # k -> (n, C(n, k))
        self._norms: dict[int, np.ndarray] = {}  # k -> (capacity, C(n, k)) norm of each view's fragment sum

    def _view_norms(self, frags: np.ndarray, k: int) -> np.ndarray:
        """|sum of a view's fragments| from each chunk's N x N Gram matrix: no (rows, views, dim) temporary."""
        import torch

        with torch.inference_mode():
            f = torch.from_numpy(np.ascontiguousarray(frags, dtype=np.float32))
            gram = torch.bmm(f, f.transpose(1, 2))  # (rows, N, N)
            m = torch.from_numpy(self._subsets[k])
            squared = torch.einsum("rnm,nc,mc->rc", gram, m, m)
            return squared.clamp_min(1e-24).sqrt().numpy()

    def _reserve(self, size: int) -> None:
        if size <= len(self._vids):
            return
        cap = max(size, len(self._vids) * 5 // 4, 1024)  # grows by a quarter: bounded slack, amortised copies
        vids = np.zeros(cap, dtype=np.int64)
        vids[:self._size] = self._vids[:self._size]
        frags = np.zeros((cap, self.n, self.dim), dtype=np.float32)
        frags[:self._size] = self._frags[:self._size]
        self._vids, self._frags = vids, frags
        for k, norms in self._norms.items():
            grown = np.ones((cap, norms.shape[1]), dtype=np.float32)
            grown[:self._size] = norms[:self._size]
            self._norms[k] = grown

    def _put(self, vids: np.ndarray, frags: np.ndarray) -> None:
        rows, end = [], self._size
        for vid in vids.tolist():
            row = self._row.get(vid)
            if row is None:  # a new chunk takes the next free row
                row = self._row[vid] = end
                end += 1
            rows.append(row)
        self._reserve(max(rows) + 1)
        idx = np.asarray(rows, dtype=np.int64)
        self._vids[idx] = vids
        self._frags[idx] = frags
        self._size = max(self._size, int(idx.max()) + 1)
        for k in self._norms:
            self._norms[k][idx] = self._view_norms(self._frags[idx], k)

    def _load(self) -> None:
        if not self._loaded:
            vids, frags = self.corpus.active_fragments(self.n, self.dim)
            if len(vids):
                self._put(vids, frags.astype(np.float32))
            self._loaded = True

    def prepare(self, k: int) -> None:
        with self._lock:
            self._load()
            if k not in self._subsets:
                self._subsets[k] = _subset_matrix(self.n, k)
                norms = np.ones((len(self._vids), self._subsets[k].shape[1]), dtype=np.float32)
                norms[:self._size] = self._view_norms(self._frags[:self._size], k)
                self._norms[k] = norms

    def count(self) -> int:
        with self._lock:
            return self._size

    def memory_bytes(self) -> int:
        """Bytes allocated for fragment vectors and view norms (spare rows included)."""
        with self._lock:
            return self._frags.nbytes + sum(norms.nbytes for norms in self._norms.values())

    def add(self, vids: list[int]) -> None:
        """Add or replace chunks (fragments read from SQLite; chunks stored without fragments are skipped)."""
        with self._lock:
            if not vids or not self._loaded:
                return
            ids, frags = stored_fragments(self.corpus, vids, self.n, self.dim)
            if len(ids):
                self._put(ids, frags)

    def remove(self, vids: list[int]) -> None:
        with self._lock:
            for vid in vids:
                row = self._row.pop(int(vid), None)
                if row is None:
                    continue
                last = self._size - 1
                if row != last:  # the last row fills the hole, so live rows stay contiguous
                    moved = int(self._vids[last])
                    self._vids[row], self._frags[row] = moved, self._frags[last]
                    for norms in self._norms.values():
                        norms[row] = norms[last]
                    self._row[moved] = row
                self._size = last

    def search(self, query: np.ndarray, k: int, depth: int) -> list[list[int]]:
        """Each view's ranked vids for the query (the same lists ``RagPartViews`` returns with fp32 views).

        The products run in torch, on the thread pool the encoder uses: numpy's BLAS keeps a pool of its own,
        and the two spinning against each other on 2 cores doubled the next query's embedding time (13.5 ->
        27 ms measured in a loop of encode + search)."""
        import torch

        self.prepare(k)
        with self._lock, torch.inference_mode():
            size = self._size
            views = self._subsets[k].shape[1]
            if size == 0 or depth <= 0:
                return [[] for _ in range(views)]
            frags = torch.from_numpy(self._frags[:size].reshape(size * self.n, self.dim))
            q = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32).reshape(-1))
            scores = torch.mv(frags, q).view(size, self.n)
            view_scores = (scores @ torch.from_numpy(self._subsets[k])) / torch.from_numpy(self._norms[k][:size])
            ranked = self._vids[torch.topk(view_scores, min(depth, size), dim=0).indices.numpy()]  # best first
        return [ranked[:, j].tolist() for j in range(views)]


def ragpart_index(corpus: Corpus, *, fragments: int, dim: int, index: str, encoding: str
                  ) -> FragmentScores | RagPartViews:
    """The policy's RAGPart search: scored from fragments (exact, N vectors per chunk) or FAISS views."""
    if index == "fragments":
        return FragmentScores(corpus, fragments=fragments, dim=dim)
    return RagPartViews(corpus, fragments=fragments, dim=dim, encoding=encoding)
