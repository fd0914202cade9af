"""The corpus in SQLite: documents, chunks (with their embeddings), status, metadata.

SQLite is the source of truth: a write is acknowledged only after its transaction
commits (WAL, synchronous=FULL), and chunk embeddings are stored here so the FAISS
index can always be rebuilt or repaired without re-encoding. One connection writes
(behind a lock); every reading thread has its own connection and sees a committed
snapshot.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from bragserve.retrieval.features import ChunkFeatures
from bragserve.store.schema import migrate

STATUSES = ("active", "quarantined", "revoked", "deleted")
SOURCES = ("ingested", "writeback")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause from (sql with one ?, value) pairs, skipping those whose value is None."""
    used = [(sql, value) for sql, value in conditions if value is not None]
    return " AND ".join(sql for sql, _ in used) or "1", [value for _, value in used]


def chunk_id(vid: int) -> str:
    """Public id of a chunk: stable, never reused (vids come from AUTOINCREMENT)."""
    return f"c{vid}"


def parse_chunk_id(text: str) -> int | None:
    if len(text) > 1 and text[0] == "c" and text[1:].isdigit():
        return int(text[1:])
    return None


@dataclass(frozen=True)
class NewChunk:
    ordinal: int
    text: str
    start: int
    end: int
    embedding: np.ndarray
    features: ChunkFeatures | None = None


@dataclass(frozen=True)
class MaskFeatures:
    """A chunk's RAGMask windows as stored at ingest."""

    total: np.ndarray
    tokens: int
    window_sums: np.ndarray
    windows: list[tuple[int, int, int, int]]
    window_size: int
    window_stride: int


@dataclass(frozen=True)
class DocumentRow:
    id: str
    text: str
    source: str
    status: str
    trust: float
    metadata: dict[str, Any]
    content_hash: str
    version: int
    created_at: str
    updated_at: str
    seq: int

    @classmethod
    def from_row(cls, row: dict) -> "DocumentRow":
        return cls(id=row["id"], text=row["text"], source=row["source"], status=row["status"],
                   trust=row["trust"], metadata=json.loads(row["metadata"]), content_hash=row["content_hash"],
                   version=row["version"], created_at=row["created_at"], updated_at=row["updated_at"],
                   seq=row["seq"])


@dataclass(frozen=True)
class ChunkRow:
    vid: int
    doc_id: str
    ordinal: int
    text: str
    start: int
    end: int
    source: str
    status: str
    trust: float

    @property
    def id(self) -> str:
        return chunk_id(self.vid)


_CHUNK_COLUMNS = 'vid, doc_id, ordinal, text, start, "end", source, status, trust'


def _open(path: Path, readonly: bool) -> sqlite_utils.Database:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    if not readonly:
        # FULL: an acknowledged write survives power loss, not only a killed process.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    return sqlite_utils.Database(conn)


