"""The audit log: read, filter, page, verify."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bragserve import audit
from bragserve.api.auth import Auditor
from bragserve.api.deps import ServiceDep
from bragserve.api.schemas import AuditPublic, AuditRecordPublic, AuditVerifyPublic
from bragserve.errors import InvalidInput, NotFound
from bragserve.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPublic, summary="List audit records")
def list_audit(_: Auditor, service: ServiceDep, type: str | None = None, subject: str | None = None,
               since: str | None = None, until: str | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None) -> AuditPublic:
    if type is not None and type not in audit.EVENT_TYPES:
        raise InvalidInput(f"unknown audit type {type!r}; one of {', '.join(audit.EVENT_TYPES)}", code="invalid_type")
    records = audit.query(service.corpus.reader(), type=type, subject=subject, since=since, until=until,
                          after_seq=decode_cursor(cursor) if cursor else 0, limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    return AuditPublic(data=[AuditRecordPublic(**r.as_dict()) for r in records], count=len(records),
                       next_cursor=encode_cursor(records[-1].seq) if more and records else None)


@router.get("/verify", response_model=AuditVerifyPublic, summary="Verify the hash chain")
def verify_audit(_: Auditor, service: ServiceDep) -> AuditVerifyPublic:
    return AuditVerifyPublic(**audit.verify(service.corpus.reader()).__dict__)


@router.get("/{audit_id}", response_model=AuditRecordPublic, summary="One audit record")
def read_audit(_: Auditor, audit_id: str, service: ServiceDep) -> AuditRecordPublic:
    seq = audit.parse_audit_id(audit_id)
    record = audit.get(service.corpus.reader(), seq) if seq is not None else None
    if record is None:
        raise NotFound(f"no audit record {audit_id!r}")
    return AuditRecordPublic(**record.as_dict())
