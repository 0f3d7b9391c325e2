"""Atomic file writes: a temp file beside the target, fsync, rename, fsync the folder.

A crash at any point leaves the old file or the new one, never a partial one, and every file gets the
mode a plain ``open()`` would give it (the umask is honoured). :mod:`gan4rec.artifacts` builds model
directories on these; every other writer of the project (reports, JSON results, recommendation files)
uses them directly.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "fsync_dir", "new_file_mode"]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so that renames inside it are durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def new_file_mode() -> int:
    """The mode ``open()`` would give a new file: ``0o666`` less the process umask.

    ``tempfile.mkstemp`` creates files ``0o600``; a report or a results file renamed into place would then
    be unreadable to the group and others, unlike one written with ``open()``. The umask is read from
    ``/proc/self/status`` where available (no process-wide change); elsewhere it is set and put back.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it is fsynced and renamed over ``path``.

    For writers that need a file name rather than bytes (a streaming Parquet or CSV writer). The file gets
    the mode a plain ``open()`` would give it (:func:`new_file_mode`); on any error it is removed and the
    old ``path``, if any, is left as it was.

    Examples
    --------
    >>> with atomic_path("out.csv") as tmp:  # doctest: +SKIP
    ...     frame.write_csv(tmp)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # The mode is set once the writer is done: mkstemp's 0o600 lets it (re)open the file by name.
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename, fsync folder.

    A crash at any point leaves either the old file or the new one, never a partial one. The file gets
    the mode a plain ``open()`` would give it (:func:`new_file_mode`).
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))
