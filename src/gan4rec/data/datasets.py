"""Datasets by name: a registry of the MovieLens editions, a verifying download cache, and ``synthetic``.

::

    >>> from gan4rec.data.datasets import load_dataset
    >>> data = load_dataset("ml-100k")          # doctest: +SKIP
    >>> data = load_dataset("synthetic", size="ml-1m", random_state=3)  # doctest: +SKIP

Where the files live
    Dataset ``name`` is the folder ``<cache>/<name>/``, ``<cache>`` being ``$GAN4REC_DATA`` if set, else
    ``$XDG_CACHE_HOME/gan4rec``, else ``~/.cache/gan4rec``. A folder already there is used as it is, without
    any network access and without ever being written to (so ``GAN4REC_DATA`` may point at a read-only
    share). A publisher zip dropped at ``<cache>/<name>.zip`` is unpacked without network access.

Download
    Otherwise :func:`fetch` downloads the publisher's zip (streamed to a temporary file in the cache, with a
    socket timeout), unpacks it safely (no absolute paths, no ``..``, no links or special files, bounded
    size and member count) into a temporary folder, checks the sha256 of every file whose hash is known,
    and only then renames the folder into place: an interrupted or rejected download leaves nothing behind.
    ``offline=True`` or ``GAN4REC_OFFLINE=1`` forbids the network.

Verification
    Hashes are recorded only where known for certain (today: every file of ML-100K). Other editions load
    with a logged warning that the data is unverified. The publisher updates ``ml-latest-small`` in place,
    so no hash can pin it.

Licence
    MovieLens data is under the GroupLens research licence: it may not be redistributed, which is why it is
    downloaded from the publisher rather than shipped.

CiteULike-t
    Implicit saves of scientific articles with the articles' text, tags and citations as item features
    (:func:`gan4rec.data.io.read_citeulike`), for content and cold-start models. It has no licence to
    redistribute and no zip to download: ``$GAN4REC_DATA/citeulike-t/`` must hold a local copy of the
    authors' files, of which ``users.dat`` and ``mult.dat`` are checked against known sha256.

Long because: the registry, the verifying download and the safe unpacking form one trust boundary, and
splitting them would spread the checks of one file over several modules.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from gan4rec.atomic import atomic_write_text, fsync_dir
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError, MissingInputError

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "cache_root",
    "dataset_info",
    "fetch",
    "get_spec",
    "load_dataset",
    "verify",
]

logger = logging.getLogger(__name__)

_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
_LICENCE = "GroupLens research licence; no redistribution"
_SOURCE_FILE = ".gan4rec-source.json"  # provenance written beside the files of a download
_CHUNK = 1 << 20
_OFFLINE_VALUES = ("1", "true", "yes", "on")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Ratings file (required) and side files (read when present) of each MovieLens layout, as the reader
# gan4rec.data.io.read_movielens uses them.
_LAYOUT_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "100k": (("u.data",), ("u.item", "u.user")),
    "1m": (("ratings.dat",), ("movies.dat", "users.dat")),
    "latest": (("ratings.csv",), ("movies.csv", "tags.csv")),
    "20m": (("ratings.csv",), ("movies.csv", "tags.csv")),
    "25m": (("ratings.csv",), ("movies.csv", "tags.csv")),
    "citeulike": (("users.dat", "mult.dat"), ("tag-item.dat", "citations.dat", "vocabulary.dat")),
    "synthetic": ((), ()),
}


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and how to check and read it.

    Parameters
    ----------
    name
        Registry name, also the folder name in the cache.
    layout
        MovieLens layout for :func:`gan4rec.data.io.read_movielens` (``"100k"``, ``"1m"``, ``"latest"``,
        ``"20m"``, ``"25m"``), ``"citeulike"`` (:func:`gan4rec.data.io.read_citeulike`), or ``"synthetic"``.
    description
        One line for humans.
    url
        The publisher's zip (``None`` for generated data).
    folder
        Folder inside the zip that holds the files (``None``: the files are at the top of the zip).
    licence
        Licence note shown by ``gan4rec data info``.
    sha256
        Known sha256 per extracted file name. Only hashes known for certain belong here: a file without
        a hash is unverified, never guessed.
    max_unpacked_bytes, max_members
        Refuse archives that unpack to more than this (zip-bomb guard).
    """

    name: str
    layout: str
    description: str
    url: str | None = None
    folder: str | None = None
    licence: str = _LICENCE
    sha256: Mapping[str, str] = field(default_factory=dict)
    max_unpacked_bytes: int = 4 << 30
    max_members: int = 10_000

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise DataError(f"dataset name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if self.layout not in _LAYOUT_FILES:
            raise DataError(
                f"layout={self.layout!r} of dataset {self.name!r}; expected one of {', '.join(_LAYOUT_FILES)}"
            )
        for fname, digest in self.sha256.items():
            if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
                raise DataError(
                    f"sha256 of {fname!r} in dataset {self.name!r} is {digest!r}; "
                    "expected 64 lowercase hex digits"
                )

    @property
    def required(self) -> tuple[str, ...]:
        """Files that must exist for the dataset to be present (the ratings file)."""
        return _LAYOUT_FILES[self.layout][0]

    @property
    def reads(self) -> tuple[str, ...]:
        """Every file the reader reads when present: the ratings file and the side files."""
        req, side = _LAYOUT_FILES[self.layout]
        return req + side

    @property
    def archive_name(self) -> str:
        """File name of the zip (``ml-1m.zip``)."""
        return PurePosixPath(self.url).name if self.url else f"{self.name}.zip"


def _movielens(
    name: str, layout: str, description: str, sha256: Mapping[str, str] | None = None
) -> DatasetSpec:
    return DatasetSpec(
        name=name, layout=layout, description=description, url=f"{_GROUPLENS}/{name}.zip", folder=name,
        sha256=dict(sha256 or {}),
    )


#: The datasets known by name. Hashes: computed from the publisher's ML-100K files (u.data's also
#: matches the digest published with the project's shared data); none are known for the other editions.
DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": _movielens(
        "ml-100k", "100k",
        "MovieLens 100K: 100,000 ratings (1-5) by 943 users of 1,682 movies, 1997-98; demographics, "
        "genres",
        {
            "README": "b2f69dd0cab50c2b976da7c6113f267169cf0b35ade48de35fe75ed1b81c0f28",
            "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
            "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
            "u.item": "6dd287831559152bea892eb27694a492ff14926ac5f7a16e5f8c4968e6fe13c3",
            "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
            "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
        },
    ),
    "ml-1m": _movielens(
        "ml-1m", "1m",
        "MovieLens 1M: 1,000,209 ratings (1-5) by 6,040 users of 3,706 movies, 2000-03; demographics, genres",
    ),
    "ml-latest-small": _movielens(
        "ml-latest-small", "latest",
        "MovieLens latest-small: about 100,000 ratings (0.5-5) of about 9,000 movies; the publisher "
        "updates it in place, so copies of different years differ",
    ),
    "ml-20m": _movielens(
        "ml-20m", "20m",
        "MovieLens 20M: 20,000,263 ratings (0.5-5) by 138,493 users of 26,744 movies, 1995-2015",
    ),
    "ml-25m": _movielens(
        "ml-25m", "25m",
        "MovieLens 25M: 25,000,095 ratings (0.5-5) by 162,541 users of 59,047 movies, 1995-2019",
    ),
    "citeulike-t": DatasetSpec(
        name="citeulike-t", layout="citeulike", licence="research use; no licence file: do not redistribute",
        description="CiteULike-t (Wang, Chen and Li, IJCAI 2013): 134,860 saves of 25,975 articles by 7,947 "
        "users; implicit; article text (20,000 words), tags and citations; local copy only, no download",
        sha256={"users.dat": "02d5d429b2c0362e0ed79f6ef204666b4092563d21493abf4dfb521e8a7078bf",
                "mult.dat": "5ed81e6fdbf8d475122d4a18d622202571ac80f27be017e194a1957da585283d"},
    ),
    "synthetic": DatasetSpec(
        name="synthetic", layout="synthetic",
        description="Seeded MovieLens-like data with taste clusters, long-tailed popularity, genres, "
        "ratings and timestamps; generated, no download (sizes: ml-100k, ml-1m, ml-20m)",
        licence="generated by gan4rec; no restrictions",
    ),
}


