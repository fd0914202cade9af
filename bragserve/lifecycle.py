"""Status changes with their consequences: delete, quarantine or revoke a document and every write-back
built on it (transitively); restore it and every dependant that was revoked only because of it.

All of it happens in the caller's transaction, one audit record per document changed,
and returns the vector ids to drop from or put back into the index once it commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlite_utils

from bragserve import audit
from bragserve.errors import Conflict, NotFound
from bragserve.store import lineage
from bragserve.store import reviews as review_rows
from bragserve.store.corpus import Corpus

REMOVING = ("deleted", "quarantined", "revoked")


@dataclass
class Change:
    removed_vids: list[int] = field(default_factory=list)
    restored_vids: list[int] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)


def set_status(db: sqlite_utils.Database, corpus: Corpus, doc_id: str, status: str, *, actor: str,
               reason: str, payload: dict | None = None) -> Change:
    """Take a document out of retrieval (deleted / quarantined / revoked) and revoke its dependants."""
    if status not in REMOVING:
        raise ValueError(status)
    doc = corpus.get_document(doc_id, db=db)
    if doc is None or doc.status == "deleted":
        raise NotFound(f"no document with id {doc_id!r}")
    if doc.status == status:
        raise Conflict(f"document {doc_id!r} is already {status}")
    change = Change()
    change.removed_vids += corpus.set_status(db, doc_id, status)
    if status == "revoked":
        lineage.add_cause(db, doc_id, doc_id)
    event = {"deleted": "delete", "quarantined": "quarantine", "revoked": "revoke"}[status]
    audit.append(db, type=event, actor=actor, subjects=[doc_id],
                 payload={"reason": reason, "previous_status": doc.status, **(payload or {})})
    revoke_dependants(db, corpus, doc_id, actor=actor, change=change)
    return change


def revoke_dependants(db: sqlite_utils.Database, corpus: Corpus, source: str, *, actor: str,
                      change: Change) -> None:
    """Breadth-first over lineage: every write-back citing a removed source is revoked, and so on."""
    queue = [source]
    while queue:
        parent = queue.pop(0)
        for child in lineage.children(db, parent):
            lineage.add_cause(db, child, parent)
            doc = corpus.get_document(child, db=db)
            if doc is None or doc.status != "active":
                continue  # already out; its own dependants went with it
            change.removed_vids += corpus.set_status(db, child, "revoked")
            change.revoked.append(child)
            audit.append(db, type="revoke", actor=actor, subjects=[child, parent],
                         payload={"reason": "source_removed", "cause": parent, "root": source})
            queue.append(child)


def quarantine_on_ingest(db: sqlite_utils.Database, doc_id: str, hits: list[dict], *, actor: str) -> str:
    """A document the ingest screen flagged (already stored as quarantined): audit it and open a review
    that a person can approve (which restores it); returns the review id."""
    reason = ",".join(sorted({h["detector"] for h in hits}))
    review_id = review_rows.add(db, kind="quarantine", reason=reason, subject=doc_id,
                                candidate={"document_id": doc_id, "screening": hits})
    audit.append(db, type="quarantine", actor=actor, subjects=[doc_id, review_id],
                 payload={"reason": "screening", "detectors": reason, "screening": hits, "review_id": review_id})
    return review_id


def restore(db: sqlite_utils.Database, corpus: Corpus, doc_id: str, *, actor: str, note: str | None = None) -> Change:
    """Bring a document back, and its dependants whose every cause is now gone.

    A pending quarantine review of the document is approved by the same act, whichever
    route (the review queue or POST /documents/{id}/restore) the person took."""
    doc = corpus.get_document(doc_id, db=db)
    if doc is None:
        raise NotFound(f"no document with id {doc_id!r}")
    if doc.status == "active":
        raise Conflict(f"document {doc_id!r} is already active")
    change = Change()
    change.restored_vids += corpus.set_status(db, doc_id, "active")
    lineage.clear_causes(db, doc_id)
    audit.append(db, type="restore", actor=actor, subjects=[doc_id],
                 payload={"reason": "requested", "previous_status": doc.status})
    for review_id in review_rows.pending_for(db, "quarantine", doc_id):
        review_rows.decide(db, review_id, "approved", actor=actor, note=note, result_doc=doc_id)
        audit.append(db, type="review_approved", actor=actor, subjects=[review_id, doc_id],
                     payload={"note": note, "document_id": doc_id, "reason": "quarantine"})
    queue = [doc_id]
    while queue:
        cause = queue.pop(0)
        for dependant in lineage.dependants_of_cause(db, cause):
            lineage.remove_cause(db, dependant, cause)
            if lineage.causes(db, dependant):
                continue  # still missing another source
            dep = corpus.get_document(dependant, db=db)
            if dep is None or dep.status != "revoked":
                continue
            change.restored_vids += corpus.set_status(db, dependant, "active")
            change.restored.append(dependant)
            audit.append(db, type="restore", actor=actor, subjects=[dependant, cause],
                         payload={"reason": "source_restored", "cause": cause, "root": doc_id})
            queue.append(dependant)
    return change
