"""The GroupLens MovieLens layouts (100K, 1M/10M, latest/20M/25M/32M), side files turned into features."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Duplicates, Interactions
from gan4rec.data.io.common import (
    BadRows,
    OnBadRows,
    Spec,
    apply_kcore,
    assemble,
    check_exists,
    check_read_args,
    encode_ids,
)
from gan4rec.data.io.delimited import TextFields, read_text_table, text_fields
from gan4rec.errors import DataError, MissingInputError

__all__ = [
    "MOVIELENS_GENRES",
    "MOVIELENS_LAYOUTS",
    "ml_family_of_file",
    "movielens_ratings_spec",
    "normalise_tag",
    "read_movielens",
    "read_movielens_report",
]

logger = logging.getLogger(__name__)

#: The genre columns of the ``genres`` item feature, the same for every MovieLens layout so that genre
#: matrices of different editions line up. The 100K/1M name "Children's" is read as "Children" and the
#: latest editions' "(no genres listed)" as "unknown" (the 100K name for the same thing).
MOVIELENS_GENRES: tuple[str, ...] = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_GENRE_ALIASES = {"Children's": "Children", "(no genres listed)": "unknown"}
# The 19 genre flags of u.item, in file order (u.genre lists the same).
_ML100K_FLAGS = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

#: MovieLens layouts :func:`read_movielens` accepts, mapped to the file family they use.
MOVIELENS_LAYOUTS: dict[str, str] = {
    "100k": "100k",
    "1m": "dat",
    "10m": "dat",
    "latest": "csv",
    "20m": "csv",
    "25m": "csv",
    "32m": "csv",
}
# family -> (ratings file, item side file, user side file)
_ML_FILES: dict[str, tuple[str, str, str | None]] = {
    "100k": ("u.data", "u.item", "u.user"),
    "dat": ("ratings.dat", "movies.dat", "users.dat"),
    "csv": ("ratings.csv", "movies.csv", None),
}
# family -> the users' tag file (10M has tags.dat, 1M none; the latest editions tags.csv)
_ML_TAGS: dict[str, str] = {"dat": "tags.dat", "csv": "tags.csv"}


def movielens_ratings_spec(path: Path, family: str) -> Spec:
    """How the ratings file of a MovieLens file ``family`` (``"100k"``, ``"dat"``, ``"csv"``) is read."""
    if family == "100k":
        return Spec("uir", "\t", False, None, "utf-8")
    if family == "dat":
        return Spec("uir", "::", False, None, "utf-8")
    return Spec("csv", ",", True, None, "utf-8")


# -------------------------------------------------------------------------------- MovieLens
def ml_family_of_file(path: Path) -> str:
    """The MovieLens file family of a ratings file, from its suffix."""
    suffix = path.suffix.lower()
    if suffix == ".dat":
        return "dat"
    if suffix == ".csv":
        return "csv"
    return "100k"  # u.data and the u1.base / ua.test splits: tab-separated, no header


def _ml_locate(path: Path, layout: str) -> tuple[str, Path, Path]:
    """(file family, ratings file, folder of the side files) for a MovieLens path and layout."""
    check_exists(path)
    if layout != "auto" and layout not in MOVIELENS_LAYOUTS:
        raise DataError(f"layout={layout!r}; expected 'auto' or one of {', '.join(MOVIELENS_LAYOUTS)}")
    if path.is_dir():
        if layout == "auto":
            for family, (ratings, _, _) in _ML_FILES.items():
                if (path / ratings).is_file():
                    return family, path / ratings, path
            raise MissingInputError(
                f"{path} holds no MovieLens ratings file (expected u.data, ratings.dat or ratings.csv)"
            )
        family = MOVIELENS_LAYOUTS[layout]
        ratings_path = path / _ML_FILES[family][0]
        if not ratings_path.is_file():
            raise MissingInputError(f"{ratings_path} does not exist (layout={layout!r})")
        return family, ratings_path, path
    family = ml_family_of_file(path) if layout == "auto" else MOVIELENS_LAYOUTS[layout]
    return family, path, path.parent


def _side_fields(
    path: Path, *, sep: str, header: bool, quote_aware: bool, min_fields: int, what: str
) -> TextFields:
    """Split a side file (UTF-8, or latin-1 as the older editions are) and check every row's field count."""
    try:
        fields = text_fields(path, sep=sep, header=header, encoding="utf-8", quote_aware=quote_aware)
    except DataError:
        fields = text_fields(path, sep=sep, header=header, encoding="latin-1", quote_aware=quote_aware)
    need = [fields.field(k).is_null() for k in range(min_fields)]
    short = fields.frame.filter(pl.any_horizontal(need))
    if len(short):
        row = short.row(0, named=True)
        found = f"{row['_nf']} fields" if row["_nf"] is not None else "missing fields"
        raise DataError(f"{fields.locator.where(row['_key'])}: found {found}, expected {min_fields} ({what})")
    return fields


