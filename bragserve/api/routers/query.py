"""Query: retrieve, then answer with citations."""

from __future__ import annotations

from fastapi import APIRouter

from bragserve.api.deps import ServiceDep
from bragserve.api.schemas import AnswerSentencePublic, CitationPublic, PassagePublic, QueryRequest, QueryResponse

router = APIRouter(tags=["query"])


@router.post("/query", response_model=QueryResponse, summary="Answer a question from the corpus, with citations")
def query(body: QueryRequest, service: ServiceDep) -> QueryResponse:
    result = service.query(query=body.query, k=body.k, generate=body.generate)
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
        passages=[PassagePublic(**p.__dict__) for p in result.passages], timings_ms=result.timings_ms)
