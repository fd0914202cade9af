"""Prometheus metrics (``bragserve_*``): what operators alert on, and what the loop's health looks like.

One registry per app, so that several apps in one process (tests) never share counters.
Request-level metrics come from ``RequestMetrics`` (ASGI); decisions and flags are
observed where the API turns results into responses; corpus size and the review queue
are read from SQLite at scrape time, so they are never stale and cost nothing per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bragserve.service import QueryResult
from bragserve.writeback import Outcome

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SHARE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)


class _CorpusCollector(Collector):
    """Documents by source and status, and pending reviews, read when Prometheus scrapes."""

    def __init__(self, service: Callable[[], object | None]) -> None:
        self._service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        service = self._service()
        if service is None:  # still loading: report nothing rather than zeros
            return
        docs = GaugeMetricFamily("bragserve_corpus_documents", "Documents in the corpus by source and status.",
                                 labels=["source", "status"])
        for source, statuses in service.corpus.document_counts().items():
            for status, n in statuses.items():
                docs.add_metric([source, status], n)
        yield docs
        chunks = GaugeMetricFamily("bragserve_index_vectors", "Vectors in the live FAISS index.")
        chunks.add_metric([], service.index.count())
        yield chunks
        queue = GaugeMetricFamily("bragserve_review_queue_size", "Reviews waiting for a person, by kind.",
                                  labels=["kind"])
        for row in service.corpus.reader().query(
                "SELECT kind, count(*) AS n FROM reviews WHERE status = 'pending' GROUP BY kind"):
            queue.add_metric([row["kind"]], row["n"])
        yield queue


class Metrics:
    def __init__(self, service: Callable[[], object | None]) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram("bragserve_request_duration_seconds", "Request latency by route.",
                                 ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter("bragserve_errors_total", "Error responses by status and code.", ["status", "code"],
                              registry=self.registry)
        self.gates = Counter("bragserve_gate_decisions_total", "Write-back decisions by outcome and reason.",
                             ["decision", "reason"], registry=self.registry)
        self.flags = Counter("bragserve_defence_flags_total", "What the poisoning defences flagged, by defence.",
                             ["defence"], registry=self.registry)
        self.self_generated = Histogram("bragserve_self_generated_share", "Share of write-backs in each "
                                        "returned top-k.", buckets=SHARE_BUCKETS, registry=self.registry)
        self.registry.register(_CorpusCollector(service))

    def observe_outcome(self, outcome: Outcome | None) -> None:
        if outcome is not None:
            self.gates.labels(outcome.decision, outcome.reason or "none").inc()
            if outcome.reason == "screening":
                self.flags.labels("writeback_screening").inc()

    def observe_query(self, result: QueryResult) -> None:
        """One answered query: the share of write-backs it returned, what RAGMask, the flood filter, the
        disfluent-match filter and the write-back's screen of citations flagged, the gates' decision."""
        if result.passages:
            self.self_generated.observe(sum(p.source == "writeback" for p in result.passages) / len(result.passages))
        if result.defences is not None:
            self.flag("ragmask", len((result.defences.ragmask or {}).get("flagged", [])))
            self.flag("flood", sum(len(f["chunk_ids"]) for f in (result.defences.flood or {}).get("floods", [])))
            self.flag("disfluent_match", len((result.defences.disfluent_match or {}).get("removed", [])))
            for check in ("flood", "disfluency"):
                self.flag(f"citation_{check}", len(((result.defences.citations or {}).get(check) or {})
                                                   .get("flagged", [])))
        self.observe_outcome(result.writeback)

    def flag(self, defence: str, n: int = 1) -> None:
        if n:
            self.flags.labels(defence).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """Latency per route template (not per raw path: ids would explode the label set) and errors per code."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started)
            if status >= 400:
                code = scope.get("state", {}).get("error_code", "http_error")
                self.metrics.errors.labels(str(status), code).inc()
