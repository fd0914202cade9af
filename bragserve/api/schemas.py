"""Request and response models: pydantic at the edge, plain dataclasses inside."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from bragserve.ingest import DOC_ID

Source = Literal["ingested", "writeback"]
Status = Literal["active", "quarantined", "revoked", "deleted"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The limits below are enforced by ingest (with a specific error code each); they are repeated here only in the
# published schema (json_schema_extra), so that clients and fuzzers know them without changing those codes.
NOT_BLANK = {"minLength": 1, "pattern": r"\S"}


class DocumentCreate(_Strict):
    id: StrictStr | None = Field(None, description="Your id; derived from the content hash when omitted.",
                                 json_schema_extra={"pattern": DOC_ID.pattern})
    text: StrictStr = Field(..., description="The document text (not blank).",
                            json_schema_extra=NOT_BLANK)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Any JSON object, stored with the document.")
    trust: StrictFloat | StrictInt = Field(1.0, description="Caller-given trust in [0, 1].",
                                           json_schema_extra={"minimum": 0, "maximum": 1})


class DocumentsCreate(_Strict):
    documents: list[DocumentCreate] = Field(..., description="The documents to add or update (at most "
                                                             "BRAGSERVE_MAX_BATCH_DOCUMENTS, 256 by default).",
                                            json_schema_extra={"minItems": 1})


class ScreeningHitPublic(BaseModel):
    detector: str
    detail: str
    score: float


class IngestedPublic(BaseModel):
    id: str
    status: Literal["created", "updated", "unchanged", "quarantined"]
    version: int
    chunks: int
    screening: list[ScreeningHitPublic] = Field(default_factory=list, description="Why the document was "
                                                                                    "quarantined (empty if not).")
    review_id: str | None = Field(None, description="Review that lifts the quarantine when approved.")


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


class StatusChangePublic(BaseModel):
    id: str
    status: Status
    chunks_removed: int = 0
    chunks_restored: int = 0
    revoked: list[str] = Field(default_factory=list, description="Write-backs revoked because of this change.")
    restored: list[str] = Field(default_factory=list, description="Write-backs restored because of this change.")


class StatusChangeRequest(_Strict):
    reason: StrictStr | None = Field(None, description="Why, for the audit log.")


class LineageNode(BaseModel):
    id: str
    source: Source | None
    status: Status | None
    depth: int
    via_chunks: list[str]


class LineagePublic(BaseModel):
    id: str
    ancestors: list[LineageNode]
    descendants: list[LineageNode]
    revocation_causes: list[str]


class RagPartOverride(_Strict):
    enabled: StrictBool | None = None
    views_k: StrictInt | None = None
    depth: StrictInt | None = None
    mode: Literal["vote", "intersection"] | None = None


class RagMaskOverride(_Strict):
    enabled: StrictBool | None = None
    method: Literal["fast", "exact"] | None = None
    alpha: StrictFloat | StrictInt | None = None
    min_candidates: StrictInt | None = None
    lazy: StrictBool | None = None
    mask_tokens: StrictInt | None = None
    stride: StrictInt | None = None
    delta: StrictFloat | StrictInt | None = None
    screen_margin: StrictFloat | StrictInt | None = None
    min_share_ratio: StrictFloat | StrictInt | None = None


class EchoOverride(_Strict):
    enabled: StrictBool | None = None
    threshold: StrictFloat | StrictInt | None = None
    min_words: StrictInt | None = None
    questions_only: StrictBool | None = None
    candidates: StrictFloat | StrictInt | None = None


class FloodOverride(_Strict):
    enabled: StrictBool | None = None
    similarity: StrictFloat | StrictInt | None = None
    min_documents: StrictInt | None = None
    core_similarity: StrictFloat | StrictInt | None = None
    action: Literal["remove", "keep_one"] | None = None
    pool: StrictInt | None = None


class DisfluentMatchOverride(_Strict):
    enabled: StrictBool | None = None
    min_similarity: StrictFloat | StrictInt | None = None
    disfluency: StrictFloat | StrictInt | None = None
    keyword_disfluency: StrictFloat | StrictInt | None = None
    wide_similarity: StrictFloat | StrictInt | None = None
    wide_disfluency: StrictFloat | StrictInt | None = None


class ScreeningOverride(_Strict):
    enabled: StrictBool | None = None
    min_trust: StrictFloat | StrictInt | None = None
    released: StrictBool | None = None
    ragmask: StrictBool | None = None
    flood: StrictFloat | StrictInt | None = None
    source_disfluency: StrictFloat | StrictInt | None = None


class CorroborationOverride(_Strict):
    min_sources: StrictInt | None = None


class DefenceOverrides(_Strict):
    """Per-request defence settings over the policy's (same names and bounds as the policy file)."""

    ragpart: RagPartOverride | None = None
    ragmask: RagMaskOverride | None = None
    echo: EchoOverride | None = None
    flood: FloodOverride | None = None
    disfluent_match: DisfluentMatchOverride | None = None
    screening: ScreeningOverride | None = None
    corroboration: CorroborationOverride | None = None

    def as_updates(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if v}


