"""Generators of synthetic users: the registry :data:`GENERATORS` and the non-GAN baselines.

Every generator follows one small contract::

    gen = create_generator("bernoulli", random_state=0).fit(train)   # train: the real (member) users
    synth = gen.sample(500, random_state=1)                          # an Interactions of 500 new users

``sample`` returns an :class:`~gan4rec.data.interactions.Interactions` over the *same item map* as
``train`` and a new user map of synthetic ids ``"synth-0" .. "synth-{n-1}"``, so writing it out gives the
real raw item ids.

Degrees (how many items a synthetic user has)
    The profile generators (``gan``, ``bernoulli``, ``lowrank``) draw each synthetic user's number of
    interactions from the *empirical degree distribution of the training users* (a bootstrap of their
    counts); it is not learned. ``bernoulli`` matches it in expectation (Chung-Lu), the others exactly.
    ``randomized_response`` and ``real`` release real rows, whose degrees they keep (perturbed).

The baselines
    ``bernoulli``
        Independent Bernoulli cells ``P(u, i) = min(1, k_u * pop_i / nnz)``: item popularity times user
        activity (the Chung-Lu model). No correlation between items, so no user is memorised.
    ``lowrank``
        A Mult-VAE (:mod:`gan4rec.models.baselines.multvae`) fitted on ``train``; a synthetic user is its
        decoder's softmax at ``z ~ N(0, I)`` (the prior), from which ``k_u`` distinct items are drawn.
    ``randomized_response``
        Warner's randomized response on the real training matrix: every cell is kept with probability
        ``e^eps / (1 + e^eps)`` and flipped otherwise, which is ``eps``-differentially private *per cell*
        (edge-level DP). Per user the guarantee is ``eps`` times the number of items (no user-level
        protection to speak of). Asking for more users than ``train`` has releases some rows twice, and
        the budget composes: ``epsilon_effective`` reports ``eps`` times the largest repeat count.
    ``real``
        The training rows released as they are (a reference point: MIA AUC near 1, exact copies 1).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from gan4rec.data.idmap import IdMap
from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError, NotFittedError

__all__ = [
    "GENERATORS",
    "Bernoulli",
    "Generator",
    "LowRank",
    "RandomState",
    "RandomizedResponse",
    "RealCopy",
    "create_generator",
    "draw_degrees",
    "rows_of",
    "sample_without_replacement",
    "synthetic_interactions",
    "to_numpy_rng",
]

logger = logging.getLogger(__name__)

#: A seed, a numpy Generator (used as is) or None (fresh entropy); as :mod:`gan4rec.train.seeding`, which
#: this module does not import so that the CLI can list the generators without importing torch.
RandomState = int | np.random.Generator | None


def to_numpy_rng(random_state: RandomState) -> np.random.Generator:
    """``np.random.default_rng(random_state)``, refusing values that would not be reproducible."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise DataError(f"random_state={random_state!r}; expected a non-negative int, a numpy Generator or None")
    return np.random.default_rng(int(random_state))

_CHUNK_CELLS = 1 << 22  # bound on the cells of one dense chunk of synthetic users (16 MB of float32)


def rows_of(data: Interactions, users: np.ndarray) -> Interactions:
    """The rows of ``users`` (indices into ``data``) as their own Interactions, same item map and features."""
    users = np.asarray(users, dtype=np.int64)
    csr = data.csr()[users]
    user_map = IdMap(data.user_map.ids[users])
    feats = {k: np.asarray(v)[users] for k, v in data.user_features.items()}
    return Interactions(csr.indptr, csr.indices, user_map, data.item_map, user_features=feats)


def synthetic_interactions(rows: list[np.ndarray], item_map: IdMap) -> Interactions:
    """Interactions of synthetic users ``synth-0 ..`` from their item-index rows, over ``item_map``."""
    n = len(rows)
    user_map = IdMap(np.array([f"synth-{u}" for u in range(n)], dtype=object))
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n)
    items = np.concatenate(rows).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    users = np.repeat(np.arange(n, dtype=np.int64), counts)
    return Interactions.from_indices(users, items, user_map, item_map)


