"""Use-cases: ingest, read, list, delete, query. The one place that ties store, retrieval and generation.

Writes go through a single writer lane: the SQLite transaction commits first (the
source of truth), then the FAISS index changes, and only then is the write
acknowledged. A crash between the two is repaired at the next start-up from SQLite.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bragserve.config import Policy, Settings
from bragserve.embedding import Embedder
from bragserve.errors import ConfigError, InvalidInput, NotFound
from bragserve.generation import Answer, Passage, create_generator
from bragserve.ingest import NewDocument, PreparedDocument, prepare
from bragserve.retrieval.dense import dense_search
from bragserve.store.corpus import ChunkRow, Corpus, DocumentRow, NewChunk
from bragserve.store.live_index import LiveIndex, Repair
from bragserve.store.lock import IndexLock

log = logging.getLogger(__name__)

CORPUS_FILE = "corpus.db"


@dataclass(frozen=True)
class IngestedDocument:
    id: str
    status: str  # created | updated | unchanged
    version: int
    chunks: int


@dataclass(frozen=True)
class QueryResult:
    query: str
    k: int
    passages: list[Passage]
    answer: Answer | None
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentPage:
    documents: list[DocumentRow]
    next_cursor: str | None


class Service:
    """Everything a request needs, built once per process by ``Service.open``."""

    def __init__(self, *, settings: Settings, policy: Policy, policy_source: str, embedder: Embedder,
                 corpus: Corpus, index: LiveIndex, repair: Repair, lock: IndexLock | None) -> None:
        self.settings, self.policy, self.policy_source = settings, policy, policy_source
        self.embedder, self.corpus, self.index = embedder, corpus, index
        self.repair = repair
        self.generator = create_generator(policy.generation, embedder)
        self._lock = lock
        self._write_lane = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, policy: Policy, policy_source: str = "built-in", *,
             readonly: bool = False, embedder: Embedder | None = None, lock: IndexLock | None = None) -> "Service":
        """Load models, open the corpus, load and repair the index. A writer holds the directory lock."""
        directory = Path(settings.index_dir)
        if not readonly and lock is None:
            lock = IndexLock.acquire(directory)
        try:
            embedder = embedder or Embedder(settings.embedder, batch_size=settings.embed_batch_size,
                                            cache_size=settings.query_cache_size)
            corpus = Corpus(directory / CORPUS_FILE, readonly=readonly)
            cls._check_embedder(corpus, embedder, readonly)
            index = LiveIndex(directory, corpus, kind=settings.index_type, dim=embedder.dim,
                              save_interval_s=settings.index_save_interval_s,
                              hnsw={"m": settings.hnsw_m, "ef_search": settings.hnsw_ef_search,
                                    "rebuild_ratio": settings.hnsw_rebuild_ratio}
                              if settings.index_type == "hnsw" else None)
            repair = index.open()
            if not readonly:
                index.save(force=repair.changed or repair.loaded != "loaded")
                index.start_autosave()
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(settings=settings, policy=policy, policy_source=policy_source, embedder=embedder,
                   corpus=corpus, index=index, repair=repair, lock=lock)

    @staticmethod
    def _check_embedder(corpus: Corpus, embedder: Embedder, readonly: bool) -> None:
        """A corpus embedded by one model cannot be searched with another."""
        stored = corpus.get_meta("embedder")
        current = json.dumps({"model": embedder.model_id, "dim": embedder.dim}, sort_keys=True)
        if stored is None and not readonly:
            with corpus.write() as db:
                corpus.set_meta(db, "embedder", current)
        elif stored is not None and stored != current:
            raise ConfigError(f"this corpus was embedded with {stored}, but the configured embedder is {current}")

    def close(self) -> None:
        """Save the index (writers only) and release the directory."""
        if self._lock is not None:
            self.index.close()
        self.corpus.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- ingest ----------------------------------------------------------------------------------

    def ingest(self, *, documents: list[NewDocument]) -> list[IngestedDocument]:
        prepared = prepare(documents, self.settings, self.policy.chunking)
        to_embed = [p for p in prepared if self._needs_new_version(p)]
        texts = [c.text for p in to_embed for c in p.chunks]
        vectors = self.embedder.encode(texts)
        offsets, cursor = {}, 0
        for p in to_embed:
            offsets[p.id] = vectors[cursor:cursor + len(p.chunks)]
            cursor += len(p.chunks)
        with self._write_lane:
            results, add_ids, add_vecs, remove_ids = [], [], [], []
            with self.corpus.write() as db:
                for p in prepared:
                    current = self.corpus.get_document(p.id, db=db)
                    if current is not None and current.content_hash == p.content_hash and \
                            current.status == "active":
                        changed = current.trust != p.trust or current.metadata != p.metadata
                        if changed:
                            self.corpus.update_attributes(db, p.id, trust=p.trust, metadata=p.metadata)
                        results.append(IngestedDocument(p.id, "updated" if changed else "unchanged",
                                                        current.version, len(self.corpus.document_chunks(p.id))))
                        continue
                    vecs = offsets.get(p.id)
                    if vecs is None:  # became stale between the check and the lock: encode now
                        vecs = self.embedder.encode([c.text for c in p.chunks])
                    chunks = [NewChunk(i, c.text, c.start, c.end, v) for i, (c, v) in enumerate(zip(p.chunks, vecs))]
                    version, vids, superseded = self.corpus.insert_version(
                        db, doc_id=p.id, text=p.text, source="ingested", trust=p.trust, metadata=p.metadata,
                        content_hash=p.content_hash, chunks=chunks)
                    add_ids += vids
                    add_vecs.append(vecs)
                    remove_ids += superseded
                    results.append(IngestedDocument(p.id, "created" if current is None else "updated", version,
                                                    len(vids)))
            self._apply_index(add_ids, add_vecs, remove_ids)
        return results

    def _needs_new_version(self, p: PreparedDocument) -> bool:
        current = self.corpus.get_document(p.id)
        return current is None or current.content_hash != p.content_hash or current.status != "active"

    def _apply_index(self, add_ids: list[int], add_vecs: list, remove_ids: list[int]) -> None:
        import numpy as np

        vectors = np.vstack(add_vecs) if add_vecs else None
        try:
            self.index.apply(add_ids=add_ids, add_vectors=vectors, remove_ids=remove_ids)
        except Exception:
            log.exception("vector index update failed after commit; repairing from SQLite")
            self.index.open()
            raise

    # -- documents -------------------------------------------------------------------------------

    def get_document(self, doc_id: str) -> tuple[DocumentRow, list[ChunkRow]]:
        doc = self.corpus.get_document(doc_id)
        if doc is None or doc.status == "deleted":
            raise NotFound(f"no document with id {doc_id!r}")
        return doc, self.corpus.document_chunks(doc_id)

    def list_documents(self, *, source: str | None, status: str | None, limit: int,
                       cursor: str | None) -> DocumentPage:
        after = _decode_cursor(cursor) if cursor else 0
        rows = self.corpus.list_documents(source=source, status=status, limit=limit + 1, after_seq=after)
        more = len(rows) > limit
        rows = rows[:limit]
        return DocumentPage(rows, _encode_cursor(rows[-1].seq) if more and rows else None)

    def delete_document(self, doc_id: str) -> int:
        """Mark a document deleted (its rows stay for lineage and audit) and drop its vectors."""
        with self._write_lane:
            with self.corpus.write() as db:
                doc = self.corpus.get_document(doc_id, db=db)
                if doc is None or doc.status == "deleted":
                    raise NotFound(f"no document with id {doc_id!r}")
                vids = self.corpus.set_status(db, doc_id, "deleted")
            self._apply_index([], [], vids)
        return len(vids)

    # -- query -----------------------------------------------------------------------------------

    def query(self, *, query: str, k: int | None = None, generate: bool = True) -> QueryResult:
        if not query or not query.strip():
            raise InvalidInput("query is empty", code="empty_query")
        if len(query) > self.settings.max_query_chars:
            raise InvalidInput(f"query has {len(query)} characters; the limit is {self.settings.max_query_chars}",
                               code="query_too_long")
        k = self.policy.retrieval.default_k if k is None else k
        if not 1 <= k <= self.policy.retrieval.max_k:
            raise InvalidInput(f"k must be between 1 and {self.policy.retrieval.max_k}", code="invalid_k")
        started = time.perf_counter()
        qvec = self.embedder.encode_query(query.strip())
        t_embed = time.perf_counter()
        passages = dense_search(self.index, self.corpus, qvec, k)
        t_search = time.perf_counter()
        answer = self.generator.answer(query, qvec, passages) if generate else None
        t_gen = time.perf_counter()
        timings = {"embed": (t_embed - started) * 1000, "search": (t_search - t_embed) * 1000,
                   "generate": (t_gen - t_search) * 1000, "total": (t_gen - started) * 1000}
        return QueryResult(query, k, passages, answer, {k_: round(v, 3) for k_, v in timings.items()})

    # -- health ----------------------------------------------------------------------------------

    def status(self) -> dict:
        consistent, counts = self.index.consistent()
        return {"consistent": consistent, **counts, "index_type": self.settings.index_type,
                "embedder": self.embedder.model_id, "policy": self.policy_source, "policy_hash": self.policy.hash,
                "documents": self.corpus.document_counts(),
                "repair_at_start": {"loaded": self.repair.loaded, "added": self.repair.added,
                                    "removed": self.repair.removed}}


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": seq}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        if not isinstance(value, int) or value < 0:
            raise ValueError
        return value
    except Exception:
        raise InvalidInput("cursor is not one this server issued", code="invalid_cursor") from None
