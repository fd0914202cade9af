"""Domain errors: raised by service and store code, mapped to HTTP once in the API layer.

Each error carries its HTTP status and a stable machine-readable code so that the
API never needs per-route re-mapping, and the CLI can turn any of them into a
one-line message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class BragserveError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers
        if code:
            self.code = code


class InvalidInput(BragserveError):
    status, code = 422, "invalid_input"


class Unauthorized(BragserveError):
    """No key, or a key that is unknown or revoked."""

    status, code = 401, "unauthorized"

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"}, **kwargs)


class Forbidden(BragserveError):
    """A valid key whose role does not allow this route."""

    status, code = 403, "forbidden"


class RateLimited(BragserveError):
    status, code = 429, "rate_limited"


class NotFound(BragserveError):
    status, code = 404, "not_found"


class Conflict(BragserveError):
    status, code = 409, "conflict"


class PayloadTooLarge(BragserveError):
    status, code = 413, "payload_too_large"


class NotReady(BragserveError):
    status, code = 503, "not_ready"


class ConfigError(BragserveError):
    """A settings or policy problem: fatal at start-up, reported with the offending key."""

    status, code = 500, "config_error"


class IndexLocked(BragserveError):
    """Another process owns the index directory for writing."""

    status, code = 409, "index_locked"


def validation_problems(exc: "ValidationError") -> str:
    """A pydantic error as one line naming each offending key (``ragmask.delta: ...``), for settings and policy."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