class Corpus:
    """Documents and chunks. Callers serialise writes through ``write()``."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise FileNotFoundError(f"no corpus at {self.path}")
        self._writer = _open(self.path, readonly)
        if not readonly:
            self._writer.enable_wal()
            migrate(self._writer)
        self._write_lock = threading.RLock()
        self._local = threading.local()

    # -- connections -------------------------------------------------------------------------

    def reader(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = _open(self.path, readonly=True)
            self._local.db = db
        return db

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One transaction on the single writer connection; commits on success, rolls back on error."""
        if self.readonly:
            raise PermissionError("corpus opened read-only")
        with self._write_lock, self._writer.atomic():
            yield self._writer

    def close(self) -> None:
        self._writer.close()

    # -- meta ----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = list(self.reader().query("SELECT value FROM meta WHERE key = ?", [key]))
        return rows[0]["value"] if rows else None

    def set_meta(self, db: sqlite_utils.Database, key: str, value: str) -> None:
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                   [key, value])

    # -- writes (inside write()) ---------------------------------------------------------------

    def insert_version(self, db: sqlite_utils.Database, *, doc_id: str, text: str, source: str, trust: float,
                       metadata: dict, content_hash: str, chunks: list[NewChunk],
                       status: str = "active") -> tuple[int, list[int], list[int]]:
        """Store a new version of a document; returns (version, new vids, superseded vids)."""
        ts = now_iso()
        existing = self._get(db, doc_id)
        superseded = [r["vid"] for r in db.query(
            "SELECT vid FROM chunks WHERE doc_id = ? AND status != 'deleted'", [doc_id])]
        if superseded:
            db.execute("UPDATE chunks SET status = 'deleted' WHERE doc_id = ? AND status != 'deleted'", [doc_id])
        meta_json = json.dumps(metadata, sort_keys=True)
        if existing is None:
            version = 1
            db.execute(
                "INSERT INTO documents (id, text, source, status, trust, metadata, content_hash, version, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                [doc_id, text, source, status, trust, meta_json, content_hash, ts, ts])
        else:
            version = existing.version + 1
            db.execute(
                "UPDATE documents SET text = ?, source = ?, status = ?, trust = ?, metadata = ?, content_hash = ?, "
                "version = ?, updated_at = ? WHERE id = ?",
                [text, source, status, trust, meta_json, content_hash, version, ts, doc_id])
        vids = []
        for chunk in chunks:
            cur = db.execute(
                'INSERT INTO chunks (doc_id, doc_version, ordinal, text, start, "end", source, status, trust, '
                "embedding, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [doc_id, version, chunk.ordinal, chunk.text, chunk.start, chunk.end, source, status, trust,
                 np.asarray(chunk.embedding, dtype=np.float32).tobytes(), ts])
            vids.append(int(cur.lastrowid))
            if chunk.features is not None:
                self._insert_features(db, vids[-1], chunk.features)
        return version, vids, superseded

    @staticmethod
    def _insert_features(db: sqlite_utils.Database, vid: int, f: ChunkFeatures) -> None:
        frags = None if f.fragments is None else np.asarray(f.fragments, dtype=np.float16).tobytes()
        db.execute("INSERT INTO chunk_features (vid, fragments, n_fragments, mask_total, mask_tokens, window_sums, "
                   "windows, window_size, window_stride, disfluency) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [vid, frags, 0 if f.fragments is None else len(f.fragments),
                    np.asarray(f.mask_total, dtype=np.float32).tobytes(), f.mask_tokens,
                    np.asarray(f.window_sums, dtype=np.float16).tobytes(), json.dumps(f.windows),
                    f.window_size, f.window_stride, None if f.disfluency is None else float(f.disfluency[0])])

    def update_attributes(self, db: sqlite_utils.Database, doc_id: str, *, trust: float, metadata: dict) -> None:
        db.execute("UPDATE documents SET trust = ?, metadata = ?, updated_at = ? WHERE id = ?",
                   [trust, json.dumps(metadata, sort_keys=True), now_iso(), doc_id])
        db.execute("UPDATE chunks SET trust = ? WHERE doc_id = ? AND status != 'deleted'", [trust, doc_id])

    def set_status(self, db: sqlite_utils.Database, doc_id: str, status: str) -> list[int]:
        """Change a document's status and its current chunks'; returns their vids."""
        doc = self._get(db, doc_id)
        if doc is None:
            raise KeyError(doc_id)
        db.execute("UPDATE documents SET status = ?, updated_at = ? WHERE id = ?", [status, now_iso(), doc_id])
        db.execute("UPDATE chunks SET status = ? WHERE doc_id = ? AND doc_version = ?", [status, doc_id, doc.version])
        return [r["vid"] for r in db.query(
            "SELECT vid FROM chunks WHERE doc_id = ? AND doc_version = ?", [doc_id, doc.version])]

    # -- reads -----------------------------------------------------------------------------------

    def _get(self, db: sqlite_utils.Database, doc_id: str) -> DocumentRow | None:
        rows = list(db.query("SELECT * FROM documents WHERE id = ?", [doc_id]))
        return DocumentRow.from_row(rows[0]) if rows else None

    def get_document(self, doc_id: str, *, db: sqlite_utils.Database | None = None) -> DocumentRow | None:
        return self._get(db or self.reader(), doc_id)

    def document_chunks(self, doc_id: str) -> list[ChunkRow]:
        rows = self.reader().query(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE doc_id = ? AND doc_version = "
            "(SELECT version FROM documents WHERE id = ?) ORDER BY ordinal", [doc_id, doc_id])
        return [ChunkRow(**r) for r in rows]

    def list_documents(self, *, source: str | None, status: str | None, limit: int,
                       after_seq: int) -> list[DocumentRow]:
        clause, params = where(("seq > ?", after_seq), ("source = ?", source), ("status = ?", status))
        sql = f"SELECT * FROM documents WHERE {clause} ORDER BY seq LIMIT ?"
        return [DocumentRow.from_row(r) for r in self.reader().query(sql, [*params, limit])]

    def chunks_by_vids(self, vids: list[int], *, db: sqlite_utils.Database | None = None) -> dict[int, ChunkRow]:
        if not vids:
            return {}
        marks = ",".join("?" * len(vids))
        rows = (db or self.reader()).query(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE vid IN ({marks})",
                                           list(vids))
        return {r["vid"]: ChunkRow(**r) for r in rows}

    def document_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.reader().query("SELECT source, status, count(*) AS n FROM documents GROUP BY source, status"):
            out.setdefault(r["source"], {})[r["status"]] = r["n"]
        return out

    def active_vids(self, db: sqlite_utils.Database | None = None) -> np.ndarray:
        rows = (db or self.reader()).execute("SELECT vid FROM chunks WHERE status = 'active' ORDER BY vid").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def active_fragments(self, n: int, dim: int, db: sqlite_utils.Database | None = None,
                         ) -> tuple[np.ndarray, np.ndarray]:
        """(vids, fragments (len, n, dim) float16) of active chunks that stored exactly n fragments."""
        rows = (db or self.reader()).execute(
            "SELECT c.vid, f.fragments FROM chunks c JOIN chunk_features f ON f.vid = c.vid "
            "WHERE c.status = 'active' AND f.n_fragments = ? ORDER BY c.vid", [n]).fetchall()
        vids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        frags = np.zeros((len(rows), n, dim), dtype=np.float16)
        for i, (_, blob) in enumerate(rows):
            frags[i] = np.frombuffer(blob, dtype=np.float16).reshape(n, dim)
        return vids, frags

    def fragments(self, vids: list[int], dim: int, db: sqlite_utils.Database | None = None) -> dict[int, np.ndarray]:
        if not vids:
            return {}
        marks = ",".join("?" * len(vids))
        rows = (db or self.reader()).execute(
            f"SELECT vid, fragments, n_fragments FROM chunk_features WHERE vid IN ({marks}) AND fragments IS NOT NULL",
            list(vids)).fetchall()
        return {vid: np.frombuffer(blob, dtype=np.float16).reshape(n, dim) for vid, blob, n in rows}

    def mask_features(self, vids: list[int], dim: int) -> dict[int, MaskFeatures]:
        if not vids:
            return {}
        marks = ",".join("?" * len(vids))
        rows = self.reader().execute(
            "SELECT vid, mask_total, mask_tokens, window_sums, windows, window_size, window_stride "
            f"FROM chunk_features WHERE vid IN ({marks})", list(vids)).fetchall()
        return {vid: MaskFeatures(np.frombuffer(total, dtype=np.float32),  tokens,
                                  np.frombuffer(sums, dtype=np.float16).astype(np.float32).reshape(-1, dim),
                                  [tuple(w) for w in json.loads(windows)], size, stride)  # type: ignore[misc]
                for vid, total, tokens, sums, windows, size, stride in rows}

    def disfluency(self, vids: list[int]) -> dict[int, float | None]:
        """The stored worst-window score of each chunk (None: not scored: ingested before migration 0004, or under a
        policy that did not run the replaced-token head)."""
        if not vids:
            return {}
        marks = ",".join("?" * len(vids))
        return dict(self.reader().execute(f"SELECT vid, disfluency FROM chunk_features WHERE vid IN ({marks})",
                                          list(vids)).fetchall())

    def embeddings(self, vids: np.ndarray, dim: int, db: sqlite_utils.Database | None = None,
                   batch: int = 2000) -> np.ndarray:
        """Stored vectors of the given chunks, in the order given."""
        db = db or self.reader()
        out = np.zeros((len(vids), dim), dtype=np.float32)
        position = {int(v): i for i, v in enumerate(vids)}
        for start in range(0, len(vids), batch):
            part = [int(v) for v in vids[start:start + batch]]
            marks = ",".join("?" * len(part))
            for vid, blob in db.execute(f"SELECT vid, embedding FROM chunks WHERE vid IN ({marks})", part):
                out[position[vid]] = np.frombuffer(blob, dtype=np.float32)
        return out
