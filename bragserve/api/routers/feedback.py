"""Feedback: an outside signal the loop cannot generate itself. A 'down' on a write-back revokes it."""

from __future__ import annotations

from fastapi import APIRouter

from bragserve.api.auth import Writer
from bragserve.api.deps import ServiceDep
from bragserve.api.schemas import FeedbackPublic, FeedbackRequest

router = APIRouter(tags=["feedback"])


@router.post("/feedback", response_model=FeedbackPublic, summary="Thumbs up or down on a document or an answer")
def give_feedback(principal: Writer, body: FeedbackRequest, service: ServiceDep) -> FeedbackPublic:
    return FeedbackPublic(**service.feedback(document_id=body.document_id, query_id=body.query_id,
                                             signal=body.signal, note=body.note, actor=principal.actor))
