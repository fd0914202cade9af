"""The verified write-back loop: gate a candidate answer, then record exactly one outcome.

Accepted answers become ``writeback`` documents with their lineage; borderline or
contradicted ones wait in the review queue; rejected ones leave only their audit
record. Whatever happens is decided in one SQLite transaction with its audit record,
on the single writer lane, before the index changes.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sqlite_utils

from bragserve import audit
from bragserve import lifecycle
from bragserve.chunking import chunk_text
from bragserve.embedding import Embedder
from bragserve.errors import Conflict, InvalidInput, NotFound
from bragserve.gates.nli import NLIModel
from bragserve.gates.pipeline import evaluate
from bragserve.gates.report import Candidate, GateResult, Verdict
from bragserve.policy import Policy
from bragserve.retrieval.token_encoder import SpanProfile
from bragserve.store import lineage
from bragserve.store import reviews as review_rows
from bragserve.store.corpus import Corpus, NewChunk, now_iso, where
from bragserve.store.live_index import LiveIndex
from bragserve.text import CitedSentence


@dataclass(frozen=True)
class Outcome:
    decision: str
    reason: str | None
    message: str
    gates: list[dict[str, Any]]
    document_id: str | None = None
    review_id: str | None = None
    audit_id: str | None = None
    depth: int | None = None
    query_id: str | None = None
    timings_ms: dict[str, float] | None = None


def _writeback_id(answer_text: str) -> str:
    return "wb-" + hashlib.sha256(answer_text.encode("utf-8")).hexdigest()[:20]


class WritebackLoop:
    def __init__(self, *, policy: Policy, corpus: Corpus, index: LiveIndex, embedder: Embedder, nli: NLIModel,
                 lane: threading.Lock, apply_index, encode_chunks, profile) -> None:
        self.policy, self.corpus, self.index, self.embedder, self.nli = policy, corpus, index, embedder, nli
        self._lane = lane
        self._apply_index = apply_index
        self._encode_chunks = encode_chunks
        self._profile = profile

    def _models(self) -> dict[str, str]:
        return {"nli": self.nli.model_id, "embedder": self.embedder.model_id}

    # -- the gates and their outcome ---------------------------------------------------------------

    def submit(self, candidate: Candidate, *, actor: str, record: bool = False, policy: Policy | None = None
               ) -> Outcome:
        """Gate a candidate and record its outcome; ``record`` also stores the query for feedback.

        ``policy`` is the request's effective policy (its defence overrides); the recorded
        policy hash is that policy's, so an audit shows exactly which settings decided."""
        policy = policy or self.policy
        if len(candidate.answer) > policy.writeback.max_answer_chars:
            raise InvalidInput(f"answer has {len(candidate.answer)} characters; the limit is "
                               f"{policy.writeback.max_answer_chars}", code="answer_too_long")
        started = time.perf_counter()
        profiles: dict[str, SpanProfile] = {}

        score = policy.screening.enabled and policy.screening.disfluency > 0

        def profile_answer(text: str) -> SpanProfile:
            # The novelty gate's vector, the screening gate's disfluency and the windows stored with an accepted
            # answer all come from one encoder pass: an accepted answer is encoded once, not three times.
            if text not in profiles:
                profiles[text] = self._profile(text, score)
            return profiles[text]

        steps: dict[str, float] = {}
        verdict = evaluate(candidate, policy=policy, nli=self.nli, embedder=self.embedder, corpus=self.corpus,
                           index=self.index, encode_answer=lambda text: profile_answer(text).vector,
                           disfluency=lambda text: profile_answer(text).disfluency, timings=steps)
        gated = time.perf_counter()
        # Encoding an accepted answer's chunks is the slow part of storing it: done before taking the
        # writer lane so other writers do not wait on the encoder.
        chunks = self._prepare(verdict.answer_text, profiles) if verdict.decision == "accepted" else []
        prepared = time.perf_counter()
        gates = [g.as_dict() for g in verdict.gates]
        base = {"query": candidate.query, "answer": candidate.answer, "generator": candidate.generator,
                "gates": gates, "policy_hash": policy.hash, "models": self._models(),
                "citations": sorted({c for s in verdict.sentences for c in s.citations})}
        with self._lane:
            with self.corpus.write() as db:
                stale = self._stale(db, verdict)
                if stale is not None:  # the corpus changed while the gates ran: decide on what is there now
                    verdict = Verdict("rejected", stale.name, stale.message or "", [*verdict.gates, stale],
                                      verdict.sentences, verdict.depth, verdict.answer_text, verdict.answer_vector,
                                      verdict.cited_vids)
                    gates = [g.as_dict() for g in verdict.gates]
                    base["gates"] = gates
                if verdict.decision == "accepted":
                    doc_id, vids, vectors, record = self._accept(db, candidate.query, candidate.generator, verdict,
                                                                 base, chunks, actor=actor)
                    outcome = Outcome("accepted", None, "accepted", gates, document_id=doc_id, audit_id=record,
                                      depth=verdict.depth)
                elif verdict.decision == "review":
                    review_id, record = self._queue(db, verdict, base, actor=actor)
                    outcome = Outcome("review", verdict.reason, verdict.message, gates, review_id=review_id,
                                      audit_id=record, depth=verdict.depth)
                else:
                    rec = audit.append(db, type="writeback_rejected", actor=actor, subjects=base["citations"],
                                       payload={**base, "reason": verdict.reason, "message": verdict.message})
                    outcome = Outcome("rejected", verdict.reason, verdict.message, gates, audit_id=rec.id)
                if record:
                    outcome = replace(outcome, query_id=record_query(db, query=candidate.query,
                                                                     answer=candidate.answer, outcome=outcome))
            if verdict.decision == "accepted":
                self._apply_index(vids, [vectors], [])
        timings = {"gates": gated - started, "encode": prepared - gated, "commit": time.perf_counter() - prepared}
        return replace(outcome, timings_ms={**{name: round(seconds * 1000, 3) for name, seconds in timings.items()},
                                            **{f"gates.{step}": ms for step, ms in steps.items()}})

    def _stale(self, db: sqlite_utils.Database, verdict: Verdict) -> GateResult | None:
        """Re-check, inside the write transaction, what may have changed since the gates ran."""
        if verdict.decision == "rejected":
            return None
        rows = self.corpus.chunks_by_vids(verdict.cited_vids, db=db)
        gone = [f"c{v}" for v in verdict.cited_vids if v not in rows or rows[v].status != "active"]
        if gone:
            return GateResult("attribution", False, 0.0, f"cited chunks {', '.join(gone)} were removed while the "
                                                         "answer was being checked", {"problem": "removed"})
        doc_id = _writeback_id(verdict.answer_text)
        existing = self.corpus.get_document(doc_id, db=db)
        if verdict.decision == "accepted" and existing is not None and existing.status != "deleted":
            return GateResult("novelty", False, 1.0, f"the same answer is already written back as {doc_id}",
                              {"nearest_doc": doc_id})
        return None

    def _prepare(self, text: str, known: dict[str, SpanProfile] | None = None) -> list[NewChunk]:
        """The chunks of an answer to be stored, encoded with everything the defences read (``known``: token
        profiles the gates already made, reused for a chunk with exactly that text)."""
        spans = chunk_text(text, max_words=self.policy.chunking.max_words,
                           overlap_sentences=self.policy.chunking.overlap_sentences)
        feats = self._encode_chunks([s.text for s in spans], known)
        return [NewChunk(i, s.text, s.start, s.end, f.vector, f) for i, (s, f) in enumerate(zip(spans, feats))]

    def _accept(self, db: sqlite_utils.Database, query: str, generator: str, verdict: Verdict, base: dict,
                chunks: list[NewChunk], *, actor: str, via_review: str | None = None
                ) -> tuple[str, list[int], np.ndarray, str]:
        text = verdict.answer_text
        doc_id = _writeback_id(text)
        existing = self.corpus.get_document(doc_id, db=db)
        if existing is not None and existing.status != "deleted":
            raise Conflict(f"this answer was already written back as {doc_id} ({existing.status})")
        parents = self.corpus.chunks_by_vids(verdict.cited_vids, db=db)
        trust = min((p.trust for p in parents.values()), default=0.0)  # never more trusted than its sources
        vectors = np.stack([c.embedding for c in chunks])
        cited_answer = " ".join(f"{s.text} " + "".join(f"[{c}]" for c in s.citations) for s in verdict.sentences)
        metadata = {"query": query, "generator": generator, "answer_with_citations": cited_answer}
        _, vids, _ = self.corpus.insert_version(
            db, doc_id=doc_id, text=text, source="writeback", trust=trust, metadata=metadata,
            content_hash=hashlib.sha256(text.encode()).hexdigest(), chunks=chunks)
        scores = verdict.scores()
        db.execute("INSERT OR REPLACE INTO writebacks (doc_id, query, answer, generator, citations, scores, "
                   "policy_hash, depth, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [doc_id, query, cited_answer, generator, json.dumps(base["citations"]), json.dumps(scores),
                    self.policy.hash, verdict.depth, now_iso()])
        lineage.add_edges(db, doc_id, verdict.cited_vids)
        record = audit.append(db, type="writeback_accepted", actor=actor, subjects=[doc_id, *base["citations"]],
                              payload={**base, "document_id": doc_id, "depth": verdict.depth, "trust": trust,
                                       "chunks": [f"c{v}" for v in vids], "via_review": via_review})
        return doc_id, vids, vectors, record.id

    def _queue(self, db: sqlite_utils.Database, verdict: Verdict, base: dict, *, actor: str) -> tuple[str, str]:
        candidate = {**base, "sentences": [{"text": s.text, "citations": list(s.citations)} for s in verdict.sentences],
                     "depth": verdict.depth, "cited_vids": verdict.cited_vids, "message": verdict.message}
        review_id = review_rows.add(db, kind="writeback", reason=verdict.reason or "", subject=None,
                                    candidate=candidate)
        record = audit.append(db, type="writeback_queued", actor=actor, subjects=[review_id, *base["citations"]],
                              payload={**base, "review_id": review_id, "reason": verdict.reason,
                                       "message": verdict.message})
        return review_id, record.id

    # -- the review queue -------------------------------------------------------------------------

    def reviews(self, *, status: str | None, limit: int, after_seq: int) -> list[dict]:
        clause, params = where(("seq > ?", after_seq), ("status = ?", status))
        rows = self.corpus.reader().query(f"SELECT * FROM reviews WHERE {clause} ORDER BY seq LIMIT ?",
                                          [*params, limit])
        return [{**r, "candidate": json.loads(r["candidate"])} for r in rows]

    def review(self, review_id: str) -> dict:
        rows = list(self.corpus.reader().query("SELECT * FROM reviews WHERE id = ?", [review_id]))
        if not rows:
            raise NotFound(f"no review with id {review_id!r}")
        return {**rows[0], "candidate": json.loads(rows[0]["candidate"])}

    def _pending(self, db: sqlite_utils.Database, review_id: str) -> dict:
        rows = list(db.query("SELECT * FROM reviews WHERE id = ?", [review_id]))
        if not rows:
            raise NotFound(f"no review with id {review_id!r}")
        if rows[0]["status"] != "pending":
            raise Conflict(f"review {review_id} was already {rows[0]['status']}")
        return {**rows[0], "candidate": json.loads(rows[0]["candidate"])}

    def approve(self, review_id: str, *, actor: str, note: str | None) -> Outcome:
        """A person overrides the band or the contradiction: write it back, if its sources still stand."""
        with self._lane:
            with self.corpus.write() as db:
                review = self._pending(db, review_id)
                cand = review["candidate"]
                if review["kind"] != "writeback":
                    raise Conflict(f"review {review_id} is a {review['kind']} review; approve it via restore")
                rows = self.corpus.chunks_by_vids(cand["cited_vids"], db=db)
                gone = [f"c{v}" for v in cand["cited_vids"] if v not in rows or rows[v].status != "active"]
                if gone:
                    raise Conflict(f"cannot approve {review_id}: cited chunks {', '.join(gone)} are no longer active")
                sentences = [CitedSentence(s["text"], tuple(s["citations"])) for s in cand["sentences"]]
                verdict = Verdict("accepted", None, "approved", [], sentences, cand["depth"],
                                  " ".join(s.text for s in sentences), None, cand["cited_vids"])
                base = {k: cand[k] for k in ("query", "answer", "generator", "gates", "policy_hash", "models",
                                             "citations")}
                doc_id, vids, vectors, _ = self._accept(db, cand["query"], cand["generator"], verdict, base,
                                                        self._prepare(verdict.answer_text), actor=actor,
                                                        via_review=review_id)
                review_rows.decide(db, review_id, "approved", actor=actor, note=note, result_doc=doc_id)
                record = audit.append(db, type="review_approved", actor=actor, subjects=[review_id, doc_id],
                                      payload={"note": note, "document_id": doc_id, "reason": review["reason"]})
            self._apply_index(vids, [vectors], [])
        return Outcome("accepted", None, "approved by review", cand["gates"], document_id=doc_id, review_id=review_id,
                       audit_id=record.id, depth=cand["depth"])

    def reject(self, review_id: str, *, actor: str, note: str | None) -> Outcome:
        with self._lane:
            with self.corpus.write() as db:
                review = self._pending(db, review_id)
                review_rows.decide(db, review_id, "rejected", actor=actor, note=note, result_doc=None)
                record = audit.append(db, type="review_rejected", actor=actor, subjects=[review_id],
                                      payload={"note": note, "reason": review["reason"]})
        return Outcome("rejected", "review", "rejected by review", review["candidate"].get("gates", []),
                       review_id=review_id, audit_id=record.id)

    def feedback(self, *, document_id: str | None, query_id: str | None, signal: str, note: str | None,
                 actor: str) -> dict:
        """Store and audit feedback; a 'down' on a write-back revokes it (and what was built on it)."""
        if (document_id is None) == (query_id is None):
            raise InvalidInput("give exactly one of document_id and query_id", code="invalid_feedback")
        target = document_id
        if query_id is not None:
            rows = list(self.corpus.reader().query("SELECT writeback_doc FROM queries WHERE id = ?", [query_id]))
            if not rows:
                raise NotFound(f"no query with id {query_id!r}")
            target = rows[0]["writeback_doc"]
        doc = self.corpus.get_document(target) if target else None
        if document_id is not None and (doc is None or doc.status == "deleted"):
            raise NotFound(f"no document with id {document_id!r}")
        revoke = signal == "down" and doc is not None and doc.source == "writeback" and doc.status == "active"
        with self._lane:
            with self.corpus.write() as db:
                cur = db.execute("INSERT INTO feedback (document_id, query_id, signal, note, actor, created_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", [document_id, query_id, signal, note, actor,
                                                               now_iso()])
                record = audit.append(db, type="feedback", actor=actor,
                                      subjects=[s for s in (document_id, query_id, target) if s],
                                      payload={"signal": signal, "note": note, "revokes": target if revoke else None})
                change = lifecycle.set_status(db, self.corpus, target, "revoked", actor=actor, reason="feedback",
                                              payload={"feedback_id": cur.lastrowid}) if revoke else lifecycle.Change()
            self._apply_index([], [], change.removed_vids)
        return {"id": cur.lastrowid, "audit_id": record.id, "revoked": ([target] if revoke else []) + change.revoked}


def record_query(db: sqlite_utils.Database, *, query: str, answer: str | None, outcome: Outcome | None) -> str:
    query_id = "q-" + uuid.uuid4().hex[:16]
    db.execute("INSERT INTO queries (id, query, answer, writeback_doc, decision, created_at) VALUES (?, ?, ?, ?, ?, ?)",
               [query_id, query, answer, outcome.document_id if outcome else None,
                outcome.decision if outcome else None, now_iso()])
    return query_id
