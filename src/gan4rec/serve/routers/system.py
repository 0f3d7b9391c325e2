"""Service endpoints: ``/healthz``, ``/readyz``, ``/info``, ``/metrics`` and the web page at ``/``."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from gan4rec.serve.context import server_context
from gan4rec.serve.errors import error_responses
from gan4rec.serve.schemas import (
    MAX_BATCH_USERS,
    MAX_EXPLAIN_ITEMS,
    MAX_K,
    MAX_LIST,
    MAX_TOP,
    Health,
    Info,
    Readiness,
)

__all__ = ["FAVICON_URL", "public_router", "router"]

#: Where the site's icon is served (the web page and the API docs link to it).
FAVICON_URL = "/favicon.svg"

#: ``/info`` and ``/metrics``; include it with the API-key dependency.
router = APIRouter(tags=["service"])
#: ``/healthz``, ``/readyz`` and the web page: open to everyone.
public_router = APIRouter(tags=["service"])


@router.get("/info", response_model=Info, responses=error_responses(401))
async def get_info(request: Request) -> Any:
    """The live model and what this server can do with it."""
    ctx = server_context(request)
    live = ctx.slot.current
    order = np.argsort(-live.user_counts, kind="stable")[:20]
    return JSONResponse({
        "model": live.name, "model_version": live.version, "n_users": live.model.n_users,
        "n_items": live.model.n_items, "fold_in": live.fold_in_reason is None,
        "explain_method": live.explain_method, "titles": live.titles is not None,
        "example_users": live.model.user_map_.to_raw(np.sort(order)).tolist(), "auth": bool(ctx.keys),
        "new_items": len(live.new_items), "new_items_reason": live.new_items_reason,
        "limits": {"k": MAX_K, "list": MAX_LIST, "batch_users": MAX_BATCH_USERS,
                   "explain_items": MAX_EXPLAIN_ITEMS, "top": MAX_TOP, "body_bytes": ctx.max_body_bytes},
    })


@router.get("/metrics", responses={
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"},
    **error_responses(401)})
async def get_metrics(request: Request) -> Any:
    """Prometheus metrics: request counts and latency histograms by route, reloads, fallbacks."""
    body, ctype = server_context(request).metrics.render()
    return Response(body, media_type=ctype)


@public_router.get("/healthz", response_model=Health)
async def healthz() -> Any:
    """The process is up and answering."""
    return JSONResponse({"status": "ok"})


@public_router.get("/readyz", response_model=Readiness)
async def readyz(request: Request) -> Any:
    """A verified model is live (a refused reload does not change that).

    Open to everyone. Where the server has API keys, the details (model, version, reloads, the last
    refused reload's error) need an accepted ``X-API-Key`` header; without one the answer is the status.
    """
    ctx = server_context(request)
    if ctx.keys and not ctx.keys.ok(request.headers.get("x-api-key")):
        return JSONResponse({"status": "ready"})
    slot = ctx.slot
    live = slot.current
    return JSONResponse({
        "status": "ready", "model": live.name, "model_version": live.version,
        "loaded_at": datetime.fromtimestamp(live.loaded_at, UTC).isoformat(),
        "n_users": live.model.n_users, "n_items": live.model.n_items, "reloads": slot.reloads,
        "refused_reloads": slot.refused, "last_reload_error": slot.last_error,
        "new_items_error": slot.new_items_error, "pid": os.getpid(),
    })


_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    "X-Content-Type-Options": "nosniff",
}


@functools.cache
def _static(name: str) -> str:
    return resources.files("gan4rec.serve").joinpath(f"static/{name}").read_text(encoding="utf-8")


@public_router.get("/", include_in_schema=False)
async def index() -> Any:
    return HTMLResponse(_static("index.html"), headers=_PAGE_HEADERS)


@public_router.get(FAVICON_URL, include_in_schema=False)
@public_router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Any:
    return Response(_static("favicon.svg"), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})