# ---------------------------------------------------------------------------------------------- lookups
def get_spec(name: str | DatasetSpec) -> DatasetSpec:
    """The :class:`DatasetSpec` of a registry name (a spec passes through unchanged)."""
    if isinstance(name, DatasetSpec):
        return name
    spec = DATASETS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return spec


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds one sub-folder per dataset.

    ``cache_dir`` if given, else ``$GAN4REC_DATA``, else ``$XDG_CACHE_HOME/gan4rec``, else
    ``~/.cache/gan4rec``. Nothing is created here.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("GAN4REC_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gan4rec"


def _offline(offline: bool | None) -> bool:
    if offline is not None:
        return bool(offline)
    return os.environ.get("GAN4REC_OFFLINE", "").strip().lower() in _OFFLINE_VALUES


# ---------------------------------------------------------------------------------------------- verify
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(name: str | DatasetSpec, folder: str | os.PathLike[str]) -> bool | None:
    """Check a dataset folder against the known hashes.

    Returns
    -------
    bool or None
        ``True`` when every file the reader reads that is present has a known hash and matches it;
        ``None`` when some of them has no known hash (the data is unverified).

    Raises
    ------
    MissingInputError
        A required file (the ratings file) is absent.
    DataError
        A file's sha256 differs from the known one; the message names the file and both hashes.
    """
    spec = get_spec(name)
    folder = Path(folder)
    for fname in spec.required:
        if not (folder / fname).is_file():
            raise MissingInputError(f"{folder / fname} does not exist (dataset {spec.name!r} needs it)")
    for fname, expected in spec.sha256.items():
        path = folder / fname
        if path.is_file():
            actual = _sha256_file(path)
            if actual != expected:
                raise DataError(
                    f"{path} has sha256 {actual}, expected {expected} for dataset {spec.name!r}: the file is "
                    "corrupt or a different edition"
                )
    present = [f for f in spec.reads if (folder / f).is_file()]
    return True if all(f in spec.sha256 for f in present) else None


# ---------------------------------------------------------------------------------------------- fetch
def fetch(
    name: str | DatasetSpec,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    url: str | None = None,
    offline: bool | None = None,
    timeout: float = 60.0,
) -> Path:
    """The folder of a dataset, downloading and verifying it first if it is not in the cache.

    Parameters
    ----------
    name
        A registry name (see :data:`DATASETS`) or a :class:`DatasetSpec`.
    cache_dir
        Folder holding one sub-folder per dataset; default :func:`cache_root`.
    url
        Download from here instead of the spec's URL (a mirror, or ``file://`` for a local zip).
    offline
        Never touch the network; default: whether ``GAN4REC_OFFLINE`` is ``1``/``true``/``yes``/``on``.
    timeout
        Socket timeout in seconds for connecting and for each read.

    Returns
    -------
    Path
        ``<cache>/<name>``, holding at least the dataset's ratings file.

    Raises
    ------
    MissingInputError
        No copy in the cache and the download is impossible or failed; the message says where to put
        the files.
    DataError
        Unknown name; a file whose hash does not match; an archive that is not a zip, is unsafe or lacks
        the dataset's files.
    """
    return _fetch(get_spec(name), cache_dir=cache_dir, url=url, offline=offline, timeout=timeout)[0]


def _fetch(
    spec: DatasetSpec,
    *,
    cache_dir: str | os.PathLike[str] | None,
    url: str | None,
    offline: bool | None,
    timeout: float,
) -> tuple[Path, bool | None]:
    if spec.layout == "synthetic":
        raise DataError(f"dataset {spec.name!r} is generated, not fetched: use load_dataset({spec.name!r})")
    root = cache_root(cache_dir)
    target = root / spec.name
    if target.is_dir():
        return target, _checked(spec, target)
    if target.exists():
        raise DataError(f"{target} is a file, expected the folder of dataset {spec.name!r}: move it away")

    source = url or spec.url
    local_zip = root / f"{spec.name}.zip"
    if local_zip.is_file():
        logger.info("unpacking %s", local_zip)
        return _install(spec, local_zip, root, source=str(local_zip), zip_sha256=_sha256_file(local_zip))

    if _offline(offline):
        reason = "offline=True" if offline else "offline: GAN4REC_OFFLINE is set"
    elif not source:
        reason = "no download URL is known"
    else:
        try:
            root.mkdir(parents=True, exist_ok=True)
            tmp_zip, digest = _download(source, root, spec, timeout)
        except _DownloadFailed as exc:
            reason = f"download failed: {exc}"
        else:
            try:
                return _install(spec, tmp_zip, root, source=source, zip_sha256=digest)
            finally:
                tmp_zip.unlink(missing_ok=True)
    first = spec.required[0]
    files = f"the files of {spec.archive_name}" if spec.url else f"a copy of its files ({', '.join(spec.reads)})"
    raise MissingInputError(
        f"dataset {spec.name!r} not found: put {files}"
        + (f" ({source})" if source else "")
        + f" so that {target / first} exists, or set GAN4REC_DATA to a folder holding {spec.name}/ ({reason})"
    )


def _checked(spec: DatasetSpec, folder: Path) -> bool | None:
    """Verify an existing folder, with a message that says how to repair it."""
    missing = [f for f in spec.required if not (folder / f).is_file()]
    if missing:
        raise MissingInputError(
            f"{folder} exists but has no {missing[0]}: put the files of {spec.archive_name} there, or remove "
            f"the folder so that dataset {spec.name!r} can be downloaded again"
        )
    try:
        verified = verify(spec, folder)
    except DataError as exc:
        raise DataError(f"{exc}; remove {folder} to download it again") from None
    if verified is None:
        logger.warning(
            "dataset %r in %s is unverified: no sha256 is known for all of its files", spec.name, folder
        )
    return verified


class _DownloadFailed(Exception):
    """A download that did not produce a complete file (network, HTTP, disk)."""


def _download(url: str, root: Path, spec: DatasetSpec, timeout: float) -> tuple[Path, str]:
    """Stream ``url`` into a temporary file in ``root``; return it and its sha256."""
    from gan4rec import __version__

    logger.info("downloading %s", url)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".zip.part", dir=root)
    except OSError as exc:
        raise _DownloadFailed(f"cannot write to {root}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    size = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"gan4rec/{__version__}"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            while chunk := resp.read(_CHUNK):
                size += len(chunk)
                if size > spec.max_unpacked_bytes:
                    raise _DownloadFailed(f"{url} is larger than {spec.max_unpacked_bytes} bytes")
                h.update(chunk)
                out.write(chunk)
            if expected is not None and expected.isdigit() and int(expected) != size:
                raise _DownloadFailed(f"{url} was cut short ({size} of {expected} bytes)")
            out.flush()
            os.fsync(out.fileno())
    except _DownloadFailed:
        tmp.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise _DownloadFailed(f"HTTP {exc.code} {exc.reason} from {url}") from None
    except urllib.error.URLError as exc:
        tmp.unlink(missing_ok=True)
        raise _DownloadFailed(f"{url}: {exc.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # timeouts, resets, cut, bad URL
        tmp.unlink(missing_ok=True)
        raise _DownloadFailed(f"{url}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("downloaded %d bytes from %s (sha256 %s)", size, url, h.hexdigest())
    return tmp, h.hexdigest()


def _install(
    spec: DatasetSpec, zip_path: Path, root: Path, *, source: str, zip_sha256: str
) -> tuple[Path, bool | None]:
    """Unpack ``zip_path`` into a temporary folder, verify it, and rename it to ``root / spec.name``."""
    target = root / spec.name
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", suffix=".unpack", dir=root))
    try:
        _safe_extract(zip_path, work, spec)
        folder = _locate(spec, work, source)
        verified = verify(spec, folder)
        atomic_write_text(folder / _SOURCE_FILE, json.dumps({
            "dataset": spec.name, "url": source, "zip_sha256": zip_sha256,
            "fetched": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }, indent=2) + "\n")
        try:
            os.rename(folder, target)
        except OSError:
            # Another process installed it meanwhile: use theirs (it went through the same checks).
            if not target.is_dir():
                raise
            logger.info("%s appeared while unpacking; keeping the existing copy", target)
            return target, _checked(spec, target)
        fsync_dir(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if verified is None:
        logger.warning("dataset %r is unverified: no sha256 is known for all of its files", spec.name)
    logger.info("dataset %r installed in %s", spec.name, target)
    return target, verified


def _member_parts(name: str, archive: Path) -> tuple[str, ...]:
    """Path components of a zip member, refusing anything that could land outside the target folder."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise DataError(f"{archive}: member {name!r} has an absolute or malformed path; refusing to unpack")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise DataError(
            f"{archive}: member {name!r} points outside the archive folder ('..'); refusing to unpack"
        )
    return parts


def _safe_extract(archive: Path, dest: Path, spec: DatasetSpec) -> None:
    """Unpack regular files and folders of ``archive`` into ``dest``, refusing unsafe members."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise DataError(f"{archive} is not a zip archive (for dataset {spec.name!r})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > spec.max_members:
            raise DataError(f"{archive} has {len(infos)} members, more than the {spec.max_members} allowed")
        plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        total = 0
        for info in infos:
            parts = _member_parts(info.filename, archive)
            # Unix file type bits, when the archiver stored any (many store permissions only).
            kind_bits = stat.S_IFMT(info.external_attr >> 16)
            if info.is_dir():
                plan.append((info, parts))
                continue
            if kind_bits and kind_bits != stat.S_IFREG:
                mode = info.external_attr >> 16
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "a special file"
                raise DataError(f"{archive}: member {info.filename!r} is {kind}; refusing to unpack")
            if not parts:
                raise DataError(f"{archive}: member {info.filename!r} has an empty path; refusing to unpack")
            total += info.file_size
            plan.append((info, parts))
        if total > spec.max_unpacked_bytes:
            raise DataError(
                f"{archive} unpacks to {total} bytes, more than the {spec.max_unpacked_bytes} allowed "
                f"for dataset {spec.name!r}"
            )
        free = shutil.disk_usage(dest).free
        if total > free:
            raise DataError(f"{archive} unpacks to {total} bytes but only {free} are free in {dest}")
        budget = spec.max_unpacked_bytes
        for info, parts in plan:
            out = dest.joinpath(*parts)
            try:
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                # "xb": a second member with the same name is an error, not a silent overwrite.
                with zf.open(info) as src, open(out, "xb") as dst:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        budget -= len(chunk)
                        if written > info.file_size or budget < 0:
                            raise DataError(
                                f"{archive}: member {info.filename!r} unpacks to more than it declares"
                            )
                        dst.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise DataError(f"{archive}: member {info.filename!r} is corrupt ({exc})") from None
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                raise DataError(f"{archive}: member {info.filename!r} clashes with another member") from None
            except (RuntimeError, NotImplementedError) as exc:  # encrypted, unsupported compression
                raise DataError(f"{archive}: member {info.filename!r} cannot be unpacked ({exc})") from None


def _locate(spec: DatasetSpec, work: Path, source: str) -> Path:
    """The unpacked folder that holds the dataset's files: ``<folder>/`` in the zip, or its top level."""
    candidates = ([work / spec.folder] if spec.folder else []) + [work]
    subdirs = [p for p in work.iterdir() if p.is_dir()]
    if len(subdirs) == 1:
        candidates.append(subdirs[0])  # a zip with one top folder under another name
    for folder in candidates:
        if all((folder / f).is_file() for f in spec.required):
            return folder
    raise DataError(
        f"the archive from {source} holds no {(spec.folder + '/') if spec.folder else ''}{spec.required[0]}: "
        f"it is not dataset {spec.name!r}"
    )


# ---------------------------------------------------------------------------------------------- load
def load_dataset(
    name: str | DatasetSpec,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    url: str | None = None,
    timeout: float = 60.0,
    size: str | None = None,
    **kwargs: Any,
) -> Interactions:
    """Load a dataset by name.

    Parameters
    ----------
    name
        A registry name or a :class:`DatasetSpec`.
    cache_dir, offline, url, timeout
        As in :func:`fetch` (ignored for ``synthetic``).
    size
        ``synthetic`` only: a preset of :data:`gan4rec.data.synthetic.SYNTHETIC_SIZES` (``"ml-100k"``,
        ``"ml-1m"``, ``"ml-20m"``); explicit ``n_users``/``n_items``/``n_interactions`` override it.
    **kwargs
        For MovieLens, passed to :func:`gan4rec.data.io.read_movielens` (``min_rating``, k-core filters,
        ...). For ``synthetic``, passed to :func:`gan4rec.data.synthetic.make_synthetic`
        (``random_state``, ...), and ``min_rating`` keeps the interactions rated at least that.

    Returns
    -------
    Interactions

    Examples
    --------
    >>> load_dataset("synthetic", n_users=50, n_items=80, n_interactions=1000).shape
    (50, 80)
    """
    spec = get_spec(name)
    if spec.layout == "synthetic":
        return _load_synthetic(size=size, **kwargs)
    if size is not None:
        raise DataError(f"size={size!r} applies to the synthetic dataset only, not to {spec.name!r}")
    folder, _ = _fetch(spec, cache_dir=cache_dir, url=url, offline=offline, timeout=timeout)
    return _read(spec, folder, **kwargs)


def _read(spec: DatasetSpec, folder: Path, **kwargs: Any) -> Interactions:
    """Read a fetched folder with the reader of its layout (``min_rating=None`` is fine for any)."""
    from gan4rec.data import io

    if spec.layout == "citeulike":
        if kwargs.pop("min_rating", None) is not None:
            raise DataError(f"dataset {spec.name!r} is implicit (no ratings): min_rating does not apply")
        return io.read_citeulike(folder, **kwargs)
    return io.read_movielens(folder, layout=spec.layout, **kwargs)


def _load_synthetic(*, size: str | None, min_rating: float | None = None, **kwargs: Any) -> Interactions:
    from gan4rec.data.synthetic import SYNTHETIC_SIZES, make_synthetic

    if size is not None:
        if size not in SYNTHETIC_SIZES:
            raise DataError(f"size={size!r}; expected one of {', '.join(SYNTHETIC_SIZES)}")
        for key, value in zip(("n_users", "n_items", "n_interactions"), SYNTHETIC_SIZES[size]):
            kwargs.setdefault(key, value)
    data = make_synthetic(**kwargs)
    if min_rating is not None:
        assert data.ratings is not None  # the generator always makes ratings
        data = data.subset(data.ratings >= min_rating)
    return data


def dataset_info(
    name: str | DatasetSpec,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """A JSON-ready summary of a dataset (fetching it if needed), as printed by ``gan4rec data info``.

    Keys: ``name``, ``description``, ``licence``, ``url``, ``layout``, ``folder`` (``None`` for synthetic
    data), ``verified`` (``True``: every file read matched a known sha256; ``None``: unverified or
    generated; a mismatch raises instead), ``source`` (provenance of a download, when recorded),
    ``n_users``, ``n_items``, ``n_interactions``, ``density``, ``ratings`` (``{"values", "counts"}`` or
    ``None``), ``timestamps`` (``{"min", "max", "min_utc", "max_utc"}`` or ``None``), ``user_features`` and
    ``item_features`` (names), ``fingerprint``. ``kwargs`` go to :func:`load_dataset`.
    """
    spec = get_spec(name)
    info: dict[str, Any] = {
        "name": spec.name, "description": spec.description, "licence": spec.licence, "url": spec.url,
        "layout": spec.layout, "folder": None, "verified": None, "source": None,
    }
    if spec.layout == "synthetic":
        data = load_dataset(spec, **kwargs)
        info["generator"] = {k: v for k, v in kwargs.items() if isinstance(v, (int, float, str, bool))}
    else:
        folder, verified = _fetch(spec, cache_dir=cache_dir, url=None, offline=offline, timeout=60.0)
        info["folder"], info["verified"] = str(folder), verified
        marker = folder / _SOURCE_FILE
        if marker.is_file():
            try:
                info["source"] = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                logger.warning("%s is unreadable; ignoring it", marker)
        data = _read(spec, folder, **kwargs)
    info.update(_summary(data))
    return info


def _summary(data: Interactions) -> dict[str, Any]:
    n_cells = data.n_users * data.n_items
    out: dict[str, Any] = {
        "n_users": data.n_users,
        "n_items": data.n_items,
        "n_interactions": data.nnz,
        "density": data.nnz / n_cells if n_cells else 0.0,
        "ratings": None,
        "timestamps": None,
        "user_features": sorted(data.user_features),
        "item_features": sorted(data.item_features),
        "fingerprint": data.fingerprint(),
    }
    if data.ratings is not None and data.nnz:
        values, counts = np.unique(data.ratings, return_counts=True)
        out["ratings"] = {"values": [float(v) for v in values], "counts": [int(c) for c in counts]}
    if data.timestamps is not None and data.nnz:
        lo, hi = int(data.timestamps.min()), int(data.timestamps.max())
        out["timestamps"] = {"min": lo, "max": hi, "min_utc": _utc(lo), "max_utc": _utc(hi)}
    return out


def _utc(seconds: int) -> str | None:
    try:
        return _dt.datetime.fromtimestamp(seconds, _dt.UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return None
