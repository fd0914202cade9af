"""Rows of the review queue: write-backs waiting for a person, and quarantined documents.

One place writes them, so both kinds get the same ids, ordering and decision fields.
"""

from __future__ import annotations

import json
import uuid

import sqlite_utils

from bragserve.store.corpus import now_iso


def add(db: sqlite_utils.Database, *, kind: str, reason: str, subject: str | None, candidate: dict) -> str:
    """A pending review; returns its id (ordered by ``seq`` for paging)."""
    review_id = "r-" + uuid.uuid4().hex[:16]
    seq = db.execute("SELECT coalesce(max(seq), 0) FROM reviews").fetchone()[0] + 1
    db.execute("INSERT INTO reviews (id, seq, status, kind, reason, subject, candidate, created_at) "
               "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?)",
               [review_id, seq, kind, reason, subject, json.dumps(candidate), now_iso()])
    return review_id


def decide(db: sqlite_utils.Database, review_id: str, status: str, *, actor: str, note: str | None,
           result_doc: str | None) -> None:
    db.execute("UPDATE reviews SET status = ?, decided_at = ?, decided_by = ?, note = ?, result_doc = ? "
               "WHERE id = ?", [status, now_iso(), actor, note, result_doc, review_id])


def pending_for(db: sqlite_utils.Database, kind: str, subject: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT id FROM reviews WHERE kind = ? AND subject = ? AND status = 'pending'",
                                     [kind, subject]).fetchall()]


def released(db: sqlite_utils.Database, doc_ids: list[str]) -> set[str]:
    """The documents among ``doc_ids`` a person released from an ingest-screen quarantine (an approved review)."""
    if not doc_ids:
        return set()
    marks = ",".join("?" * len(doc_ids))
    return {r[0] for r in db.execute(f"SELECT subject FROM reviews WHERE kind = 'quarantine' AND status = 'approved' "
                                     f"AND subject IN ({marks})", list(doc_ids)).fetchall()}
