"""Lineage edges (write-back → the chunks it cites) and revocation causes, as SQL over corpus.db.

A write-back stays revoked while any cause is recorded against it; restoring a source
removes that source as a cause, so a write-back returns only when nothing it depends
on is still missing.
"""

from __future__ import annotations

import sqlite_utils

from bragserve.store.corpus import now_iso


def add_edges(db: sqlite_utils.Database, child_doc: str, parent_vids: list[int]) -> None:
    for vid in parent_vids:
        db.execute("INSERT OR IGNORE INTO lineage (child_doc, parent_vid, parent_doc) "
                   "SELECT ?, vid, doc_id FROM chunks WHERE vid = ?", [child_doc, vid])


def children(db: sqlite_utils.Database, doc_id: str) -> list[str]:
    """Write-backs that cite any chunk (any version) of doc_id."""
    rows = db.execute("SELECT DISTINCT child_doc FROM lineage WHERE parent_doc = ? ORDER BY child_doc", [doc_id])
    return [r[0] for r in rows]


def parents(db: sqlite_utils.Database, doc_id: str) -> list[tuple[str, int]]:
    rows = db.execute("SELECT parent_doc, parent_vid FROM lineage WHERE child_doc = ? ORDER BY parent_vid", [doc_id])
    return [(r[0], r[1]) for r in rows]


def add_cause(db: sqlite_utils.Database, doc_id: str, cause: str) -> None:
    db.execute("INSERT OR IGNORE INTO revocation_causes (doc_id, cause_doc, created_at) VALUES (?, ?, ?)",
               [doc_id, cause, now_iso()])


def remove_cause(db: sqlite_utils.Database, doc_id: str, cause: str) -> None:
    db.execute("DELETE FROM revocation_causes WHERE doc_id = ? AND cause_doc = ?", [doc_id, cause])


def clear_causes(db: sqlite_utils.Database, doc_id: str) -> None:
    db.execute("DELETE FROM revocation_causes WHERE doc_id = ?", [doc_id])


def causes(db: sqlite_utils.Database, doc_id: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT cause_doc FROM revocation_causes WHERE doc_id = ? ORDER BY cause_doc",
                                     [doc_id])]


def dependants_of_cause(db: sqlite_utils.Database, cause: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT doc_id FROM revocation_causes WHERE cause_doc = ? ORDER BY doc_id",
                                     [cause])]


def writeback_depths(db: sqlite_utils.Database, doc_ids: list[str]) -> dict[str, int]:
    if not doc_ids:
        return {}
    marks = ",".join("?" * len(doc_ids))
    return {r[0]: r[1] for r in db.execute(f"SELECT doc_id, depth FROM writebacks WHERE doc_id IN ({marks})",
                                           list(doc_ids))}


def describe(db: sqlite_utils.Database, doc_id: str) -> dict:
    """Breadth-first ancestors and descendants of a document, with each one's source, status and depth."""

    def node(other: str, depth: int, via: list[str]) -> dict:
        row = db.execute("SELECT source, status FROM documents WHERE id = ?", [other]).fetchone()
        return {"id": other, "source": row[0] if row else None, "status": row[1] if row else None,
                "depth": depth, "via_chunks": via}

    ancestors, seen, frontier = [], {doc_id}, [(doc_id, 0)]
    while frontier:
        current, depth = frontier.pop(0)
        grouped: dict[str, list[str]] = {}
        for parent_doc, vid in parents(db, current):
            grouped.setdefault(parent_doc, []).append(f"c{vid}")
        for parent_doc, via in grouped.items():
            if parent_doc not in seen:
                seen.add(parent_doc)
                ancestors.append(node(parent_doc, depth + 1, via))
                frontier.append((parent_doc, depth + 1))
    descendants, seen, frontier = [], {doc_id}, [(doc_id, 0)]
    while frontier:
        current, depth = frontier.pop(0)
        for child in children(db, current):
            if child not in seen:
                seen.add(child)
                descendants.append(node(child, depth + 1, []))
                frontier.append((child, depth + 1))
    return {"id": doc_id, "ancestors": ancestors, "descendants": descendants, "revocation_causes": causes(db, doc_id)}
