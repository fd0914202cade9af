"""Use-cases: ingest, read, list, delete, query. The one place that ties store, retrieval and generation.

Writes go through a single writer lane (``corpus_writer``): the SQLite transaction
commits first (the source of truth), then the FAISS index changes, and only then is the
write acknowledged. A crash between the two is repaired at the next start-up from SQLite.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bragserve import audit, lifecycle
from bragserve.corpus_writer import CorpusWriter, IngestedDocument
from bragserve.embedding import Embedder
from bragserve.errors import ConfigError, Conflict, InvalidInput, NotFound
from bragserve.gates.nli import NLIModel
from bragserve.gates.report import Candidate
from bragserve.generation import Answer, Passage, create_generator
from bragserve.ingest import NewDocument
from bragserve.pagination import decode_cursor, encode_cursor
from bragserve.policy import Policy
from bragserve.retrieval.defended import DefenceReport, DefendedRetriever
from bragserve.retrieval.features import FeatureEncoder
from bragserve.retrieval.ragmask import RagMask
from bragserve.retrieval.ragpart import ragpart_index
from bragserve.settings import Settings
from bragserve.store import lineage
from bragserve.store.corpus import ChunkRow, Corpus, DocumentRow
from bragserve.store.exposure import ExposureCounter
from bragserve.store.live_index import LiveIndex, Repair
from bragserve.store.lock import IndexLock
from bragserve.text import split_cited
from bragserve.writeback import Outcome, WritebackLoop

LOCAL_ACTOR = "local"

log = logging.getLogger(__name__)

CORPUS_FILE = "corpus.db"


@dataclass(frozen=True)
class QueryResult:
    query: str
    k: int
    passages: list[Passage]
    answer: Answer | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    writeback: Outcome | None = None
    defences: DefenceReport | None = None


@dataclass(frozen=True)
class DocumentPage:
    documents: list[DocumentRow]
    next_cursor: str | None


class Service:
    """Everything a request needs, built once per process by ``Service.open``."""

    def __init__(self, *, settings: Settings, policy: Policy, policy_source: str, embedder: Embedder,
                 nli: NLIModel, corpus: Corpus, index: LiveIndex, repair: Repair, lock: IndexLock | None) -> None:
        self.settings, self.policy, self.policy_source = settings, policy, policy_source
        self.embedder, self.nli, self.corpus, self.index = embedder, nli, corpus, index
        self.repair = repair
        self.generator = create_generator(policy.generation, embedder, settings)
        self._lock = lock
        self.features = FeatureEncoder(embedder)
        self.views = ragpart_index(corpus, fragments=policy.ragpart.fragments, dim=embedder.dim,
                                   index=policy.ragpart.index, encoding=policy.ragpart.encoding)
        self.writer = CorpusWriter(settings=settings, policy=policy, embedder=embedder, corpus=corpus, index=index,
                                   views=self.views, features=self.features)
        self._write_lane = self.writer.lane
        self.retriever = DefendedRetriever(corpus=corpus, index=index, views=self.views,
                                           mask=RagMask(self.features.tokens), dim=embedder.dim)
        self.loop = WritebackLoop(policy=policy, corpus=corpus, index=index, embedder=embedder, nli=nli,
                                  lane=self._write_lane, apply_index=self.writer.apply_index,
                                  encode_chunks=self.writer.encode_chunks, profile=self.writer.profile)
        self.exposure = ExposureCounter(corpus, self._write_lane)
        if lock is not None:
            self._record_policy()
            self.exposure.start()

    @classmethod
    def open(cls, settings: Settings, policy: Policy, policy_source: str = "built-in", *,
             readonly: bool = False, embedder: Embedder | None = None, nli: NLIModel | None = None,
             lock: IndexLock | None = None) -> "Service":
        """Load models, open the corpus, load and repair the index. A writer holds the directory lock."""
        directory = Path(settings.index_dir)
        if not readonly and lock is None:
            lock = IndexLock.acquire(directory)
        try:
            embedder = embedder or Embedder(settings.embedder, batch_size=settings.embed_batch_size,
                                            cache_size=settings.query_cache_size,
                                            precision=settings.embedder_precision)
            nli = nli or NLIModel(settings.nli_model, precision=settings.nli_precision)
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
        service = cls(settings=settings, policy=policy, policy_source=policy_source, embedder=embedder, nli=nli,
                      corpus=corpus, index=index, repair=repair, lock=lock)
        service.prebuild_views()
        return service

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

    def _record_policy(self) -> None:
        with self._write_lane, self.corpus.write() as db:
            audit.append(db, type="policy_loaded", actor=LOCAL_ACTOR, subjects=[self.policy.hash],
                         payload={"source": self.policy_source, "policy_hash": self.policy.hash,
                                  "policy": self.policy.model_dump(mode="json"),
                                  "models": {"embedder": self.embedder.model_id, "nli": self.nli.model_id}})

    def close(self) -> None:
        """Flush counters, save the index (writers only) and release the directory."""
        self.exposure.stop()
        if self._lock is not None:
            self.index.close()
        self.corpus.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- ingest ----------------------------------------------------------------------------------

    def prebuild_views(self) -> None:
        """Build the RAGPart search at start-up when the policy uses it (else on first use)."""
        if self.policy.ragpart.enabled:
            self.views.prepare(self.policy.ragpart.views_k)

    def ingest(self, *, documents: list[NewDocument], actor: str = LOCAL_ACTOR) -> list[IngestedDocument]:
        return self.writer.ingest(documents, actor=actor)

    # -- documents -------------------------------------------------------------------------------

    def get_document(self, doc_id: str) -> tuple[DocumentRow, list[ChunkRow]]:
        doc = self.corpus.get_document(doc_id)
        if doc is None or doc.status == "deleted":
            raise NotFound(f"no document with id {doc_id!r}")
        return doc, self.corpus.document_chunks(doc_id)

    def list_documents(self, *, source: str | None, status: str | None, limit: int,
                       cursor: str | None) -> DocumentPage:
        after = decode_cursor(cursor) if cursor else 0
        rows = self.corpus.list_documents(source=source, status=status, limit=limit + 1, after_seq=after)
        more = len(rows) > limit
        rows = rows[:limit]
        return DocumentPage(rows, encode_cursor(rows[-1].seq) if more and rows else None)

    def delete_document(self, doc_id: str, *, actor: str = LOCAL_ACTOR) -> lifecycle.Change:
        """Mark a document deleted (rows stay for lineage and audit), revoking what was built on it."""
        return self.change_status(doc_id, "deleted", actor=actor, reason="requested")

    def change_status(self, doc_id: str, status: str, *, actor: str, reason: str,
                      payload: dict | None = None) -> lifecycle.Change:
        with self._write_lane:
            with self.corpus.write() as db:
                change = lifecycle.set_status(db, self.corpus, doc_id, status, actor=actor, reason=reason,
                                              payload=payload)
            self.writer.apply_index([], [], change.removed_vids)
        return change

    def restore_document(self, doc_id: str, *, actor: str = LOCAL_ACTOR, note: str | None = None
                         ) -> lifecycle.Change:
        with self._write_lane:
            with self.corpus.write() as db:
                change = lifecycle.restore(db, self.corpus, doc_id, actor=actor, note=note)
            self.index.restore(change.restored_vids)
            self.views.add(change.restored_vids)
        return change

    def approve_review(self, review_id: str, *, actor: str = LOCAL_ACTOR, note: str | None = None) -> Outcome:
        """Approving a write-back review writes it back; approving a quarantine restores the document."""
        review = self.loop.review(review_id)
        if review["kind"] != "quarantine":
            return self.loop.approve(review_id, actor=actor, note=note)
        if review["status"] != "pending":
            raise Conflict(f"review {review_id} was already {review['status']}")
        self.restore_document(review["subject"], actor=actor, note=note)
        return Outcome("accepted", None, f"quarantine lifted: {review['subject']} is active", [],
                       document_id=review["subject"], review_id=review_id)

    def lineage(self, doc_id: str) -> dict:
        """Ancestors (what a write-back was built from) and descendants (what was built on a document)."""
        if self.corpus.get_document(doc_id) is None:
            raise NotFound(f"no document with id {doc_id!r}")
        return lineage.describe(self.corpus.reader(), doc_id)

    # -- query -----------------------------------------------------------------------------------

    def _validate_query(self, query: str) -> None:
        if not query or not query.strip():
            raise InvalidInput("query is empty", code="empty_query")
        if len(query) > self.settings.max_query_chars:
            raise InvalidInput(f"query has {len(query)} characters; the limit is {self.settings.max_query_chars}",
                               code="query_too_long")

    def retrieve(self, query_vector: np.ndarray, k: int, policy: Policy | None = None,
                 ragmask_method: str | None = None, query: str | None = None) -> tuple[list[Passage], DefenceReport]:
        """Top-k with the policy's defences and the loop cap (at most max_generated_share of k are write-backs)."""
        policy = policy or self.policy
        if policy.ragpart.enabled and policy.ragpart.fragments != self.views.n:
            raise InvalidInput(f"this corpus stores {self.views.n} fragments per chunk; ragpart.fragments cannot "
                               "change per request", code="invalid_defences")
        served = self.policy.ragpart
        if (policy.ragpart.index, policy.ragpart.encoding) != (served.index, served.encoding):
            raise InvalidInput(f"ragpart.index and ragpart.encoding are set per server ({served.index}, "
                               f"{served.encoding}): restart with another policy to change them",
                               code="invalid_defences")
        cap = math.floor(policy.loop.max_generated_share * k + 1e-9)
        passages, report = self.retriever.retrieve(query_vector, k, policy, cap, ragmask_method, query)
        self.exposure.record(int(p.chunk_id[1:]) for p in passages)
        return passages, report

    def query(self, *, query: str, k: int | None = None, generate: bool = True, writeback: bool | None = None,
              defences: dict | None = None, actor: str = LOCAL_ACTOR) -> QueryResult:
        self._validate_query(query)
        policy = self.policy.with_overrides(defences) if defences else self.policy
        k = self.policy.retrieval.default_k if k is None else k
        if not 1 <= k <= self.policy.retrieval.max_k:
            raise InvalidInput(f"k must be between 1 and {self.policy.retrieval.max_k}", code="invalid_k")
        if writeback and not generate:
            raise InvalidInput("writeback needs an answer: set generate to true", code="writeback_without_answer")
        if writeback and self._lock is None:
            raise InvalidInput("this corpus is open read-only; write-back is not possible", code="read_only")
        # The policy default applies only where it can: an answer is generated and the corpus is writable.
        run_gates = writeback if writeback is not None else (
            self.policy.writeback.on_query and generate and self._lock is not None)
        started = time.perf_counter()
        qvec = self.embedder.encode_query(query.strip())
        t_embed = time.perf_counter()
        passages, report = self.retrieve(qvec, k, policy, query=query.strip())
        t_search = time.perf_counter()
        answer = self.generator.answer(query, qvec, passages) if generate else None
        t_gen = time.perf_counter()
        outcome = None
        if run_gates and answer is not None and answer.text:
            self._screen_citations(qvec, passages, set(answer.cited), policy, report)
            outcome = self.loop.submit(Candidate(query, answer.text, answer.generator,
                                                 {p.chunk_id: p for p in passages},
                                                 flagged=frozenset(report.flagged_chunks),
                                                 masked=report.masked_citations,
                                                 suspect=report.suspect_citations),
                                       actor=actor, record=True, policy=policy)
        t_gates = time.perf_counter()
        timings = {"embed": (t_embed - started) * 1000, "search": (t_search - t_embed) * 1000,
                   "generate": (t_gen - t_search) * 1000, "writeback": (t_gates - t_gen) * 1000,
                   "total": (t_gates - started) * 1000}
        return QueryResult(query, k, passages, answer, {k_: round(v, 3) for k_, v in timings.items()}, outcome,
                           report)

    def _screen_citations(self, qvec: np.ndarray, passages: list[Passage], cited: set[str], policy: Policy,
                          report: DefenceReport) -> None:
        """``screening.ragmask``: RAGMask's verdict on what a write-back cites, when retrieval did not run it;
        ``screening.flood`` and ``screening.source_disfluency``: what it cites, judged around it in the corpus and by
        its whole text."""
        if not policy.screening.enabled:
            return
        if policy.screening.ragmask and not policy.ragmask.enabled:
            self.retriever.screen_citations(qvec, passages, cited, policy, report)
        if policy.screening.flood > 0 or policy.screening.source_disfluency > 0:
            self.retriever.judge_citations(passages, cited, policy, report)

    def propose_writeback(self, *, query: str, answer: str, citations: list[str] | None, generator: str,
                          actor: str = LOCAL_ACTOR) -> Outcome:
        """An answer from an outside generator: its citations must be retrievable for its query."""
        self._validate_query(query)
        if not answer or not answer.strip():
            raise InvalidInput("answer is empty", code="empty_answer")
        qvec = self.embedder.encode_query(query.strip())
        passages, report = self.retrieve(qvec, self.policy.attribution.retrievable_k)
        cited = set(citations or ()) | {c for sentence in split_cited(answer) for c in sentence.citations}
        self._screen_citations(qvec, passages, cited, self.policy, report)
        return self.loop.submit(Candidate(query, answer, generator, {p.chunk_id: p for p in passages},
                                          tuple(citations or ()), flagged=frozenset(report.flagged_chunks),
                                          masked=report.masked_citations, suspect=report.suspect_citations),
                                actor=actor)

    def feedback(self, *, document_id: str | None, query_id: str | None, signal: str, note: str | None,
                 actor: str = LOCAL_ACTOR) -> dict:
        return self.loop.feedback(document_id=document_id, query_id=query_id, signal=signal, note=note, actor=actor)

    # -- health ----------------------------------------------------------------------------------

    def status(self) -> dict:
        consistent, counts = self.index.consistent()
        return {"consistent": consistent, **counts, "index_type": self.settings.index_type,
                "embedder": self.embedder.model_id,
                "precision": {"embedder": self.embedder.precision, "nli": self.nli.precision},
                "policy": self.policy_source, "policy_hash": self.policy.hash,
                "documents": self.corpus.document_counts(),
                "repair_at_start": {"loaded": self.repair.loaded, "added": self.repair.added,
                                    "removed": self.repair.removed}}
