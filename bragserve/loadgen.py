"""Mixed REST traffic (ingest, delete, query with write-back, proposed write-backs) with a ledger of what the
server acknowledged, and a check that the server still holds exactly that.

Used by the concurrency and crash tests and by ``benchmarks/load.py``: the same traffic that
measures throughput is the traffic whose every acknowledged write is verified afterwards.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx

WORDS = ("amber basalt cobalt dune ember fjord glacier harbor iris jade kelp lagoon mesa nectar onyx prairie quartz "
         "reef sierra tundra umber valley willow xenon yarrow zephyr").split()
DEFAULT_MIX = {"ingest": 0.3, "delete": 0.1, "query": 0.45, "writeback": 0.15}


def synthetic_document(doc_id: str, rng: random.Random) -> dict:
    a, b, c, d = rng.sample(WORDS, 4)
    station, reading = rng.randint(100, 999), rng.randint(1, 97)
    return {"id": doc_id, "text": f"Survey {doc_id} found {a} near the {b} {c} at station {station}. "
                                  f"The {d} reading at station {station} was {reading}."}


@dataclass
class Ledger:
    """What the server acknowledged (2xx) and what went wrong. Thread-safe through ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ingested: dict[str, str] = field(default_factory=dict)       # doc id -> text
    deleted: dict[str, float] = field(default_factory=dict)      # doc id -> monotonic time of the acknowledgement
    delete_unacknowledged: set[str] = field(default_factory=set)  # sent, no answer (server killed): either way
    writebacks: dict[str, list[str]] = field(default_factory=dict)  # write-back id -> retrieved doc ids
    decisions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)               # unexpected status codes or bodies
    stale_reads: list[str] = field(default_factory=list)          # a deleted document returned after its delete
    transport_failures: int = 0                                   # no answer at all (expected when killed)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


