"""Documents: add (batch), read, list with cursor pagination, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bragserve.api.deps import ServiceDep
from bragserve.api.schemas import (ChunkPublic, DeletedPublic, DocumentPublic, DocumentsCreate, DocumentsPublic,
                                   IngestedPublic, IngestResponse, Source, Status)
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
def create_documents(body: DocumentsCreate, service: ServiceDep) -> IngestResponse:
    docs = [NewDocument(text=d.text, id=d.id, metadata=d.metadata, trust=float(d.trust)) for d in body.documents]
    results = service.ingest(documents=docs)
    return IngestResponse(documents=[IngestedPublic(**r.__dict__) for r in results], count=len(results))


@router.get("", response_model=DocumentsPublic, summary="List documents")
def list_documents(service: ServiceDep, source: Source | None = None, status: Status | None = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None) -> DocumentsPublic:
    page = service.list_documents(source=source, status=status, limit=limit, cursor=cursor)
    return DocumentsPublic(data=[_public(d) for d in page.documents], count=len(page.documents),
                           next_cursor=page.next_cursor)


@router.get("/{doc_id}", response_model=DocumentPublic, summary="Read a document and its chunks")
def read_document(doc_id: str, service: ServiceDep) -> DocumentPublic:
    doc, chunks = service.get_document(doc_id)
    return _public(doc, chunks)


@router.delete("/{doc_id}", response_model=DeletedPublic, summary="Delete a document")
def delete_document(doc_id: str, service: ServiceDep) -> DeletedPublic:
    removed = service.delete_document(doc_id)
    return DeletedPublic(id=doc_id, status="deleted", chunks_removed=removed)
