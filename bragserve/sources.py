"""Documents from files, for ``bragserve ingest``: JSONL, a POST /documents body, or a folder of text.

Kept apart from the CLI so the formats (and their one-line errors, with the line
that is wrong) can be read and reused without click.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from bragserve.errors import InvalidInput


def _read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise InvalidInput(f"{path}:{n}: each line needs a string 'text'")
            yield row


def _read_json(path: Path) -> Iterator[dict]:
    """A POST /documents body: {"documents": [{"id"?, "text", ...}]}."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not valid JSON ({exc.msg})") from None
    docs = body.get("documents") if isinstance(body, dict) else None
    if not isinstance(docs, list) or not all(isinstance(d, dict) and isinstance(d.get("text"), str) for d in docs):
        raise InvalidInput(f"{path}: expected {{\"documents\": [{{\"text\": ...}}, ...]}}")
    yield from docs


def _read_folder(path: Path) -> Iterator[dict]:
    for file in sorted(p for p in path.rglob("*") if p.suffix.lower() in (".txt", ".md") and p.is_file()):
        rel = file.relative_to(path).as_posix()
        doc_id = re.sub(r"[^A-Za-z0-9._:-]", "-", rel.replace("/", ":"))[:128]
        yield {"id": doc_id, "text": file.read_text(encoding="utf-8"), "metadata": {"path": rel}}


def read_documents(path: Path) -> list[dict]:
    """Rows with ``text`` (and ``id``, ``metadata``, ``trust`` where given); a folder yields one per .txt/.md file."""
    if path.is_dir():
        rows = list(_read_folder(path))
    else:
        rows = list(_read_json(path) if path.suffix.lower() == ".json" else _read_jsonl(path))
    if not rows:
        raise InvalidInput(f"no documents found in {path}")
    return rows