class MixedTraffic:
    def __init__(self, url: str, ledger: Ledger, *, headers: dict[str, str] | None = None,
                 mix: dict[str, float] | None = None, seed: int = 0, timeout_s: float = 120.0) -> None:
        self.url, self.ledger, self.headers = url, ledger, headers or {}
        self.mix = mix or DEFAULT_MIX
        self.seed, self.timeout_s = seed, timeout_s

    def run(self, *, threads: int, seconds: float, max_ops: int, stop: threading.Event | None = None) -> Ledger:
        """``threads`` clients for at most ``seconds`` and ``max_ops`` operations each (bounded either way)."""
        stop = stop or threading.Event()
        workers = [threading.Thread(target=self._worker, args=(i, stop, time.monotonic() + seconds, max_ops))
                   for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return self.ledger

    def _worker(self, worker: int, stop: threading.Event, deadline: float, max_ops: int) -> None:
        rng = random.Random(f"{self.seed}-{worker}")
        mine: list[str] = []
        ops, weights = zip(*self.mix.items())
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=self.timeout_s) as http:
            for n in range(max_ops):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                op = rng.choices(ops, weights)[0] if mine else "ingest"
                started = time.perf_counter()
                try:
                    getattr(self, f"_{op}")(http, rng, mine, f"s{self.seed}w{worker}n{n}")
                except httpx.TransportError:
                    with self.ledger.lock:
                        self.ledger.transport_failures += 1
                    if stop.is_set():
                        return
                    continue
                with self.ledger.lock:
                    self.ledger.latencies[op].append(time.perf_counter() - started)

    def _expect(self, r: httpx.Response, what: str, ok: tuple[int, ...] = (200,)) -> bool:
        if r.status_code in ok:
            return True
        self.ledger.error(f"{what}: {r.status_code} {r.text[:200]}")
        return False

    def _ingest(self, http: httpx.Client, rng: random.Random, mine: list[str], tag: str) -> None:
        docs = [synthetic_document(f"{tag}d{i}", rng) for i in range(rng.randint(1, 3))]
        r = http.post("/documents", json={"documents": docs})
        if self._expect(r, "ingest"):
            with self.ledger.lock:
                self.ledger.ingested.update({d["id"]: d["text"] for d in docs})
            mine.extend(d["id"] for d in docs)

    def _delete(self, http: httpx.Client, rng: random.Random, mine: list[str], tag: str) -> None:
        doc_id = mine.pop(rng.randrange(len(mine)))
        with self.ledger.lock:
            self.ledger.delete_unacknowledged.add(doc_id)
        r = http.delete(f"/documents/{doc_id}")
        if self._expect(r, f"delete {doc_id}"):
            with self.ledger.lock:
                self.ledger.deleted[doc_id] = time.monotonic()
                self.ledger.delete_unacknowledged.discard(doc_id)

    def _query(self, http: httpx.Client, rng: random.Random, mine: list[str], tag: str) -> None:
        with self.ledger.lock:
            text = self.ledger.ingested[rng.choice(mine)]
        sent = time.monotonic()
        r = http.post("/query", json={"query": text.split(". ")[0] + "?", "k": 3, "writeback": True})
        if not self._expect(r, "query"):
            return
        body = r.json()
        self._check_fresh([p["doc_id"] for p in body["passages"]], sent)
        self._record(body.get("writeback"), body["passages"])

    def _writeback(self, http: httpx.Client, rng: random.Random, mine: list[str], tag: str) -> None:
        """Propose an answer that joins the first sentences of the two best passages (a synthesis, not a copy)."""
        with self.ledger.lock:
            text = self.ledger.ingested[rng.choice(mine)]
        question = text.split(". ")[0] + "?"
        r = http.post("/query", json={"query": question, "k": 2, "generate": False})
        if not self._expect(r, "retrieve") or len(r.json()["passages"]) < 2:
            return
        passages = r.json()["passages"]
        answer = " ".join(f"{p['text'].split('. ')[0].rstrip('.')}. [{p['chunk_id']}]" for p in passages)
        r = http.post("/writebacks", json={"query": question, "answer": answer, "generator": "loadgen"})
        if self._expect(r, "writeback"):
            self._record(r.json(), passages)

    def _record(self, outcome: dict | None, passages: list[dict]) -> None:
        if not outcome:
            return
        with self.ledger.lock:
            self.ledger.decisions[f"{outcome['decision']}:{outcome.get('reason')}"] += 1
            if outcome["decision"] == "accepted" and outcome.get("document_id"):
                self.ledger.writebacks[outcome["document_id"]] = [p["doc_id"] for p in passages]

    def _check_fresh(self, doc_ids: list[str], sent: float) -> None:
        with self.ledger.lock:
            stale = [d for d in doc_ids if d in self.ledger.deleted and self.ledger.deleted[d] < sent]
            self.ledger.stale_reads.extend(stale)


def verify(url: str, ledger: Ledger, *, headers: dict[str, str] | None = None) -> list[str]:
    """Every acknowledged write is there, every acknowledged delete is gone, write-backs follow their sources,
    the audit chain verifies and FAISS holds exactly SQLite's active chunks. Returns the problems found."""
    problems: list[str] = []
    with httpx.Client(base_url=url, headers=headers or {}, timeout=120) as http:
        for doc_id in ledger.ingested:
            if doc_id in ledger.delete_unacknowledged:
                continue  # the delete may or may not have committed before the crash
            r = http.get(f"/documents/{doc_id}")
            if doc_id in ledger.deleted and r.status_code != 404:
                problems.append(f"acknowledged delete of {doc_id} undone: {r.status_code}")
            elif doc_id not in ledger.deleted and r.status_code != 200:
                problems.append(f"acknowledged ingest of {doc_id} lost: {r.status_code}")
        for wb_id in ledger.writebacks:
            r = http.get(f"/documents/{wb_id}/lineage")
            if r.status_code != 200:
                problems.append(f"acknowledged write-back {wb_id} lost: {r.status_code}")
                continue
            ancestors = r.json()["ancestors"]
            status = http.get(f"/documents/{wb_id}").json()["status"]
            gone = [a["id"] for a in ancestors if a["status"] != "active"]
            if status == "active" and gone:
                problems.append(f"write-back {wb_id} still active although {gone} no longer are")
        audit = http.get("/audit/verify").json()
        if not audit.get("ok"):
            problems.append(f"audit chain broken: {audit}")
        ready = http.get("/readyz").json()
        if not ready.get("consistent"):
            problems.append(f"index and SQLite disagree: {ready}")
    return problems
