"""Safe, atomic persistence: safetensors for arrays, JSON for everything else, never pickle."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import socket
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan4rec.atomic import atomic_path, atomic_write_bytes, atomic_write_text, fsync_dir, new_file_mode
from gan4rec.errors import ArtifactError, MissingInputError

__all__ = [
    "FORMAT_VERSION",
    "MAX_ABS_VALUE",
    "MAX_WEIGHT_BYTES",
    "OpenArtifact",
    "TensorInfo",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_finite",
    "check_model_meta",
    "current_version",
    "fsync_dir",
    "load_artifact",
    "new_file_mode",
    "one_line",
    "open_artifact",
    "read_artifact_meta",
    "save_artifact",
    "sweep_stale",
]

log = logging.getLogger(__name__)

# The atomic writes live in gan4rec.atomic; they stay importable from here, where callers found them first.


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
# either the previous complete artifact or none. Staging folders (``m/.staging-<version>-pid<P>-<host>``,
# and a first save's ``.m.staging-<hex>-pid<P>-<host>`` beside ``m``) name the process that writes them,
# so a later save or load can tell one left by a killed save (see :func:`sweep_stale`).
#
# Loading treats every file as hostile input: the manifest is a checksum, not a signature, so anyone who
# can write the folder can rewrite a file and recompute it. What is read is bounded (CURRENT, manifest and
# metadata sizes, JSON nesting), every structure is type-checked, and the tensor table is compared with
# the metadata before any array is read (and, by :meth:`gan4rec.models.base.Recommender.load`, with what
# the model class expects).

FORMAT_VERSION = 1
"""Version written by this gan4rec."""
MIN_FORMAT_VERSION = 1
"""Oldest version this gan4rec can read."""
MAX_WEIGHT_BYTES = 1 << 37
"""Most bytes of weights a saved model's params may describe (128 GiB), checked before anything is built."""
MAX_ABS_VALUE = 1e30
"""Largest magnitude a saved model's weight or probe score may have: finite and far inside float32."""

_TENSORS = "tensors.safetensors"
_META = "meta.json"
_MANIFEST = "MANIFEST.json"
_CURRENT = "CURRENT"
_MAX_CURRENT_BYTES = 256
_MAX_MANIFEST_BYTES = 1 << 20
_MAX_META_BYTES = 1 << 30
_MAX_JSON_DEPTH = 32
_STALE_SECONDS = 60.0
_VERSION_NAME = re.compile(r"v[0-9A-Za-z._-]{1,127}")
_STAGING_OWNER = re.compile(r"-pid([0-9]{1,12})-([0-9a-f]{8})$")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# numpy dtype of each safetensors dtype gan4rec reads (BF16 and the 8-bit floats have none).
_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64", "I32": "int32", "I16": "int16",
    "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}


def one_line(text: object, limit: int = 300) -> str:
    """``str(text)`` on one line, at most ``limit`` characters (for messages that quote a file's content)."""
    s = str(text).replace("\r", "\\r").replace("\n", "\\n")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", type(None): "null"}


def _json_type(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words ("an object", "null", ...)."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


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


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _owner_tag() -> str:
    """Suffix of a staging folder's name: the writing process and (hashed) host."""
    return f"-pid{os.getpid()}-{_host_tag()}"


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
        sweep_stale(target)
        staging = parent / f".{target.name}.staging-{secrets.token_hex(4)}{_owner_tag()}"
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

    sweep_stale(target)
    staging = target / f".staging-{version}{_owner_tag()}"
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


# ---------------------------------------------------------------------------------------------- staging
def _pid_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):
        return False  # no such process can exist
    except OSError:
        return True  # e.g. EPERM: it exists, owned by someone else
    return True


def _newest_mtime(folder: Path) -> float:
    newest = 0.0
    for root, dirs, files in os.walk(folder):
        for name in (root, *(os.path.join(root, f) for f in (*dirs, *files))):
            try:
                newest = max(newest, os.lstat(name).st_mtime)
            except OSError:
                pass
    return newest


