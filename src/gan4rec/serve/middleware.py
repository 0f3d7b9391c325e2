"""Pure ASGI middleware of the server: request-body size and time limits, and Prometheus metrics.

Both wrap the ASGI ``receive``/``send`` callables instead of using Starlette's ``BaseHTTPMiddleware``,
which buffers and adds a task per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimitMiddleware", "Metrics", "MetricsMiddleware"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Request latency buckets (seconds): sub-millisecond resolution where a recommender answers.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            10.0)


class _BodyRefused(Exception):
    """The request body is refused (too large, or too slow); the middleware answers instead of the app."""


def _answer(status: int, detail: str) -> tuple[Message, Message]:
    body = json.dumps({"detail": detail}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        # The rest of the body is never read, so the connection cannot carry another request.
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimitMiddleware:
    """Answer 413 to a request whose body exceeds ``max_bytes``, and 408 to one whose body does not
    arrive within ``timeout`` seconds; either way without reading the rest, and closing the connection.

    A declared ``Content-Length`` over the limit is refused before the application runs. A body without
    one (``Transfer-Encoding: chunked``) is counted as it streams in: the chunk that crosses the limit
    makes ``receive`` raise, nothing more is read, whatever the application had started to answer is
    dropped, and a 413 goes out instead. The time limit counts from the end of the request head (when the
    application is called) to the body's last byte; a slow body makes ``receive`` raise the same way.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float | None = None) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1  # the HTTP server rejects malformed lengths before we run
                if declared > self.max_bytes:
                    for message in _answer(413, f"request body exceeds the limit of {self.max_bytes} bytes"):
                        await send(message)
                    return
        deadline = None if self.timeout is None else asyncio.get_running_loop().time() + self.timeout
        received = 0
        refused: tuple[Message, Message] | None = None
        body_done = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, refused, body_done
            if refused is not None:
                raise _BodyRefused
            if body_done or deadline is None:
                message = await receive()  # after the body: waiting for a disconnect is not bounded
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    refused = _answer(408, f"request body not received within {self.timeout:g} s")
                    raise _BodyRefused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = _answer(413, f"request body exceeds the limit of {self.max_bytes} bytes")
                    raise _BodyRefused
                body_done = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused is not None:
                return  # the application's answer to a refused body (often a 400) is replaced below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyRefused:
            pass
        except Exception:
            if refused is None:
                raise
        if refused is not None and not started:
            for message in refused:
                await send(message)


class Metrics:
    """The server's Prometheus metrics.

    In one process they live in a registry of their own (several apps in one process do not clash).
    Where ``PROMETHEUS_MULTIPROC_DIR`` is set (``gan4rec serve --workers N`` sets it for its workers),
    prometheus_client's multiprocess mode stores every worker's values in files there and
    :meth:`render` adds them up, so ``/metrics`` is correct whichever worker answers it.
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("gan4rec_http_requests", "HTTP requests answered.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("gan4rec_http_request_duration_seconds",
                                 "Time from request start to the last byte of the response.",
                                 ["method", "route"], buckets=_BUCKETS, registry=r)
        self.in_progress = Gauge("gan4rec_http_requests_in_progress", "Requests being answered.",
                                 registry=r, multiprocess_mode="livesum")
        self.recommendations = Counter("gan4rec_recommendations", "Recommendation lists served, by strategy.",
                                       ["strategy"], registry=r)
        self.nonfinite = Counter("gan4rec_nonfinite_scores", "Non-finite item scores left out of responses.",
                                 registry=r)
        self.reloads = Counter("gan4rec_model_reloads", "Model reload attempts, by outcome.", ["outcome"],
                               registry=r)
        self.loaded_at = Gauge("gan4rec_model_loaded_timestamp_seconds",
                               "Unix time the live model was loaded.", registry=r, multiprocess_mode="max")
        # One series per worker (a pid label in multiprocess mode): which version each worker serves.
        self.model_info = Gauge("gan4rec_model_info", "1 for the model version this worker serves.",
                                ["model", "version"], registry=r, multiprocess_mode="liveall")

    def set_model(self, old: tuple[str, str] | None, new: tuple[str, str]) -> None:
        """Record a swap from ``old`` to ``new`` (``(model name, version)`` pairs)."""
        if old is not None and old != new:
            if self.multiprocess:
                self.model_info.labels(*old).set(0)  # files cannot forget a series; 0 marks it replaced
            else:
                self.model_info.remove(*old)
        self.model_info.labels(*new).set(1)
        self.loaded_at.set(time.time())

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def process_exit(self) -> None:
        """Drop this worker's live gauges (multiprocess mode); call on shutdown."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


class MetricsMiddleware:
    """Count requests and time them, labelled by route template (not raw path: bounded label values).

    ``routes`` returns the set of path templates the app serves; any other path is labelled ``other``.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Callable[[], frozenset[str]]) -> None:
        self.app = app
        self.metrics = metrics
        self._routes = routes
        self._known: frozenset[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        m = self.metrics
        m.in_progress.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            m.in_progress.dec()
            if self._known is None:
                self._known = self._routes()
            path = scope.get("path", "")
            route = path if path in self._known else "other"
            method = scope.get("method", "")
            m.requests.labels(method, route, str(status)).inc()
            m.latency.labels(method, route).observe(time.perf_counter() - start)
