"""Most-popular items: the floor every personalised model must clear."""

from __future__ import annotations

from typing import Any

import numpy as np

from gan4rec.data.interactions import Interactions
from gan4rec.models.base import Recommender

__all__ = ["TopPop"]


class TopPop(Recommender):
    """Scores every item by the number of training users who interacted with it (same list for all users).

    Ties break towards the lower item index, like every ranking in gan4rec.

    Parameters
    ----------
    random_state
        Accepted for a uniform interface; TopPop is deterministic.
    """

    name = "toppop"

    def __init__(self, *, random_state: int | None = None) -> None:
        self.random_state = random_state

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        self.popularity_ = train.item_counts().astype(np.float32)  # (n_items,)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(users), self.n_items)).copy()  # (n, n_items)

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_}

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.popularity_ = self._expect_shape(arrays, "popularity", (self.n_items,)).astype(np.float32)
