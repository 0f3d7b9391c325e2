"""Safe, atomic persistence: safetensors for arrays, JSON for everything else, never pickle."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from gan4rec.errors import ArtifactError, MissingInputError

__all__ = [
    "FORMAT_VERSION",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_dir",
    "load_artifact",
    "read_artifact_meta",
    "save_artifact",
]


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


# ---------------------------------------------------------------------------------------------- artifacts
#
# Layout of an artifact directory ``m/``::
#
#     m/CURRENT                      name of the live version, replaced atomically
#     m/v<...>/tensors.safetensors   arrays (weights, seen-items CSR, ...)
#     m/v<...>/meta.json             params, id maps, versions, fingerprints, history
#     m/v<...>/MANIFEST.json         sha256 and size of the two files above, written last
#
# ``os.replace`` cannot swap a directory onto an existing one, so a new save writes a new version folder
# beside the old one and then flips ``CURRENT`` (a file, which *can* be replaced atomically). A first save
# stages the whole tree under a hidden sibling and renames it into place. A crash at any point leaves
# either the previous complete artifact or none.

FORMAT_VERSION = 1
"""Version written by this gan4rec."""
MIN_FORMAT_VERSION = 1
"""Oldest version this gan4rec can read."""

_TENSORS = "tensors.safetensors"
_META = "meta.json"
_MANIFEST = "MANIFEST.json"
_CURRENT = "CURRENT"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write_version(folder: Path, tensors: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write one complete version folder (files fsynced, manifest last, folder fsynced)."""
    from safetensors.numpy import save as st_save

    folder.mkdir(parents=True)
    # np.require keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
    arrays = {k: np.require(v, requirements="C") for k, v in tensors.items()}
    full_meta = {
        "format_version": FORMAT_VERSION,
        **meta,
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
    }
    _write_durable(folder / _TENSORS, st_save(arrays) if arrays else st_save({}))
    _write_durable(folder / _META, json.dumps(full_meta, indent=1, sort_keys=False).encode("utf-8"))
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {
            name: {"sha256": _sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
            for name in (_TENSORS, _META)
        },
    }
    _write_durable(folder / _MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))
    fsync_dir(folder)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def save_artifact(
    path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], meta: Mapping[str, Any]
) -> Path:
    """Save arrays (safetensors) and JSON metadata to the artifact directory ``path``, atomically.

    Parameters
    ----------
    path
        The artifact directory. It is created, or, if it already holds an artifact, given a new version.
        An existing non-empty directory that is not an artifact is refused.
    tensors
        Named numpy arrays.
    meta
        JSON-serialisable metadata. ``format_version`` and a ``tensors`` table (shapes, dtypes) are added.

    Returns
    -------
    Path
        The folder of the version written.
    """
    import secrets

    target = Path(path)
    json.dumps(meta)  # fail before touching the disk if meta is not JSON-serialisable
    version = f"v{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)

    if target.exists() and not (target / _CURRENT).is_file():
        if not target.is_dir() or any(target.iterdir()):
            raise ArtifactError(f"{target}: exists and is not a gan4rec artifact; refusing to overwrite it")
        target.rmdir()

    if not target.exists():
        for stale in parent.glob(f".{target.name}.staging-*"):
            _remove_tree(stale)
        staging = parent / f".{target.name}.staging-{secrets.token_hex(4)}"
        try:
            _write_version(staging / version, tensors, meta)
            _write_durable(staging / _CURRENT, version.encode())
            fsync_dir(staging)
            os.rename(staging, target)
        except BaseException:
            _remove_tree(staging)
            raise
        fsync_dir(parent)
        return target / version

    for stale in target.glob(".staging-*"):
        _remove_tree(stale)
    staging = target / f".staging-{version}"
    try:
        _write_version(staging, tensors, meta)
        os.rename(staging, target / version)
    except BaseException:
        _remove_tree(staging)
        raise
    fsync_dir(target)
    atomic_write_text(target / _CURRENT, version)
    for old in target.iterdir():
        if old.is_dir() and old.name != version and old.name.startswith("v"):
            _remove_tree(old)
    return target / version


def _resolve_version(path: Path) -> Path:
    if (path / _CURRENT).is_file():
        name = (path / _CURRENT).read_text(encoding="utf-8").strip()
        if not name or "/" in name or name.startswith("."):
            raise ArtifactError(f"{path / _CURRENT}: does not name a version folder")
        folder = path / name
        if not folder.is_dir():
            raise ArtifactError(f"{path / _CURRENT}: names {name!r}, which is missing")
        return folder
    if (path / _MANIFEST).is_file():
        return path
    if not path.exists():
        raise MissingInputError(f"{path}: no such model artifact")
    raise ArtifactError(f"{path}: not a gan4rec artifact (no {_CURRENT} or {_MANIFEST})")


def read_artifact_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Metadata of an artifact, after checking the manifest and the format version (arrays not read)."""
    return load_artifact(path, tensors=False)[1]


def load_artifact(
    path: str | os.PathLike[str], *, tensors: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load an artifact written by :func:`save_artifact`, verifying it.

    Checks: the manifest's sha256 and size of every file, the format version (too new or too old is a
    clear :class:`ArtifactError`), that the arrays have the shapes and dtypes recorded in the metadata,
    and that every floating-point array is finite.
    """
    folder = _resolve_version(Path(path))
    try:
        manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"{folder / _MANIFEST}: unreadable manifest ({e})") from None
    _check_format(int(manifest.get("format_version", -1)), folder / _MANIFEST)
    for name in (_TENSORS, _META):
        entry = files.get(name)
        if not isinstance(entry, dict) or not (folder / name).is_file():
            raise ArtifactError(f"{folder / name}: missing from the artifact")
        if (folder / name).stat().st_size != entry.get("bytes") or _sha256_file(folder / name) != entry.get("sha256"):
            raise ArtifactError(f"{folder / name}: sha256 does not match the manifest (corrupted or modified)")
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
    except ValueError as e:
        raise ArtifactError(f"{folder / _META}: invalid JSON ({e})") from None
    _check_format(int(meta.get("format_version", -1)), folder / _META)
    if not tensors:
        return {}, meta
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    try:
        arrays = st_load((folder / _TENSORS).read_bytes())
    except (SafetensorError, ValueError) as e:
        raise ArtifactError(f"{folder / _TENSORS}: unreadable ({e})") from None
    declared = meta.get("tensors", {})
    if set(declared) != set(arrays):
        raise ArtifactError(f"{folder / _TENSORS}: holds {sorted(arrays)}, metadata declares {sorted(declared)}")
    for name, arr in arrays.items():
        spec = declared[name]
        if list(arr.shape) != spec.get("shape") or str(arr.dtype) != spec.get("dtype"):
            raise ArtifactError(
                f"{folder / _TENSORS}: tensor {name!r} is {arr.dtype}{list(arr.shape)}, "
                f"expected {spec.get('dtype')}{spec.get('shape')}"
            )
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ArtifactError(f"{folder / _TENSORS}: tensor {name!r} holds non-finite values")
    return arrays, meta


def _check_format(version: int, where: Path) -> None:
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"{where}: artifact format version {version} is newer than this gan4rec reads ({FORMAT_VERSION}); "
            "upgrade gan4rec"
        )
    if version < MIN_FORMAT_VERSION:
        raise ArtifactError(
            f"{where}: artifact format version {version} is older than this gan4rec reads "
            f"({MIN_FORMAT_VERSION}..{FORMAT_VERSION}); re-train or convert it with an older gan4rec"
        )
