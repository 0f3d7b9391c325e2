"""uvicorn's HTTP/1.1 protocol (h11) with deadlines for idle connections and request heads.

uvicorn closes an idle keep-alive connection ``timeout_keep_alive`` seconds after a response, but it arms
that timer only after a response: a connection that never sends a byte, or one that sends part of a
request head and stops, stays open for ever (each one a file descriptor and a slot of
``limit_concurrency``). :class:`DeadlineH11Protocol` adds the two missing deadlines:

- a new connection gets uvicorn's keep-alive timer at once, so one that sends nothing is closed after
  ``timeout_keep_alive`` seconds like any idle connection;
- once the first byte of a request head arrives, the whole head must arrive within the head timeout
  (trickling bytes does not extend it), else the client gets ``408 Request Timeout`` and the connection
  is closed.

The body of a request is bounded by :class:`gan4rec.serve.middleware.BodyLimitMiddleware`. uvicorn builds
the protocol itself from its config, which has no field for the head timeout, so the timeout comes from
the environment variable :data:`HEAD_TIMEOUT_ENV`, which :func:`gan4rec.serve.app.run_server` sets for
itself and its workers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["DEFAULT_HEAD_TIMEOUT", "HEAD_TIMEOUT_ENV", "DeadlineH11Protocol"]

log = logging.getLogger(__name__)

#: Environment variable with the head timeout in seconds (set by ``run_server``).
HEAD_TIMEOUT_ENV = "GAN4REC_SERVE_HEAD_TIMEOUT"
#: Seconds a client has to send a whole request head, from its first byte, when the variable is unset.
DEFAULT_HEAD_TIMEOUT = 10.0


def _head_timeout() -> float:
    text = os.environ.get(HEAD_TIMEOUT_ENV)
    if not text:
        return DEFAULT_HEAD_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        log.warning("%s=%r is not a positive number of seconds; using %s", HEAD_TIMEOUT_ENV, text,
                    DEFAULT_HEAD_TIMEOUT)
        return DEFAULT_HEAD_TIMEOUT
    return value


def _timeout_answer(seconds: float) -> bytes:
    body = json.dumps({"detail": f"request head not received within {seconds:g} s"}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n" % len(body)) + body


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that send nothing or stall within a request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout = _head_timeout()
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Idle from the start: the keep-alive timer that uvicorn would only arm after a first response.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                            self.timeout_keep_alive_handler)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # cancels the keep-alive timer, parses what it can
        waiting_for_head = self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])
        if waiting_for_head:
            if self._head_timer is None and not self.transport.is_closing():
                self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)
        elif self._head_timer is not None:
            self._cancel_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        log.debug("closing a connection whose request head did not arrive within %s s", self.head_timeout)
        self.transport.write(_timeout_answer(self.head_timeout))
        self.transport.close()
