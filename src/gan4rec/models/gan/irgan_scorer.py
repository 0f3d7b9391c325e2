"""The MLP scorer of :mod:`gan4rec.models.gan.irgan` (``scorer="mlp"``): matrix factorisation plus an MLP."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

__all__ = ["MLPScorer"]


class MLPScorer(nn.Module):
    """``x_ui = h . (p_u * q_i) + v . relu(A p_u + B q_i + c) + b_i``: a GMF term plus a one-hidden-layer MLP.

    ``h`` starts at ones, so the scorer starts as matrix factorisation plus a small MLP correction. Scoring
    the catalogue builds ``(chunk, n_items, hidden)`` activations, chunked over users to bound memory.

    Parameters
    ----------
    n_users, n_items
        Table sizes.
    n_factors
        Embedding size.
    hidden
        Width of the hidden layer.
    """

    init_std: ClassVar[float] = 0.1
    #: Bound on ``chunk * n_items * hidden`` when scoring the whole catalogue.
    max_cells: ClassVar[int] = 1 << 23

    def __init__(self, n_users: int, n_items: int, n_factors: int, hidden: int) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, n_factors)
        self.item = nn.Embedding(n_items, n_factors)
        self.item_bias = nn.Embedding(n_items, 1)
        self.gmf = nn.Parameter(torch.ones(n_factors))
        self.user_proj = nn.Linear(n_factors, hidden)
        self.item_proj = nn.Linear(n_factors, hidden, bias=False)
        self.out = nn.Linear(hidden, 1, bias=False)
        nn.init.normal_(self.user.weight, std=self.init_std)
        nn.init.normal_(self.item.weight, std=self.init_std)
        nn.init.zeros_(self.item_bias.weight)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of aligned ``(user, item)`` pairs, any common shape."""
        pu, qi = self.user(users), self.item(items)  # (..., f)
        hidden = torch.relu(self.user_proj(pu) + self.item_proj(qi))  # (..., h)
        return (pu * qi) @ self.gmf + self.out(hidden).squeeze(-1) + self.item_bias(items).squeeze(-1)

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        """``(n, n_items)`` scores of every item."""
        pu = self.user(users)  # (n, f)
        gmf = (pu * self.gmf) @ self.item.weight.T  # (n, n_items)
        a = self.user_proj(pu)  # (n, h)
        b = self.item_proj(self.item.weight)  # (n_items, h)
        step = max(1, self.max_cells // max(1, b.shape[0] * b.shape[1]))
        if not len(users):
            return gmf
        mlp = torch.cat(
            [
                self.out(torch.relu(a[s : s + step, None, :] + b[None])).squeeze(-1)  # (chunk, n_items)
                for s in range(0, len(users), step)
            ]
        )
        # view, not .T: the bias gradient then keeps the parameter's layout, as DDP's buckets expect.
        return gmf + mlp + self.item_bias.weight.view(1, -1)

    def sq_norms(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Summed squared norms of the embedding rows and biases that the pairs touch (per-sample L2)."""
        return (
            self.user(users).square().sum()
            + self.item(items).square().sum()
            + self.item_bias(items).square().sum()
        )

    def bpr_terms(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x_ui - x_uj`` ``(b,)`` and the squared norms of the embedding rows the triples touch (BPR)."""
        diff = self.pair_scores(users, pos) - self.pair_scores(users, neg)  # (b,)
        sq = (
            self.user(users).square().sum()
            + self.item(pos).square().sum()
            + self.item(neg).square().sum()
            + self.item_bias(pos).square().sum()
            + self.item_bias(neg).square().sum()
        )
        return diff, sq
