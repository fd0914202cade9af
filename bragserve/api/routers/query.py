"""Query: retrieve, then answer with citations."""

from __future__ import annotations

from fastapi import APIRouter, Request

from bragserve.api.auth import Reader
from bragserve.api.deps import ServiceDep
from bragserve.api.routers.writebacks import outcome_public
from bragserve.api.schemas import (AnswerSentencePublic, CitationPublic, PassagePublic, QueryRequest, QueryResponse,
                                   WritebackPublic)

router = APIRouter(tags=["query"])


@router.post("/query", response_model=QueryResponse, summary="Answer a question from the corpus, with citations")
def query(principal: Reader, body: QueryRequest, service: ServiceDep, request: Request) -> QueryResponse:
    result = service.query(query=body.query, k=body.k, generate=body.generate, writeback=body.writeback,
                           defences=body.defences.as_updates() if body.defences else None,
                           actor=principal.actor)
    request.app.state.metrics.observe_query(result)
    flagged = result.defences.flagged_chunks if result.defences else set()
    by_id = {p.chunk_id: p for p in result.passages}
    answer = result.answer
    citations = [] if answer is None else [
        CitationPublic(chunk_id=c, doc_id=by_id[c].doc_id, text=by_id[c].text, score=by_id[c].score)
        for c in answer.cited if c in by_id]
    return QueryResponse(
        query=result.query, k=result.k, answer=None if answer is None else answer.text,
        answer_sentences=[] if answer is None else [
            AnswerSentencePublic(text=s.text, citations=list(s.citations), score=s.score) for s in answer.sentences],
        generator=None if answer is None else answer.generator, citations=citations,
        passages=[PassagePublic(**p.__dict__, flagged=p.chunk_id in flagged) for p in result.passages],
        timings_ms=result.timings_ms, defences=result.defences.as_dict() if result.defences else {},
        writeback=_writeback(result), query_id=result.writeback.query_id if result.writeback else None)


def _writeback(result) -> WritebackPublic | None:
    ran = result.answer is not None and (result.writeback is not None or not result.answer.text)
    if result.writeback is not None:
        return outcome_public(result.writeback)
    if ran:
        return WritebackPublic(decision="skipped", reason="no_answer", message="no answer to write back")
    return None
