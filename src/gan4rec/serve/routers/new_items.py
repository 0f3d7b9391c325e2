"""``POST /items`` and ``DELETE /items/{item}``: new items (features, no interactions) ranked without retraining.

Writes: include the router with the admin-key dependency (disabled on a server without API keys). Posted
items live in this process's memory (:class:`gan4rec.serve.state.ModelSlot`); with several workers a post
would reach one of them, so it is refused there: give new items in the ``--new-items`` file instead.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import JSONResponse

from gan4rec.errors import DataError
from gan4rec.serve.context import ServerContext, server_context
from gan4rec.serve.errors import HTTPError, error_responses
from gan4rec.serve.new_items import NewItemConflictError, NewItemDef
from gan4rec.serve.schemas import MAX_ID_CHARS, NewItemDeleted, NewItemsAdded, NewItemsRequest

__all__ = ["router"]

#: The new-item endpoints; include it with the admin-key dependency.
router = APIRouter(tags=["items"])

_409 = {409: "The items do not fit the live model (it cannot score new items; an unknown column; an id of "
             "another kind, or taken by the catalog or a new item), the item comes from the new-items file, or "
             "several workers run"}


def _check_one_worker(ctx: ServerContext) -> None:
    if ctx.reloader.shared:
        raise HTTPError(409, "this server runs several workers and a posted item would reach only one of them; "
                             "give new items in the --new-items file instead")


@router.post("/items", response_model=NewItemsAdded, status_code=201,
             responses=error_responses(401, 403, 409, 413, 422, descriptions=_409))
async def post_items(req: Annotated[NewItemsRequest, Body()], request: Request) -> Any:
    """Add new items with their content features: from now on `/recommend` ranks them with the catalog,
    scored from their features (cold-start models only; 409 names the model otherwise). All or none are
    added. They live in the server's memory until deleted or the process ends; a model reload keeps those
    the new model can take. A body that is valid but does not fit the model (an unknown column, an id of
    another kind or already taken) is a 409 naming the item and field; 422 is for invalid bodies."""
    ctx = server_context(request)
    _check_one_worker(ctx)
    defs = [NewItemDef(item.id, dict(item.features), f"items[{n}]") for n, item in enumerate(req.items)]
    try:
        live, ids = await anyio.to_thread.run_sync(ctx.slot.post_items, defs)
    except DataError as e:  # the body is valid, but does not fit the live model: 409, not 422
        raise HTTPError(409, str(e)) from None
    return JSONResponse({"status": "added", "items": ids, "new_items": len(live.new_items),
                         "model_version": live.version}, status_code=201)


@router.delete("/items/{item}", response_model=NewItemDeleted,
               responses=error_responses(401, 403, 404, 409, 422, descriptions=_409))
async def delete_item(request: Request,
                      item: Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS,
                                                description="A posted new item's id.")]) -> Any:
    """Remove a posted new item (items of the --new-items file are removed by editing the file)."""
    ctx = server_context(request)
    _check_one_worker(ctx)
    try:
        live, key = await anyio.to_thread.run_sync(ctx.slot.delete_item, item)
    except KeyError:
        raise HTTPError(404, f"unknown new item {json.dumps(item)}: no posted or file item has that id") from None
    except NewItemConflictError as e:
        raise HTTPError(409, str(e)) from None
    return JSONResponse({"status": "deleted", "item": key, "new_items": len(live.new_items),
                         "model_version": live.version})
