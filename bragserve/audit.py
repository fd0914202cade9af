"""The append-only, hash-chained audit log: every decision and every corpus change, provably unaltered.

Each record's hash is SHA-256 over the previous record's hash and the canonical JSON
of the record itself, so altering any byte, removing a record or reordering records
breaks the chain at that point. Records are written in the same SQLite transaction
as the change they describe: there is no change without its record, and no record
without its change. The head (last seq and hash) is kept beside the log, so removing
the newest records is detected too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from bragserve.store.corpus import now_iso, where

GENESIS = "0" * 64
EVENT_TYPES = ("ingest", "update", "delete", "quarantine", "revoke", "restore", "writeback_accepted",
               "writeback_rejected", "writeback_queued", "review_approved", "review_rejected", "feedback",
               "policy_loaded")
_HEAD_KEY = "audit_head"


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    actor: str
    type: str
    subjects: list[str]
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    @property
    def id(self) -> str:
        return f"a{self.seq}"

    def body(self) -> dict[str, Any]:
        """What the hash covers: everything but the hash itself."""
        return {"seq": self.seq, "time": self.time, "actor": self.actor, "type": self.type,
                "subjects": self.subjects, "payload": self.payload, "prev_hash": self.prev_hash}

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.body(), "hash": self.hash}


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def parse_audit_id(text: str) -> int | None:
    if len(text) > 1 and text[0] == "a" and text[1:].isdigit():
        return int(text[1:])
    return None


def _row(row: dict) -> AuditRecord:
    return AuditRecord(seq=row["seq"], time=row["time"], actor=row["actor"], type=row["type"],
                       subjects=json.loads(row["subjects"]), payload=json.loads(row["payload"]),
                       prev_hash=row["prev_hash"], hash=row["hash"])


def append(db: sqlite_utils.Database, *, type: str, actor: str, subjects: list[str],
           payload: dict[str, Any]) -> AuditRecord:
    """Append one record inside the caller's transaction (the writer lane serialises appends)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown audit event type {type!r}")
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    prev_hash = last[1] if last else GENESIS
    seq = (last[0] + 1) if last else 1
    # Round-trip the payload through canonical JSON so what is hashed is exactly what is stored.
    payload = json.loads(canonical_json(payload))
    record = AuditRecord(seq=seq, time=now_iso(), actor=actor, type=type, subjects=list(subjects),
                         payload=payload, prev_hash=prev_hash, hash="")
    digest = record_hash(prev_hash, record.body())
    db.execute("INSERT INTO audit (seq, time, actor, type, subjects, payload, prev_hash, hash) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               [seq, record.time, actor, type, canonical_json(record.subjects), canonical_json(payload),
                prev_hash, digest])
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
               [_HEAD_KEY, canonical_json({"seq": seq, "hash": digest})])
    return AuditRecord(**{**record.__dict__, "hash": digest})


@dataclass(frozen=True)
class Verification:
    ok: bool
    count: int
    first_broken: str | None = None
    problem: str | None = None


def verify(db: sqlite_utils.Database) -> Verification:
    """Walk the chain from the first record; report the first record that does not hold."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    for raw in db.execute("SELECT seq, time, actor, type, subjects, payload, prev_hash, hash FROM audit "
                          "ORDER BY seq"):
        seq, time, actor, type_, subjects, payload, stored_prev, stored_hash = raw
        rid = f"a{seq}"
        if seq != expected_seq:
            return Verification(False, count, f"a{expected_seq}", f"record a{expected_seq} is missing "
                                                                   f"(next present is {rid})")
        if stored_prev != prev_hash:
            return Verification(False, count, rid, f"{rid}: prev_hash does not match the record before it")
        try:
            body = {"seq": seq, "time": time, "actor": actor, "type": type_, "subjects": json.loads(subjects),
                    "payload": json.loads(payload), "prev_hash": stored_prev}
            canonical = canonical_json(body["subjects"]) == subjects and canonical_json(body["payload"]) == payload
        except (ValueError, TypeError):
            return Verification(False, count, rid, f"{rid}: stored JSON is not readable")
        if not canonical or record_hash(prev_hash, body) != stored_hash:
            return Verification(False, count, rid, f"{rid}: contents do not match its hash")
        prev_hash, expected_seq, count = stored_hash, expected_seq + 1, count + 1
    head = db.execute("SELECT value FROM meta WHERE key = ?", [_HEAD_KEY]).fetchone()
    if head:
        recorded = json.loads(head[0])
        if recorded["seq"] != count or recorded["hash"] != prev_hash:
            return Verification(False, count, f"a{recorded['seq']}",
                                f"the log ends at a{count} but its head says a{recorded['seq']}: "
                                "records were removed from the end")
    elif count:
        return Verification(False, count, "a1", "the log has records but no head")
    return Verification(True, count)


def query(db: sqlite_utils.Database, *, type: str | None = None, subject: str | None = None,
          since: str | None = None, until: str | None = None, after_seq: int = 0, limit: int = 100) -> list[AuditRecord]:
    clause, params = where(("seq > ?", after_seq), ("type = ?", type),
                           ("EXISTS (SELECT 1 FROM json_each(audit.subjects) WHERE value = ?)", subject),
                           ("time >= ?", since), ("time < ?", until))
    sql = f"SELECT * FROM audit WHERE {clause} ORDER BY seq LIMIT ?"
    return [_row(r) for r in db.query(sql, [*params, limit])]


def get(db: sqlite_utils.Database, seq: int) -> AuditRecord | None:
    rows = list(db.query("SELECT * FROM audit WHERE seq = ?", [seq]))
    return _row(rows[0]) if rows else None


def export(db: sqlite_utils.Database) -> Iterator[dict[str, Any]]:
    for row in db.query("SELECT * FROM audit ORDER BY seq"):
        yield _row(row).as_dict()
