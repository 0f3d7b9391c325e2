"""The :class:`Split` every splitter returns, and the argument checks and seeding they share.

The protocol (rounding, seeding, validation carving, fingerprints) is described in
:mod:`gan4rec.data.split`.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError

__all__ = ["RandomState", "Split", "check_data", "check_frac", "merge_parts", "spec_seed", "to_rng"]

RandomState = int | np.random.Generator | None


# ---------------------------------------------------------------------------------------------- Split
@dataclass(frozen=True, eq=False)
class Split:
    """A train / validation / test partition of one :class:`Interactions`, in one index space.

    Attributes
    ----------
    train
        What ``fit`` may see: the training part minus validation when validation is carved.
    valid
        Carved from the training part by the split's own rule; ``None`` when no validation was asked for.
    test
        The held-out evaluation part; ``None`` when ``test_frac=0``.
    spec
        JSON-ready description: ``kind``, fractions or ``k``, ``seed``, realised cutoffs, input fingerprint.
    fingerprint
        sha256 over ``spec`` and the parts' fingerprints. Computed when left empty; when given (e.g. read
        back from a results file) it must match the parts, else :class:`DataError`.

    Two splits compare equal when their fingerprints are equal.
    """

    train: Interactions
    valid: Interactions | None
    test: Interactions | None
    spec: dict[str, Any]
    fingerprint: str = ""

    def __post_init__(self) -> None:
        for name in ("valid", "test"):
            part = getattr(self, name)
            if part is not None and not self.train.same_space(part):
                raise DataError(f"split part {name!r} indexes different users or items than train")
        try:
            spec = json.loads(json.dumps(self.spec, sort_keys=True, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise DataError(f"split spec is not JSON-ready ({exc})") from None
        object.__setattr__(self, "spec", spec)
        computed = _split_fingerprint(spec, self.train, self.valid, self.test)
        if self.fingerprint and self.fingerprint != computed:
            raise DataError(
                f"split fingerprint {self.fingerprint[:12]}... does not match its parts ({computed[:12]}...)"
            )
        object.__setattr__(self, "fingerprint", computed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Split) and self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        return f"Split({self.spec.get('kind')!r}, {sizes}, fingerprint={self.fingerprint[:12]})"

    @property
    def sizes(self) -> dict[str, int | None]:
        """Number of interactions in each part (``None`` for an absent part)."""
        return {
            "train": self.train.nnz,
            "valid": None if self.valid is None else self.valid.nnz,
            "test": None if self.test is None else self.test.nnz,
        }

    def full_train(self) -> Interactions:
        """Train and validation merged back: the training data before validation was carved.

        Use it to refit on the whole training part once hyper-parameters are chosen. Ratings and
        timestamps follow their entries; a (user, item) pair present in both parts is a :class:`DataError`.
        """
        if self.valid is None:
            return self.train
        return merge_parts(self.train, self.valid)


def _split_fingerprint(
    spec: dict[str, Any], train: Interactions, valid: Interactions | None, test: Interactions | None
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode())
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        h.update(f"\x1e{name}:{'none' if part is None else part.fingerprint()}".encode())
    return h.hexdigest()


def merge_parts(a: Interactions, b: Interactions) -> Interactions:
    """Entry union of two disjoint parts of one index space (ratings / timestamps kept when both have them)."""
    def both(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x, y])

    return Interactions.from_indices(
        np.concatenate([a.user_index(), b.user_index()]),
        np.concatenate([a.indices, b.indices]),
        a.user_map, a.item_map,
        ratings=both(a.ratings, b.ratings),
        timestamps=both(a.timestamps, b.timestamps),
        duplicates="error",
        user_features=a.user_features, item_features=a.item_features,
        user_feature_columns=a.user_feature_columns, item_feature_columns=a.item_feature_columns,
    )


# ---------------------------------------------------------------------------------------------- checks
def check_data(data: Any, name: str = "data") -> Interactions:
    """``data`` itself when it is a non-empty :class:`Interactions`; else a :class:`DataError` naming ``name``."""
    if not isinstance(data, Interactions):
        raise DataError(f"{name} must be an Interactions, got {type(data).__name__}")
    if data.nnz == 0:
        raise DataError(f"{name} has no interactions to split")
    return data


def check_frac(value: Any, name: str) -> float:
    """``value`` as a float when it is a fraction in ``[0, 1)``; else a :class:`DataError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise DataError(f"{name}={value!r} is not a number; expected a fraction in [0, 1)")
    if not 0.0 <= float(value) < 1.0:
        raise DataError(f"{name}={value!r} is out of range; expected a fraction in [0, 1)")
    return float(value)


def to_rng(random_state: Any) -> np.random.Generator:
    """A Generator from ``random_state``: a Generator as is, a non-negative int seeds one, ``None`` fresh entropy."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral) or random_state < 0:
        raise DataError(
            f"random_state={random_state!r} is invalid; expected a non-negative int or a numpy Generator"
        )
    return np.random.default_rng(int(random_state))


def spec_seed(random_state: Any) -> int | None:
    """The seed as recorded in a spec: the int, or ``None`` for a Generator / fresh entropy."""
    return None if random_state is None or isinstance(random_state, np.random.Generator) else int(random_state)