def draw_degrees(train_degrees: np.ndarray, n_users: int, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """``n_users`` degrees bootstrapped from the training users' degrees (zeros dropped), capped at n_items."""
    pool = np.asarray(train_degrees, dtype=np.int64)
    pool = pool[pool > 0]
    if not len(pool):
        raise DataError("the training data has no interactions; a generator needs at least one")
    return np.minimum(rng.choice(pool, size=n_users, replace=True), n_items)


def sample_without_replacement(log_weights: np.ndarray, degrees: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Per row, ``degrees[r]`` distinct items drawn with probability proportional to ``exp(log_weights)``.

    The Gumbel-top-k trick: the ``k`` largest of ``log w + Gumbel`` are a draw of ``k`` items without
    replacement, each next one in proportion to its weight among those left.

    Parameters
    ----------
    log_weights
        ``(n, n_items)`` log weights; ``-inf`` never drawn.
    degrees
        ``(n,)`` items per row, each at most ``n_items``.
    """
    n, n_items = log_weights.shape
    keys = log_weights + rng.gumbel(size=(n, n_items))  # (n, n_items)
    kmax = int(degrees.max()) if n else 0
    if kmax == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(n)]
    if kmax < n_items:
        top = np.argpartition(-keys, kmax - 1, axis=1)[:, :kmax]  # (n, kmax) unordered
    else:
        top = np.broadcast_to(np.arange(n_items), (n, n_items)).copy()
    order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)  # (n, kmax) best first
    finite = np.isfinite(np.take_along_axis(keys, top, axis=1))
    return [np.sort(top[r, : degrees[r]][finite[r, : degrees[r]]]).astype(np.int64) for r in range(n)]


def _chunks(n_users: int, n_items: int) -> list[tuple[int, int]]:
    step = max(1, _CHUNK_CELLS // max(n_items, 1))
    return [(s, min(s + step, n_users)) for s in range(0, n_users, step)]


def _check_n_users(n_users: Any) -> int:
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise DataError(f"n_users={n_users!r}; expected a positive integer")
    return int(n_users)


class Generator:
    """Base of every generator: ``fit(train) -> self``, then ``sample(n_users, random_state)``.

    Subclasses set ``name``, store keyword-only params in ``__init__`` and implement ``_fit`` and
    ``_sample(n_users, rng) -> list of item-index rows``.
    """

    name: ClassVar[str] = ""
    #: Draws its synthetic users' degrees from the training degree distribution (else keeps real rows).
    bootstraps_degrees: ClassVar[bool] = True

    item_map_: IdMap
    train_degrees_: np.ndarray

    def __init__(self, *, random_state: RandomState = None) -> None:
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments, as given."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def fit(self, train: Interactions) -> Self:
        """Learn from the real users of ``train`` (their rows are the members)."""
        if not isinstance(train, Interactions):
            raise DataError(f"train must be an Interactions, got {type(train).__name__}")
        if train.nnz == 0:
            raise DataError("train has no interactions; a generator needs at least one")
        self.item_map_ = train.item_map
        self.train_degrees_ = train.user_counts()
        self._fit(train)
        return self

    def _fit(self, train: Interactions) -> None:
        raise NotImplementedError

    def sample(self, n_users: int, random_state: RandomState = None) -> Interactions:
        """``n_users`` synthetic users over the training item map (see the module docstring)."""
        if not hasattr(self, "item_map_"):
            raise NotFittedError(f"generator {self.name!r} is not fitted; call fit(train) first")
        n = _check_n_users(n_users)
        rng = to_numpy_rng(random_state)
        return synthetic_interactions(self._sample(n, rng), self.item_map_)

    def _sample(self, n_users: int, rng: np.random.Generator) -> list[np.ndarray]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-ready name, params and how degrees are chosen."""
        return {
            "name": self.name, "params": self.get_params(),
            "degrees": "bootstrap of the training degrees" if self.bootstraps_degrees else "real rows kept",
        }


class Bernoulli(Generator):
    """Independent Bernoulli cells, item popularity x user activity (Chung-Lu); see the module docstring."""

    name = "bernoulli"

    def _fit(self, train: Interactions) -> None:
        pop = train.item_counts().astype(np.float64)
        self.item_prob_ = pop / pop.sum()  # (n_items,)

    def _sample(self, n_users: int, rng: np.random.Generator) -> list[np.ndarray]:
        n_items = len(self.item_prob_)
        k = draw_degrees(self.train_degrees_, n_users, n_items, rng)
        rows: list[np.ndarray] = []
        for start, stop in _chunks(n_users, n_items):
            p = np.minimum(1.0, k[start:stop, None] * self.item_prob_[None, :])  # (b, n_items)
            hit = rng.random(p.shape) < p
            rows.extend(np.flatnonzero(r).astype(np.int64) for r in hit)
        return rows


class LowRank(Generator):
    """Mult-VAE decoder at ``z`` drawn from the prior; see the module docstring.

    Parameters
    ----------
    epochs, latent, hidden, batch_size
        Passed to the Mult-VAE (``gan4rec.models.create("multvae", ...)``).
    beta
        Weight of the KL term, reached after ``anneal_steps`` updates. Sampling from the prior is only
        sound for a proper VAE (``beta=1``); the recommender's default (cap 0.2, annealed over 200,000
        steps) is nearly an autoencoder, whose decoder at prior draws gives near-uniform items.
    n_threads
        Torch threads while fitting and sampling.
    """

    name = "lowrank"

    def __init__(self, *, epochs: int = 60, latent: int = 64, hidden: int = 300, batch_size: int = 64,
                 beta: float = 1.0, anneal_steps: int = 200, n_threads: int | None = 1,
                 random_state: RandomState = None) -> None:
        self.epochs = epochs
        self.latent = latent
        self.hidden = hidden
        self.batch_size = batch_size
        self.beta = beta
        self.anneal_steps = anneal_steps
        self.n_threads = n_threads
        self.random_state = random_state

    def _fit(self, train: Interactions) -> None:
        from gan4rec.models import create

        seed = int(to_numpy_rng(self.random_state).integers(0, 2**31 - 1))
        vae = create("multvae", {
            "epochs": self.epochs, "latent": self.latent, "hidden": self.hidden, "patience": None,
            "batch_size": self.batch_size, "anneal_cap": self.beta, "total_anneal_steps": self.anneal_steps,
            "n_threads": self.n_threads, "device": "cpu",
        }, random_state=seed)
        self.model_ = vae.fit(train)

    def _sample(self, n_users: int, rng: np.random.Generator) -> list[np.ndarray]:
        import torch

        from gan4rec.train.devices import torch_threads

        n_items = len(self.item_map_)
        k = draw_degrees(self.train_degrees_, n_users, n_items, rng)
        module = self.model_.modules_["vae"]  # type: ignore[attr-defined]
        module.eval()
        rows: list[np.ndarray] = []
        with torch_threads(self.n_threads), torch.no_grad():
            for start, stop in _chunks(n_users, n_items):
                z = torch.as_tensor(rng.standard_normal((stop - start, int(self.latent))), dtype=torch.float32)
                logits = module.decode(z).double().numpy()  # (b, n_items)
                rows.extend(sample_without_replacement(logits, k[start:stop], rng))
        return rows


class RandomizedResponse(Generator):
    """Randomized response on the real rows, ``epsilon``-DP per cell; see the module docstring.

    Parameters
    ----------
    epsilon
        Privacy parameter per cell: a cell is reported truthfully with probability ``e^eps / (1 + e^eps)``.
    """

    name = "randomized_response"
    bootstraps_degrees = False

    def __init__(self, *, epsilon: float = 5.0, random_state: RandomState = None) -> None:
        self.epsilon = epsilon
        self.random_state = random_state

    def _fit(self, train: Interactions) -> None:
        eps = self.epsilon
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not np.isfinite(eps) or eps <= 0:
            raise DataError(f"epsilon={eps!r}; expected a positive finite number")
        self.rows_ = train.csr()
        self.flip_ = 1.0 / (1.0 + float(np.exp(eps)))  # probability a cell is reported flipped

    def _sample(self, n_users: int, rng: np.random.Generator) -> list[np.ndarray]:
        m, n_items = self.rows_.shape
        # Every real row once per round (in a random order), as many rounds as needed.
        picks = np.concatenate([rng.permutation(m) for _ in range(-(-n_users // m))])[:n_users]
        self.epsilon_effective_ = float(self.epsilon) * int(np.bincount(picks, minlength=m).max())
        rows: list[np.ndarray] = []
        for start, stop in _chunks(n_users, n_items):
            x = self.rows_[picks[start:stop]].toarray().astype(bool)  # (b, n_items)
            flip = rng.random(x.shape) < self.flip_
            rows.extend(np.flatnonzero(r).astype(np.int64) for r in (x ^ flip))
        return rows

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["privacy"] = {"epsilon_per_cell": float(self.epsilon),
                          "epsilon_effective": getattr(self, "epsilon_effective_", None),
                          "unit": "one (user, item) cell (edge-level DP)"}
        return out


class RealCopy(Generator):
    """The training rows released unchanged (each once per round); a reference, not a generator."""

    name = "real"
    bootstraps_degrees = False

    def _fit(self, train: Interactions) -> None:
        self.rows_ = sp.csr_matrix(train.csr())

    def _sample(self, n_users: int, rng: np.random.Generator) -> list[np.ndarray]:
        m = self.rows_.shape[0]
        picks = np.concatenate([rng.permutation(m) for _ in range(-(-n_users // m))])[:n_users]
        ip, ix = self.rows_.indptr, self.rows_.indices
        return [np.asarray(ix[ip[u] : ip[u + 1]], dtype=np.int64) for u in picks]


#: Registry name -> generator class, or ``"module:Class"`` imported on first use (the GAN needs torch, and
#: its module imports this one, so naming it by string keeps the import graph one-way).
GENERATORS: dict[str, Any] = {
    "gan": "gan4rec.synth.gan:GAN",
    "bernoulli": Bernoulli,
    "lowrank": LowRank,
    "randomized_response": RandomizedResponse,
    "real": RealCopy,
}


def create_generator(name: str, params: dict[str, Any] | None = None, *, random_state: RandomState = None) -> Generator:
    """A new, unfitted generator from :data:`GENERATORS` with ``params`` over its defaults."""
    entry = GENERATORS.get(name)
    if entry is None:
        raise DataError(f"unknown generator {name!r}; known generators: {', '.join(GENERATORS)}")
    if isinstance(entry, str):
        import importlib

        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    cls = entry
    try:
        return cls(**dict(params or {}), random_state=random_state)  # type: ignore[no-any-return]
    except TypeError as e:
        raise DataError(f"generator {name!r}: bad parameters {sorted(params or {})} ({e})") from None
