"""Prometheus scrape endpoint (auditor or admin key once keys exist: it reveals corpus size and traffic)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from bragserve.api.auth import MetricsReader

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics (bragserve_*)", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
def metrics(_: MetricsReader, request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
