"""API keys of the HTTP service: the key file, the check, and the FastAPI dependencies that need a key.

The accepted keys of an application live in ``app.state.context.keys`` (an :class:`ApiKeys`); the
dependencies read them from there, so one module-level router serves every application.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from gan4rec.errors import DataError, MissingInputError
from gan4rec.serve.errors import HTTPError

__all__ = ["ApiKeys", "admin_disabled", "key_header", "read_api_keys", "require_admin_key", "require_key"]

#: The ``X-API-Key`` header, as declared in the OpenAPI schema.
key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                          description="Needed when the server was started with API keys.")
_MIN_KEY_CHARS = 16


def read_api_keys(path: str | Path) -> tuple[str, ...]:
    """API keys from a file, one per line; blank lines and ``#`` comments are skipped."""
    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"{p}: no such API-key file")
    keys = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if len(text) < _MIN_KEY_CHARS:
            raise DataError(f"{p}:{lineno}: API key is {len(text)} characters long; expected at least "
                            f"{_MIN_KEY_CHARS}")
        keys.append(text)
    if not keys:
        raise DataError(f"{p}: holds no API key; expected one key per line")
    return tuple(keys)


class ApiKeys:
    """The keys a server accepts; none means an open API (and disabled admin endpoints)."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._keys = tuple(k.encode("utf-8") for k in keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def ok(self, key: str | None) -> bool:
        """Whether ``key`` is one of the keys."""
        if key is None:
            return False
        given = key.encode("utf-8", "surrogateescape")
        # Compare with every key, without an early exit, so timing does not reveal which one matched.
        return sum(hmac.compare_digest(given, k) for k in self._keys) > 0

    def check(self, key: str | None) -> None:
        """Raise a 401 answer unless the API is open or ``key`` is accepted."""
        if self._keys and not self.ok(key):
            raise HTTPError(401, "missing or invalid API key; send it in the X-API-Key header",
                            {"WWW-Authenticate": "ApiKey"})

    def check_admin(self, key: str | None) -> None:
        """Raise a 403 answer without keys (admin disabled), a 401 one unless ``key`` is accepted."""
        if not self._keys:
            raise HTTPError(403, "admin endpoints are disabled; start the server with --api-key-file to "
                                 "enable them")
        self.check(key)


def _keys(request: Request) -> ApiKeys:
    keys: ApiKeys = request.app.state.context.keys
    return keys


async def require_key(request: Request, key: Annotated[str | None, Security(key_header)] = None) -> None:
    """Dependency: an accepted ``X-API-Key`` header, where the server has keys."""
    _keys(request).check(key)


async def require_admin_key(request: Request,
                            key: Annotated[str | None, Security(key_header)] = None) -> None:
    """Dependency of admin endpoints: keys are configured and the header holds one of them."""
    _keys(request).check_admin(key)


async def admin_disabled(request: Request) -> None:
    """Dependency of admin endpoints on a server without keys: always a 403 answer (declares no key)."""
    _keys(request).check_admin(None)
