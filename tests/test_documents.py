"""Document semantics: idempotent re-posts, updates replacing chunks, attribute updates, pagination."""

from __future__ import annotations

from conftest import demo_documents


def _ingest(client, docs: list[dict]) -> list[dict]:
    r = client.post("/documents", json={"documents": docs})
    assert r.status_code == 200, r.text
    return r.json()["documents"]


def _top(client, query: str, k: int = 5) -> list[dict]:
    r = client.post("/query", json={"query": query, "k": k, "generate": False})
    assert r.status_code == 200, r.text
    return r.json()["passages"]


def test_reposting_same_content_is_idempotent(client) -> None:
    docs = demo_documents()[:5]
    first = _ingest(client, docs)
    again = _ingest(client, docs)
    assert [d["status"] for d in first] == ["created"] * 5
    assert [d["status"] for d in again] == ["unchanged"] * 5
    assert [d["version"] for d in again] == [1] * 5
    assert client.get("/readyz").json()["index_vectors"] == sum(d["chunks"] for d in first)


def test_new_content_updates_and_replaces_chunks(client) -> None:
    _ingest(client, [{"id": "note", "text": "The lighthouse keeper painted the tower red in 1901."}])
    old = client.get("/documents/note").json()
    updated = _ingest(client, [{"id": "note", "text": "The bakery on the corner sells sourdough bread every morning."}])
    assert updated[0] == {"id": "note", "status": "updated", "version": 2, "chunks": 1, "screening": [],
                          "review_id": None}
    new = client.get("/documents/note").json()
    assert new["version"] == 2 and new["text"].startswith("The bakery")
    assert new["chunks"][0]["chunk_id"] != old["chunks"][0]["chunk_id"]
    hits = _top(client, "lighthouse keeper painted the tower")
    assert all(h["chunk_id"] != old["chunks"][0]["chunk_id"] for h in hits)
    assert hits[0]["doc_id"] == "note" and hits[0]["text"].startswith("The bakery")
    assert client.get("/readyz").json()["index_vectors"] == 1


def test_metadata_and_trust_update_without_reembedding(client) -> None:
    doc = {"id": "m", "text": "Basalt is a volcanic rock.", "metadata": {"a": 1}}
    _ingest(client, [doc])
    chunk_before = client.get("/documents/m").json()["chunks"][0]["chunk_id"]
    result = _ingest(client, [{**doc, "metadata": {"a": 2}, "trust": 0.4}])
    assert result[0]["status"] == "updated" and result[0]["version"] == 1
    body = client.get("/documents/m").json()
    assert body["metadata"] == {"a": 2} and body["trust"] == 0.4
    assert body["chunks"][0]["chunk_id"] == chunk_before


def test_ids_default_to_content_hash(client) -> None:
    first = _ingest(client, [{"text": "Quartz is a hard mineral made of silicon and oxygen."}])
    again = _ingest(client, [{"text": "Quartz is a hard mineral made of silicon and oxygen."}])
    assert first[0]["id"].startswith("d-") and first[0]["id"] == again[0]["id"]
    assert again[0]["status"] == "unchanged"


def test_long_documents_are_chunked_with_spans(client) -> None:
    text = " ".join(f"Sentence number {i} talks about the river delta and its {i} channels." for i in range(60))
    result = _ingest(client, [{"id": "long", "text": text}])
    assert result[0]["chunks"] > 3
    chunks = client.get("/documents/long").json()["chunks"]
    for c in chunks:
        assert text[c["start"]:c["end"]] == c["text"]
        assert len(c["text"].split()) <= 120


def test_delete_then_repost_revives_document(client) -> None:
    _ingest(client, demo_documents()[:3])
    deleted = client.delete("/documents/mercury").json()
    assert deleted["status"] == "deleted" and deleted["chunks_removed"] == 1 and deleted["revoked"] == []
    assert client.delete("/documents/mercury").status_code == 404
    revived = _ingest(client, [demo_documents()[0]])
    assert revived[0]["status"] == "updated" and revived[0]["version"] == 2
    assert _top(client, "smallest planet closest to the Sun")[0]["doc_id"] == "mercury"


def test_pagination_walks_every_document_once(client) -> None:
    _ingest(client, demo_documents())
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = client.get("/documents", params=params).json()
        seen += [d["id"] for d in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5 and len(seen) == 30 and len(set(seen)) == 30
    assert seen == [d["id"] for d in demo_documents()]


def test_list_filters_by_source_and_status(client) -> None:
    _ingest(client, demo_documents()[:4])
    client.delete("/documents/venus")
    deleted = client.get("/documents", params={"status": "deleted"}).json()
    assert [d["id"] for d in deleted["data"]] == ["venus"]
    active = client.get("/documents", params={"status": "active", "source": "ingested"}).json()
    assert active["count"] == 3
    assert client.get("/documents", params={"source": "writeback"}).json()["count"] == 0


def test_openapi_docs_are_served(client) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/documents", "/documents/{doc_id}", "/query", "/writebacks", "/reviews", "/feedback", "/audit",
            "/healthz", "/readyz"} <= set(spec["paths"])
    assert "swagger" in client.get("/docs").text.lower()
