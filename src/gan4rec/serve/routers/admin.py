"""``POST /admin/reload``: load and verify the artifact's current version, then swap it in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gan4rec.serve.context import server_context
from gan4rec.serve.errors import HTTPError, error_responses
from gan4rec.serve.schemas import ReloadBody

__all__ = ["router"]

#: The admin endpoints; include it with the admin-key dependency.
router = APIRouter(tags=["admin"])


@router.post("/admin/reload", response_model=ReloadBody, responses=error_responses(401, 403, 409))
async def admin_reload(request: Request) -> Any:
    """Load and verify the artifact's current version, then swap it in (409 if it is refused)."""
    ctx = server_context(request)
    try:
        old, new = await ctx.reloader.reload()
    except Exception as e:  # noqa: BLE001 -- whatever made the artifact unloadable, it is refused
        raise HTTPError(409, f"reload refused, still serving version {ctx.slot.current.version}: {e}") \
            from None
    ctx.reloader.announce(new)
    return JSONResponse({"status": "reloaded", "model_version": new.version,
                         "previous_version": old.version, "workers": "all" if ctx.reloader.shared else "this"})
