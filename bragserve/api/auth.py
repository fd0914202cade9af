"""Who may call what: API keys (``Authorization: Bearer``), roles, and per-key rate limits.

Roles are scopes, not a ladder: a reader asks questions, a writer changes the corpus,
a reviewer decides the review queue and restores, an auditor reads the audit log and
metrics, an admin does all of it and manages keys. Reading documents is open to every
role, because each of them needs to see what it is acting on.

With no key in the store the server runs open (every request acts as ``local``), but
only where the caller allowed it (a loopback bind, or ``--insecure-open``); once a
key exists, or with ``require_auth``, every route but /healthz and /readyz needs one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from bragserve.errors import Forbidden, RateLimited, Unauthorized
from bragserve.store.keys import ApiKey, KeyStore

Permission = Literal["query", "read", "write", "review", "audit", "metrics", "keys"]

ALLOWED: dict[str, frozenset[str]] = {
    "query": frozenset({"reader", "admin"}),
    "read": frozenset({"reader", "writer", "reviewer", "auditor", "admin"}),
    "write": frozenset({"writer", "admin"}),
    "review": frozenset({"reviewer", "admin"}),
    "audit": frozenset({"auditor", "admin"}),
    "metrics": frozenset({"auditor", "admin"}),
    "keys": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Principal:
    """The caller. ``actor`` is what the audit log records: the key id, or ``local`` in open mode."""

    actor: str
    role: str
    key: ApiKey | None = None


OPEN = Principal(actor="local", role="admin")


class AccessControl:
    def __init__(self, keys: KeyStore, *, require_auth: bool, open_when_keyless: bool,
                 default_rate_per_minute: int) -> None:
        self.keys = keys
        self.require_auth = require_auth
        self.open_when_keyless = open_when_keyless
        self.default_rate = default_rate_per_minute
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def is_open(self) -> bool:
        """Open mode: no key exists, auth is not required, and the bind allows it."""
        return not self.require_auth and self.open_when_keyless and not self.keys.any_active()

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            if self.is_open():
                return OPEN
            raise Unauthorized("this server needs an API key: send 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <key>'")
        key = self.keys.authenticate(token.strip())
        if key is None:
            raise Unauthorized("unknown or revoked API key")
        return Principal(actor=f"key:{key.id}", role=key.role, key=key)

    @staticmethod
    def authorize(principal: Principal, permission: Permission) -> None:
        if principal.role not in ALLOWED[permission]:
            allowed = ", ".join(sorted(ALLOWED[permission]))
            raise Forbidden(f"role {principal.role!r} may not {permission}; this route needs one of: {allowed}")

    def throttle(self, principal: Principal) -> None:
        """Moving one-minute window per key; 429 with Retry-After when the key has used it up."""
        if principal.key is None:
            return
        rate = self.default_rate if principal.key.rate_per_minute is None else principal.key.rate_per_minute
        if rate == 0:
            return
        item = RateLimitItemPerMinute(rate)
        if not self._limiter.hit(item, principal.key.id):
            reset = self._limiter.get_window_stats(item, principal.key.id).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise RateLimited(f"key {principal.key.id} is limited to {rate} requests per minute; retry in {wait} s",
                              headers={"Retry-After": str(wait)})


def require(permission: Permission):
    """A dependency that admits callers allowed ``permission`` and hands the route its Principal."""

    def dependency(request: Request) -> Principal:
        access: AccessControl = request.app.state.access
        principal = access.authenticate(request.headers.get("authorization"))
        access.authorize(principal, permission)
        access.throttle(principal)
        request.state.principal = principal
        return principal

    return Depends(dependency)


Reader = Annotated[Principal, require("query")]
Viewer = Annotated[Principal, require("read")]
Writer = Annotated[Principal, require("write")]
Reviewer = Annotated[Principal, require("review")]
Auditor = Annotated[Principal, require("audit")]
MetricsReader = Annotated[Principal, require("metrics")]
Admin = Annotated[Principal, require("keys")]