def _field(fields: TextFields, position: int) -> pl.Series:
    return fields.frame.select(fields.field(position).str.strip_chars()).to_series()


def _align(idmap: IdMap, side_ids: pl.Series) -> np.ndarray:
    """Index of each side-file id in ``idmap`` (``-1`` for ids without interactions)."""
    _, [codes] = encode_ids([side_ids], idmap)
    return codes


def _genre_matrix(genre_lists: pl.Series, path: Path) -> np.ndarray:
    """``|``-separated genre names -> multi-hot (n, len(MOVIELENS_GENRES)) uint8."""
    vocab = {g: k for k, g in enumerate(MOVIELENS_GENRES)}
    vocab.update({alias: vocab[target] for alias, target in _GENRE_ALIASES.items()})
    long = (
        pl.DataFrame({"g": genre_lists})
        .with_row_index("row")
        .with_columns(pl.col("g").str.split("|"))
        .explode("g")
        .with_columns(pl.col("g").str.strip_chars())
        .filter(pl.col("g").is_not_null() & (pl.col("g") != ""))
    )
    col = long["g"].replace_strict(vocab, default=-1, return_dtype=pl.Int64).to_numpy()
    unknown = long.filter(pl.Series(col < 0))["g"].unique().sort().to_list()
    if unknown:
        logger.warning("%s: ignoring genre(s) outside MOVIELENS_GENRES: %s", path, ", ".join(unknown))
    out = np.zeros((len(genre_lists), len(MOVIELENS_GENRES)), dtype=np.uint8)  # (n_side_rows, n_genres)
    ok = col >= 0
    out[long["row"].to_numpy()[ok], col[ok]] = 1
    return out


def _scatter(n: int, codes: np.ndarray, values: np.ndarray, fill: Any) -> np.ndarray:
    """Rows of ``values`` placed at ``codes`` (skipping -1) in an array of ``n`` rows filled with ``fill``."""
    out = np.empty((n, *values.shape[1:]), dtype=values.dtype)
    out[...] = fill
    ok = codes >= 0
    out[codes[ok]] = values[ok]
    return out


def _strings(s: pl.Series) -> np.ndarray:
    return np.asarray(s.fill_null("").to_list(), dtype=object)


def _ints(s: pl.Series, path: Path, what: str) -> np.ndarray:
    v = s.cast(pl.Int64, strict=False)
    if v.null_count() > s.null_count():
        bad = s.filter(v.is_null() & s.is_not_null())[0]
        raise DataError(f"{path}: {what} {bad!r} is not an integer")
    return v.fill_null(-1).to_numpy()


def _ml_item_features(family: str, folder: Path, item_map: IdMap) -> dict[str, np.ndarray]:
    side = folder / _ML_FILES[family][1]
    if not side.is_file():
        logger.info("%s is absent: no item features", side)
        return {}
    n = len(item_map)
    if family == "100k":
        f = _side_fields(
            side,
            sep="|",
            header=False,
            quote_aware=False,
            min_fields=24,
            what="id|title|release date|video release|IMDb URL|19 genre flags",
        )
        ids, titles = _field(f, 0), _field(f, 1)
        flags = np.stack([_ints(_field(f, 5 + k), side, "genre flag") for k in range(19)], axis=1)
        genres = np.zeros((len(ids), len(MOVIELENS_GENRES)), dtype=np.uint8)  # (n_side_rows, n_genres)
        for k, name in enumerate(_ML100K_FLAGS):
            genres[:, MOVIELENS_GENRES.index(_GENRE_ALIASES.get(name, name))] = flags[:, k] > 0
    elif family == "dat":
        f = _side_fields(
            side, sep="::", header=False, quote_aware=False, min_fields=3, what="MovieID::Title::Genres"
        )
        ids, titles = _field(f, 0), _field(f, 1)
        genres = _genre_matrix(_field(f, 2), side)
    else:
        f = _side_fields(
            side, sep=",", header=True, quote_aware=True, min_fields=3, what="movieId,title,genres"
        )
        ids, titles = _field(f, 0), _field(f, 1)
        genres = _genre_matrix(_field(f, 2), side)
    codes = _align(item_map, ids)
    missing = n - len(np.unique(codes[codes >= 0]))
    if missing:
        logger.warning(
            "%s: %d rated item(s) have no row; their title is '' and genres are all 0", side, missing
        )
    return {
        "title": _scatter(n, codes, _strings(titles), ""),
        "genres": _scatter(n, codes, genres, 0),
    }


