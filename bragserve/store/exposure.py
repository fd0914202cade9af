"""How often each chunk is retrieved, for the loop-health metrics (exposure Gini, self-generated share).

Counted in memory and written in batches on the writer lane every few seconds and at
close: one fsync per query would cost more than the query. A crash loses at most the
last interval's counts, which are statistics, never acknowledged writes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from bragserve.store.corpus import Corpus


class ExposureCounter:
    def __init__(self, corpus: Corpus, lane: threading.Lock, *, interval_s: float = 10.0) -> None:
        self.corpus, self.lane, self.interval_s = corpus, lane, interval_s
        self._counts: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, vids: Iterable[int]) -> None:
        with self._lock:
            self._counts.update(vids)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="bragserve-exposure", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if not counts:
            return
        with self.lane, self.corpus.write() as db:
            db.conn.executemany("INSERT INTO exposure (vid, retrieved) VALUES (?, ?) ON CONFLICT(vid) DO UPDATE "
                                "SET retrieved = retrieved + excluded.retrieved", list(counts.items()))

    def stop(self) -> None:
        """Stop the background writer and write what is left (only if it was started: writers only)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self.flush()
