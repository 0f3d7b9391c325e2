"""Hot reload of a running server: ``SIGHUP``, ``POST /admin/reload`` and, with several workers, the
shared signal file through which one worker's verified reload reaches the others; and the new-items file,
re-read when it changes.

See the module docstring of :mod:`gan4rec.serve.app` for how reloads behave with one and several workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from gan4rec.atomic import atomic_write_text
from gan4rec.serve.middleware import Metrics
from gan4rec.serve.state import LiveModel, ModelSlot

__all__ = ["RELOAD_POLL_S", "Reloader"]

log = logging.getLogger(__name__)

#: Seconds between two checks of the shared reload file (``workers > 1``) and of the new-items file.
RELOAD_POLL_S = 0.5


def _read_token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class Reloader:
    """Reloads the model of ``slot``, counts the outcomes in ``metrics``, and runs the server's lifetime.

    Parameters
    ----------
    slot, metrics
        The server's live model and metrics.
    signal_file
        A file shared by the workers of one server (``workers > 1``), else ``None``. A worker that
        completes an HTTP reload writes a new token into it (:meth:`announce`); every worker polls it
        (:data:`RELOAD_POLL_S`) and then reloads on its own, loading and verifying the artifact itself.
    """

    def __init__(self, slot: ModelSlot, metrics: Metrics, signal_file: Path | None = None) -> None:
        self.slot = slot
        self.metrics = metrics
        self.signal_file = signal_file
        self._seen_token = _read_token(signal_file)  # the token this worker has acted on
        self._background: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    @property
    def shared(self) -> bool:
        """Whether several workers share this reload (a signal file)."""
        return self.signal_file is not None

    async def reload(self) -> tuple[LiveModel, LiveModel]:
        """Load, verify and swap in the artifact's current version (off the event loop); ``(old, new)``.

        Raises whatever made the artifact unloadable; the old model stays live.
        """
        import anyio.to_thread

        try:
            old, new = await anyio.to_thread.run_sync(self.slot.reload)
        except Exception:
            self.metrics.reloads.labels("refused").inc()
            raise
        self.metrics.reloads.labels("ok").inc()
        self.metrics.set_model((old.name, old.version), (new.name, new.version))
        # The replaced model was frozen with everything else at start: thaw, let one full collection
        # reclaim whatever of it sits in reference cycles, and freeze what remains (the new model).
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return old, new

    def announce(self, new: LiveModel) -> None:
        """Tell the other workers (through the signal file) that ``new`` was loaded and verified here."""
        if self.signal_file is None:
            return
        # The other workers cannot be reached from here: tell them through the shared file. Each one loads
        # and verifies the artifact itself, so none can go live with something it could not load.
        token = f"{os.getpid()}-{time.time_ns()}-{new.version}"
        self._seen_token = token
        atomic_write_text(self.signal_file, token)

    async def _reload_quietly(self) -> None:
        with contextlib.suppress(Exception):  # already logged and counted by the slot
            await self.reload()

    def _reload_in_background(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload_quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _follow(self) -> None:
        """Reload when another worker announces a verified reload in the shared signal file."""
        while True:
            await asyncio.sleep(RELOAD_POLL_S)
            token = _read_token(self.signal_file)
            if token is not None and token != self._seen_token:
                self._seen_token = token
                log.info("another worker reloaded the model; reloading this one")
                await self._reload_quietly()

    async def _watch_new_items(self) -> None:
        """Re-read the new-items file when it changes (every worker watches it itself)."""
        import anyio.to_thread

        while True:
            await asyncio.sleep(RELOAD_POLL_S)
            if self.slot.new_items_changed():
                with contextlib.suppress(Exception):  # logged and recorded by the slot; old items kept
                    await anyio.to_thread.run_sync(self.slot.reload_new_items)

    @contextlib.asynccontextmanager
    async def serving(self, *, handle_sighup: bool) -> AsyncIterator[None]:
        """The server's lifetime (its lifespan): SIGHUP reloads, the signal file is followed, and the
        objects loaded at start are moved out of the cyclic garbage collector's reach."""
        loop = asyncio.get_running_loop()
        installed = False
        if handle_sighup and threading.current_thread() is threading.main_thread():
            try:
                loop.add_signal_handler(signal.SIGHUP, self._reload_in_background)
                installed = True
            except (NotImplementedError, RuntimeError, ValueError, AttributeError):
                log.debug("SIGHUP reload is not available in this environment")
        # Everything loaded so far (libraries, the model) lives as long as the server: move it out of the
        # cyclic collector's reach, so that its full collections, triggered by the allocations of
        # requests, no longer walk those objects (measured: they made the slowest /recommend answers).
        gc.collect()
        gc.freeze()
        tasks = []
        if self.signal_file is not None:
            tasks.append(loop.create_task(self._follow()))
        if self.slot.new_items_file is not None:
            tasks.append(loop.create_task(self._watch_new_items()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if installed:
                loop.remove_signal_handler(signal.SIGHUP)
            self.metrics.process_exit()
