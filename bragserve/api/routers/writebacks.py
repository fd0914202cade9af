"""Write-backs proposed by outside generators, and the shape every gate decision is reported in."""

from __future__ import annotations

from fastapi import APIRouter, Request

from bragserve.api.auth import Writer
from bragserve.api.deps import ServiceDep
from bragserve.api.schemas import GatePublic, WritebackPublic, WritebackRequest
from bragserve.writeback import Outcome

router = APIRouter(tags=["writeback"])


def outcome_public(outcome: Outcome) -> WritebackPublic:
    return WritebackPublic(decision=outcome.decision, reason=outcome.reason, message=outcome.message,
                           gates=[GatePublic(**g) for g in outcome.gates], document_id=outcome.document_id,
                           review_id=outcome.review_id, audit_id=outcome.audit_id, depth=outcome.depth,
                           timings_ms=outcome.timings_ms)


@router.post("/writebacks", response_model=WritebackPublic, summary="Propose an answer for verified write-back")
def propose_writeback(principal: Writer, body: WritebackRequest, service: ServiceDep,
                      request: Request) -> WritebackPublic:
    outcome = service.propose_writeback(query=body.query, answer=body.answer, citations=body.citations,
                                        generator=body.generator, actor=principal.actor)
    request.app.state.metrics.observe_outcome(outcome)
    return outcome_public(outcome)
