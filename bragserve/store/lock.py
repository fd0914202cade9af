"""One writing process per corpus directory, enforced with an flock the OS drops when the process dies.

A second server (or ``bragserve ingest``) on the same directory would keep its own
FAISS index and silently diverge; the lock turns that into a clear error, and a
kill -9 never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bragserve.errors import IndexLocked

LOCK_FILE = ".lock"


class IndexLock:
    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, directory: Path) -> "IndexLock":
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise IndexLocked(f"{directory} is in use by another bragserve process (a running server?); "
                              "stop it or go through its REST API") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return cls(directory, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
