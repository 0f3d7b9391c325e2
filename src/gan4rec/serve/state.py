"""The live model of a server and its hot reload.

A :class:`LiveModel` is an immutable snapshot: the loaded, verified model plus everything a request needs
that can be derived once (popularity ranking, titles, capabilities). :class:`ModelSlot` holds the current
snapshot in one attribute. A request reads ``slot.current`` once and uses that object until it answers, so
a reload that swaps the attribute never changes the model under a request in flight: the old snapshot
stays alive (reference counting) until its last request is done.

A reload loads and verifies the new artifact completely, off the event loop, before the swap; any failure
leaves the old snapshot live and is reported (logged, counted, returned).

New items (:mod:`gan4rec.serve.new_items`) are part of the snapshot: ``POST /items``, ``DELETE /items/{id}``,
a changed new-items file and a model reload each build a new snapshot (the same model, or the new one,
with the new items encoded for it) and swap it in under one lock, so a request sees the model and the new
items of one moment. They live in memory only: posted items are lost when the process ends; the file
items come back from the file.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gan4rec.artifacts import current_version
from gan4rec.data.idmap import IdMap
from gan4rec.errors import ArtifactError, DataError, MissingInputError
from gan4rec.serve.new_items import (
    MAX_POSTED_ITEMS,
    NO_NEW_ITEMS,
    NewItemConflictError,
    NewItemDef,
    NewItems,
    NewItemsUnsupportedError,
    canonical_id,
    encode_new_items,
    new_items_support,
    read_new_items_file,
)

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
    new_items
        Items with features but no interactions, ranked after the catalog (index ``n_items + j``).
    new_items_reason
        ``None`` when the model scores new items, else why it cannot.
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
    new_items: NewItems = NO_NEW_ITEMS
    new_items_reason: str | None = None

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
        new_items_reason=new_items_support(model),
    )
    log.info("loaded %s model version %s from %s (%d users, %d items)", live.name, version, root,
             model.n_users, model.n_items)
    return live


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file: modification time, size and inode (a rename changes the inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class ModelSlot:
    """The server's current :class:`LiveModel`, replaced atomically by :meth:`reload` and the new-item methods.

    Parameters
    ----------
    path
        Artifact directory; every reload reads what its ``CURRENT`` names at that moment.
    items_file
        Optional titles file, re-read on each reload (a new model may have new items).
    new_items_file
        Optional new-items file (``item,feature[,value]``, :func:`gan4rec.serve.new_items.read_new_items_file`),
        re-read on each reload and by :meth:`reload_new_items` (when :meth:`new_items_changed`).

    Raises
    ------
    NewItemsUnsupportedError
        ``new_items_file`` is given and the model cannot score new items.
    """

    def __init__(self, path: str | Path, *, items_file: str | Path | None = None,
                 new_items_file: str | Path | None = None) -> None:
        self.path = Path(path)
        self.items_file = Path(items_file) if items_file is not None else None
        self.new_items_file = Path(new_items_file) if new_items_file is not None else None
        self._lock = threading.Lock()  # serialises model reloads
        self._items_lock = threading.Lock()  # serialises every swap of ``current``
        self.reloads = 0
        self.refused = 0
        self.last_error: str | None = None
        self.new_items_error: str | None = None
        self._posted: dict[Any, NewItemDef] = {}  # canonical id -> definition, in posting order
        self._file_defs: list[NewItemDef] = []
        self._file_stamp: tuple[int, int, int] | None = None
        live = load_live(self.path, items_file=self.items_file)
        self._file_defs, self._file_stamp = self._read_file(live)
        self.current: LiveModel = self._snapshot(live, self._file_defs)[0]

    # ------------------------------------------------------------------ model
    def reload(self) -> tuple[LiveModel, LiveModel]:
        """Load, verify, then swap in the artifact's current version; returns ``(old, new)``.

        Blocking (run it in a thread). Reloads are serialised. The new-items file is re-read, and posted
        new items are encoded for the new model (those it cannot take are dropped, logged). On any failure
        (including a bad new-items file) the old model stays live, the error is logged and recorded in
        :attr:`last_error`, and the exception propagates.
        """
        with self._lock:
            old = self.current
            try:
                live = load_live(self.path, items_file=self.items_file)
                with self._items_lock:
                    defs, stamp = self._read_file(live)
                    new, kept = self._snapshot(live, defs, drop_bad_posted=True)
                    self._file_defs, self._file_stamp, self._posted = defs, stamp, kept
                    self.current = new  # one reference assignment: atomic for every reader
            except Exception as e:  # any failure to load means refusing the artifact, never crashing
                self.refused += 1
                self.last_error = f"{type(e).__name__}: {e}"
                log.error("reload refused, still serving %s version %s: %s", old.name, old.version, e)
                raise
            self.reloads += 1
            self.last_error = None
            self.new_items_error = None
            log.info("reloaded: %s %s -> %s %s", old.name, old.version, new.name, new.version)
            return old, new

    # ------------------------------------------------------------------ new items
    def _read_file(self, live: LiveModel) -> tuple[list[NewItemDef], tuple[int, int, int] | None]:
        """The new-items file's definitions (none without a file) and its stamp, read before its content."""
        if self.new_items_file is None:
            return [], None
        if live.new_items_reason is not None:
            raise NewItemsUnsupportedError(f"{self.new_items_file}: {live.new_items_reason}")
        stamp = _stamp(self.new_items_file)
        return read_new_items_file(self.new_items_file), stamp

    def _snapshot(self, live: LiveModel, file_defs: Sequence[NewItemDef], *, drop_bad_posted: bool = False,
                  posted: dict[Any, NewItemDef] | None = None) -> tuple[LiveModel, dict[Any, NewItemDef]]:
        """``live`` with the file's and the posted new items encoded for its model, and the posted ones kept.

        A posted item whose id the file now names gives way to the file's. With ``drop_bad_posted`` (a new
        model), posted items the model cannot take (an id now in its catalog, a column it lacks, no support
        at all) are dropped and logged; file items are never dropped: their errors propagate.
        """
        posted = dict(self._posted if posted is None else posted)
        kind = live.model.item_map_.kind
        for d in file_defs:
            key = canonical_id(kind, d.id, d.where)
            if posted.pop(key, None) is not None:
                log.warning("new item %r of %s replaces the posted item of that id", key, d.where)
        if drop_bad_posted:
            for key, d in list(posted.items()):
                try:
                    encode_new_items(live.model, [d])
                except DataError as e:
                    del posted[key]
                    log.warning("dropped the posted new item %r: the model %s %s cannot take it (%s)", key,
                                live.name, live.version, e)
        items = encode_new_items(live.model, [*file_defs, *posted.values()])
        return replace(live, new_items=items), posted

    def new_items_changed(self) -> bool:
        """Whether the new-items file differs from what was last read (always false without a file)."""
        return self.new_items_file is not None and _stamp(self.new_items_file) != self._file_stamp

    def reload_new_items(self) -> LiveModel:
        """Re-read the new-items file and swap in the current model with its items; returns the snapshot.

        Blocking. On a bad file the old items stay, the error is logged, recorded in
        :attr:`new_items_error` and raised; the file is not retried until it changes again.
        """
        if self.new_items_file is None:
            return self.current
        with self._items_lock:
            live = self.current
            try:
                defs, stamp = self._read_file(live)
                new, kept = self._snapshot(live, defs)
            except Exception as e:
                self._file_stamp = _stamp(self.new_items_file)
                self.new_items_error = f"{type(e).__name__}: {e}"
                log.error("new-items file refused, keeping the %d new items read before: %s",
                          int(live.new_items.from_file.sum()), e)
                raise
            self._file_defs, self._file_stamp, self._posted = defs, stamp, kept
            self.new_items_error = None
            self.current = new
        log.info("new-items file %s re-read: %d new items", self.new_items_file, len(defs))
        return new

    def post_items(self, defs: Sequence[NewItemDef]) -> tuple[LiveModel, list[Any]]:
        """Add new items (none of them already known); returns the new snapshot and their canonical ids.

        Raises
        ------
        NewItemsUnsupportedError
            The live model cannot score new items.
        NewItemConflictError
            An id of the catalog or of a new item, an id given twice, or more than
            :data:`~gan4rec.serve.new_items.MAX_POSTED_ITEMS` posted items.
        DataError
            Bad features (see :func:`~gan4rec.serve.new_items.encode_new_items`).
        """
        with self._items_lock:
            live = self.current
            if live.new_items_reason is not None:
                raise NewItemsUnsupportedError(live.new_items_reason)
            kind = live.model.item_map_.kind
            keys = [canonical_id(kind, d.id, d.where) for d in defs]
            for key, d in zip(keys, defs):
                if live.new_items.get(key) >= 0:
                    raise NewItemConflictError(f"{d.where}: id {key!r} is already a new item; DELETE /items/{key} "
                                               "first to replace it")
            if len(self._posted) + len(defs) > MAX_POSTED_ITEMS:
                raise NewItemConflictError(f"items: the server holds {len(self._posted)} posted items and takes at "
                                           f"most {MAX_POSTED_ITEMS}; delete some, or give them in a --new-items file")
            # Checked with their request positions, then kept under their ids (a reload may re-check them).
            encode_new_items(live.model, defs)
            posted = dict(self._posted)
            for key, d in zip(keys, defs):
                posted[key] = replace(d, id=key, where=f"posted item {key!r}")
            new, kept = self._snapshot(live, self._file_defs, posted=posted)
            self._posted = kept
            self.current = new
        log.info("new items posted: %d (%d new items now)", len(defs), len(new.new_items))
        return new, keys

    def delete_item(self, raw: Any) -> tuple[LiveModel, Any]:
        """Remove a posted new item; returns the new snapshot and its canonical id.

        Raises
        ------
        KeyError
            ``raw`` is no new item.
        NewItemConflictError
            It comes from the new-items file (remove it there).
        """
        with self._items_lock:
            live = self.current
            j = live.new_items.get(raw)
            if j < 0:
                raise KeyError(raw)
            key = live.new_items.raw(np.array([j]))[0]
            if live.new_items.from_file[j]:
                raise NewItemConflictError(f"new item {key!r} comes from the new-items file {self.new_items_file}; "
                                           "remove it there (the file is re-read when it changes)")
            posted = {k: d for k, d in self._posted.items() if k != key}
            new, kept = self._snapshot(live, self._file_defs, posted=posted)
            self._posted = kept
            self.current = new
        log.info("new item %r deleted (%d new items now)", key, len(new.new_items))
        return new, key


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
