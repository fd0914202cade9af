"""``create_app(settings, policy)``: the FastAPI application. Nothing is built at import time.

The corpus loads on a background thread so that /healthz answers at once while
/readyz (and every data route, with 503) waits for the index to be loaded and
checked against SQLite.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bragserve import __version__
from bragserve.api.auth import AccessControl
from bragserve.api.errors import install_error_handlers
from bragserve.api.metrics import Metrics, RequestMetrics
from bragserve.api.middleware import RequestLimits
from bragserve.api.routers import (audit, documents, feedback, health, keys, metrics, openai_facade, query, reviews,
                                   writebacks)
from bragserve.api.schemas import ErrorResponse
from bragserve.policy import Policy
from bragserve.service import Service
from bragserve.settings import Settings
from bragserve.store.keys import KeyStore
from bragserve.store.lock import IndexLock

log = logging.getLogger(__name__)


def create_app(settings: Settings, policy: Policy, *, policy_source: str = "built-in",
               lock: IndexLock | None = None, service: Service | None = None,
               open_when_keyless: bool = True) -> FastAPI:
    """Build the app; pass ``service`` to serve an already-open one (tests), or let it load in the background.

    ``open_when_keyless``: serve without keys while none exists (the CLI allows it on loopback binds only).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service
        app.state.load_error = None
        loader = None
        if service is None:
            def load() -> None:
                try:
                    app.state.service = Service.open(settings, policy, policy_source, lock=lock)
                    log.info("ready: %s", app.state.service.status())
                except Exception as exc:  # reported by /healthz and /readyz, and logged
                    log.exception("failed to load the corpus at %s", settings.index_dir)
                    app.state.load_error = f"{exc.__class__.__name__}: {exc}"
            loader = threading.Thread(target=load, name="bragserve-loader", daemon=True)
            loader.start()
        try:
            yield
        finally:
            if loader is not None:
                loader.join()
            if app.state.service is not None:
                app.state.service.close()

    errors = {status: {"model": ErrorResponse, "description": description} for status, description in (
        (400, "Malformed request"), (401, "Missing, unknown or revoked API key"), (403, "Role not allowed"),
        (404, "Not found"), (408, "Request body too slow"), (409, "Conflict"), (413, "Request too large"),
        (422, "Invalid input"), (429, "Rate limited (see Retry-After)"), (503, "Corpus still loading or server busy"))}
    app = FastAPI(title="bragserve", version=__version__, lifespan=lifespan, responses=errors,
                  description="A self-growing, poisoning-robust RAG server.")
    app.state.access = AccessControl(KeyStore(settings.index_dir), require_auth=settings.require_auth,
                                     open_when_keyless=open_when_keyless,
                                     default_rate_per_minute=settings.rate_limit_per_minute)
    app.state.metrics = Metrics(lambda: getattr(app.state, "service", None))
    install_error_handlers(app)
    app.add_middleware(RequestLimits, max_bytes=settings.max_request_bytes, body_timeout_s=settings.body_timeout_s)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.include_router(health.router)
    app.include_router(documents.router)
    app.include_router(query.router)
    app.include_router(writebacks.router)
    app.include_router(reviews.router)
    app.include_router(feedback.router)
    app.include_router(audit.router)
    app.include_router(keys.router)
    app.include_router(metrics.router)
    app.include_router(openai_facade.router)
    return app
