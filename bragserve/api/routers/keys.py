"""API keys over REST (admin only): the same operations as ``bragserve keys``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from bragserve.api.auth import Admin
from bragserve.api.schemas import KeyCreate, KeyCreated, KeyPublic, KeysPublic
from bragserve.store.keys import ApiKey, KeyStore

router = APIRouter(prefix="/keys", tags=["keys"])


def _public(key: ApiKey) -> KeyPublic:
    return KeyPublic(**key.__dict__, active=key.active)


def _store(request: Request) -> KeyStore:
    return request.app.state.access.keys


@router.get("", response_model=KeysPublic, summary="List API keys (never their secrets)")
def list_keys(_: Admin, request: Request) -> KeysPublic:
    keys = _store(request).list()
    return KeysPublic(data=[_public(k) for k in keys], count=len(keys))


@router.post("", response_model=KeyCreated, status_code=201, summary="Create an API key; the secret is shown once")
def create_key(_: Admin, body: KeyCreate, request: Request) -> KeyCreated:
    key, token = _store(request).create(role=body.role, name=body.name, rate_per_minute=body.rate_per_minute)
    return KeyCreated(**_public(key).model_dump(), key=token)


@router.delete("/{key_id}", response_model=KeyPublic, summary="Revoke an API key (takes effect at once)")
def revoke_key(_: Admin, key_id: str, request: Request) -> KeyPublic:
    return _public(_store(request).revoke(key_id))
