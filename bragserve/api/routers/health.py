"""Liveness and readiness: alive as soon as the process serves, ready once the corpus is loaded and consistent."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
def healthz(request: Request) -> JSONResponse:
    failed = getattr(request.app.state, "load_error", None)
    if failed:
        return JSONResponse({"ok": False, "error": failed}, status_code=503)
    return JSONResponse({"ok": True})


@router.get("/readyz", summary="Readiness: index loaded and consistent with SQLite")
def readyz(request: Request) -> JSONResponse:
    service = getattr(request.app.state, "service", None)
    if service is None:
        failed = getattr(request.app.state, "load_error", None)
        return JSONResponse({"ready": False, "reason": failed or "loading"}, status_code=503)
    status = service.status()
    return JSONResponse({"ready": status["consistent"], **status}, status_code=200 if status["consistent"] else 503)
