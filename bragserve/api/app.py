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
from bragserve.api.errors import install_error_handlers
from bragserve.api.middleware import RequestLimits
from bragserve.api.routers import audit, documents, feedback, health, query, reviews, writebacks
from bragserve.config import Policy, Settings
from bragserve.service import Service
from bragserve.store.lock import IndexLock

log = logging.getLogger(__name__)


def create_app(settings: Settings, policy: Policy, *, policy_source: str = "built-in",
               lock: IndexLock | None = None, service: Service | None = None) -> FastAPI:
    """Build the app; pass ``service`` to serve an already-open one (tests), or let it load in the background."""

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

    app = FastAPI(title="bragserve", version=__version__, lifespan=lifespan,
                  description="A self-growing, poisoning-robust RAG server.")
    install_error_handlers(app)
    app.add_middleware(RequestLimits, max_bytes=settings.max_request_bytes)
    app.include_router(health.router)
    app.include_router(documents.router)
    app.include_router(query.router)
    app.include_router(writebacks.router)
    app.include_router(reviews.router)
    app.include_router(feedback.router)
    app.include_router(audit.router)
    return app
