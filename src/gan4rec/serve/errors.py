"""Error answers of the HTTP service: one JSON shape (``{"detail": one sentence}``) for every failure.

:class:`HTTPError` is what the request logic raises; :func:`add_exception_handlers` turns it, validation
errors, unsupported-model errors and anything unexpected into answers; :func:`error_responses` declares
them in the OpenAPI schema.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from gan4rec.errors import DataError
from gan4rec.serve.schemas import MAX_ID_CHARS, ErrorBody

__all__ = ["HTTPError", "add_exception_handlers", "allowed_methods", "error_responses", "validation_detail"]

log = logging.getLogger(__name__)


class HTTPError(Exception):
    """An error answer: status and one-sentence detail (and optional headers)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


_DESCRIPTIONS = {400: "Unsupported for this model", 401: "Missing or invalid API key",
                 403: "Admin endpoints are disabled", 404: "Unknown user or item", 409: "Reload refused",
                 413: "Request body too large", 422: "Invalid input"}


def error_responses(*codes: int, descriptions: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of these error statuses (``descriptions`` overrides the usual ones)."""
    words = {**_DESCRIPTIONS, **(descriptions or {})}
    return {c: {"model": ErrorBody, "description": words[c]} for c in codes}


# Pydantic names the branches of a union in error locations. A bad id is one error to a client, and a body
# that matches neither request shape is explained by the shape the client meant (the key it sent).
_ID_BRANCHES = ("int", "str", "constrained-str", "function-before")
_ID_MESSAGE = f"expected an integer or a string id of 1..{MAX_ID_CHARS} characters"
_BODY_BRANCHES = {"UsersRecommendRequest": "users", "HistoryRecommendRequest": "history",
                  "UserExplainRequest": "user", "HistoryExplainRequest": "history"}


def validation_detail(errors: Sequence[dict[str, Any]]) -> str:
    """One sentence from pydantic's errors: ``field: problem`` for the first three distinct fields."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for e in errors:
        branch = next((str(x) for x in e.get("loc", ()) if str(x) in _BODY_BRANCHES), None)
        groups.setdefault(branch, []).append(e)
    branches = [b for b in groups if b is not None]
    if len(branches) >= 2:
        keys = " or ".join(repr(_BODY_BRANCHES[b]) for b in branches)
        meant = [b for b in branches
                 if not any(e.get("type") == "missing" and list(e.get("loc", ()))[-1:] == [_BODY_BRANCHES[b]]
                            for e in groups[b])]
        if len(meant) != 1:
            return f"body: give exactly one of {keys}"
        errors = groups[meant[0]]
    parts: list[str] = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ())
               if x not in ("body", "query") and str(x) not in _BODY_BRANCHES]
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "json_invalid":
            loc, msg = [], f"invalid JSON (at character {'.'.join(loc) or '?'})"
        elif loc and loc[-1].startswith(_ID_BRANCHES):
            loc, msg = loc[:-1], _ID_MESSAGE
        text = f"{'.'.join(loc) or 'body'}: {msg}"
        if text not in parts:
            parts.append(text)
    more = f" (and {len(parts) - 3} more)" if len(parts) > 3 else ""
    return "; ".join(parts[:3]) + more


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: Any, scope: Any) -> list[str]:
    """The methods the routes of ``app`` (a Starlette application) answer at the request's path, and
    ``OPTIONS``: each method is matched against every route as a request of that method would be."""
    from starlette.routing import Match

    allowed = []
    for method in _METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in app.router.routes):
            allowed.append(method)
    return [*allowed, "OPTIONS"]


def add_exception_handlers(app: Any) -> None:
    """Answer every error of ``app`` (a FastAPI application) with ``{"detail": ...}`` and its status."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from gan4rec.explain import UnsupportedError

    @app.exception_handler(HTTPError)
    async def _on_http_error(request: Request, exc: HTTPError) -> Any:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(UnsupportedError)
    async def _on_unsupported(request: Request, exc: UnsupportedError) -> Any:
        return JSONResponse({"detail": f"unsupported for this model: {exc}"}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(request: Request, exc: RequestValidationError) -> Any:
        # Only location, message and type: pydantic's "input" would echo a request body back.
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        return JSONResponse({"detail": validation_detail(errors), "errors": errors}, status_code=422)

    @app.exception_handler(DataError)
    async def _on_data_error(request: Request, exc: DataError) -> Any:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _on_starlette(request: Request, exc: StarletteHTTPException) -> Any:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names the methods of the first route of the path only (GET for GET and POST
            # /recommend): name every route's, and answer OPTIONS with them.
            allow = ", ".join(allowed_methods(request.app, request.scope))
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={"Allow": allow})
            headers = {**(headers or {}), "Allow": allow}
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, exc: Exception) -> Any:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)
