"""Turning posted documents into validated, hashed, chunked records, before any lock is taken.

Everything here is pure and cheap except encoding, which the service does in one
batch for all new chunks of a request (the encoder is the ingest bottleneck).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from bragserve.chunking import ChunkSpan, chunk_text
from bragserve.errors import InvalidInput, PayloadTooLarge
from bragserve.policy import ChunkingPolicy
from bragserve.settings import Settings

DOC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


@dataclass(frozen=True)
class NewDocument:
    text: str
    id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    trust: float = 1.0


@dataclass(frozen=True)
class PreparedDocument:
    id: str
    text: str
    metadata: dict[str, Any]
    trust: float
    content_hash: str
    chunks: list[ChunkSpan]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare(docs: list[NewDocument], settings: Settings, chunking: ChunkingPolicy) -> list[PreparedDocument]:
    """Validate a batch and chunk it; any bad document rejects the whole batch (nothing half-written)."""
    if not docs:
        raise InvalidInput("documents must hold at least one document")
    if len(docs) > settings.max_batch_documents:
        raise PayloadTooLarge(f"{len(docs)} documents in one request; the limit is {settings.max_batch_documents}",
                              code="too_many_documents")
    out: list[PreparedDocument] = []
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        where = f"documents[{i}]"
        if not doc.text or not doc.text.strip():
            raise InvalidInput(f"{where}.text is empty", code="empty_text")
        if len(doc.text) > settings.max_text_chars:
            raise PayloadTooLarge(f"{where}.text has {len(doc.text)} characters; the limit is "
                                  f"{settings.max_text_chars}", code="text_too_long")
        if doc.id is not None and not DOC_ID.match(doc.id):
            raise InvalidInput(f"{where}.id {doc.id!r} must be 1-128 characters of letters, digits, '.', '_', ':' "
                               "or '-', starting with a letter or digit", code="invalid_id")
        if not 0.0 <= doc.trust <= 1.0:
            raise InvalidInput(f"{where}.trust must be between 0 and 1", code="invalid_trust")
        if len(json.dumps(doc.metadata)) > settings.max_metadata_bytes:
            raise PayloadTooLarge(f"{where}.metadata is larger than {settings.max_metadata_bytes} bytes as JSON",
                                  code="metadata_too_large")
        digest = content_hash(doc.text)
        doc_id = doc.id or f"d-{digest[:20]}"
        if doc_id in seen:
            raise InvalidInput(f"{where}.id {doc_id!r} appears twice in this batch", code="duplicate_id")
        seen.add(doc_id)
        chunks = chunk_text(doc.text, max_words=chunking.max_words, overlap_sentences=chunking.overlap_sentences)
        if not chunks:
            raise InvalidInput(f"{where}.text has no sentences", code="empty_text")
        out.append(PreparedDocument(doc_id, doc.text, dict(doc.metadata), float(doc.trust), digest, chunks))
    return out
