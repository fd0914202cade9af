"""Request and response models: pydantic at the edge, plain dataclasses inside."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Source = Literal["ingested", "writeback"]
Status = Literal["active", "quarantined", "revoked", "deleted"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DocumentCreate(_Strict):
    id: StrictStr | None = Field(None, description="Your id; derived from the content hash when omitted.")
    text: StrictStr = Field(..., description="The document text (non-empty).")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Any JSON object, stored with the document.")
    trust: StrictFloat | StrictInt = Field(1.0, description="Caller-given trust in [0, 1].")


class DocumentsCreate(_Strict):
    documents: list[DocumentCreate] = Field(..., description="The documents to add or update.")


class IngestedPublic(BaseModel):
    id: str
    status: Literal["created", "updated", "unchanged"]
    version: int
    chunks: int


class IngestResponse(BaseModel):
    documents: list[IngestedPublic]
    count: int


class ChunkPublic(BaseModel):
    chunk_id: str
    ordinal: int
    text: str
    start: int
    end: int
    status: Status


class DocumentPublic(BaseModel):
    id: str
    text: str
    source: Source
    status: Status
    trust: float
    metadata: dict[str, Any]
    content_hash: str
    version: int
    created_at: str
    updated_at: str
    chunks: list[ChunkPublic] | None = None


class DocumentsPublic(BaseModel):
    data: list[DocumentPublic]
    count: int
    next_cursor: str | None


class DeletedPublic(BaseModel):
    id: str
    status: Literal["deleted"]
    chunks_removed: int


class QueryRequest(_Strict):
    query: StrictStr = Field(..., description="The question.")
    k: StrictInt | None = Field(None, description="Passages to retrieve (1..100; policy default when omitted).")
    generate: StrictBool = Field(True, description="Produce an answer, or only retrieve.")


class PassagePublic(BaseModel):
    chunk_id: str
    doc_id: str
    text: str
    score: float
    source: Source
    rank: int


class CitationPublic(BaseModel):
    chunk_id: str
    doc_id: str
    text: str
    score: float


class AnswerSentencePublic(BaseModel):
    text: str
    citations: list[str]
    score: float


class QueryResponse(BaseModel):
    query: str
    k: int
    answer: str | None = Field(None, description="Cited answer; null when generate=false.")
    answer_sentences: list[AnswerSentencePublic] = Field(default_factory=list)
    generator: str | None = None
    citations: list[CitationPublic]
    passages: list[PassagePublic]
    timings_ms: dict[str, float]


class ErrorDetail(BaseModel):
    code: str
    message: str
    status: int
    request_id: str | None = None
    details: Any = None


class ErrorResponse(BaseModel):
    ok: Literal[False] = False
    error: ErrorDetail
