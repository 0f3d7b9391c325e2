"""``GET /recommend`` (the hot path) and ``POST /recommend`` (a batch of users, or an ad-hoc history)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from gan4rec.serve.context import server_context
from gan4rec.serve.errors import HTTPError, error_responses
from gan4rec.serve.schemas import (
    MAX_ID_CHARS,
    MAX_K,
    MAX_LIST,
    BatchRecommendation,
    Recommendation,
    RecommendRequest,
    UsersRecommendRequest,
)

__all__ = ["LIST_QUERY_CHARS", "RECOMMEND_PARAMETERS", "get_recommend", "hot_router", "router"]

#: Longest ``exclude`` / ``candidates`` query value: MAX_LIST ids of MAX_ID_CHARS and their commas.
LIST_QUERY_CHARS = MAX_LIST * (MAX_ID_CHARS + 1)

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})
_DECIMAL = re.compile(r"[0-9]{1,9}")


def _query_int(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    if not _DECIMAL.fullmatch(text) or not low <= int(text) <= high:
        raise HTTPError(422, f"{name}: expected an integer in {low}..{high}, got {text[:40]!r}")
    return int(text)


def _query_bool(text: str | None, name: str, default: bool) -> bool:
    if text is None:
        return default
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise HTTPError(422, f"{name}: expected true or false, got {text[:40]!r}")


# The hot path parses its query by hand: FastAPI's generic parameter machinery costs more than the ranking
# itself (measured: ~0.5 ms of ~1.1 ms per request on one core). The parameters are declared in the
# OpenAPI schema here and validated with the same bounds and 422 answers.
#: The OpenAPI parameters of ``GET /recommend``.
RECOMMEND_PARAMETERS: list[dict[str, Any]] = [
    {"name": "user", "in": "query", "required": True, "description": "A raw user id.",
     "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}},
    {"name": "k", "in": "query", "required": False, "description": f"List length, 1..{MAX_K}.",
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10}},
    {"name": "exclude_seen", "in": "query", "required": False,
     "description": "Drop the user's training items.", "schema": {"type": "boolean", "default": True}},
    {"name": "exclude", "in": "query", "required": False,
     "description": f"Comma-separated item ids to leave out (at most {MAX_LIST}).",
     "schema": {"type": "string", "maxLength": LIST_QUERY_CHARS}},
    {"name": "candidates", "in": "query", "required": False,
     "description": f"Comma-separated item ids to rank among (at most {MAX_LIST}).",
     "schema": {"type": "string", "maxLength": LIST_QUERY_CHARS}},
]


async def get_recommend(request: Request) -> Any:
    """Top-``k`` items for a user; unknown users get the popularity fallback (404 with --strict-users)."""
    ctx = server_context(request)
    ctx.keys.check(request.headers.get("x-api-key"))
    q = request.query_params
    user = q.get("user")
    if user is None:
        raise HTTPError(422, "user: field required")
    if not 1 <= len(user) <= MAX_ID_CHARS:
        raise HTTPError(422, f"user: expected 1..{MAX_ID_CHARS} characters, got {len(user)}")
    k = _query_int(q.get("k"), "k", 10, 1, MAX_K)
    exclude_seen = _query_bool(q.get("exclude_seen"), "exclude_seen", True)
    exclude, candidates = q.get("exclude"), q.get("candidates")
    for name, value in (("exclude", exclude), ("candidates", candidates)):
        if value is not None and len(value) > LIST_QUERY_CHARS:
            raise HTTPError(422, f"{name}: longer than {LIST_QUERY_CHARS} characters")
    service = ctx.service
    cands = service.split_ids(candidates, "candidates") if candidates is not None else None
    excl = service.split_ids(exclude, "exclude")
    live = ctx.slot.current
    u = service.model_user(live, user)
    row = None if u < 0 else (await ctx.batcher.score(live, u))[None, :]
    (result,) = service.recommend_users(live, [user], k, exclude_seen, excl, cands, scores=row)
    return JSONResponse(result)


def hot_router(*, secured: bool) -> APIRouter:
    """A router with ``GET /recommend`` alone; its OpenAPI names the API key when ``secured``.

    The endpoint checks the key itself (a FastAPI dependency would cost the hot path), so the key's
    declaration depends on the server's configuration and the router is built per application.
    """
    extra: dict[str, Any] = {"parameters": RECOMMEND_PARAMETERS}
    if secured:
        extra["security"] = [{"APIKeyHeader": []}]
    hot = APIRouter(tags=["recommend"])
    hot.add_api_route("/recommend", get_recommend, methods=["GET"], response_model=Recommendation,
                      responses=error_responses(401, 404, 422), openapi_extra=extra)
    return hot


#: ``POST /recommend``; include it with the API-key dependency.
router = APIRouter(tags=["recommend"])


_FOLD_IN_409 = {409: "An ad-hoc history, and the live model cannot fold one in (GET /info: fold_in is false)"}


@router.post("/recommend", response_model=BatchRecommendation,
             responses=error_responses(400, 401, 404, 409, 413, 422, descriptions=_FOLD_IN_409))
def post_recommend(req: Annotated[RecommendRequest, Body()], request: Request) -> Any:
    """A batch of users, or one ad-hoc history of item ids (models that fold in new users; 409 for the
    others: the request is valid, the live model cannot answer it)."""
    service = server_context(request).service
    live = server_context(request).slot.current
    if isinstance(req, UsersRecommendRequest):
        results = service.recommend_users(live, req.users, req.k, req.exclude_seen, req.exclude,
                                          req.candidates)
    else:
        results = [service.recommend_history(live, req.history, req.k, req.exclude_seen, req.exclude,
                                             req.candidates)]
    return JSONResponse({"results": results, "model_version": live.version})
