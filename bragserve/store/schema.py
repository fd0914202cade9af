"""Schema migrations for corpus.db, applied once each, in order, inside a transaction."""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("""
        CREATE TABLE documents (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            text TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('ingested', 'writeback')),
            status TEXT NOT NULL CHECK (status IN ('active', 'quarantined', 'revoked', 'deleted')),
            trust REAL NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            content_hash TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX documents_source_status ON documents (source, status, seq)")
    db.execute("CREATE INDEX documents_status ON documents (status, seq)")
    db.execute("""
        CREATE TABLE chunks (
            vid INTEGER PRIMARY KEY AUTOINCREMENT,
            doc_id TEXT NOT NULL REFERENCES documents (id),
            doc_version INTEGER NOT NULL,
            ordinal INTEGER NOT NULL,
            text TEXT NOT NULL,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            source TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('active', 'quarantined', 'revoked', 'deleted')),
            trust REAL NOT NULL,
            embedding BLOB NOT NULL,
            created_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX chunks_doc ON chunks (doc_id, doc_version)")
    db.execute("CREATE INDEX chunks_status ON chunks (status, vid)")


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("0001_documents_chunks", _v1),
]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations; returns the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row["name"] for row in db.query("SELECT name FROM _migrations")}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with db.atomic():
            fn(db)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))", [name])
        applied.append(name)
    return applied
