"""The review queue: borderline and contradicted write-backs, and quarantined documents, wait for a person."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from bragserve.api.auth import Reviewer
from bragserve.api.deps import ServiceDep
from bragserve.api.routers.writebacks import outcome_public
from bragserve.api.schemas import ReviewDecision, ReviewPublic, ReviewsPublic, WritebackPublic
from bragserve.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/reviews", tags=["review"])


@router.get("", response_model=ReviewsPublic, summary="List reviews (pending first by default)")
def list_reviews(_: Reviewer, service: ServiceDep,
                 status: Literal["pending", "approved", "rejected"] | None = "pending",
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None) -> ReviewsPublic:
    rows = service.loop.reviews(status=status, limit=limit + 1, after_seq=decode_cursor(cursor) if cursor else 0)
    more = len(rows) > limit
    rows = rows[:limit]
    return ReviewsPublic(data=[ReviewPublic(**{k: v for k, v in r.items() if k != "seq" and k != "subject"})
                               for r in rows], count=len(rows),
                         next_cursor=encode_cursor(rows[-1]["seq"]) if more and rows else None)


@router.post("/{review_id}/approve", response_model=WritebackPublic,
             summary="Approve: write the answer back, or lift a quarantine")
def approve_review(principal: Reviewer, review_id: str, service: ServiceDep,
                   body: ReviewDecision | None = None) -> WritebackPublic:
    return outcome_public(service.approve_review(review_id, actor=principal.actor, note=body.note if body else None))


@router.post("/{review_id}/reject", response_model=WritebackPublic, summary="Reject: nothing is written")
def reject_review(principal: Reviewer, review_id: str, service: ServiceDep,
                  body: ReviewDecision | None = None) -> WritebackPublic:
    return outcome_public(service.loop.reject(review_id, actor=principal.actor, note=body.note if body else None))
