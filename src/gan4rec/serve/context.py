"""What the endpoints of one application share: live model, request logic, keys, metrics, reloader.

:func:`gan4rec.serve.app.create_app` builds one :class:`ServerContext` and stores it in
``app.state.context``; the module-level routers reach it through :func:`server_context`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gan4rec.serve.middleware import Metrics
from gan4rec.serve.reloader import Reloader
from gan4rec.serve.security import ApiKeys
from gan4rec.serve.service import Batcher, Service
from gan4rec.serve.state import ModelSlot

__all__ = ["ServerContext", "server_context"]


@dataclass(frozen=True, eq=False)
class ServerContext:
    """The per-application objects of a server (see the module docstring)."""

    slot: ModelSlot
    metrics: Metrics
    service: Service
    batcher: Batcher
    keys: ApiKeys
    reloader: Reloader
    max_body_bytes: int


def server_context(request: Any) -> ServerContext:
    """The :class:`ServerContext` of the application answering ``request`` (a Starlette request)."""
    context: ServerContext = request.app.state.context
    return context
