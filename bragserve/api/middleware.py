"""ASGI middleware: request ids, and hard caps on request body size and on how long a body may take to arrive."""

from __future__ import annotations

import asyncio
import json
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(HTTPException):
    """An HTTPException so FastAPI's body reader re-raises it (it turns other errors into 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body is larger than {max_bytes} bytes")


class _TooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive within {seconds:g} s")


class RequestLimits:
    """Reject bodies over ``max_bytes`` with 413 (whether or not Content-Length was sent), and bodies that
    have not fully arrived ``body_timeout_s`` after the request started with 408: a stalled client must not
    hold a worker thread."""

    def __init__(self, app: ASGIApp, max_bytes: int, body_timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send, scope, 413, "payload_too_large",
                               f"request body is larger than {self.max_bytes} bytes")
            return
        seen = 0
        started = False
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        body_done = False

        async def limited_receive() -> Message:
            nonlocal seen, body_done
            if body_done:  # after the body, receive() only waits for a disconnect: no deadline
                return await receive()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.001))
            except TimeoutError:
                raise _TooSlow(self.body_timeout_s) from None
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tagged_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, limited_receive, tagged_send)
        except (_TooLarge, _TooSlow) as exc:
            if not started:
                code = "payload_too_large" if isinstance(exc, _TooLarge) else "request_timeout"
                await self._reject(send, scope, exc.status_code, code, exc.detail)

    @staticmethod
    async def _reject(send: Send, scope: Scope, status: int, code: str, message: str) -> None:
        state = scope.setdefault("state", {})
        state["error_code"] = code
        request_id = state["request_id"]
        body = json.dumps({"ok": False, "error": {"code": code, "status": status, "request_id": request_id,
                                                  "details": None, "message": message}}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"x-request-id", request_id.encode())]})
        await send({"type": "http.response.body", "body": body})
