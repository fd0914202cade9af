"""API keys and roles: every route × every role, open mode, revocation, rate limits, audit actors, CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bragserve.api.app import create_app
from bragserve.policy import Policy
from bragserve.store.keys import ROLES, KeyStore

from conftest import ROOT, demo_documents

# Which roles may call each route (admin may call all). Reading documents is open to every role.
EVERY = set(ROLES)
MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/healthz"): {"anonymous", *EVERY},
    ("GET", "/readyz"): {"anonymous", *EVERY},
    ("POST", "/query"): {"reader", "admin"},
    ("GET", "/v1/models"): {"reader", "admin"},
    ("POST", "/v1/chat/completions"): {"reader", "admin"},
    ("GET", "/documents"): EVERY,
    ("GET", "/documents/{doc_id}"): EVERY,
    ("GET", "/documents/{doc_id}/lineage"): EVERY,
    ("POST", "/documents"): {"writer", "admin"},
    ("DELETE", "/documents/{doc_id}"): {"writer", "admin"},
    ("POST", "/documents/{doc_id}/revoke"): {"writer", "admin"},
    ("POST", "/documents/{doc_id}/quarantine"): {"writer", "admin"},
    ("POST", "/writebacks"): {"writer", "admin"},
    ("POST", "/feedback"): {"writer", "admin"},
    ("POST", "/documents/{doc_id}/restore"): {"reviewer", "admin"},
    ("GET", "/reviews"): {"reviewer", "admin"},
    ("POST", "/reviews/{review_id}/approve"): {"reviewer", "admin"},
    ("POST", "/reviews/{review_id}/reject"): {"reviewer", "admin"},
    ("GET", "/audit"): {"auditor", "admin"},
    ("GET", "/audit/verify"): {"auditor", "admin"},
    ("GET", "/audit/{audit_id}"): {"auditor", "admin"},
    ("GET", "/metrics"): {"auditor", "admin"},
    ("GET", "/keys"): {"admin"},
    ("POST", "/keys"): {"admin"},
    ("DELETE", "/keys/{key_id}"): {"admin"},
}
BODIES = {"/query": {"query": "Who first climbed Mount Everest?", "k": 2, "writeback": False},
          "/v1/chat/completions": {"model": "bragserve", "messages": [{"role": "user", "content": "Everest?"}]},
          "/documents": {"documents": [{"id": "auth-doc", "text": "The auth test document is short."}]},
          "/writebacks": {"query": "q?", "answer": "An answer. [c1]"},
          "/feedback": {"document_id": "nope", "signal": "up"},
          "/keys": {"role": "reader", "name": "made-by-matrix"}}
PARAMS = {"doc_id": "everest", "review_id": "rv-none", "audit_id": "a1", "key_id": "nokey"}


@pytest.fixture
def keyed(client, settings):
    """A client over a corpus with the demo documents, and one key per role."""
    assert client.post("/documents", json={"documents": demo_documents()[:5]}).status_code == 200
    store = KeyStore(settings.index_dir)
    tokens = {role: store.create(role=role, name=f"test-{role}")[1] for role in ROLES}
    return client, tokens


def _call(client, method: str, template: str, token: str | None):
    path = template.format(**PARAMS)
    body = BODIES.get(template) if method == "POST" else None
    if template.endswith("/restore") or template.endswith("/revoke") or template.endswith("/quarantine"):
        path = template.format(doc_id="no-such-doc")  # authorised calls must not change what later calls see
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, path, json=body, headers=headers)


def test_matrix_covers_every_route(settings) -> None:
    app = create_app(settings, Policy())
    routes = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    assert routes == set(MATRIX), f"routes without a rule: {routes - set(MATRIX)}; stale: {set(MATRIX) - routes}"


def test_role_matrix(keyed) -> None:
    client, tokens = keyed
    failures = []
    for (method, template), allowed in MATRIX.items():
        for who in ("anonymous", *ROLES):
            r = _call(client, method, template, tokens.get(who))
            if who in allowed and r.status_code in (401, 403):
                failures.append(f"{who} {method} {template}: refused {r.status_code} {r.text[:120]}")
            elif who not in allowed and r.status_code != (401 if who == "anonymous" else 403):
                failures.append(f"{who} {method} {template}: expected {401 if who == 'anonymous' else 403}, "
                                f"got {r.status_code}")
            elif r.status_code >= 500:
                failures.append(f"{who} {method} {template}: {r.status_code}")
    assert not failures, "\n".join(failures)


def test_refusals_say_why(keyed) -> None:
    client, tokens = keyed
    r = client.post("/query", json={"query": "x"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "unauthorized"
    r = client.post("/query", json={"query": "x"}, headers={"Authorization": "Bearer bsk_nope_nope"})
    assert r.status_code == 401 and "unknown or revoked" in r.json()["error"]["message"]
    r = client.post("/query", json={"query": "x"}, headers={"Authorization": f"Basic {tokens['reader']}"})
    assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
    r = client.post("/documents", json={"documents": []}, headers={"Authorization": f"Bearer {tokens['reader']}"})
    assert r.status_code == 403 and "writer" in r.json()["error"]["message"]


def test_open_mode_until_the_first_key(client, settings) -> None:
    assert client.get("/documents").status_code == 200  # no keys: open, acting as 'local'
    assert client.post("/documents", json={"documents": demo_documents()[:1]}).status_code == 200
    _, token = KeyStore(settings.index_dir).create(role="auditor", name="first")
    assert client.get("/documents").status_code == 401  # the first key turns authentication on, no restart
    audit = client.get("/audit", params={"type": "ingest"}, headers={"Authorization": f"Bearer {token}"}).json()
    assert audit["data"][0]["actor"] == "local"


def test_require_auth_without_keys(make_client, tmp_path) -> None:
    from bragserve.settings import load_settings

    client = make_client(load_settings(index_dir=tmp_path / "strict", require_auth=True))
    assert client.get("/documents").status_code == 401
    assert client.get("/healthz").status_code == 200


def test_audit_records_carry_the_key_id(keyed, settings) -> None:
    client, tokens = keyed
    writer = {"Authorization": f"Bearer {tokens['writer']}"}
    assert client.post("/documents", json={"documents": [{"id": "by-writer", "text": "Written by a key."}]},
                       headers=writer).status_code == 200
    assert client.delete("/documents/by-writer", headers=writer).status_code == 200
    records = client.get("/audit", params={"subject": "by-writer"},
                         headers={"Authorization": f"Bearer {tokens['auditor']}"}).json()["data"]
    writer_id = next(k.id for k in KeyStore(settings.index_dir).list() if k.role == "writer")
    assert [r["type"] for r in records] == ["ingest", "delete"]
    assert {r["actor"] for r in records} == {f"key:{writer_id}"}


def test_revoked_key_is_refused_at_once(keyed, settings) -> None:
    client, tokens = keyed
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    created = client.post("/keys", json={"role": "reader", "name": "temp"}, headers=admin)
    assert created.status_code == 201
    body = created.json()
    reader = {"Authorization": f"Bearer {body['key']}"}
    assert client.get("/v1/models", headers=reader).status_code == 200
    listed = client.get("/keys", headers=admin).json()["data"]
    assert all("key" not in k and "secret" not in str(k) for k in listed)
    assert client.delete(f"/keys/{body['id']}", headers=admin).json()["active"] is False
    assert client.get("/v1/models", headers=reader).status_code == 401


def test_rate_limit_is_429_with_retry_after(keyed, settings) -> None:
    client, _ = keyed
    _, token = KeyStore(settings.index_dir).create(role="reader", name="slow", rate_per_minute=3)
    headers = {"Authorization": f"Bearer {token}"}
    codes = [client.get("/v1/models", headers=headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = client.get("/v1/models", headers=headers)
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["error"]["code"] == "rate_limited"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bragserve", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_keys_cli_create_list_revoke(tmp_path) -> None:
    index = str(tmp_path / "idx")
    made = _cli("keys", "create", "--role", "writer", "--name", "ingest-bot", "--index", index)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("bsk_") and "store it now" in made.stderr
    key_id = token.split("_")[1]
    listed = _cli("keys", "list", "--index", index, "--json")
    assert key_id in listed.stdout and token.split("_", 2)[2] not in listed.stdout  # the secret is never shown
    assert KeyStore(index).authenticate(token) is not None
    assert _cli("keys", "revoke", key_id, "--index", index).returncode == 0
    assert KeyStore(index).authenticate(token) is None
    bad = _cli("keys", "create", "--role", "root", "--name", "x", "--index", index)
    assert bad.returncode != 0 and "root" in bad.stderr


def test_non_loopback_without_keys_is_refused(tmp_path) -> None:
    r = _cli("serve", "--index", str(tmp_path / "idx"), "--host", "0.0.0.0", "--port", "0")
    assert r.returncode != 0 and "refusing to serve 0.0.0.0 with no API keys" in r.stderr
