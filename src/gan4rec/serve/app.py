"""The HTTP service: a FastAPI application serving one saved model, and the runner behind ``gan4rec serve``.

Endpoints (raw ids in and out; OpenAPI at ``/openapi.json``):

- ``GET /recommend?user=ID&k=10&exclude_seen=true[&exclude=ID,...][&candidates=ID,...]``;
- ``POST /recommend``: a batch of users, or an ad-hoc ``history`` of item ids (fold-in models only);
- ``GET /explain?user=ID&item=ID[&top=10]``, ``POST /explain`` (several items, a user or a history);
- ``GET /similar?item=ID&k=10``; ``GET /history?user=ID``; ``GET /items?q=TEXT`` (title/id search);
- ``GET /healthz`` (the process answers), ``GET /readyz`` (a verified model is live; its details need the
  API key where the server has keys), ``GET /info``;
- ``GET /metrics`` (Prometheus text); ``POST /admin/reload`` (needs an API key); ``GET /`` (web page);
- ``POST /items`` and ``DELETE /items/{item}`` (need an API key): new items, with content features and no
  interactions, that cold-start models rank with the catalog without retraining (409 for other models);
- ``/docs`` (Swagger UI) and ``/redoc``, whose assets come from the installed fastapi-offline package: they
  work without internet access.

Connections are bounded (:func:`run_server`): idle ones close after a keep-alive timeout, a request head
and a body each have a deadline (408), and a cap on open connections answers 503 beyond it.

Cold start: an unknown user, or a known user without training interactions, gets the training
popularity ranking, marked ``"strategy": "popularity_fallback"`` (with ``strict_users``, an unknown user
is a 404). Unknown item ids in a history, ``exclude`` or ``candidates`` are ignored and listed in
``"warnings"``. Non-finite scores never reach a response: such items are left out and counted.

New items (:mod:`gan4rec.serve.new_items`) come from ``POST /items`` or from the ``--new-items`` file, a
long table ``item,feature[,value]`` re-read when it changes (polled every
:data:`gan4rec.serve.reloader.RELOAD_POLL_S` seconds) and on every reload. A cold-start hybrid scores them from
their features (:meth:`~gan4rec.models.hybrid.common.HybridRecommender.score_new_items`, calibrated as its
cold items) and ``/recommend`` ranks them with the catalog, under the same exclusions and candidates,
marked ``"new": true``. They live in memory: posted items are lost when the process ends, and with several
workers only the file is accepted (each worker reads it).

Nothing is ever read from a path or URL given in a request: the only files the server reads are the
artifact directory, the items file, the new-items file and the API-key file named on its command line.

Workers and reload
------------------
With one worker (the default), ``SIGHUP`` or ``POST /admin/reload`` loads and verifies the artifact's
current version in a thread, then swaps it in; requests in flight finish on the model they started with,
and a corrupt artifact is refused (logged, counted, 409 for HTTP) while the old model keeps serving.

With ``workers > 1``, ``POST /admin/reload`` reaches one worker. It reloads as above (409 if the artifact
is refused) and, on success, writes a token into a file the workers share; every worker polls that file
(every :data:`gan4rec.serve.reloader.RELOAD_POLL_S` seconds) and reloads itself the same way, so within about a second all
workers serve the new version, and a worker that cannot load the artifact keeps its old model. ``SIGHUP``
belongs to uvicorn's supervisor there: it starts a new worker (which loads and verifies the artifact
before it reports ready), retires an old one (draining its requests) and repeats; a new worker that fails
to start (a corrupt artifact) aborts the restart and the old workers stay. Metrics use prometheus_client's
multiprocess mode in a temporary folder, so ``/metrics`` adds up every worker whichever one answers.

Layout (FastAPI's "bigger applications"): the endpoints live in :mod:`gan4rec.serve.routers`, one
``APIRouter`` per concern; the request logic in :mod:`gan4rec.serve.service`; keys in
:mod:`gan4rec.serve.security`; reloads in :mod:`gan4rec.serve.reloader`. :func:`create_app` only assembles
them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gan4rec.errors import DataError
from gan4rec.serve.context import ServerContext
from gan4rec.serve.middleware import BodyLimitMiddleware, Metrics, MetricsMiddleware
from gan4rec.serve.protocol import DEFAULT_HEAD_TIMEOUT
from gan4rec.serve.reloader import Reloader
from gan4rec.serve.routers.system import FAVICON_URL
from gan4rec.serve.security import ApiKeys, read_api_keys
from gan4rec.serve.service import Batcher, Service
from gan4rec.serve.state import ModelSlot

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEAD_TIMEOUT",
    "DEFAULT_KEEP_ALIVE_TIMEOUT",
    "DEFAULT_LIMIT_CONCURRENCY",
    "DEFAULT_MAX_BODY_BYTES",
    "SETTINGS_ENV",
    "create_app",
    "create_app_from_env",
    "run_server",
]

log = logging.getLogger(__name__)

#: Default request-body limit: a 10,000-item history of long string ids fits.
DEFAULT_MAX_BODY_BYTES = 4 * 2**20
#: Default seconds from the end of a request head to the last byte of its body (see ``body_timeout``).
DEFAULT_BODY_TIMEOUT = 30.0
#: Default seconds an idle connection (new, or between two requests) stays open.
DEFAULT_KEEP_ALIVE_TIMEOUT = 5.0
#: Default cap on open connections and requests per worker; beyond it new requests get 503.
DEFAULT_LIMIT_CONCURRENCY = 1024
#: Environment variable carrying the settings to each worker process (``workers > 1``).
SETTINGS_ENV = "GAN4REC_SERVE_SETTINGS"


def _check_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise DataError(f"{name} must be a positive number of seconds, got {value!r}")


def _fastapi(**kwargs: Any) -> Any:
    """A FastAPI application whose ``/docs`` (Swagger UI) and ``/redoc`` work offline.

    fastapi-offline serves the pages' scripts and styles from its own package under
    ``/static-offline-docs``; FastAPI alone would load them from a CDN.
    """
    try:
        from fastapi_offline import FastAPIOffline
    except ImportError:
        from fastapi import FastAPI

        log.warning("fastapi-offline is not installed: /docs and /redoc load their scripts from a CDN "
                    "(pip install 'gan4rec[serve]')")
        return FastAPI(**kwargs)
    return FastAPIOffline(favicon_url=FAVICON_URL, **kwargs)


def create_app(
    model_dir: str | Path,
    *,
    api_key: str | Sequence[str] | None = None,
    api_key_file: str | Path | None = None,
    strict_users: bool = False,
    items_file: str | Path | None = None,
    new_items_file: str | Path | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout: float | None = DEFAULT_BODY_TIMEOUT,
    handle_sighup: bool = True,
    reload_signal: str | Path | None = None,
) -> Any:
    """A FastAPI application serving the model saved in ``model_dir``.

    The model is loaded and verified here, so a missing or corrupt artifact fails at once.

    Parameters
    ----------
    model_dir
        Artifact directory written by :meth:`Recommender.save`. Reloads read its current version.
    api_key, api_key_file
        Accepted API keys (a key, several, or a file of one key per line). With keys, every endpoint but
        ``/``, ``/healthz``, ``/readyz`` (whose details need a key), ``/openapi.json`` and the API docs
        needs an ``X-API-Key`` header, and the OpenAPI schema declares it. Without keys the API is open
        and ``/admin/reload`` is disabled (403).
    strict_users
        Answer 404 to an unknown user instead of the popularity fallback.
    items_file
        Titles of the items (MovieLens ``u.item``/``movies.dat``/``movies.csv`` or a CSV with ``item`` and
        ``title`` columns), shown in responses and on the web page.
    new_items_file
        New items to rank with the catalog: a long table ``item,feature[,value]`` (csv, tsv or parquet),
        re-read when it changes. A model that cannot score new items is refused
        (:class:`~gan4rec.serve.new_items.NewItemsUnsupportedError`).
    max_body_bytes
        Largest request body; a larger one gets 413 before it is read.
    body_timeout
        Seconds from the end of a request head to the last byte of its body; a slower body gets 408 and
        the connection is closed. ``None``: no limit.
    handle_sighup
        Reload on ``SIGHUP`` (only where the app runs in the main thread, i.e. under uvicorn).
    reload_signal
        A file shared by the workers of one server (set by :func:`run_server` when ``workers > 1``); see
        :class:`gan4rec.serve.reloader.Reloader`.
    """
    from fastapi import Depends

    from gan4rec import __version__
    from gan4rec.serve.errors import add_exception_handlers
    from gan4rec.serve.routers import admin, items, new_items, recommend, system
    from gan4rec.serve.security import admin_disabled, require_admin_key, require_key

    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1024:
        raise DataError(f"max_body_bytes must be an integer >= 1024, got {max_body_bytes!r}")
    if body_timeout is not None:
        _check_seconds("body_timeout", body_timeout)
    keys: list[str] = []
    if api_key is not None:
        keys.extend([api_key] if isinstance(api_key, str) else list(api_key))
    if api_key_file is not None:
        keys.extend(read_api_keys(api_key_file))

    metrics = Metrics()
    slot = ModelSlot(model_dir, items_file=items_file, new_items_file=new_items_file)
    metrics.set_model(None, (slot.current.name, slot.current.version))
    reloader = Reloader(slot, metrics, Path(reload_signal) if reload_signal is not None else None)
    context = ServerContext(slot=slot, metrics=metrics, service=Service(slot, metrics, strict_users=strict_users),
                            batcher=Batcher(), keys=ApiKeys(keys), reloader=reloader,
                            max_body_bytes=max_body_bytes)

    app = _fastapi(
        title="gan4rec",
        version=__version__,
        description="Recommendations, explanations and similar items from a saved gan4rec model. Raw ids in "
                    "and out.",
        lifespan=lambda _app: reloader.serving(handle_sighup=handle_sighup),
    )
    app.state.context = context
    app.state.slot = slot
    app.state.metrics = metrics
    add_exception_handlers(app)

    # The X-API-Key header is declared (OpenAPI) and checked only where the server has keys.
    secured = bool(keys)
    protected = [Depends(require_key)] if secured else []
    writes = [Depends(require_admin_key if secured else admin_disabled)]
    routers = [
        (recommend.hot_router(secured=secured), []),
        (recommend.router, protected),
        (items.router, protected),
        (system.router, protected),
        (system.public_router, []),
        (new_items.router, writes),
        (admin.router, writes),
    ]
    for router, dependencies in routers:
        app.include_router(router, dependencies=dependencies)
    # Route templates label the metrics (any other path is "other"). Read from the routers: recent FastAPI
    # versions keep included routes inside the router instead of copying them into app.routes.
    paths = frozenset(getattr(r, "path", "") for r in app.routes) | frozenset(
        getattr(r, "path", "") for router, _ in routers for r in router.routes)

    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, timeout=body_timeout)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=lambda: paths)
    return app


def create_app_from_env() -> Any:
    """:func:`create_app` with the settings :func:`run_server` put in the environment (one per worker)."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise DataError(f"{SETTINGS_ENV} is not set; start workers with `gan4rec serve --workers N`")
    settings = json.loads(raw)
    return create_app(settings.pop("model_dir"), **settings)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """Set ``env`` in this process (spawned workers inherit it), restoring the previous values after."""
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_server(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    api_key_file: str | Path | None = None,
    items_file: str | Path | None = None,
    new_items_file: str | Path | None = None,
    strict_users: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    graceful_timeout: float = 30.0,
    access_log: bool = True,
    log_level: str = "info",
    threads: int | None = None,
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    limit_concurrency: int | None = DEFAULT_LIMIT_CONCURRENCY,
) -> None:
    """Serve ``model_dir`` with uvicorn until SIGTERM/SIGINT (which drain requests in flight, then exit).

    With ``workers > 1`` each worker loads the model itself, metrics use prometheus_client's multiprocess
    mode in a temporary folder, and SIGHUP goes to uvicorn's supervisor (see the module docstring).

    Connections are bounded so that idle or slow clients cannot hold the server's sockets: an idle
    connection (a new one, or a keep-alive one between requests) is closed after ``keep_alive_timeout``
    seconds; a request head must arrive within ``head_timeout`` seconds of its first byte and a body within
    ``body_timeout`` seconds of its head (else 408 and the connection is closed; see
    :class:`gan4rec.serve.protocol.DeadlineH11Protocol`); and once ``limit_concurrency`` connections or
    requests are open (per worker), new requests get 503 (``None``: no cap). The protocol is uvicorn's h11.
    """
    import tempfile

    import uvicorn

    from gan4rec.serve.protocol import HEAD_TIMEOUT_ENV, DeadlineH11Protocol

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DataError(f"workers must be an integer >= 1, got {workers!r}")
    for name, seconds in (("keep_alive_timeout", keep_alive_timeout), ("head_timeout", head_timeout),
                          ("body_timeout", body_timeout)):
        _check_seconds(name, seconds)
    if limit_concurrency is not None and (isinstance(limit_concurrency, bool)
                                          or not isinstance(limit_concurrency, int) or limit_concurrency < 1):
        raise DataError(f"limit_concurrency must be an integer >= 1 or None, got {limit_concurrency!r}")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise DataError(f"threads must be an integer >= 1, got {threads!r}")
        import torch

        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # spawned workers read it when they import torch
    common: dict[str, Any] = {"host": host, "port": port, "timeout_graceful_shutdown": graceful_timeout,
                              "access_log": access_log, "log_level": log_level, "http": DeadlineH11Protocol,
                              "timeout_keep_alive": keep_alive_timeout, "limit_concurrency": limit_concurrency}
    env = {HEAD_TIMEOUT_ENV: repr(float(head_timeout))}
    if workers == 1:
        app = create_app(model_dir, api_key_file=api_key_file, items_file=items_file,
                         new_items_file=new_items_file, strict_users=strict_users,
                         max_body_bytes=max_body_bytes, body_timeout=body_timeout)
        with _environment(env):
            uvicorn.run(app, **common)
        return
    # Fail here, once, with a clear message, rather than in every worker.
    if api_key_file is not None:
        read_api_keys(api_key_file)
    ModelSlot(model_dir, items_file=items_file, new_items_file=new_items_file)
    with tempfile.TemporaryDirectory(prefix="gan4rec-serve-") as shared:
        metrics_dir = Path(shared) / "metrics"
        metrics_dir.mkdir()
        settings = {"model_dir": str(Path(model_dir).resolve()), "strict_users": strict_users,
                    "max_body_bytes": max_body_bytes, "body_timeout": body_timeout,
                    "api_key_file": str(Path(api_key_file).resolve()) if api_key_file else None,
                    "items_file": str(Path(items_file).resolve()) if items_file else None,
                    "new_items_file": str(Path(new_items_file).resolve()) if new_items_file else None,
                    "reload_signal": str(Path(shared) / "reload")}
        env[SETTINGS_ENV] = json.dumps(settings)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        with _environment(env):  # spawned workers inherit the environment
            uvicorn.run("gan4rec.serve.app:create_app_from_env", factory=True, workers=workers, **common)
