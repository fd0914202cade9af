"""Documents: add (batch), read, list with cursor pagination, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from bragserve.api.auth import Reviewer, Viewer, Writer
from bragserve.api.deps import ServiceDep
from bragserve.api.schemas import (ChunkPublic, DocumentPublic, DocumentsCreate, DocumentsPublic, IngestedPublic,
                                   IngestResponse, LineagePublic, Source, Status, StatusChangePublic,
                                   StatusChangeRequest)
from bragserve.lifecycle import Change
from bragserve.ingest import NewDocument
from bragserve.store.corpus import ChunkRow, DocumentRow

router = APIRouter(prefix="/documents", tags=["documents"])


def _public(doc: DocumentRow, chunks: list[ChunkRow] | None = None) -> DocumentPublic:
    return DocumentPublic(
        id=doc.id, text=doc.text, source=doc.source, status=doc.status, trust=doc.trust, metadata=doc.metadata,
        content_hash=doc.content_hash, version=doc.version, created_at=doc.created_at, updated_at=doc.updated_at,
        chunks=None if chunks is None else [
            ChunkPublic(chunk_id=c.id, ordinal=c.ordinal, text=c.text, start=c.start, end=c.end, status=c.status)
            for c in chunks])


@router.post("", response_model=IngestResponse, summary="Add or update documents")
def create_documents(principal: Writer, body: DocumentsCreate, service: ServiceDep,
                     request: Request) -> IngestResponse:
    docs = [NewDocument(text=d.text, id=d.id, metadata=d.metadata, trust=float(d.trust)) for d in body.documents]
    results = service.ingest(documents=docs, actor=principal.actor)
    request.app.state.metrics.flag("ingest_screening", sum(r.status == "quarantined" for r in results))
    return IngestResponse(documents=[IngestedPublic(**r.__dict__) for r in results], count=len(results))


@router.get("", response_model=DocumentsPublic, summary="List documents")
def list_documents(_: Viewer, service: ServiceDep, source: Source | None = None, status: Status | None = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None) -> DocumentsPublic:
    page = service.list_documents(source=source, status=status, limit=limit, cursor=cursor)
    return DocumentsPublic(data=[_public(d) for d in page.documents], count=len(page.documents),
                           next_cursor=page.next_cursor)


@router.get("/{doc_id}", response_model=DocumentPublic, summary="Read a document and its chunks")
def read_document(_: Viewer, doc_id: str, service: ServiceDep) -> DocumentPublic:
    doc, chunks = service.get_document(doc_id)
    return _public(doc, chunks)


def _changed(doc_id: str, status: str, change: Change) -> StatusChangePublic:
    return StatusChangePublic(id=doc_id, status=status, chunks_removed=len(change.removed_vids),
                              chunks_restored=len(change.restored_vids), revoked=change.revoked,
                              restored=change.restored)


@router.delete("/{doc_id}", response_model=StatusChangePublic, summary="Delete a document (revokes its dependants)")
def delete_document(principal: Writer, doc_id: str, service: ServiceDep) -> StatusChangePublic:
    return _changed(doc_id, "deleted", service.delete_document(doc_id, actor=principal.actor))


@router.post("/{doc_id}/revoke", response_model=StatusChangePublic, summary="Revoke a document and its dependants")
def revoke_document(principal: Writer, doc_id: str, service: ServiceDep,
                    body: StatusChangeRequest | None = None) -> StatusChangePublic:
    reason = (body.reason if body else None) or "requested"
    return _changed(doc_id, "revoked", service.change_status(doc_id, "revoked", actor=principal.actor, reason=reason))


@router.post("/{doc_id}/quarantine", response_model=StatusChangePublic,
             summary="Quarantine a document (stored, not retrievable) and revoke its dependants")
def quarantine_document(principal: Writer, doc_id: str, service: ServiceDep,
                        body: StatusChangeRequest | None = None) -> StatusChangePublic:
    reason = (body.reason if body else None) or "requested"
    return _changed(doc_id, "quarantined",
                    service.change_status(doc_id, "quarantined", actor=principal.actor, reason=reason))


@router.post("/{doc_id}/restore", response_model=StatusChangePublic,
             summary="Restore a document and the write-backs revoked only because of it")
def restore_document(principal: Reviewer, doc_id: str, service: ServiceDep) -> StatusChangePublic:
    return _changed(doc_id, "active", service.restore_document(doc_id, actor=principal.actor))


@router.get("/{doc_id}/lineage", response_model=LineagePublic, summary="Ancestors and descendants of a document")
def document_lineage(_: Viewer, doc_id: str, service: ServiceDep) -> LineagePublic:
    return LineagePublic(**service.lineage(doc_id))
