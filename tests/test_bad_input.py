"""Every bad input gets a 4xx with the stable error shape and a message; never a 500."""

from __future__ import annotations

import pytest

from bragserve.settings import load_settings

OK_DOC = {"id": "ok", "text": "A valid sentence about granite."}

CASES = [
    # (name, method, path, kwargs, status, code)
    ("empty text", "post", "/documents", {"json": {"documents": [{"text": ""}]}}, 422, "empty_text"),
    ("whitespace text", "post", "/documents", {"json": {"documents": [{"text": "  \n\t "}]}}, 422, "empty_text"),
    ("text too long", "post", "/documents", {"json": {"documents": [{"text": "word " * 100}]}}, 413, "text_too_long"),
    ("too many documents", "post", "/documents",
     {"json": {"documents": [{"text": f"Doc {i} text."} for i in range(4)]}}, 413, "too_many_documents"),
    ("no documents", "post", "/documents", {"json": {"documents": []}}, 422, "invalid_input"),
    ("documents not a list", "post", "/documents", {"json": {"documents": "x"}}, 422, "invalid_input"),
    ("text wrong type", "post", "/documents", {"json": {"documents": [{"text": 5}]}}, 422, "invalid_input"),
    ("missing text", "post", "/documents", {"json": {"documents": [{"id": "a"}]}}, 422, "invalid_input"),
    ("unknown field", "post", "/documents", {"json": {"documents": [{**OK_DOC, "colour": 1}]}}, 422, "invalid_input"),
    ("bad id characters", "post", "/documents", {"json": {"documents": [{**OK_DOC, "id": "a b/c"}]}}, 422,
     "invalid_id"),
    ("trust out of range", "post", "/documents", {"json": {"documents": [{**OK_DOC, "trust": 3}]}}, 422,
     "invalid_trust"),
    ("trust wrong type", "post", "/documents", {"json": {"documents": [{**OK_DOC, "trust": "high"}]}}, 422,
     "invalid_input"),
    ("metadata not object", "post", "/documents", {"json": {"documents": [{**OK_DOC, "metadata": [1]}]}}, 422,
     "invalid_input"),
    ("duplicate ids in batch", "post", "/documents", {"json": {"documents": [OK_DOC, OK_DOC]}}, 422, "duplicate_id"),
    ("malformed json", "post", "/documents",
     {"content": b'{"documents": [', "headers": {"content-type": "application/json"}}, 400, "malformed_json"),
    ("body not json object", "post", "/query", {"json": ["q"]}, 422, "invalid_input"),
    ("body too large", "post", "/documents", {"json": {"documents": [{"text": "x" * 5000}]}}, 413,
     "payload_too_large"),
    ("k zero", "post", "/query", {"json": {"query": "granite", "k": 0}}, 422, "invalid_k"),
    ("k over 100", "post", "/query", {"json": {"query": "granite", "k": 101}}, 422, "invalid_k"),
    ("k string", "post", "/query", {"json": {"query": "granite", "k": "5"}}, 422, "invalid_input"),
    ("k float", "post", "/query", {"json": {"query": "granite", "k": 2.5}}, 422, "invalid_input"),
    ("empty query", "post", "/query", {"json": {"query": "   "}}, 422, "empty_query"),
    ("query too long", "post", "/query", {"json": {"query": "why " * 50}}, 422, "query_too_long"),
    ("query wrong type", "post", "/query", {"json": {"query": ["a"]}}, 422, "invalid_input"),
    ("generate wrong type", "post", "/query", {"json": {"query": "a", "generate": "yes"}}, 422, "invalid_input"),
    ("unknown document", "get", "/documents/nope", {}, 404, "not_found"),
    ("delete unknown document", "delete", "/documents/nope", {}, 404, "not_found"),
    ("limit zero", "get", "/documents", {"params": {"limit": 0}}, 422, "invalid_input"),
    ("limit huge", "get", "/documents", {"params": {"limit": 10**9}}, 422, "invalid_input"),
    ("unknown status", "get", "/documents", {"params": {"status": "gone"}}, 422, "invalid_input"),
    ("forged cursor", "get", "/documents", {"params": {"cursor": "not-a-cursor"}}, 422, "invalid_cursor"),
    ("unknown route", "get", "/nothing-here", {}, 404, "not_found"),
    ("wrong method", "put", "/query", {"json": {}}, 405, "method_not_allowed"),
]


@pytest.fixture
def small_client(make_client, tmp_path):
    settings = load_settings(index_dir=tmp_path / "index", max_text_chars=200, max_batch_documents=3,
                             max_request_bytes=4096, max_query_chars=100)
    client = make_client(settings)
    assert client.post("/documents", json={"documents": [OK_DOC]}).status_code == 200
    return client


@pytest.mark.parametrize("name,method,path,kwargs,status,code", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_4xx(small_client, name, method, path, kwargs, status, code) -> None:
    r = getattr(small_client, method)(path, **kwargs) if method != "delete" else small_client.delete(path)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["ok"] is False
    assert body["error"]["code"] == code
    assert body["error"]["status"] == status
    assert body["error"]["message"]
    assert body["error"]["request_id"] == r.headers["x-request-id"]


def test_bad_batch_writes_nothing(small_client) -> None:
    r = small_client.post("/documents", json={"documents": [{"id": "fine", "text": "Fine text."}, {"text": " "}]})
    assert r.status_code == 422
    assert small_client.get("/documents/fine").status_code == 404


def test_chunked_body_over_limit_is_413(small_client) -> None:
    def body():
        yield b'{"documents": [{"text": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}]}'
    r = small_client.post("/documents", content=body(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
