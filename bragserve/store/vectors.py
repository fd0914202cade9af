"""FAISS vector index keyed by chunk vid: add, remove, search, persist atomically.

The index is a cache of the SQLite corpus: it is saved now and then (temp file,
fsync, rename, manifest last) and checked against SQLite at start-up, so a crash
between a commit and a save loses nothing. Flat (exact) search is the default;
HNSW cannot remove vectors, so it hides deleted ids with an IDSelector at search
time and rebuilds itself once those tombstones pass a share of the index.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

try:
    import faiss
except ImportError as exc:  # pragma: no cover - a broken install
    raise ImportError("bragserve needs faiss: pip install faiss-cpu") from exc

log = logging.getLogger(__name__)

INDEX_FILE = "vectors.faiss"
MANIFEST_FILE = "vectors.json"


@contextmanager
def one_thread() -> Iterator[None]:
    """FAISS on one OpenMP thread for the duration of a call, and the calling thread's setting restored after.

    A single-query search gains nothing from a second thread on 2 cores. The setting cannot be made
    once, globally: FAISS and torch share one OpenMP runtime, whose thread count is kept per thread,
    so the import-time ``omp_set_num_threads(1)`` this replaces left torch on one thread in whichever
    thread imported this module (measured: a matrix-vector product 1.7 -> 3.4 ms; every in-process
    encode, e.g. ``bragserve ingest``, ran at half speed)."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


