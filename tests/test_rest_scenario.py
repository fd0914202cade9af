"""The core scenario over real HTTP: ingest, query with citations, delete, restart, state persisted."""

from __future__ import annotations

import httpx

from conftest import demo_documents
from bragserve.text import find_citations


def test_ingest_query_delete_restart(live_server) -> None:
    http = httpx.Client(base_url=live_server.url, timeout=60)
    docs = demo_documents()
    r = http.post("/documents", json={"documents": docs})
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 30
    assert {d["status"] for d in r.json()["documents"]} == {"created"}

    r = http.post("/query", json={"query": "Who first climbed Mount Everest?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["passages"][0]["doc_id"] == "everest"
    retrieved = {p["chunk_id"] for p in body["passages"]}
    assert body["answer"] and body["answer_sentences"]
    for sentence in body["answer_sentences"]:
        assert sentence["citations"] and set(sentence["citations"]) <= retrieved
    # The answer text carries the same citations, one marker per sentence.
    assert sum(len(find_citations(s["text"] + f" [{s['citations'][0]}]")) for s in body["answer_sentences"]) == \
        len(body["answer_sentences"])
    for cited in find_citations(body["answer"]):
        assert cited in retrieved
    assert {c["chunk_id"] for c in body["citations"]} == set(find_citations(body["answer"]))
    assert "Hillary" in body["answer"]
    assert set(body["timings_ms"]) >= {"embed", "search", "generate", "total"}

    assert http.delete("/documents/everest").status_code == 200
    assert http.get("/documents/everest").status_code == 404
    r = http.post("/query", json={"query": "Who first climbed Mount Everest?", "k": 10})
    assert "everest" not in {p["doc_id"] for p in r.json()["passages"]}

    live_server.stop()
    ready = live_server.start()
    assert ready["consistent"] and ready["documents"]["ingested"] == {"active": 29, "deleted": 1}
    http = httpx.Client(base_url=live_server.url, timeout=60)
    assert http.get("/documents/everest").status_code == 404
    assert http.get("/documents/mars").json()["text"].startswith("Mars is called the Red Planet")
    r = http.post("/query", json={"query": "tallest volcano in the Solar System"})
    assert r.json()["passages"][0]["doc_id"] == "mars"
    assert http.get("/healthz").json() == {"ok": True}
