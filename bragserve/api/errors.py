"""One error shape for every failure: ``{"ok": false, "error": {"code", "message", "status", ...}}``.

Domain errors carry their own status and code; validation errors become 400
(malformed JSON) or 422; routing errors keep theirs; anything else is a 500 that
is logged with the request id and never leaks a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bragserve.errors import BragserveError

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 408: "request_timeout", 413: "payload_too_large",
               415: "unsupported_media_type",
               422: "invalid_input", 429: "rate_limited", 503: "not_ready"}


def error_response(request: Request, status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    request.state.error_code = code  # for the error counter in RequestMetrics
    body = {"ok": False, "error": {"code": code, "message": message, "status": status,
                                   "request_id": getattr(request.state, "request_id", None), "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(errors: list[dict]) -> tuple[str, list[dict]]:
    details = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        details.append({"field": loc or "body", "message": e.get("msg", ""), "type": e.get("type", "")})
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{first['field']}: {first['message']}{more}", details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BragserveError)
    async def _domain(request: Request, exc: BragserveError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message, exc.details, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(request, 400, "malformed_json", "request body is not valid JSON")
        message, details = _validation_message(errors)
        return error_response(request, 422, "invalid_input", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path,
                      getattr(request.state, "request_id", None))
        return error_response(request, 500, "internal_error", "internal server error; see the server log")
