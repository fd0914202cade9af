"""Opaque cursors for every list endpoint: the last row's sequence number, base64url-encoded JSON.

Opaque so clients cannot build them and the encoding can change; validated so a forged
one is a clear 422, not a 500.
"""

from __future__ import annotations

import base64
import json

from bragserve.errors import InvalidInput


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": seq}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        if not isinstance(value, int) or value < 0:
            raise ValueError
        return value
    except Exception:
        raise InvalidInput("cursor is not one this server issued", code="invalid_cursor") from None