def _is_stale(folder: Path, now: float) -> bool:
    """Stale: its writer (on this host) is gone, or nothing in it changed for a minute."""
    owner = _STAGING_OWNER.search(folder.name)
    if owner and owner.group(2) == _host_tag() and not _pid_alive(int(owner.group(1))):
        return True
    return now - _newest_mtime(folder) > _STALE_SECONDS


def sweep_stale(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging folders that interrupted saves to the artifact ``path`` left; return them.

    A save killed midway leaves a hidden staging folder as large as the model: ``path/.staging-*``, or
    for a first save ``.<name>.staging-*`` beside ``path``. One is removed only when clearly stale: the
    process that wrote it (named in the folder's name, on this host) is gone, or nothing in it was
    written for a minute. Version folders are never touched. Saves and loads both sweep; a folder that
    cannot be removed (read-only storage) is left, logged at debug level.
    """
    target = Path(path)
    candidates: list[Path] = []
    for folder, prefix in ((target, ".staging-"), (target.parent, f".{target.name}.staging-")):
        try:
            candidates += [p for p in folder.iterdir() if p.name.startswith(prefix) and p.is_dir()]
        except OSError:
            continue
    removed = []
    now = time.time()
    for stale in candidates:
        if not _is_stale(stale, now):
            continue
        try:
            shutil.rmtree(stale)
        except OSError as e:
            log.debug("could not remove the stale staging folder %s: %s", stale, e)
            continue
        log.warning("removed %s, a staging folder left by an interrupted save", stale)
        removed.append(stale)
    return removed


# ---------------------------------------------------------------------------------------------- reading
def _read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``; an :class:`ArtifactError` if longer than ``limit``."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ArtifactError(f"{path}: not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing from the artifact") from None
    except OSError as e:
        raise ArtifactError(f"{path}: unreadable ({one_line(e)})") from None
    if len(data) > limit:
        raise ArtifactError(f"{path}: larger than {limit} bytes, which no gan4rec artifact writes")
    return data


def _check_depth(obj: Any, where: Path) -> None:
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            raise ArtifactError(f"{where}: JSON nested deeper than {_MAX_JSON_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def _read_json(path: Path, limit: int) -> Any:
    """Parse the JSON file ``path`` (bounded size and nesting; strict UTF-8)."""
    data = _read_bounded(path, limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArtifactError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        obj = json.loads(text)
    except RecursionError:
        raise ArtifactError(f"{path}: JSON nested too deeply") from None
    except ValueError as e:
        raise ArtifactError(f"{path}: invalid JSON ({one_line(e)})") from None
    if isinstance(obj, (dict, list)):
        _check_depth(obj, path)
    return obj


def current_version(path: str | os.PathLike[str]) -> tuple[str, Path]:
    """The version that the artifact directory ``path`` holds live: ``(name in CURRENT, its folder)``.

    A bare version folder (``MANIFEST.json`` inside) is its own version. ``CURRENT`` is read bounded and
    must hold a version folder's name (``v`` then letters, digits, ``._-``) in UTF-8.
    """
    root = Path(path)
    current = root / _CURRENT
    if current.exists() or current.is_symlink():
        data = _read_bounded(current, _MAX_CURRENT_BYTES)
        try:
            name = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ArtifactError(f"{current}: not UTF-8 text; it must name a version folder") from None
        if not _VERSION_NAME.fullmatch(name):
            raise ArtifactError(f"{current}: {one_line(repr(name), 80)} does not name a version folder")
        folder = root / name
        if not folder.is_dir():
            raise ArtifactError(f"{current}: names {name!r}, which is missing")
        return name, folder
    if (root / _MANIFEST).is_file():
        return root.name, root
    if not root.exists():
        raise MissingInputError(f"{root}: no such model artifact")
    raise ArtifactError(f"{root}: not a gan4rec artifact (no {_CURRENT} or {_MANIFEST})")


def _check_format(version: Any, where: Path) -> None:
    if not _is_int(version):
        raise ArtifactError(f"{where}: format_version is {one_line(repr(version), 60)}, expected an integer")
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


def _verify_file(folder: Path, name: str, entry: Any, limit: int | None) -> int:
    """Check one file against its manifest entry (size first, then sha256); returns its size."""
    path = folder / name
    if not isinstance(entry, dict):
        raise ArtifactError(f"{folder / _MANIFEST}: has no entry for {name}")
    size, digest = entry.get("bytes"), entry.get("sha256")
    if not (isinstance(size, int) and _is_int(size) and size >= 0 and isinstance(digest, str)
            and _SHA256.fullmatch(digest)):
        raise ArtifactError(f"{folder / _MANIFEST}: the entry of {name} needs 'bytes' (an int) and 'sha256'")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing from the artifact") from None
    except OSError as e:
        raise ArtifactError(f"{path}: unreadable ({one_line(e)})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ArtifactError(f"{path}: not a regular file")
    if limit is not None and st.st_size > limit:
        raise ArtifactError(f"{path}: larger than {limit} bytes, which no gan4rec artifact writes")
    if st.st_size != size or _sha256_file(path) != digest:
        raise ArtifactError(f"{path}: sha256 does not match the manifest (corrupted or modified)")
    return int(st.st_size)


@dataclass(frozen=True)
class TensorInfo:
    """dtype (numpy name) and shape of a saved array, as its header or the metadata declares it."""

    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        try:
            size = 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize
        except TypeError:
            size = 8  # a dtype numpy does not know: count it as the widest
        return math.prod(self.shape) * size

    def __str__(self) -> str:
        return f"{self.dtype}{list(self.shape)}"


def _tensor_table(obj: Any, where: Path) -> dict[str, TensorInfo]:
    """The metadata's ``tensors`` table, type-checked."""
    if not isinstance(obj, dict):
        raise ArtifactError(f"{where}: 'tensors' is {_json_type(obj)}, expected an object")
    out = {}
    for name, spec in obj.items():
        shape = spec.get("shape") if isinstance(spec, dict) else None
        dtype = spec.get("dtype") if isinstance(spec, dict) else None
        dims_ok = isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape)
        if not (dims_ok and isinstance(shape, list) and isinstance(dtype, str)):
            raise ArtifactError(
                f"{where}: tensors[{one_line(repr(name), 80)}] is {one_line(repr(spec), 80)}, "
                "expected {'shape': [non-negative ints], 'dtype': name}"
            )
        out[name] = TensorInfo(dtype, tuple(shape))
    return out


def _read_header(path: Path) -> dict[str, TensorInfo]:
    """The safetensors header of ``path``: every array's dtype and shape, without reading the arrays."""
    from safetensors import SafetensorError, safe_open

    raw: dict[str, tuple[str, list[int]]] = {}
    try:
        with safe_open(str(path), framework="numpy") as f:
            names = f.keys()
            for name in names:
                sl = f.get_slice(name)
                raw[name] = (sl.get_dtype(), sl.get_shape())
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError) as e:
        raise ArtifactError(f"{path}: unreadable safetensors file ({one_line(e)})") from None
    out = {}
    for name, (st_dtype, shape) in raw.items():
        if st_dtype not in _DTYPES:
            raise ArtifactError(
                f"{path}: tensor {one_line(repr(name), 80)} has dtype {st_dtype}, which gan4rec does not read"
            )
        out[name] = TensorInfo(_DTYPES[st_dtype], tuple(int(d) for d in shape))
    return out