class VectorIndex:
    """One FAISS ``IndexIDMap2`` plus the bookkeeping both kinds share. Not thread-safe: callers lock."""

    kind = "flat"

    def __init__(self, dim: int, index: "faiss.Index | None" = None) -> None:
        self.dim = dim
        self.index = index if index is not None else self._new()
        self.dirty = False

    def _new(self) -> "faiss.Index":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def describe(self) -> dict:
        return {"kind": self.kind, "factory": "IDMap2,Flat", "metric": "inner_product"}

    # -- contents ------------------------------------------------------------------------------

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def count(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        present = np.isin(ids, self.ids())
        if present.any():  # re-adding is idempotent: replace the stored vector
            self.index.remove_ids(ids[present])
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self.dirty = True

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        removed = int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))
        self.dirty = self.dirty or removed > 0
        return removed

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids of the k nearest vectors, best first."""
        return self.search_many(np.asarray(query).reshape(1, -1), k)[0]

    def search_many(self, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``search`` for each row of ``queries``, in one pass: the write-back gates look around every answer
        sentence, or every cited chunk, at once."""
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self.dim))
        if self.count() == 0 or k <= 0 or not len(q):
            return [(np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)) for _ in q]
        scores, ids = self._search(q, min(k, self.count()))
        return [(s[i >= 0], i[i >= 0]) for s, i in zip(scores, ids)]

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """One query goes to FAISS. Several are one matrix product over FAISS's own stored vectors, because
        FAISS's exact search scans the whole index once per query (below its BLAS threshold of 20 queries) and
        its BLAS path is slower than that scan for a handful. Measured at 100k x 384 on this machine, one
        thread: a FAISS search 6.8 ms, four of them 26 ms; the product for four queries 8.6 ms (4.5 on two
        threads), for one 11.9. The product runs in torch, on the encoder's thread pool, as RAGPart's
        fragment scores do; scores are the same inner products, so results agree with FAISS's up to ties."""
        if len(queries) == 1:
            with one_thread():
                return self.index.search(queries, k)
        import torch

        flat = faiss.downcast_index(self.index.index)
        stored = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim).reshape(flat.ntotal, self.dim)
        with torch.inference_mode():  # the caller holds the index lock: ``stored`` cannot move meanwhile
            # stored @ queries.T, not queries @ stored.T: the same product, 3.5x faster in torch's BLAS here.
            top = torch.topk((torch.from_numpy(stored) @ torch.from_numpy(queries).T).T, k, dim=1)
        return top.values.numpy(), self.ids()[top.indices.numpy()]

    # -- persistence -----------------------------------------------------------------------------

    def save(self, directory: Path, extra: dict | None = None) -> None:
        """Write the index beside a manifest, atomically: a reader sees the old pair or the new one."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (INDEX_FILE + ".tmp")
        faiss.write_index(self.index, str(tmp))
        _fsync(tmp)
        os.replace(tmp, directory / INDEX_FILE)
        manifest = {**self.describe(), "dim": self.dim, "count": self.count(), "faiss": faiss.__version__,
                    "saved_at": time.time(), **self._state(), **(extra or {})}
        _atomic_write(directory / MANIFEST_FILE, json.dumps(manifest, indent=2))
        _fsync(directory)
        self.dirty = False

    def _state(self) -> dict:
        return {}


class HNSWIndex(VectorIndex):
    kind = "hnsw"

    def __init__(self, dim: int, index: "faiss.Index | None" = None, *, m: int = 32, ef_search: int = 128,
                 rebuild_ratio: float = 0.2, tombstones: set[int] | None = None) -> None:
        self.m, self.ef_search, self.rebuild_ratio = m, ef_search, rebuild_ratio
        self.tombstones: set[int] = set(tombstones or ())
        super().__init__(dim, index)

    def _new(self) -> "faiss.Index":
        inner = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = max(40, 2 * self.m)
        return faiss.IndexIDMap2(inner)

    def describe(self) -> dict:
        return {"kind": self.kind, "factory": f"IDMap2,HNSW{self.m},Flat", "metric": "inner_product",
                "ef_search": self.ef_search}

    def _state(self) -> dict:
        return {"tombstones": sorted(self.tombstones)}

    def ids(self) -> np.ndarray:
        all_ids = super().ids()
        if not self.tombstones:
            return all_ids
        return all_ids[~np.isin(all_ids, np.fromiter(self.tombstones, dtype=np.int64))]

    def count(self) -> int:
        return int(self.index.ntotal) - len(self.tombstones)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        physical = faiss.vector_to_array(self.index.id_map)
        revived = np.isin(ids, physical)
        # A chunk's vector never changes under its vid, so a tombstoned id comes back as it was.
        for vid in ids[revived]:
            self.tombstones.discard(int(vid))
        if (~revived).any():
            self.index.add_with_ids(np.ascontiguousarray(vectors[~revived], dtype=np.float32), ids[~revived])
        self.dirty = True

    def remove(self, ids: np.ndarray) -> int:
        live = set(int(v) for v in np.asarray(ids, dtype=np.int64)) & set(int(v) for v in super().ids())
        new = live - self.tombstones
        self.tombstones |= new
        if new:
            self.dirty = True
        if self.index.ntotal and len(self.tombstones) / self.index.ntotal > self.rebuild_ratio:
            self.rebuild()
        return len(new)

    def rebuild(self) -> None:
        """Drop tombstoned vectors for good by rebuilding from the live ones."""
        live = self.ids()
        vectors = np.vstack([self.index.reconstruct(int(v)) for v in live]) if len(live) else \
            np.zeros((0, self.dim), dtype=np.float32)
        log.info("rebuilding HNSW index: %d live vectors, %d tombstones dropped", len(live), len(self.tombstones))
        self.index = self._new()
        self.tombstones = set()
        if len(live):
            self.index.add_with_ids(vectors, live)
        self.dirty = True

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        if self.tombstones:
            params.sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.fromiter(self.tombstones, dtype=np.int64)))
        with one_thread():
            return self.index.search(queries, k, params=params)


def create_index(kind: str, dim: int, **hnsw: object) -> VectorIndex:
    if kind == "hnsw":
        return HNSWIndex(dim, **hnsw)  # type: ignore[arg-type]
    return VectorIndex(dim)


def load_index(directory: Path, kind: str, dim: int, **hnsw: object) -> tuple[VectorIndex | None, str]:
    """The saved index, or None and the reason it cannot be used (missing, corrupt, other kind or dim)."""
    index_path, manifest_path = directory / INDEX_FILE, directory / MANIFEST_FILE
    if not index_path.exists() or not manifest_path.exists():
        return None, "no saved index"
    try:
        manifest = json.loads(manifest_path.read_text())
        raw = faiss.read_index(str(index_path))
    except Exception as exc:  # a torn or foreign file: the caller rebuilds from SQLite
        return None, f"saved index unreadable ({exc.__class__.__name__}: {str(exc)[:120]})"
    if manifest.get("kind") != kind or manifest.get("dim") != dim or raw.d != dim:
        return None, f"saved index is {manifest.get('kind')}/{manifest.get('dim')}d, configured {kind}/{dim}d"
    if kind == "hnsw":
        return HNSWIndex(dim, raw, tombstones=set(manifest.get("tombstones", [])), **hnsw), "loaded"  # type: ignore
    return VectorIndex(dim, raw), "loaded"


def _fsync(path: Path) -> None:
    """fsync a file or a directory (a rename is durable only once its directory is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
