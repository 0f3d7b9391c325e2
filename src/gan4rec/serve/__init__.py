"""Serving: a FastAPI application (``gan4rec serve``) with explanations, cold start, limits and hot reload.

Needs the ``serve`` extra (fastapi, uvicorn, pydantic, prometheus_client). Importing this package is
cheap; :func:`create_app` and :func:`run_server` import the web stack when called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "run_server"]


def create_app(model_dir: Any, **kwargs: Any) -> Any:
    """See :func:`gan4rec.serve.app.create_app`."""
    from gan4rec.serve.app import create_app as _create_app

    return _create_app(model_dir, **kwargs)


def run_server(model_dir: Any, **kwargs: Any) -> None:
    """See :func:`gan4rec.serve.app.run_server`."""
    from gan4rec.serve.app import run_server as _run_server

    _run_server(model_dir, **kwargs)
