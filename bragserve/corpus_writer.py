"""The single writer lane for ingest: SQLite commits first, then the FAISS index and the RAGPart search follow.

A write is acknowledged only after both; a crash between them is repaired at the next
start-up from SQLite, the source of truth. Encoding and screening, the slow part, run
before the lane is taken, so readers and other writers wait only for the commit.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np

from bragserve import audit, lifecycle
from bragserve.disfluency import bundled_head
from bragserve.embedding import Embedder
from bragserve.errors import Conflict
from bragserve.ingest import NewDocument, PreparedDocument, prepare
from bragserve.ingest_screening import screen
from bragserve.policy import Policy
from bragserve.retrieval.features import ChunkFeatures, FeatureEncoder
from bragserve.retrieval.ragpart import FragmentScores, RagPartViews
from bragserve.retrieval.token_encoder import SpanProfile
from bragserve.settings import Settings
from bragserve.store.corpus import Corpus, NewChunk
from bragserve.store.live_index import LiveIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestedDocument:
    id: str
    status: str  # created | updated | unchanged | quarantined
    version: int
    chunks: int
    screening: list[dict] = field(default_factory=list)
    review_id: str | None = None


class CorpusWriter:
    """Ingest and the index side of every write (write-backs and lifecycle changes share ``lane``)."""

    def __init__(self, *, settings: Settings, policy: Policy, embedder: Embedder, corpus: Corpus, index: LiveIndex,
                 views: FragmentScores | RagPartViews, features: FeatureEncoder) -> None:
        self.settings, self.policy, self.embedder = settings, policy, embedder
        self.corpus, self.index, self.views, self.features = corpus, index, views, features
        self.lane = threading.Lock()

    def encode_chunks(self, texts: list[str], known: dict[str, SpanProfile] | None = None) -> list[ChunkFeatures]:
        """Chunk vectors plus what the defences need, stored with every chunk (ingested or written back);
        ``known``: token profiles already made by ``profile`` (not computed again)."""
        screening = self.policy.ingest_screening
        scored = (screening.enabled and screening.disfluency) or self.policy.disfluent_match.enabled
        head = bundled_head() if scored else None
        return self.features.encode(texts, fragments=self.policy.ragpart.fragments
                                    if self.policy.ragpart.store_fragments else None,
                                    window_size=self.policy.ragmask.mask_tokens,
                                    window_stride=self.policy.ragmask.stride, known=known, head=head)

    def profile(self, text: str, disfluency: bool = False) -> SpanProfile:
        """One text's vector with the mask windows its chunk would store: one encoder pass that both the novelty
        gate (the vector) and storing an accepted answer (the windows) use; ``disfluency`` adds the replaced-token
        head's worst window (the screening gate's), from the same pass."""
        return self.features.tokens.profile([text], size=self.policy.ragmask.mask_tokens,
                                            stride=self.policy.ragmask.stride,
                                            head=bundled_head() if disfluency else None)[0]

    def ingest(self, documents: list[NewDocument], *, actor: str) -> list[IngestedDocument]:
        """Encode and screen outside the lane (the slow part), then commit every document in one transaction."""
        prepared = prepare(documents, self.settings, self.policy.chunking)
        to_embed = [p for p in prepared if self._needs_new_version(p)]
        encoded = self.encode_chunks([c.text for p in to_embed for c in p.chunks])
        offsets, cursor = {}, 0
        for p in to_embed:
            offsets[p.id] = encoded[cursor:cursor + len(p.chunks)]
            cursor += len(p.chunks)
        hits = {p.id: screen(p.text, offsets[p.id], self.policy.ingest_screening, self.embedder.word_pieces)
                for p in to_embed}
        with self.lane:
            results, add_ids, add_vecs, remove_ids = [], [], [], []
            with self.corpus.write() as db:
                for p in prepared:
                    current = self.corpus.get_document(p.id, db=db)
                    if current is not None and current.source == "writeback":
                        raise Conflict(f"{p.id!r} is a write-back document; ingest cannot replace it")
                    # Same text: unchanged, whatever its status. Re-posting must never lift a quarantine or a
                    # revocation; only restore does. A deleted document comes back with a new version.
                    if current is not None and current.content_hash == p.content_hash and \
                            current.status != "deleted":
                        changed = current.trust != p.trust or current.metadata != p.metadata
                        if changed:
                            self.corpus.update_attributes(db, p.id, trust=p.trust, metadata=p.metadata)
                            audit.append(db, type="update", actor=actor, subjects=[p.id],
                                         payload={"version": current.version, "trust": p.trust,
                                                  "metadata": p.metadata, "content_changed": False})
                        results.append(IngestedDocument(p.id, "updated" if changed else "unchanged",
                                                        current.version, len(self.corpus.document_chunks(p.id))))
                        continue
                    feats = offsets.get(p.id)
                    if feats is None:  # became stale between the check and the lock: encode now
                        feats = self.encode_chunks([c.text for c in p.chunks])
                        hits[p.id] = screen(p.text, feats, self.policy.ingest_screening, self.embedder.word_pieces)
                    flagged = [h.__dict__ for h in hits.get(p.id, [])]
                    vecs = np.stack([f.vector for f in feats])
                    chunks = [NewChunk(i, c.text, c.start, c.end, f.vector, f)
                              for i, (c, f) in enumerate(zip(p.chunks, feats))]
                    version, vids, superseded = self.corpus.insert_version(
                        db, doc_id=p.id, text=p.text, source="ingested", trust=p.trust, metadata=p.metadata,
                        content_hash=p.content_hash, chunks=chunks, status="quarantined" if flagged else "active")
                    if not flagged:
                        add_ids += vids
                        add_vecs.append(vecs)
                    remove_ids += superseded
                    audit.append(db, type="ingest" if current is None else "update", actor=actor, subjects=[p.id],
                                 payload={"version": version, "content_hash": p.content_hash, "trust": p.trust,
                                          "chunks": [f"c{v}" for v in vids],
                                          "superseded": [f"c{v}" for v in superseded], "content_changed": True,
                                          "screening": flagged})
                    review_id = lifecycle.quarantine_on_ingest(db, p.id, flagged, actor=actor) if flagged else None
                    if superseded:  # write-backs built on the old text no longer stand on anything
                        change = lifecycle.Change()
                        lifecycle.revoke_dependants(db, self.corpus, p.id, actor=actor, change=change)
                        remove_ids += change.removed_vids
                    status = "quarantined" if flagged else "created" if current is None else "updated"
                    results.append(IngestedDocument(p.id, status, version, len(vids), flagged, review_id))
            self.apply_index(add_ids, add_vecs, remove_ids)
        return results

    def _needs_new_version(self, p: PreparedDocument) -> bool:
        current = self.corpus.get_document(p.id)
        return current is None or current.content_hash != p.content_hash or current.status == "deleted"

    def apply_index(self, add_ids: list[int], add_vecs: list, remove_ids: list[int]) -> None:
        """After a commit: the FAISS index and the RAGPart search follow SQLite (repaired from it on failure)."""
        vectors = np.vstack(add_vecs) if add_vecs else None
        try:
            self.index.apply(add_ids=add_ids, add_vectors=vectors, remove_ids=remove_ids)
        except Exception:
            log.exception("vector index update failed after commit; repairing from SQLite")
            self.index.open()
            raise
        self.views.remove(remove_ids)
        self.views.add(add_ids)
