"""The in-memory vector index of a running corpus: locking, periodic saves, repair from SQLite.

Readers search under the same lock writers mutate under (a FAISS index is not safe
to search while it changes); a search is well under a millisecond, so one lock
costs nothing measurable. Saving happens on a background thread only when the
index changed, and never in place.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bragserve.store.corpus import Corpus
from bragserve.store.vectors import VectorIndex, create_index, load_index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Repair:
    loaded: str
    added: int
    removed: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


class LiveIndex:
    def __init__(self, directory: Path, corpus: Corpus, *, kind: str, dim: int, save_interval_s: float,
                 hnsw: dict | None = None) -> None:
        self.directory = directory
        self.corpus = corpus
        self.kind, self.dim = kind, dim
        self.hnsw = hnsw or {}
        self.save_interval_s = save_interval_s
        self.lock = threading.RLock()
        self.index: VectorIndex = create_index(kind, dim, **self.hnsw)
        self._stop = threading.Event()
        self._saver: threading.Thread | None = None

    # -- start-up --------------------------------------------------------------------------------

    def open(self) -> Repair:
        """Load the saved index and make it agree exactly with SQLite's active chunks."""
        loaded, why = load_index(self.directory, self.kind, self.dim, **self.hnsw)
        with self.lock:
            if loaded is not None:
                self.index = loaded
            else:
                log.info("vector index: %s; building from SQLite", why)
            repair = self._reconcile()
        log_fn = log.warning if (repair.changed and loaded is not None) else log.info
        log_fn("vector index %s: %d vectors; repaired from SQLite: %d added, %d removed",
               why, self.count(), repair.added, repair.removed)
        return Repair(why, repair.added, repair.removed)

    def _reconcile(self) -> Repair:
        expected = self.corpus.active_vids()
        present = self.index.ids()
        missing = np.setdiff1d(expected, present, assume_unique=True)
        extra = np.setdiff1d(present, expected, assume_unique=True)
        if len(extra):
            self.index.remove(extra)
        for start in range(0, len(missing), 20_000):
            part = missing[start:start + 20_000]
            self.index.add(part, self.corpus.embeddings(part, self.dim))
        return Repair("", int(len(missing)), int(len(extra)))

    def consistent(self) -> tuple[bool, dict]:
        """Whether the index holds exactly SQLite's active chunks (ids and count)."""
        with self.lock:
            expected = self.corpus.active_vids()
            present = np.sort(self.index.ids())
        same = len(expected) == len(present) and bool(np.array_equal(expected, present))
        return same, {"sqlite_active_chunks": int(len(expected)), "index_vectors": int(len(present))}

    # -- changes ---------------------------------------------------------------------------------

    def apply(self, *, add_ids: list[int], add_vectors: np.ndarray | None, remove_ids: list[int]) -> None:
        with self.lock:
            if remove_ids:
                self.index.remove(np.asarray(remove_ids, dtype=np.int64))
            if add_ids:
                self.index.add(np.asarray(add_ids, dtype=np.int64), add_vectors)

    def restore(self, vids: list[int]) -> None:
        """Put stored vectors back (a restored or re-activated chunk)."""
        if vids:
            arr = np.asarray(vids, dtype=np.int64)
            self.apply(add_ids=vids, add_vectors=self.corpus.embeddings(arr, self.dim), remove_ids=[])

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            return self.index.search(query, k)

    def search_many(self, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        with self.lock:
            return self.index.search_many(queries, k)

    def count(self) -> int:
        with self.lock:
            return self.index.count()

    # -- persistence -----------------------------------------------------------------------------

    def save(self, force: bool = False) -> bool:
        with self.lock:
            if not (force or self.index.dirty):
                return False
            self.index.save(self.directory)
            return True

    def start_autosave(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.save_interval_s):
                try:
                    self.save()
                except OSError:  # a full disk must not kill the server: SQLite still has everything
                    log.exception("saving the vector index failed; will retry")
        self._saver = threading.Thread(target=loop, name="bragserve-index-saver", daemon=True)
        self._saver.start()

    def close(self) -> None:
        self._stop.set()
        if self._saver is not None:
            self._saver.join(timeout=10)
        self.save()
