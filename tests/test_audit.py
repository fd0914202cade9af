"""The audit log: exactly one record per action, and any tampering is found by `bragserve audit verify`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from writeback_helpers import chunk_of, demo, firsts_answer, ingest, propose

ROOT = Path(__file__).resolve().parent.parent


def types(client, **params) -> list[str]:
    return [r["type"] for r in client.get("/audit", params={"limit": 1000, **params}).json()["data"]]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bragserve", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_every_action_leaves_exactly_its_records(client) -> None:
    assert types(client) == ["policy_loaded"]
    demo(client)
    assert types(client)[1:] == ["ingest"] * 30
    ingest(client, [{"id": "mars", "text": "Mars has two moons.", "metadata": {}}])
    query, answer = firsts_answer(client)
    accepted = propose(client, query, answer)
    rejected = propose(client, "q", "Made-up claim about nothing. [c999999]")
    client.post("/feedback", json={"document_id": accepted["document_id"], "signal": "down"})
    client.delete("/documents/venus")
    client.post(f"/documents/{accepted['document_id']}/restore")
    assert types(client)[31:] == ["update", "writeback_accepted", "writeback_rejected", "feedback", "revoke",
                                  "delete", "restore"]
    record = client.get(f"/audit/{accepted['audit_id']}").json()
    assert record["payload"]["document_id"] == accepted["document_id"]
    assert record["payload"]["policy_hash"] == client.get("/readyz").json()["policy_hash"]
    assert record["payload"]["models"]["nli"] and record["actor"] == "local"
    assert set(record["payload"]["citations"]) == {chunk_of(client, "everest"), chunk_of(client, "moon-landing")}
    assert client.get(f"/audit/{rejected['audit_id']}").json()["payload"]["reason"] == "attribution"
    by_subject = client.get("/audit", params={"subject": accepted["document_id"]}).json()["data"]
    assert [r["type"] for r in by_subject] == ["writeback_accepted", "feedback", "revoke", "restore"]
    assert client.get("/audit/verify").json() == {"ok": True, "count": 38, "first_broken": None, "problem": None}


def test_audit_paging_and_filters(client) -> None:
    demo(client)
    page = client.get("/audit", params={"type": "ingest", "limit": 20}).json()
    assert page["count"] == 20 and page["next_cursor"]
    rest = client.get("/audit", params={"type": "ingest", "limit": 20, "cursor": page["next_cursor"]}).json()
    assert rest["count"] == 10 and rest["next_cursor"] is None
    assert client.get("/audit", params={"type": "nonsense"}).status_code == 422
    assert client.get("/audit/a99999").status_code == 404
    assert client.get("/audit", params={"since": "2999-01-01"}).json()["count"] == 0


def test_audit_rows_cannot_be_changed_through_sqlite(client, settings) -> None:
    demo(client)
    with sqlite3.connect(settings.index_dir / "corpus.db") as db, pytest.raises(sqlite3.DatabaseError,
                                                                                  match="append-only"):
        db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")


def _tamper(settings, sql: str, params: list) -> None:
    with sqlite3.connect(settings.index_dir / "corpus.db") as db:
        db.execute("DROP TRIGGER audit_no_update")   # an attacker with the file can drop the guard...
        db.execute("DROP TRIGGER audit_no_delete")
        db.execute(sql, params)


def test_verify_cli_passes_then_names_a_flipped_byte(client, settings) -> None:
    demo(client)
    ok = run_cli("audit", "verify", "--index", str(settings.index_dir))
    assert ok.returncode == 0 and "31 records" in ok.stdout
    with sqlite3.connect(settings.index_dir / "corpus.db") as db:
        payload = db.execute("SELECT payload FROM audit WHERE seq = 7").fetchone()[0]
    flipped = payload.replace('"version":1', '"version":2', 1)
    assert flipped != payload
    _tamper(settings, "UPDATE audit SET payload = ? WHERE seq = 7", [flipped])
    bad = run_cli("audit", "verify", "--index", str(settings.index_dir))
    assert bad.returncode == 1 and "a7" in bad.stderr        # ...but not make the chain agree


def test_verify_cli_names_a_removed_record(client, settings) -> None:
    demo(client)
    _tamper(settings, "DELETE FROM audit WHERE seq = 12", [])
    bad = run_cli("audit", "verify", "--index", str(settings.index_dir))
    assert bad.returncode == 1 and "a12" in bad.stderr and "missing" in bad.stderr


def test_verify_cli_detects_records_cut_from_the_end(client, settings) -> None:
    demo(client)
    _tamper(settings, "DELETE FROM audit WHERE seq > 29", [])
    bad = run_cli("audit", "verify", "--index", str(settings.index_dir))
    assert bad.returncode == 1 and "removed from the end" in bad.stderr


def test_export_and_show(client, settings) -> None:
    demo(client)
    out = run_cli("audit", "export", "--format", "jsonl", "--index", str(settings.index_dir))
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 31 and rows[1]["type"] == "ingest" and rows[1]["prev_hash"] == rows[0]["hash"]
    shown = run_cli("audit", "show", "a2", "--index", str(settings.index_dir))
    assert json.loads(shown.stdout)["hash"] == rows[1]["hash"]