def normalise_tag(tag: str) -> str:
    """A tag as a feature column: lower case, inner runs of whitespace as one space, ends stripped."""
    return " ".join(tag.lower().split())


def _ml_tags(family: str, folder: Path, item_map: IdMap) -> tuple[sp.csr_matrix, np.ndarray] | None:
    """The users' tags as a binary bag of tags per item, and its column names (``None`` without a tag file).

    Row ``j`` has a 1 in column ``t`` when any user applied tag ``t`` (:func:`normalise_tag`) to item ``j``;
    who applied it, how often and when are not kept. Rows of ids without interactions are ignored.
    """
    name = _ML_TAGS.get(family)
    side = folder / name if name else None
    if side is None or not side.is_file():
        return None
    if family == "dat":
        f = _side_fields(side, sep="::", header=False, quote_aware=False, min_fields=2,
                         what="UserID::MovieID::Tag::Timestamp")
    else:  # an empty or missing tag field is no tag
        f = _side_fields(side, sep=",", header=True, quote_aware=True, min_fields=2,
                         what="userId,movieId,tag,timestamp")
    ids = _field(f, 1)
    as_int = ids.cast(pl.Int64, strict=False)
    if (bad := as_int.is_null() & ids.is_not_null()).any():
        key = f.frame.filter(bad)["_key"][0]
        raise DataError(f"{f.locator.where(key)}: movie id {ids.filter(bad)[0]!r} is not an integer")
    tags = _field(f, 2).fill_null("").map_elements(normalise_tag, return_dtype=pl.String)
    codes = _align(item_map, ids)
    keep = (codes >= 0) & (tags != "").to_numpy()
    names, cols = np.unique(np.asarray(tags.to_list(), dtype=object)[keep].astype(str), return_inverse=True)
    m = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (codes[keep], cols)),
                      shape=(len(item_map), len(names)), dtype=np.float32)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, names.astype(str)


def _ml_user_features(family: str, folder: Path, user_map: IdMap) -> dict[str, np.ndarray]:
    name = _ML_FILES[family][2]
    if name is None:
        return {}
    side = folder / name
    if not side.is_file():
        logger.info("%s is absent: no user features", side)
        return {}
    n = len(user_map)
    if family == "100k":
        f = _side_fields(
            side, sep="|", header=False, quote_aware=False, min_fields=5, what="id|age|gender|occupation|zip"
        )
        ids = _field(f, 0)
        age, gender, occupation, zipcode = (_field(f, k) for k in (1, 2, 3, 4))
        occupation_values = _strings(occupation)
        occupation_fill: Any = ""
    else:
        f = _side_fields(
            side,
            sep="::",
            header=False,
            quote_aware=False,
            min_fields=5,
            what="UserID::Gender::Age::Occupation::Zip-code",
        )
        ids = _field(f, 0)
        gender, age, occupation, zipcode = (_field(f, k) for k in (1, 2, 3, 4))
        occupation_values = _ints(occupation, side, "occupation code")
        occupation_fill = -1
    codes = _align(user_map, ids)
    missing = n - len(np.unique(codes[codes >= 0]))
    if missing:
        logger.warning(
            "%s: %d user(s) with interactions have no row; their features are empty", side, missing
        )
    return {
        "age": _scatter(n, codes, _ints(age, side, "age"), -1),
        "gender": _scatter(n, codes, _strings(gender), ""),
        "occupation": _scatter(n, codes, occupation_values, occupation_fill),
        "zip": _scatter(n, codes, _strings(zipcode), ""),
    }


