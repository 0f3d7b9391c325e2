"""The live model of a server and its hot reload.

A :class:`LiveModel` is an immutable snapshot: the loaded, verified model plus everything a request needs
that can be derived once (popularity ranking, titles, capabilities). :class:`ModelSlot` holds the current
snapshot in one attribute. A request reads ``slot.current`` once and uses that object until it answers, so
a reload that swaps the attribute never changes the model under a request in flight: the old snapshot
stays alive (reference counting) until its last request is done.

A reload loads and verifies the new artifact completely, off the event loop, before the swap; any failure
leaves the old snapshot live and is reported (logged, counted, returned).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan4rec.artifacts import current_version
from gan4rec.data.idmap import IdMap
from gan4rec.errors import ArtifactError, DataError, MissingInputError

__all__ = ["LiveModel", "ModelSlot", "echo_id", "load_live", "lookup_id", "read_item_titles"]

log = logging.getLogger(__name__)

_INT_ID = re.compile(r"-?[0-9]{1,19}")
# Users scored when verifying a freshly loaded model.
_PROBE_USERS = 8


def lookup_id(idmap: IdMap, raw: Any) -> int:
    """Index of a raw id from a request, ``-1`` when unknown.

    Integer maps accept JSON integers and plain decimal strings only: Python's ``int()`` would also take
    ``" 7"``, ``"1_000"`` or non-ASCII digits, which are not the id a client meant.
    """
    if idmap.kind == "int" and isinstance(raw, str):
        if not _INT_ID.fullmatch(raw):
            return -1
        raw = int(raw)
        if not -(2**63) <= raw < 2**63:
            return -1
    return idmap.get(raw)


def echo_id(idmap: IdMap, raw: Any) -> Any:
    """A raw id from a request as a response gives it back: in the type ``idmap`` holds where it converts.

    Integer maps: a JSON integer stays; a decimal string in the int64 range (what :func:`lookup_id` takes
    for an integer id, such as a query string's ``"42"``) becomes that integer; anything else is echoed as
    sent. String maps: a string stays; an integer becomes its decimal string (the key it was looked up by).
    """
    if idmap.kind == "int":
        if isinstance(raw, str) and _INT_ID.fullmatch(raw):
            value = int(raw)
            if -(2**63) <= value < 2**63:
                return value
        return raw
    return raw if isinstance(raw, str) else str(raw)


@dataclass(frozen=True, eq=False)
class LiveModel:
    """A loaded, verified model and what requests derive from it. Never mutated after creation.

    Attributes
    ----------
    model
        The recommender.
    version
        The artifact version folder it was loaded from (the name in ``CURRENT``).
    path
        The artifact directory.
    loaded_at
        Unix time of the load.
    popularity
        ``(n_items,)`` float32 training interaction counts: the scores of the popularity fallback.
    user_counts
        ``(n_users,)`` training interactions per user.
    titles
        ``(n_items,)`` object array of titles (``None`` where unknown), or ``None`` without a titles file.
    titles_lower
        Lower-cased titles as a numpy string array for search (``""`` where unknown), or ``None``.
    fold_in_reason
        ``None`` when the model folds in ad-hoc histories, else why it cannot.
    explain_method
        The method of :func:`gan4rec.explain.explain` for this model, ``None`` when unsupported.
    """

    model: Any
    version: str
    path: Path
    loaded_at: float
    popularity: np.ndarray
    user_counts: np.ndarray
    titles: np.ndarray | None
    titles_lower: np.ndarray | None
    fold_in_reason: str | None
    explain_method: str | None

    @property
    def name(self) -> str:
        return str(self.model.name)

    def title(self, idx: int) -> str | None:
        return None if self.titles is None else self.titles[idx]


def _version_folder(path: Path) -> tuple[str, Path]:
    """The version name and folder an artifact directory currently points at (read bounded and checked)."""
    return current_version(path)


def _verify(model: Any) -> None:
    """Score a few training users (and, where supported, their histories folded in): shapes and finiteness."""
    counts = model.seen_.user_counts()
    users = np.flatnonzero(counts > 0)[:_PROBE_USERS]
    if len(users) == 0:
        raise ArtifactError("the model's training data holds no interactions; nothing to serve")
    scores = model.score(users)  # (p, n_items)
    if scores.shape != (len(users), model.n_items):
        raise ArtifactError(f"the model scores shape {scores.shape}, expected {(len(users), model.n_items)}")
    if not np.isfinite(scores).all():
        raise ArtifactError("the model produces non-finite scores for training users; refusing to serve it")
    from gan4rec.explain import fold_in_scores, fold_in_support

    if fold_in_support(model) is None:
        folded = fold_in_scores(model, model.seen_.csr()[users])
        if folded.shape != scores.shape or not np.isfinite(folded).all():
            raise ArtifactError("the model produces non-finite or misshaped scores for a folded-in history")


def load_live(path: str | Path, *, items_file: str | Path | None = None) -> LiveModel:
    """Load the artifact at ``path``, verify it (checksums, finiteness, a scoring probe) and snapshot it.

    Raises
    ------
    ArtifactError, MissingInputError, DataError
        The artifact is missing, corrupt, unreadable or its model misbehaves; nothing is returned.
    """
    from gan4rec.explain import explanation_method, fold_in_support
    from gan4rec.models.base import Recommender

    root = Path(path)
    for attempt in range(2):
        version, folder = _version_folder(root)
        try:
            model = Recommender.load(folder)
            break
        except (ArtifactError, MissingInputError):
            # A save that lands during the load flips CURRENT and deletes the folder being read; the
            # load then fails for a reason that a second read of CURRENT resolves.
            if attempt == 1 or _version_folder(root)[0] == version:
                raise
    _verify(model)
    titles = read_item_titles(items_file, model.item_map_) if items_file is not None else None
    lower = None
    if titles is not None:
        lower = np.array([(t or "").lower() for t in titles.tolist()], dtype=str)
    live = LiveModel(
        model=model,
        version=version,
        path=root,
        loaded_at=time.time(),
        popularity=model.seen_.item_counts().astype(np.float32),
        user_counts=np.asarray(model.seen_.user_counts()),
        titles=titles,
        titles_lower=lower,
        fold_in_reason=fold_in_support(model),
        explain_method=explanation_method(model),
    )
    log.info("loaded %s model version %s from %s (%d users, %d items)", live.name, version, root,
             model.n_users, model.n_items)
    return live


class ModelSlot:
    """The server's current :class:`LiveModel`, replaced atomically by :meth:`reload`.

    Parameters
    ----------
    path
        Artifact directory; every reload reads what its ``CURRENT`` names at that moment.
    items_file
        Optional titles file, re-read on each reload (a new model may have new items).
    """

    def __init__(self, path: str | Path, *, items_file: str | Path | None = None) -> None:
        self.path = Path(path)
        self.items_file = Path(items_file) if items_file is not None else None
        self._lock = threading.Lock()
        self.reloads = 0
        self.refused = 0
        self.last_error: str | None = None
        self.current: LiveModel = load_live(self.path, items_file=self.items_file)

    def reload(self) -> tuple[LiveModel, LiveModel]:
        """Load, verify, then swap in the artifact's current version; returns ``(old, new)``.

        Blocking (run it in a thread). Reloads are serialised. On any failure the old model stays live,
        the error is logged and recorded in :attr:`last_error`, and the exception propagates.
        """
        with self._lock:
            old = self.current
            try:
                new = load_live(self.path, items_file=self.items_file)
            except Exception as e:  # any failure to load means refusing the artifact, never crashing
                self.refused += 1
                self.last_error = f"{type(e).__name__}: {e}"
                log.error("reload refused, still serving %s version %s: %s", old.name, old.version, e)
                raise
            self.current = new  # one reference assignment: atomic for every reader
            self.reloads += 1
            self.last_error = None
            log.info("reloaded: %s %s -> %s %s", old.name, old.version, new.name, new.version)
            return old, new


# ------------------------------------------------------------------------------------------------ titles
_ID_COLUMNS = ("item", "item_id", "itemid", "movieid", "movie_id", "id")
_TITLE_COLUMNS = ("title", "name", "item_title")


def _decode(data: bytes) -> str:
    # MovieLens side files before ml-latest are latin-1; newer ones are UTF-8.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _parse_id(text: str, kind: str) -> Any:
    text = text.strip()
    if kind == "int":
        return int(text) if _INT_ID.fullmatch(text) else None
    return text or None


def read_item_titles(path: str | Path, item_map: IdMap) -> np.ndarray:
    """Item titles aligned with ``item_map``: ``(n_items,)`` object array, ``None`` where the file has none.

    Recognised files: MovieLens ``u.item`` (``id|title|...``), ``movies.dat`` (``id::title::genres``) and
    any CSV/TSV with a header naming an id column (``item``, ``item_id``, ``movieId``, ``id``) and a title
    column (``title``, ``name``), such as ml-latest's ``movies.csv``. Rows of ids the model does not know
    are ignored.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"{p}: no such items file")
    text = _decode(p.read_bytes())
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    pairs: list[tuple[str, str]] = []
    if "::" in first:
        for ln in lines:
            parts = ln.split("::")
            if len(parts) >= 2:
                pairs.append((parts[0], parts[1]))
    elif "|" in first and "," not in first.split("|")[0]:
        for ln in lines:
            parts = ln.split("|")
            if len(parts) >= 2:
                pairs.append((parts[0], parts[1]))
    else:
        tabs = p.suffix.lower() == ".tsv" or ("\t" in first and "," not in first)
        dialect = "excel-tab" if tabs else "excel"
        rows = csv.reader(io.StringIO(text), dialect=dialect)
        header = [h.strip().lower() for h in next(rows, [])]
        id_col = next((header.index(c) for c in _ID_COLUMNS if c in header), None)
        title_col = next((header.index(c) for c in _TITLE_COLUMNS if c in header), None)
        if id_col is None or title_col is None:
            raise DataError(
                f"{p}:1: header {header!r} lacks an id column ({', '.join(_ID_COLUMNS)}) or a title column "
                f"({', '.join(_TITLE_COLUMNS)})"
            )
        for row in rows:
            if len(row) > max(id_col, title_col):
                pairs.append((row[id_col], row[title_col]))
    titles = np.full(len(item_map), None, dtype=object)
    found = unknown = 0
    for raw, title in pairs:
        key = _parse_id(raw, item_map.kind)
        idx = item_map.get(key) if key is not None else -1
        if idx < 0:
            unknown += 1
            continue
        titles[idx] = title.strip() or None
        found += 1
    if found == 0:
        raise DataError(f"{p}: none of its {len(pairs)} rows names an item of the model; wrong items file?")
    log.info("%s: titles for %d of %d items (%d rows of unknown items ignored)", p, found, len(item_map),
             unknown)
    return titles
