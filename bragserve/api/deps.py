"""Dependencies shared by routers: the service, available only once the corpus is loaded."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bragserve.errors import NotReady
from bragserve.service import Service


def get_service(request: Request) -> Service:
    service = getattr(request.app.state, "service", None)
    if service is None:
        raise NotReady("the corpus is still loading; retry when /readyz says ready")
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
