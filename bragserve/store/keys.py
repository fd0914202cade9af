"""API keys: created, listed and revoked by an admin; checked on every request.

Keys live in their own SQLite file (``keys.db`` beside ``corpus.db``) so that
``bragserve keys create/revoke`` works while a server owns the corpus: a revocation
takes effect on the server's next request, with no restart. Only a SHA-256 of the
secret is stored. A slow password hash would buy nothing here: the secret is 256
random bits, not something a person chose, so it cannot be guessed from its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from bragserve.errors import InvalidInput, NotFound
from bragserve.store.corpus import now_iso

KEYS_FILE = "keys.db"
ROLES = ("reader", "writer", "reviewer", "auditor", "admin")
PREFIX = "bsk"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    rate_per_minute: int | None  # None: the server's default; 0: unlimited
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """One connection per thread (SQLite objects are not shared across threads)."""

    def __init__(self, index_dir: Path | str) -> None:
        self.path = Path(index_dir) / KEYS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().execute("CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                           "role TEXT NOT NULL, secret_sha256 TEXT NOT NULL, rate_per_minute INTEGER, "
                           "created_at TEXT NOT NULL, revoked_at TEXT)")

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # autocommit: one statement each
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a created or revoked key survives a crash
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    @staticmethod
    def _row(row: sqlite3.Row) -> ApiKey:
        return ApiKey(row["id"], row["name"], row["role"], row["rate_per_minute"], row["created_at"],
                      row["revoked_at"])

    def create(self, *, role: str, name: str, rate_per_minute: int | None = None) -> tuple[ApiKey, str]:
        """A new key; the returned token is the only time its secret exists outside the caller."""
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; one of {', '.join(ROLES)}", code="invalid_role")
        if not name.strip():
            raise InvalidInput("a key needs a name (who or what uses it)", code="invalid_name")
        if rate_per_minute is not None and rate_per_minute < 0:
            raise InvalidInput("rate_per_minute must be >= 0 (0: unlimited)", code="invalid_rate")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        key = ApiKey(key_id, name.strip(), role, rate_per_minute, now_iso(), None)
        self._db().execute("INSERT INTO keys (id, name, role, secret_sha256, rate_per_minute, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", [key.id, key.name, role, _digest(secret), rate_per_minute,
                                                     key.created_at])
        return key, f"{PREFIX}_{key_id}_{secret}"

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        sql = "SELECT * FROM keys" + ("" if include_revoked else " WHERE revoked_at IS NULL") + " ORDER BY created_at"
        return [self._row(r) for r in self._db().execute(sql)]

    def get(self, key_id: str) -> ApiKey:
        row = self._db().execute("SELECT * FROM keys WHERE id = ?", [key_id]).fetchone()
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return self._row(row)

    def revoke(self, key_id: str) -> ApiKey:
        key = self.get(key_id)
        if key.active:
            self._db().execute("UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                               [now_iso(), key_id])
        return self.get(key_id)

    def any_active(self) -> bool:
        return self._db().execute("SELECT 1 FROM keys WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key this token belongs to, or None. Constant-time on the secret."""
        prefix, _, rest = token.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not key_id or not secret:
            return None
        row = self._db().execute("SELECT * FROM keys WHERE id = ?", [key_id]).fetchone()
        if row is None or not hmac.compare_digest(row["secret_sha256"], _digest(secret)):
            return None
        key = self._row(row)
        return key if key.active else None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

