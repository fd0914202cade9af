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


def _v2(db: sqlite_utils.Database) -> None:
    """The write-back loop: audit log, write-back records, lineage, revocation causes, reviews, feedback."""
    db.execute("""
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            actor TEXT NOT NULL,
            type TEXT NOT NULL,
            subjects TEXT NOT NULL,
            payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE
        )""")
    db.execute("CREATE INDEX audit_type ON audit (type, seq)")
    db.execute("CREATE INDEX audit_time ON audit (time)")
    # Append-only: the database itself refuses to change or remove a record.
    db.execute("CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN "
               "SELECT RAISE(ABORT, 'audit records are append-only'); END")
    db.execute("CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN "
               "SELECT RAISE(ABORT, 'audit records are append-only'); END")
    db.execute("""
        CREATE TABLE writebacks (
            doc_id TEXT PRIMARY KEY REFERENCES documents (id),
            query TEXT NOT NULL,
            answer TEXT NOT NULL,
            generator TEXT NOT NULL,
            citations TEXT NOT NULL,
            scores TEXT NOT NULL,
            policy_hash TEXT NOT NULL,
            depth INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE lineage (
            child_doc TEXT NOT NULL REFERENCES documents (id),
            parent_vid INTEGER NOT NULL REFERENCES chunks (vid),
            parent_doc TEXT NOT NULL REFERENCES documents (id),
            PRIMARY KEY (child_doc, parent_vid)
        )""")
    db.execute("CREATE INDEX lineage_parent_doc ON lineage (parent_doc)")
    db.execute("""
        CREATE TABLE revocation_causes (
            doc_id TEXT NOT NULL REFERENCES documents (id),
            cause_doc TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (doc_id, cause_doc)
        )""")
    db.execute("CREATE INDEX revocation_causes_cause ON revocation_causes (cause_doc)")
    db.execute("""
        CREATE TABLE reviews (
            id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL UNIQUE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            subject TEXT,
            candidate TEXT NOT NULL,
            created_at TEXT NOT NULL,
            decided_at TEXT,
            decided_by TEXT,
            note TEXT,
            result_doc TEXT
        )""")
    db.execute("CREATE INDEX reviews_status ON reviews (status, seq)")
    db.execute("""
        CREATE TABLE queries (
            id TEXT PRIMARY KEY,
            query TEXT NOT NULL,
            answer TEXT,
            writeback_doc TEXT,
            decision TEXT,
            created_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            document_id TEXT,
            query_id TEXT,
            signal TEXT NOT NULL CHECK (signal IN ('up', 'down')),
            note TEXT,
            actor TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""")
    db.execute("CREATE TABLE exposure (vid INTEGER PRIMARY KEY, retrieved INTEGER NOT NULL DEFAULT 0)")


def _v3(db: sqlite_utils.Database) -> None:
    """Defence features per chunk (RAGPart fragments, RAGMask window sums) and why a document is quarantined."""
    db.execute("""
        CREATE TABLE chunk_features (
            vid INTEGER PRIMARY KEY REFERENCES chunks (vid),
            fragments BLOB,
            n_fragments INTEGER NOT NULL DEFAULT 0,
            mask_total BLOB NOT NULL,
            mask_tokens INTEGER NOT NULL,
            window_sums BLOB NOT NULL,
            windows TEXT NOT NULL,
            window_size INTEGER NOT NULL,
            window_stride INTEGER NOT NULL
        )""")


def _v4(db: sqlite_utils.Database) -> None:
    """Each chunk's worst window by the replaced-token head, for the disfluent-match defence (NULL: not scored,
    e.g. ingested before this column or under a policy that did not run the head)."""
    db.execute("ALTER TABLE chunk_features ADD COLUMN disfluency REAL")


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("0001_documents_chunks", _v1),
    ("0002_writeback_loop", _v2),
    ("0003_defence_features", _v3),
    ("0004_chunk_disfluency", _v4),
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
