"""Seeded synthetic implicit-feedback data with real collaborative structure (the built-in default dataset).

The generator is a mixture model, sampled fully vectorised so that MovieLens-20M sizes take seconds:

* **Items** fall into ``n_factors`` latent taste clusters of uneven size; some items also belong to a
  second cluster. Item popularity is long-tailed: a Zipf-like head and a steeper tail over a random
  ranking. Each cluster has one to three "core" genres, from which the items' multi-hot genres are drawn,
  so genres are informative side features but not a copy of the clusters.
* **Users** have a sparse taste mixture over the clusters (Dirichlet centred on the clusters' popularity,
  broader for heavier users) plus a user-specific share of "mainstream" picks that follow global
  popularity. Activity is log-normal with a floor, like MovieLens where every user has at least 20
  ratings.
* **Interactions**: each user's draws are split over the mixture components (one multinomial per user),
  then each draw picks an item of its component by popularity (cumulative weights + ``searchsorted``).
  Repeated (user, item) pairs are dropped and redrawn until every user has exactly their drawn count, so
  the total is exactly ``n_interactions``: each user's items are a sample without replacement.
* **Ratings** 1-5 combine a user bias, an item bias tied to popularity and the user's affinity for the
  item's cluster, then are cut at quantiles so that the rating histogram matches ``rating_probs``
  (MovieLens-100K's by default).
* **Timestamps** (int64 seconds): each user is active in a window inside ``[start_time, start_time +
  time_span)``; most users rate in one short session, some come back over weeks, as in MovieLens.

No users x items matrix is ever built: memory is linear in ``n_interactions``. Everything random comes
from ``random_state``; the same arguments give bit-identical output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError

__all__ = [
    "GENRE_NAMES",
    "ML100K_RATING_PROBS",
    "SYNTHETIC_SIZES",
    "SyntheticData",
    "generate_synthetic",
    "genre_names",
    "make_synthetic",
]

logger = logging.getLogger(__name__)

#: The 18 classic MovieLens genres, spelled as in :data:`gan4rec.data.io.MOVIELENS_GENRES` ("Children"),
#: in ML-100K column order; MovieLens' ``unknown`` and ``IMAX`` are left out.
GENRE_NAMES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
# How many ML-100K movies carry each genre: makes Drama and Comedy common and Film-Noir rare here too.
_GENRE_FREQ = np.array(
    [251, 135, 42, 122, 505, 109, 50, 725, 22, 24, 92, 56, 61, 247, 101, 251, 71, 27], dtype=np.float64
)

#: Share of ratings 1..5 in MovieLens-100K.
ML100K_RATING_PROBS: tuple[float, ...] = (0.0611, 0.1137, 0.27145, 0.34174, 0.21201)

#: ``(n_users, n_items, n_interactions)`` of the MovieLens datasets the presets imitate.
SYNTHETIC_SIZES: dict[str, tuple[int, int, int]] = {
    "ml-100k": (943, 1682, 100_000),
    "ml-1m": (6040, 3706, 1_000_209),
    "ml-20m": (138_493, 26_744, 20_000_263),
}

_ML100K_START = 874_724_710  # 1997-09-20, the first ML-100K timestamp
_DAY = 86_400
_MAX_USER_SHARE = 0.5  # a user may interact with at most this share of the catalogue
_CHUNK = 1 << 22  # rows sampled per chunk: bounds the float temporaries to a few tens of MB
_TASTE_ROUNDS = 16
_MAINSTREAM_ROUNDS = 24
_MAX_ROUNDS = 80


def genre_names(n_genres: int) -> list[str]:
    """Names of the ``n_genres`` columns of the synthetic ``genres`` item feature.

    The first 18 are the MovieLens genres; further ones are called ``genre_19``, ``genre_20``, ...
    """
    return [GENRE_NAMES[g] if g < len(GENRE_NAMES) else f"genre_{g + 1}" for g in range(n_genres)]


@dataclass(frozen=True)
class SyntheticData:
    """A synthetic dataset together with the latent truth it was sampled from.

    Attributes
    ----------
    interactions
        The observed data (what :func:`make_synthetic` returns).
    user_taste
        ``(n_users, n_factors)`` float32: each user's mixture over the taste clusters (rows sum to 1).
    user_mainstream
        ``(n_users,)`` float32: share of the user's draws that come from global popularity instead.
    item_cluster
        ``(n_items,)`` int32: each item's primary taste cluster.
    item_popularity
        ``(n_items,)`` float64: the popularity weights (sum to 1) items are drawn with inside a component.
    """

    interactions: Interactions
    user_taste: np.ndarray
    user_mainstream: np.ndarray
    item_cluster: np.ndarray
    item_popularity: np.ndarray


def make_synthetic(
    n_users: int = 943,
    n_items: int = 1682,
    n_interactions: int = 100_000,
    **kwargs: Any,
) -> Interactions:
    """Generate a MovieLens-like implicit-feedback dataset (ML-100K-sized by default).

    Takes the same arguments as :func:`generate_synthetic` and returns only the interactions.

    Examples
    --------
    >>> data = make_synthetic(200, 300, 6000, random_state=1)
    >>> data.shape, data.nnz, data.item_features["genres"].shape
    ((200, 300), 6000, (300, 18))
    """
    return generate_synthetic(n_users, n_items, n_interactions, **kwargs).interactions


def generate_synthetic(
    n_users: int = 943,
    n_items: int = 1682,
    n_interactions: int = 100_000,
    *,
    n_genres: int = 18,
    n_factors: int = 30,
    popularity_alpha: float = 1.2,
    popularity_offset: float = 0.03,
    popularity_decay: float = 4.0,
    taste_concentration: float = 0.08,
    mainstream_share: float = 0.1,
    cluster_overlap: float = 0.3,
    activity_sigma: float = 1.1,
    min_user_interactions: int | None = None,
    rating_probs: tuple[float, ...] = ML100K_RATING_PROBS,
    start_time: int = _ML100K_START,
    time_span: int = 215 * _DAY,
    random_state: int | np.random.Generator | None = 0,
) -> SyntheticData:
    """Generate a synthetic dataset and return it with its latent truth.

    Parameters
    ----------
    n_users, n_items, n_interactions
        Exact sizes of the result. Every user gets at least ``min_user_interactions`` and at most half the
        catalogue, so ``n_interactions`` must lie between those bounds times ``n_users``. Items drawn by
        nobody stay in the item map with no interactions.
    n_genres
        Width of the multi-hot ``genres`` item feature (names: :func:`genre_names`).
    n_factors
        Number of latent taste clusters. More clusters, more niche structure for models to find.
    popularity_alpha, popularity_offset, popularity_decay
        Item ``r`` of a random popularity ranking (``x = r / n_items`` in ``[0, 1)``) has weight
        ``(x + offset) ** -alpha * exp(-decay * x)``: a Zipf-like head, flattened by the offset (no item is
        seen by everyone), and a steeper tail of rarely seen items. The defaults give an ML-100K-like
        histogram of item counts.
    taste_concentration
        Dirichlet concentration per cluster of the users' taste mixtures: small values give users few,
        sharp tastes; large values blur them towards popularity.
    mainstream_share
        Mean share of a user's draws that ignore taste and follow global popularity (Beta distributed
        across users).
    cluster_overlap
        Share of items that also belong to a second cluster (with half their weight there).
    activity_sigma
        Log-normal spread of user activity: how long-tailed the number of interactions per user is.
    min_user_interactions
        Floor on the interactions per user. Default: ``min(20, n_interactions // (2 * n_users))`` and at
        least 1; MovieLens guarantees 20.
    rating_probs
        Shares of ratings 1..5 (normalised).
    start_time, time_span
        Timestamps (seconds since the epoch) lie in ``[start_time, start_time + time_span)``. The defaults
        are ML-100K's: 215 days from 1997-09-20.
    random_state
        Seed or generator; the same value gives bit-identical output.

    Returns
    -------
    SyntheticData
        The interactions (raw ids ``1..n`` for users and items, ratings, timestamps, item feature
        ``genres``: ``(n_items, n_genres)`` uint8) and the latent truth.

    Raises
    ------
    DataError
        An argument is out of range; the message names it.
    """
    min_per_user = _check_args(
        n_users, n_items, n_interactions, n_genres, n_factors, popularity_alpha, popularity_offset,
        popularity_decay, taste_concentration, mainstream_share, cluster_overlap, activity_sigma,
        min_user_interactions, rating_probs, start_time, time_span,
    )
    rng = np.random.default_rng(random_state)
    item_cluster, popularity, genres, pool, cluster_mass = _catalogue(
        rng, n_items, n_factors, n_genres, popularity_alpha, popularity_offset, popularity_decay,
        cluster_overlap,
    )
    # ---- users: activity, taste mixtures over the k clusters + a mainstream share
    cap = int(_MAX_USER_SHARE * n_items)
    counts = _user_counts(rng, n_users, n_interactions, min_per_user, cap, activity_sigma)  # (n_users,)
    taste = _tastes(rng, counts, cluster_mass / cluster_mass.sum(), taste_concentration)  # (n_users, k)
    mainstream = _mainstream(rng, n_users, mainstream_share)  # (n_users,)
    # (n_users, k + 1): the k taste components, then the mainstream one
    mixture = np.concatenate([taste * (1.0 - mainstream)[:, None], mainstream[:, None]], axis=1)

    # ---- interactions: sample, dedupe, top up
    keys = _sample_pairs(rng, counts, mixture, pool, n_items)  # (n_interactions,) sorted user*n_items+item
    users = keys // n_items
    items = (keys - users * n_items).astype(np.int32)
    del keys
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])

    ratings = _ratings(rng, users, items, taste, item_cluster, popularity, rating_probs)
    timestamps = _timestamps(rng, users, n_users, start_time, time_span)
    del users
    interactions = Interactions(
        indptr, items,
        IdMap(np.arange(1, n_users + 1, dtype=np.int64)), IdMap(np.arange(1, n_items + 1, dtype=np.int64)),
        ratings=ratings, timestamps=timestamps, item_features={"genres": genres},
        item_feature_columns={"genres": np.asarray(genre_names(genres.shape[1]))},
    )
    logger.debug("generated synthetic data: %r", interactions)
    return SyntheticData(
        interactions=interactions,
        user_taste=taste.astype(np.float32),
        user_mainstream=mainstream.astype(np.float32),
        item_cluster=item_cluster,
        item_popularity=popularity,
    )


# ---------------------------------------------------------------------------------------------- helpers
def _check_args(
    n_users: int, n_items: int, n_interactions: int, n_genres: int, n_factors: int, alpha: float,
    offset: float, decay: float, concentration: float, mainstream: float, overlap: float, sigma: float,
    min_user: int | None, rating_probs: tuple[float, ...], start_time: int, time_span: int,
) -> int:
    """Validate the arguments of :func:`generate_synthetic`; return the per-user floor."""
    for name, value, low in (
        ("n_users", n_users, 1), ("n_items", n_items, 2), ("n_interactions", n_interactions, 1),
        ("n_genres", n_genres, 1), ("n_factors", n_factors, 1), ("time_span", time_span, 1),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise DataError(f"{name}={value!r}; expected an integer >= {low}")
    if not isinstance(start_time, (int, np.integer)) or isinstance(start_time, bool):
        raise DataError(f"start_time={start_time!r}; expected an integer number of seconds since the epoch")
    for name, fvalue, lo, hi in (
        ("popularity_alpha", alpha, 0.0, 10.0), ("popularity_offset", offset, 1e-3, np.inf),
        ("popularity_decay", decay, 0.0, 50.0), ("taste_concentration", concentration, 1e-6, np.inf),
        ("mainstream_share", mainstream, 0.0, 1.0), ("cluster_overlap", overlap, 0.0, 1.0),
        ("activity_sigma", sigma, 0.0, 10.0),
    ):
        if not (isinstance(fvalue, (int, float, np.floating, np.integer)) and lo <= fvalue <= hi):
            raise DataError(f"{name}={fvalue!r}; expected a number in [{lo}, {hi}]")
    probs = np.asarray(rating_probs, dtype=np.float64)
    if probs.shape != (5,) or not np.isfinite(probs).all() or (probs < 0).any() or probs.sum() <= 0:
        raise DataError(f"rating_probs={rating_probs!r}; expected 5 non-negative shares of ratings 1..5")
    max_per_user = int(_MAX_USER_SHARE * n_items)
    if min_user is None:
        min_user = max(1, min(20, n_interactions // (2 * n_users)))
    elif not isinstance(min_user, (int, np.integer)) or isinstance(min_user, bool) or not (
        1 <= min_user <= max_per_user
    ):
        raise DataError(f"min_user_interactions={min_user!r}; expected an integer in [1, {max_per_user}]")
    if not n_users * min_user <= n_interactions <= n_users * max_per_user:
        raise DataError(
            f"n_interactions={n_interactions}; expected between {n_users * min_user} and "
            f"{n_users * max_per_user} for {n_users} users with {min_user} to {max_per_user} interactions "
            "each"
        )
    return int(min_user)


class _CumulativeTable:
    """Entries grouped by component, with cumulative weights normalised to ``(c, c + 1]`` per component.

    Drawing an entry of component ``c`` is then one ``searchsorted`` of ``c + u``, ``u ~ U[0, 1)``, for
    any number of draws at once.
    """

    def __init__(self, comp: np.ndarray, value: np.ndarray, weight: np.ndarray, n_comp: int) -> None:
        order = np.argsort(comp, kind="stable")
        comp, self.value, weight = comp[order], value[order], weight[order]
        sizes = np.bincount(comp, minlength=n_comp)
        self.start = np.zeros(n_comp, dtype=np.int64)  # (n_comp,) first entry of each component
        np.cumsum(sizes[:-1], out=self.start[1:])
        self.end = self.start + sizes  # (n_comp,) one past the last entry
        cum = np.cumsum(weight)
        before = np.concatenate([[0.0], cum])[self.start]  # (n_comp,) weight before each component
        total = np.concatenate([[0.0], cum])[self.end] - before
        # An empty component never gets drawn (its mixture weight is zeroed by the caller).
        self.cum = comp + (cum - before[comp]) / np.where(total > 0, total, 1.0)[comp]
        self.cum[self.end[sizes > 0] - 1] = np.flatnonzero(sizes > 0) + 1.0  # exact upper ends
        self.nonempty = sizes > 0

    def draw(self, rng: np.random.Generator, comp: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.cum, comp + rng.random(len(comp)), side="right")
        # Rounding at a component's upper end could step into the next one: clamp back.
        np.clip(pos, self.start[comp], self.end[comp] - 1, out=pos)
        return self.value[pos]


def _catalogue(
    rng: np.random.Generator, n_items: int, k: int, n_genres: int, alpha: float, offset: float,
    decay: float, overlap: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, _CumulativeTable, np.ndarray]:
    """The items' latent side: clusters, popularity, genres and the table draws pick items from.

    Returns ``item_cluster`` ``(n_items,)`` int32, ``popularity`` ``(n_items,)`` (sums to 1), ``genres``
    ``(n_items, n_genres)`` uint8, the pool of (component, item, weight) entries (primary memberships,
    secondary ones, and the mainstream component ``k`` that holds every item) and each taste cluster's
    popularity mass ``(k,)``.
    """
    cluster_share = rng.dirichlet(np.full(k, 2.0))  # (k,) uneven cluster sizes
    item_cluster = rng.choice(k, size=n_items, p=cluster_share).astype(np.int32)  # (n_items,)
    popularity = np.empty(n_items, dtype=np.float64)
    x = np.arange(n_items) / n_items  # (n_items,) popularity rank as a share of the catalogue
    popularity[rng.permutation(n_items)] = (x + offset) ** -alpha * np.exp(-decay * x)
    popularity /= popularity.sum()
    genres = _item_genres(rng, item_cluster, k, n_genres)  # (n_items, n_genres)

    second = rng.random(n_items) < overlap
    second_cluster = (item_cluster + rng.integers(1, max(k, 2), size=n_items)) % k  # != primary when k > 1
    sec_items = np.flatnonzero(second & (second_cluster != item_cluster))
    pool_comp = np.concatenate([item_cluster, second_cluster[sec_items], np.full(n_items, k, np.int32)])
    pool_item = np.concatenate([np.arange(n_items), sec_items, np.arange(n_items)]).astype(np.int32)
    pool_w = np.concatenate([popularity, 0.5 * popularity[sec_items], popularity])
    pool = _CumulativeTable(pool_comp, pool_item, pool_w, k + 1)
    cluster_mass = np.bincount(pool_comp[:-n_items], weights=pool_w[:-n_items], minlength=k)  # (k,)
    return item_cluster, popularity, genres, pool, cluster_mass


def _item_genres(rng: np.random.Generator, item_cluster: np.ndarray, k: int, n_genres: int) -> np.ndarray:
    """Multi-hot genres ``(n_items, n_genres)`` uint8 drawn from the clusters' core genres."""
    freq = np.concatenate([_GENRE_FREQ, np.full(max(0, n_genres - len(_GENRE_FREQ)), _GENRE_FREQ.min())])
    freq = freq[:n_genres] / freq[:n_genres].sum()
    n_core = np.minimum(1 + rng.binomial(2, 0.5, size=k), n_genres)  # (k,) 1..3 core genres per cluster
    # Weighted sampling without replacement for all clusters at once: the smallest Exp(1)/w (Efraimidis-
    # Spirakis keys) are a weighted sample.
    keys = rng.standard_exponential((k, n_genres)) / freq  # (k, n_genres)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    core = rank < n_core[:, None]  # (k, n_genres)
    first_core = np.argmin(keys, axis=1)  # (k,)
    n_items = len(item_cluster)
    p = 0.75 * core[item_cluster] + 0.3 * freq  # (n_items, n_genres): core genres likely, common ones too
    genres = rng.random((n_items, n_genres)) < np.minimum(p, 1.0)
    empty = ~genres.any(axis=1)
    genres[np.flatnonzero(empty), first_core[item_cluster[empty]]] = True  # every item has a genre
    return genres.astype(np.uint8)


def _tastes(
    rng: np.random.Generator, counts: np.ndarray, cluster_share: np.ndarray, concentration: float
) -> np.ndarray:
    """Users' taste mixtures ``(n_users, k)``: Dirichlet around the clusters' shares of popularity.

    Heavy users get broader tastes (concentration grows with the square root of activity): someone with
    a thousand ratings has not found them all in two niches.
    """
    k = len(cluster_share)
    breadth = concentration * k * np.sqrt(counts / np.median(counts))  # (n_users,)
    shape = np.maximum(breadth[:, None] * cluster_share[None, :], 1e-3)  # (n_users, k)
    # Dirichlet rows by normalised gammas; tiny shapes may underflow to an all-zero row, which then
    # takes the average taste.
    taste = rng.standard_gamma(shape)
    total = taste.sum(axis=1, keepdims=True)
    flat = (total[:, 0] <= 0) | ~np.isfinite(total[:, 0])
    taste[flat] = cluster_share
    total[flat] = 1.0
    return taste / total


def _mainstream(rng: np.random.Generator, n_users: int, share: float) -> np.ndarray:
    """Per-user share of popularity-driven draws: Beta with mean ``share`` (constant at 0 or 1)."""
    if share <= 0.0 or share >= 1.0:
        return np.full(n_users, float(share))
    strength = 4.0
    return rng.beta(strength * share, strength * (1.0 - share), size=n_users)


def _user_counts(
    rng: np.random.Generator, n_users: int, total: int, floor: int, cap: int, sigma: float
) -> np.ndarray:
    """Interactions per user: ``floor`` plus a log-normal-weighted multinomial share, capped at ``cap``."""
    weight = rng.lognormal(0.0, sigma, size=n_users)
    counts = np.full(n_users, floor, dtype=np.int64)
    counts += rng.multinomial(total - floor * n_users, weight / weight.sum())
    # Whatever spills over the cap goes to the users still under it (the caller checked it fits).
    while (over := counts - cap).max() > 0:
        excess = int(over[over > 0].sum())
        np.minimum(counts, cap, out=counts)
        free = counts < cap
        counts[free] += rng.multinomial(excess, weight[free] / weight[free].sum())
    return counts


def _draw_items(
    rng: np.random.Generator,
    users: np.ndarray,
    n_draw: np.ndarray,
    mixture: np.ndarray,
    pool: _CumulativeTable,
) -> tuple[np.ndarray, np.ndarray]:
    """``n_draw[j]`` items for user ``users[j]``: components from the user's mixture, items by popularity.

    Returns ``(user, item)`` per draw, grouped by user (the order inside a user carries no meaning).
    """
    m = np.where(pool.nonempty[None, :], mixture[users], 0.0)  # (len(users), n_comp)
    m[m.sum(axis=1) <= 0, -1] = 1.0  # all taste on empty clusters and no mainstream: go mainstream
    m /= m.sum(axis=1, keepdims=True)
    # How many of each user's draws fall in each component, for all users at once.
    per_comp = rng.multinomial(n_draw, m)  # (len(users), n_comp)
    n_comp = m.shape[1]
    comp = np.tile(np.arange(n_comp, dtype=np.int64), len(users))
    reps = per_comp.reshape(-1)
    comp = np.repeat(comp, reps)  # (sum(n_draw),)
    user = np.repeat(np.repeat(users, n_comp), reps)
    del reps, per_comp, m
    item = np.empty(len(comp), dtype=np.int64)
    for lo in range(0, len(comp), _CHUNK):  # bounds the float temporaries
        item[lo : lo + _CHUNK] = pool.draw(rng, comp[lo : lo + _CHUNK])
    return user, item


def _sample_pairs(
    rng: np.random.Generator, counts: np.ndarray, mixture: np.ndarray, pool: _CumulativeTable, n_items: int
) -> np.ndarray:
    """Exactly ``counts[u]`` distinct items per user; returns the sorted keys ``user * n_items + item``.

    Sampling without replacement by rejection: draw as many items as each user still needs, drop the
    pairs already held or drawn twice, and draw again for the shortfall. The few users whose tastes are
    exhausted fall back to the mainstream component after ``_TASTE_ROUNDS`` rounds, and to uniform draws
    after ``_MAINSTREAM_ROUNDS`` (each of which succeeds with probability >= 1/2, as a user holds at most
    half the catalogue).
    """
    n_users = len(counts)
    mainstream = len(pool.start) - 1
    accepted = np.zeros(0, dtype=np.int64)  # sorted; the bulk, from the first round
    topped = np.zeros(0, dtype=np.int64)  # sorted; the (few) keys of the top-up rounds
    need = counts.copy()
    for round_ in range(_MAX_ROUNDS):
        todo = np.flatnonzero(need > 0)
        if not len(todo):
            break
        if round_ < _TASTE_ROUNDS:
            users, items = _draw_items(rng, todo, need[todo], mixture, pool)
        else:
            users = np.repeat(todo, need[todo])
            items = (
                pool.draw(rng, np.full(len(users), mainstream, dtype=np.int64))
                if round_ < _MAINSTREAM_ROUNDS
                else rng.integers(0, n_items, size=len(users))
            )
        cand = users * n_items + items
        del users, items
        cand.sort()
        new = np.ones(len(cand), dtype=bool)
        np.not_equal(cand[1:], cand[:-1], out=new[1:])
        for held in (accepted, topped):
            if len(held):
                pos = np.minimum(np.searchsorted(held, cand), len(held) - 1)
                new &= held[pos] != cand
        got = cand[new]
        del cand, new
        if round_ == 0:
            accepted = got
        else:
            topped = np.sort(np.concatenate([topped, got]))
        need -= np.bincount(got // n_items, minlength=n_users)
        logger.debug("synthetic sampling round %d: %d pairs short", round_, int(need.sum()))
    if need.any():  # pragma: no cover - the uniform rounds fill any quota <= n_items / 2
        raise DataError("could not draw enough distinct items per user; lower n_interactions")
    return np.insert(accepted, np.searchsorted(accepted, topped), topped)


def _ratings(
    rng: np.random.Generator, users: np.ndarray, items: np.ndarray, taste: np.ndarray,
    item_cluster: np.ndarray, popularity: np.ndarray, rating_probs: tuple[float, ...],
) -> np.ndarray:
    """Ratings 1..5 (float32) rising with the user's taste for the item's cluster and with popularity."""
    n_users, k = taste.shape
    logpop = np.log(popularity)
    z_pop = (logpop - logpop.mean()) / (logpop.std() + 1e-12)  # (n_items,)
    # Popular items are liked a little more, as in MovieLens.
    item_bias = np.asarray(0.35 * z_pop + rng.normal(0.0, 0.5, size=len(popularity)))
    user_bias = np.asarray(rng.normal(0.0, 0.5, size=n_users))  # (n_users,) lenient and strict raters
    # Affinity relative to a uniform taste: > 0 for the user's favourite clusters.
    affinity = np.log(taste.reshape(-1)[users * k + item_cluster[items]] * k + 0.05)
    latent = user_bias[users] + item_bias[items] + 0.45 * affinity
    latent += rng.normal(0.0, 0.8, size=len(users))
    probs = np.asarray(rating_probs, dtype=np.float64)
    cuts = np.quantile(latent, np.cumsum(probs / probs.sum())[:-1]) if len(latent) else np.zeros(4)
    return (np.searchsorted(cuts, latent) + 1).astype(np.float32)


def _timestamps(
    rng: np.random.Generator, users: np.ndarray, n_users: int, start_time: int, time_span: int
) -> np.ndarray:
    """Seconds since the epoch: each user is active in one window, short sessions for most users."""
    session = rng.random(n_users) < 0.6
    duration = np.where(
        session,
        rng.lognormal(np.log(1800.0), 1.2, n_users),  # one sitting: about half an hour
        rng.random(n_users) * time_span,  # returning users: days to months
    )
    duration = np.minimum(duration, time_span - 1)
    begin = rng.random(n_users) * (time_span - duration)
    t = begin[users] + rng.random(len(users)) * duration[users]
    return start_time + t.astype(np.int64)