class QueryRequest(_Strict):
    query: StrictStr = Field(..., description="The question (not blank; at most BRAGSERVE_MAX_QUERY_CHARS, 2,000 "
                                              "by default).", json_schema_extra=NOT_BLANK)
    k: StrictInt | None = Field(None, description="Passages to retrieve (1..100; policy default when omitted).",
                                json_schema_extra={"minimum": 1, "maximum": 100})
    generate: StrictBool = Field(True, description="Produce an answer, or only retrieve.")
    writeback: StrictBool | None = Field(None, description="Run the write-back gates (policy default when omitted).")
    defences: DefenceOverrides | None = Field(None, description="Override the policy's defences for this query.")


class GatePublic(BaseModel):
    name: str
    passed: bool
    score: float | None
    message: str | None
    details: dict[str, Any]


class WritebackPublic(BaseModel):
    decision: Literal["accepted", "rejected", "review", "skipped"]
    reason: str | None = None
    message: str
    gates: list[GatePublic] = Field(default_factory=list)
    document_id: str | None = None
    review_id: str | None = None
    audit_id: str | None = None
    depth: int | None = None
    timings_ms: dict[str, float] | None = Field(None, description="Milliseconds spent in the gates, encoding an "
                                                                 "accepted answer, and committing the outcome; "
                                                                 "gates.<step>: each gate step that ran (novelty "
                                                                 "includes encoding the answer, neighbours the "
                                                                 "contradiction gate's corpus-wide search).")


class WritebackRequest(_Strict):
    query: StrictStr = Field(..., description="The question the answer responds to.", json_schema_extra=NOT_BLANK)
    answer: StrictStr = Field(..., description="The answer, with [chunk_id] after every sentence.",
                              json_schema_extra=NOT_BLANK)
    citations: list[StrictStr] | None = Field(None, description="Citations for sentences that carry none inline.")
    generator: StrictStr = Field("external", max_length=200, description="Who wrote the answer, for lineage.")


class ReviewPublic(BaseModel):
    id: str
    status: Literal["pending", "approved", "rejected"]
    kind: str
    reason: str
    candidate: dict[str, Any]
    created_at: str
    decided_at: str | None
    decided_by: str | None
    note: str | None
    result_doc: str | None


class ReviewsPublic(BaseModel):
    data: list[ReviewPublic]
    count: int
    next_cursor: str | None


class ReviewDecision(_Strict):
    note: StrictStr | None = Field(None, description="Why, for the audit log.")


class FeedbackRequest(_Strict):
    document_id: StrictStr | None = None
    query_id: StrictStr | None = None
    signal: Literal["up", "down"]
    note: StrictStr | None = None


class FeedbackPublic(BaseModel):
    id: int
    audit_id: str
    revoked: list[str]


class AuditRecordPublic(BaseModel):
    id: str
    seq: int
    time: str
    actor: str
    type: str
    subjects: list[str]
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPublic(BaseModel):
    data: list[AuditRecordPublic]
    count: int
    next_cursor: str | None


class AuditVerifyPublic(BaseModel):
    ok: bool
    count: int
    first_broken: str | None
    problem: str | None


class PassagePublic(BaseModel):
    chunk_id: str
    doc_id: str
    text: str
    score: float
    source: Source
    rank: int
    flagged: bool = Field(False, description="A retrieval defence (RAGMask, the flood filter with keep_one) flagged "
                                             "this chunk for this query: no write-back may rest on it alone.")


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
    defences: dict[str, Any] = Field(default_factory=dict, description="Which defences ran and what they flagged "
                                                                       "(chunk ids, spans removed, similarity "
                                                                       "before/after).")
    writeback: WritebackPublic | None = None
    query_id: str | None = Field(None, description="Id to give feedback on (when the write-back gates ran).")


class ErrorDetail(BaseModel):
    code: str
    message: str
    status: int
    request_id: str | None = None
    details: Any = None


class ErrorResponse(BaseModel):
    ok: Literal[False] = False
    error: ErrorDetail


class KeyCreate(_Strict):
    role: Literal["reader", "writer", "reviewer", "auditor", "admin"]
    name: StrictStr = Field(..., min_length=1, max_length=200, description="Who or what uses the key.")
    rate_per_minute: StrictInt | None = Field(None, ge=0, description="Requests per minute (server default when "
                                                                      "omitted; 0: unlimited).")


class KeyPublic(BaseModel):
    id: str
    name: str
    role: str
    rate_per_minute: int | None
    created_at: str
    revoked_at: str | None
    active: bool


class KeyCreated(KeyPublic):
    key: str = Field(..., description="The secret: shown once, never stored in clear.")


class KeysPublic(BaseModel):
    data: list[KeyPublic]
    count: int