def check_finite(arr: np.ndarray, what: str, *, bound: float = math.inf) -> None:
    """Raise :class:`ArtifactError` if the float array ``arr`` holds a NaN, an infinity, or ``|x| > bound``.

    Two reductions (min and max) and no temporary array, so it costs little even on large weights.
    """
    if arr.dtype.kind != "f" or arr.size == 0:
        return
    lo, hi = float(arr.min()), float(arr.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ArtifactError(f"{what} holds non-finite values")
    if max(-lo, hi) > bound:
        raise ArtifactError(f"{what} holds values of magnitude {max(-lo, hi):.3g}, above {bound:g}")


class OpenArtifact:
    """An artifact version whose files are verified and whose metadata and tensor table are read.

    Attributes
    ----------
    folder
        The version folder.
    meta
        The metadata (a dict; format version checked).
    header
        Name -> :class:`TensorInfo` of every array, from the safetensors header, equal to the metadata's
        ``tensors`` table (from the metadata alone when opened with ``header=False``).
    tensors_bytes
        Size of the tensors file.
    """

    def __init__(self, folder: Path, meta: dict[str, Any], header: dict[str, TensorInfo], tensors_bytes: int):
        self.folder, self.meta, self.header, self.tensors_bytes = folder, meta, header, tensors_bytes

    def read(self) -> dict[str, np.ndarray]:
        """Read every array (checked against the header; float arrays finite)."""
        from safetensors import SafetensorError, safe_open

        path = self.folder / _TENSORS
        arrays: dict[str, np.ndarray] = {}
        try:
            with safe_open(str(path), framework="numpy") as f:
                for name in self.header:
                    arrays[name] = f.get_tensor(name)
        except (SafetensorError, OSError, ValueError, TypeError, RuntimeError) as e:
            raise ArtifactError(f"{path}: unreadable ({one_line(e)})") from None
        for name, arr in arrays.items():
            spec = self.header[name]
            if TensorInfo(str(arr.dtype), tuple(arr.shape)) != spec:
                raise ArtifactError(f"{path}: tensor {name!r} is {arr.dtype}{list(arr.shape)}, not {spec}")
            check_finite(arr, f"{path}: tensor {name!r}")
        return arrays


def open_artifact(path: str | os.PathLike[str], *, header: bool = True) -> OpenArtifact:
    """Verify the artifact at ``path`` and read its metadata and tensor table (not the arrays).

    Checks, in order, each a one-line :class:`ArtifactError`: ``CURRENT`` names a version folder; the
    manifest is a bounded JSON object with a ``files`` object; each file's size and sha256 match it;
    both format versions are integers this gan4rec reads; the metadata is a bounded JSON object (at
    most 1 GiB, nested at most 32 deep); its ``tensors`` table is well-formed and (with ``header``)
    names exactly the arrays of the safetensors header, with the same dtypes and shapes. Stale staging
    folders of interrupted saves beside the version are swept first (:func:`sweep_stale`).
    """
    root = Path(path)
    in_artifact = not (root / _CURRENT).exists() and (root.parent / _CURRENT).is_file()
    sweep_stale(root.parent if in_artifact else root)  # a version folder's artifact, or the artifact
    _, folder = current_version(root)
    manifest = _read_json(folder / _MANIFEST, _MAX_MANIFEST_BYTES)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ArtifactError(f"{folder / _MANIFEST}: not a manifest (an object with a 'files' object)")
    _check_format(manifest.get("format_version"), folder / _MANIFEST)
    files = manifest["files"]
    tensors_bytes = _verify_file(folder, _TENSORS, files.get(_TENSORS), None)
    _verify_file(folder, _META, files.get(_META), _MAX_META_BYTES)
    meta = _read_json(folder / _META, _MAX_META_BYTES)
    if not isinstance(meta, dict):
        raise ArtifactError(f"{folder / _META}: holds {_json_type(meta)}, expected an object")
    _check_format(meta.get("format_version"), folder / _META)
    declared = _tensor_table(meta.get("tensors", {}), folder / _META)
    if not header:
        return OpenArtifact(folder, meta, declared, tensors_bytes)
    found = _read_header(folder / _TENSORS)
    if set(declared) != set(found):
        raise ArtifactError(
            f"{folder / _TENSORS}: holds {one_line(sorted(found), 200)}, "
            f"metadata declares {one_line(sorted(declared), 200)}"
        )
    for name, spec in found.items():
        if declared[name] != spec:
            raise ArtifactError(
                f"{folder / _TENSORS}: tensor {one_line(repr(name), 80)} is {spec}, expected {declared[name]}"
            )
    return OpenArtifact(folder, meta, found, tensors_bytes)


def load_artifact(
    path: str | os.PathLike[str], *, tensors: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load an artifact written by :func:`save_artifact`, verifying it (see :func:`open_artifact`).

    Every floating-point array must be finite. With ``tensors=False`` the arrays are not read.
    """
    art = open_artifact(path, header=tensors)
    return (art.read() if tensors else {}), art.meta


# ---------------------------------------------------------------------------------------------- models
# Types of the keys of a saved model's metadata (Recommender.save and `gan4rec train --save` write them).
_MODEL_META: dict[str, tuple[type, ...]] = {
    "model": (str,), "params": (dict,), "adversarial": (bool,), "versions": (dict,), "user_map": (dict,),
    "item_map": (dict,), "train_fingerprint": (str,), "history": (list,), "split_fingerprint": (str,),
    "split": (dict,), "data": (dict,), "protocol": (dict,), "seed": (int, type(None)), "metrics": (dict,),
}
# Types of the protocol record's keys (`gan4rec evaluate` re-splits with it; its values are checked there).
_PROTOCOL: dict[str, tuple[type, ...]] = {
    "split": (str,), "test_frac": (int, float), "valid_frac": (int, float), "k": (int,), "split_seed": (int,),
    "refit": (str,), "ks": (list,), "metric": (str,), "valid_repeats": (int,), "evaluation": (dict,),
}


def _check_types(obj: dict[str, Any], types: dict[str, tuple[type, ...]], what: str) -> None:
    for key, allowed in types.items():
        value = obj.get(key)
        if key not in obj:
            continue
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join(_JSON_NAMES[t] for t in allowed)
            raise ArtifactError(f"{what} {key!r} is {_json_type(value)}, expected {names}")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ArtifactError(f"{what} {key!r} is {value}, outside the 64-bit integers")


def check_model_meta(meta: dict[str, Any], where: str | os.PathLike[str]) -> None:
    """Raise :class:`ArtifactError` unless ``meta`` has the structure of a saved model's metadata.

    ``model``, ``params`` and both id maps must be there; these and the other known keys must have their
    JSON types (an id map: ``{"kind": "int" | "str", "ids": [...]}``; ``history``: a list of objects).
    """
    for key in ("model", "params", "user_map", "item_map"):
        if key not in meta:
            raise ArtifactError(f"{where}: metadata lacks {key!r}; not a saved gan4rec model")
    _check_types(meta, _MODEL_META, f"{where}: metadata")
    _check_types(meta.get("protocol", {}), _PROTOCOL, f"{where}: metadata protocol")
    ks = meta.get("protocol", {}).get("ks", [1])
    if not all(_is_int(k) and 1 <= k < 2**31 for k in ks):
        raise ArtifactError(f"{where}: metadata protocol 'ks' must list positive list lengths")
    for key in ("user_map", "item_map"):
        m = meta[key]
        if m.get("kind") not in ("int", "str") or not isinstance(m.get("ids"), list):
            raise ArtifactError(f"{where}: metadata {key!r} needs 'kind' ('int' or 'str') and a list 'ids'")
    if not all(isinstance(row, dict) for row in meta.get("history", [])):
        raise ArtifactError(f"{where}: metadata 'history' must be a list of objects")


def read_artifact_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Metadata of a saved model, after checking manifest, format version and structure (arrays not read)."""
    art = open_artifact(path, header=False)
    check_model_meta(art.meta, art.folder / _META)
    return art.meta
