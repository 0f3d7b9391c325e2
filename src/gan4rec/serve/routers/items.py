"""``/explain`` (why a user or history scores an item), ``/similar``, ``/history`` and ``/items`` (search)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from gan4rec.serve.context import server_context
from gan4rec.serve.errors import error_responses
from gan4rec.serve.schemas import (
    MAX_ID_CHARS,
    MAX_K,
    MAX_LIST,
    MAX_TOP,
    BatchExplanation,
    ExplainRequest,
    ExplanationBody,
    HistoryBody,
    ItemList,
    SimilarBody,
    UserExplainRequest,
)

__all__ = ["router"]

_MAX_QUERY_CHARS = 200

UserQ = Annotated[str, Query(min_length=1, max_length=MAX_ID_CHARS, description="A raw user id.")]
ItemQ = Annotated[str, Query(min_length=1, max_length=MAX_ID_CHARS, description="A raw item id.")]
KQ = Annotated[int, Query(ge=1, le=MAX_K, description=f"List length, 1..{MAX_K}.")]

#: The endpoints of this module; include it with the API-key dependency.
router = APIRouter()

_EXPLAIN_404 = {404: "Unknown user or item (for a cold-start model: neither a catalog item nor a new item)"}
_FOLD_IN_409 = {409: "An ad-hoc history, and the live model cannot fold one in (GET /info: fold_in is false)"}


@router.get("/explain", response_model=ExplanationBody, tags=["explain"],
            responses=error_responses(400, 401, 404, 422, descriptions=_EXPLAIN_404))
def get_explain(request: Request, user: UserQ, item: ItemQ,
                top: Annotated[int, Query(ge=1, le=MAX_TOP)] = 10) -> Any:
    """The user's history items that most drove the item's score, with weights and the method used.

    A cold-start model (GET /info: new_items_reason is null) explains a cold item (no training interaction)
    or a new item (POST /items, --new-items) by its content features instead: `explains` is "content" and
    `features` names the columns behind the score (the models of gan4rec.explain_cold)."""
    ctx = server_context(request)
    (result,) = ctx.service.explain(ctx.slot.current, user, None, [item], top)
    return JSONResponse(result)


@router.post("/explain", response_model=BatchExplanation, tags=["explain"],
             responses=error_responses(400, 401, 404, 409, 413, 422, descriptions={**_EXPLAIN_404, **_FOLD_IN_409}))
def post_explain(req: Annotated[ExplainRequest, Body()], request: Request) -> Any:
    """Explain up to 100 items for one user (cold and new items of a cold-start model by their content, as
    GET /explain) or one ad-hoc history (models that fold in; 409 for the others)."""
    ctx = server_context(request)
    live = ctx.slot.current
    if isinstance(req, UserExplainRequest):
        results = ctx.service.explain(live, req.user, None, req.items, req.top)
    else:
        results = ctx.service.explain(live, None, req.history, req.items, req.top)
    return JSONResponse({"results": results, "model_version": live.version})


@router.get("/similar", response_model=SimilarBody, tags=["items"], responses=error_responses(401, 404, 422))
def get_similar(request: Request, item: ItemQ, k: KQ = 10) -> Any:
    """Items most related to ``item`` under the model (see ``method``)."""
    ctx = server_context(request)
    return JSONResponse(ctx.service.similar(ctx.slot.current, item, k))


@router.get("/history", response_model=HistoryBody, tags=["items"], responses=error_responses(401, 404, 422))
def get_history(request: Request, user: UserQ,
                limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100) -> Any:
    """The user's training items (what the model knows about them)."""
    ctx = server_context(request)
    return JSONResponse(ctx.service.history(ctx.slot.current, user, limit))


@router.get("/items", response_model=ItemList, tags=["items"], responses=error_responses(401, 422))
def get_items(request: Request, q: Annotated[str, Query(min_length=1, max_length=_MAX_QUERY_CHARS)],
              limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Any:
    """Items whose id equals ``q`` or whose title contains it (case-insensitive), popular first."""
    ctx = server_context(request)
    return JSONResponse(ctx.service.search(ctx.slot.current, q, limit))