def read_movielens_report(
    path: Path,
    *,
    layout: str,
    min_rating: float | None,
    duplicates: Duplicates,
    min_user_interactions: int,
    min_item_interactions: int,
    on_bad_rows: OnBadRows,
    features: bool,
    user_map: IdMap | None,
    item_map: IdMap | None,
) -> tuple[Interactions, BadRows]:
    check_read_args(on_bad_rows, min_rating, min_user_interactions, min_item_interactions)
    family, ratings_path, folder = _ml_locate(path, layout)
    table = read_text_table(ratings_path, movielens_ratings_spec(ratings_path, family), on_bad_rows)
    [(inter, bad)] = assemble(
        [table],
        user_map=user_map,
        item_map=item_map,
        min_rating=min_rating,
        duplicates=duplicates,
        on_bad_rows=on_bad_rows,
    )
    if features:
        item_feats: dict[str, Any] = dict(_ml_item_features(family, folder, inter.item_map))
        columns = {"genres": np.asarray(MOVIELENS_GENRES)} if "genres" in item_feats else {}
        if (tagged := _ml_tags(family, folder, inter.item_map)) is not None:
            item_feats["tags"], columns["tags"] = tagged
        inter = Interactions(
            inter.indptr,
            inter.indices,
            inter.user_map,
            inter.item_map,
            ratings=inter.ratings,
            timestamps=inter.timestamps,
            user_features=_ml_user_features(family, folder, inter.user_map),
            item_features=item_feats,
            item_feature_columns=columns or None,
        )
    fixed = user_map is not None or item_map is not None
    return apply_kcore(inter, ratings_path, min_user_interactions, min_item_interactions, fixed), bad


def read_movielens(
    path: str | os.PathLike[str],
    *,
    layout: str = "auto",
    min_rating: float | None = None,
    duplicates: Duplicates = "last",
    min_user_interactions: int = 0,
    min_item_interactions: int = 0,
    on_bad_rows: OnBadRows = "error",
    features: bool = True,
    user_map: IdMap | None = None,
    item_map: IdMap | None = None,
) -> Interactions:
    """Read a MovieLens dataset as published by GroupLens, with its side files as features.

    Parameters
    ----------
    path
        The dataset folder, or its ratings file (side files are then looked for beside it).
    layout
        ``"100k"`` (``u.data``, ``u.item``, ``u.user``), ``"1m"``/``"10m"`` (``ratings.dat``,
        ``movies.dat``, ``users.dat``; ``::``-separated), ``"latest"``/``"20m"``/``"25m"``/``"32m"``
        (``ratings.csv``, ``movies.csv``), or ``"auto"`` to detect it from the files present.
    min_rating, duplicates, min_user_interactions, min_item_interactions, on_bad_rows, user_map, item_map
        As in :func:`read_interactions`.
    features
        Attach side features (a missing side file just means no such features).

    Returns
    -------
    Interactions
        With ratings and timestamps, and, aligned to the maps (side-file rows without interactions are
        ignored; users/items without a side row get ``""``, ``-1`` or zeros):

        * item features ``title`` (str) and ``genres`` (``(n_items, 20)`` uint8 multi-hot over
          :data:`MOVIELENS_GENRES`, which are its ``item_feature_columns``);
        * where the edition has a tag file (``tags.csv``: latest, 20M, 25M, 32M; ``tags.dat``: 10M), item
          feature ``tags``: a binary CSR bag of the tags users applied to each item (lower-cased, whitespace
          collapsed; its ``item_feature_columns`` are the tags, sorted). Tags are written by users, so an
          item's tags tell that someone engaged with it: on a cold-start split a cold item's tags are
          content that users' activity produced, a caveat to state with any result that uses them;
        * user features (100K and 1M) ``age`` (int; in 1M the publisher's age-group code), ``gender``
          (str), ``occupation`` (str in 100K; the publisher's integer code in 1M) and ``zip`` (str).

    Raises
    ------
    MissingInputError
        If the path, or the layout's ratings file, does not exist.
    DataError
        On a malformed ratings or side file (naming ``file:line``).
    """
    inter, _ = read_movielens_report(
        Path(path),
        layout=layout,
        min_rating=min_rating,
        duplicates=duplicates,
        min_user_interactions=min_user_interactions,
        min_item_interactions=min_item_interactions,
        on_bad_rows=on_bad_rows,
        features=features,
        user_map=user_map,
        item_map=item_map,
    )
    return inter


