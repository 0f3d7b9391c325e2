"""iALS: implicit-feedback matrix factorisation by alternating least squares (Hu, Koren, Volinsky 2008).

Every (user, item) cell counts: preference ``p_ui = 1`` for an interaction, else 0, with confidence
``c_ui = 1 + alpha`` for an interaction, else 1. The objective

    sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + reg (sum_u |x_u|^2 + sum_i |y_i|^2)

is minimised by alternating exact ridge regressions: with the items fixed, each user solves

    (Y^T Y + alpha Y_u^T Y_u + reg I) x_u = (1 + alpha) Y_u^T 1        (Y_u: the user's items' factors)

and symmetrically for the items. ``Y^T Y`` is shared by all users, so a solve only touches the user's own
interactions: the cost of an iteration is linear in the number of interactions.

Two solvers, both batched over all users with no per-user Python loop:

- ``"cholesky"``: users are sorted by their number of interactions and taken in blocks; a block's items'
  factors are gathered into a padded ``(block, longest row, f)`` tensor, its ``f x f`` systems assembled
  with one batched matrix product and solved exactly with a batched Cholesky factorisation.
- ``"cg"``: ``cg_steps`` conjugate-gradient steps per user, warm-started from the previous factors
  (Takacs, Pilaszy, Tikk 2011; what the ``implicit`` library does, 3 steps by default). Every user's CG
  runs at once, as matrix operations on ``(n_users, f)`` blocks. The product of each user's system with
  that user's CG direction, ``(Y^T Y + reg I + alpha Y_u^T Y_u) p_u``, is ``p_u (Y^T Y + reg I)`` plus a
  correction over the user's items, computed for all users together as two sparse products over the
  interaction pattern ``R`` (users x items, CSR)::

      D = alpha * (P Y^T) sampled at R's nonzeros      (torch.sparse.sampled_addmm: only nnz dots)
      A P = P (Y^T Y + reg I) + D Y                     (CSR times dense)

  A product costs ``O(nnz * f + n * f^2)``, so it scales to large ``f`` where assembling ``f x f``
  systems does not, and the same code runs on CUDA (both sparse kernels exist there).

The training objective is reported each iteration without building the dense matrix:
``sum_{u,i} (x_u . y_i)^2 = trace(X^T X Y^T Y)``, and the observed cells correct it.

Each iteration (users, then items) is one "epoch" of the shared training loop, so iterations can be
chosen on validation with early stopping and resumed from checkpoints like any other model.
On CUDA, ``index_add_`` accumulates with atomics, so results are not bit-identical across runs there.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from gan4rec.data.interactions import Interactions
from gan4rec.errors import DataError
from gan4rec.models.base import SearchSpace
from gan4rec.models.torch_base import TorchRecommender, check_float, check_int

__all__ = ["IALS"]

_SOLVERS = ("cholesky", "cg")
_CHUNK_FLOATS = 1 << 23  # bound on the floats of one chunk of per-interaction temporaries (32 MB)


class _Factors(nn.Module):
    """User and item factors, trained without gradients (buffers, saved in the state_dict)."""

    init_std: ClassVar[float] = 0.01
    user: torch.Tensor
    item: torch.Tensor

    def __init__(self, n_users: int, n_items: int, n_factors: int) -> None:
        super().__init__()
        self.register_buffer("user", torch.randn(n_users, n_factors) * self.init_std)
        self.register_buffer("item", torch.randn(n_items, n_factors) * self.init_std)


class _Side:
    """One side of the alternation: the CSR whose rows are solved for (users, or items via the transpose)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, n_cols: int, device: torch.device) -> None:
        counts = np.diff(indptr).astype(np.int64)
        self.counts = counts
        self.indptr_t = torch.as_tensor(indptr.astype(np.int64), device=device)
        self.rows = torch.as_tensor(np.repeat(np.arange(len(counts), dtype=np.int64), counts), device=device)
        self.cols = torch.as_tensor(indices.astype(np.int64), device=device)
        self.n_rows = len(counts)
        self.n_cols = n_cols
        self.device = device
        # The 0/1 interaction pattern as a sparse CSR tensor, for the CG solver's sparse products.
        with warnings.catch_warnings():  # torch warns once that sparse CSR support is in beta
            warnings.simplefilter("ignore", UserWarning)
            self.pattern = torch.sparse_csr_tensor(
                self.indptr_t, self.cols, torch.ones(len(indices), device=device), size=(self.n_rows, n_cols)
            )
        self._blocks: dict[int, list[tuple[torch.Tensor, torch.Tensor, int]]] = {}

    def blocks(self, f: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        """Rows grouped by similar length for padded batched solves: ``(rows, lengths, max length)``.

        Rows are sorted by their number of entries, so padding each block to its longest row wastes
        little; a block holds at most ``_CHUNK_FLOATS`` floats of padded factors and of ``f x f`` systems.
        """
        if f not in self._blocks:
            order = np.argsort(self.counts, kind="stable")
            sorted_counts = self.counts[order]
            max_rows = max(1, _CHUNK_FLOATS // (f * f))
            out = []
            start = 0
            while start < self.n_rows:
                end = min(start + max_rows, self.n_rows)
                # Shrink until rows x longest row x f fits (the longest row is the last one).
                while (
                    end - start > 1
                    and (end - start) * max(int(sorted_counts[end - 1]), 1) * f > _CHUNK_FLOATS
                ):
                    end = start + max(1, _CHUNK_FLOATS // (max(int(sorted_counts[end - 1]), 1) * f))
                rows = order[start:end]
                out.append(
                    (
                        torch.as_tensor(rows, device=self.device),
                        torch.as_tensor(self.counts[rows], device=self.device),
                        max(int(sorted_counts[end - 1]), 1),
                    )
                )
                start = end
            self._blocks[f] = out
        return self._blocks[f]


def _system_product(
    pattern: torch.Tensor, p: torch.Tensor, other: torch.Tensor, gram: torch.Tensor, alpha: float
) -> torch.Tensor:
    """Row ``u`` of the result is ``(Y^T Y + reg I + alpha Y_u^T Y_u) p_u``, for every row at once.

    ``pattern`` is the ``(n, m)`` 0/1 sparse CSR of the rows' entries, ``p`` ``(n, f)``, ``other`` ``Y``
    ``(m, f)`` and ``gram`` ``Y^T Y + reg I`` ``(f, f)``. The correction ``alpha Y_u^T Y_u p_u`` of all
    rows is ``D Y`` with ``D = alpha (P Y^T)`` kept only at the pattern's nonzeros: one sampled product
    (``nnz`` dots) and one CSR-times-dense product, no per-entry Python or gathers.
    """
    correction = torch.sparse.sampled_addmm(pattern, p, other.T, beta=0.0, alpha=alpha)  # (n, m) sparse
    return torch.addmm(correction @ other, p, gram)  # (n, f)


class IALS(TorchRecommender):
    """iALS (Hu, Koren, Volinsky 2008): weighted matrix factorisation of implicit feedback, fitted by ALS.

    Parameters
    ----------
    n_factors
        Number of latent factors.
    reg
        L2 weight ``reg`` on every factor vector.
    alpha
        Confidence of an interaction is ``1 + alpha`` (unobserved cells have confidence 1).
    iterations
        Maximum number of alternations (users then items); the "epochs" of the loop.
    solver
        ``"cholesky"`` (exact solves) or ``"cg"`` (``cg_steps`` warm-started conjugate-gradient steps).
    cg_steps
        Conjugate-gradient steps per solve with ``solver="cg"``.
    eval_every, patience
        Validate every ``eval_every`` iterations; stop after ``patience`` validations without improvement.
    device, random_state, n_threads
        As in :class:`~gan4rec.models.baselines.bpr.BPR`.
    """

    name = "ials"
    epochs_param = "iterations"
    search_space: ClassVar[SearchSpace] = {
        "n_factors": {"type": "int", "low": 16, "high": 512, "log": True},
        "reg": {"type": "float", "low": 1e-3, "high": 1e3, "log": True},
        "alpha": {"type": "float", "low": 0.1, "high": 100.0, "log": True},
    }

    def __init__(
        self,
        *,
        n_factors: int = 64,
        reg: float = 30.0,
        alpha: float = 3.0,
        iterations: int = 15,
        solver: str = "cholesky",
        cg_steps: int = 3,
        eval_every: int = 1,
        patience: int | None = 3,
        device: str | None = None,
        random_state: int | np.random.Generator | None = None,
        n_threads: int | None = 1,
    ) -> None:
        self.n_factors = n_factors
        self.reg = reg
        self.alpha = alpha
        self.iterations = iterations
        self.solver = solver
        self.cg_steps = cg_steps
        self.eval_every = eval_every
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self) -> None:
        check_int(self.n_factors, "n_factors")
        check_float(self.reg, "reg")
        check_float(self.alpha, "alpha")
        check_int(self.cg_steps, "cg_steps")
        if self.solver not in _SOLVERS:
            raise DataError(f"solver={self.solver!r}; expected one of {', '.join(_SOLVERS)}")

    def _build_modules(self, n_users: int, n_items: int) -> dict[str, nn.Module]:
        return {"factors": _Factors(n_users, n_items, int(self.n_factors))}

    def _build_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        return {}

    def _prepare(self, train: Interactions) -> None:
        csr = train.csr()
        csc = csr.T.tocsr()  # items x users
        csc.sort_indices()
        self._users_side = _Side(np.asarray(csr.indptr), np.asarray(csr.indices), train.n_items, self.device_)
        self._items_side = _Side(np.asarray(csc.indptr), np.asarray(csc.indices), train.n_users, self.device_)

    def _release(self) -> None:
        super()._release()
        for attr in ("_users_side", "_items_side"):
            self.__dict__.pop(attr, None)

    # ------------------------------------------------------------------ solves
    def _chunk(self) -> int:
        return max(1, _CHUNK_FLOATS // int(self.n_factors))

    def _weighted_sum(self, side: _Side, other: torch.Tensor, coef: torch.Tensor | None) -> torch.Tensor:
        """``out[r] = sum over r's entries e of coef[e] * other[col(e)]`` (coef 1 when None): (n_rows, f)."""
        out = torch.zeros((side.n_rows, other.shape[1]), dtype=other.dtype, device=other.device)
        step = self._chunk()
        for s in range(0, len(side.cols), step):
            vals = other[side.cols[s : s + step]]  # (chunk, f)
            if coef is not None:
                vals = vals * coef[s : s + step, None]
            out.index_add_(0, side.rows[s : s + step], vals)
        return out

    def _solve(self, side: _Side, current: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """New factors for the rows of ``side`` given the ``other`` side's factors."""
        f = other.shape[1]
        reg = float(self.reg)
        gram = other.T @ other + reg * torch.eye(f, dtype=other.dtype, device=other.device)  # (f, f)
        if self.solver == "cholesky":
            rhs = (1.0 + float(self.alpha)) * self._weighted_sum(side, other, None)  # (n, f)
            return self._solve_cholesky(side, other, gram, rhs)
        return self._solve_cg(side, other, gram, current)

    def _solve_cholesky(
        self, side: _Side, other: torch.Tensor, gram: torch.Tensor, rhs: torch.Tensor
    ) -> torch.Tensor:
        f = other.shape[1]
        alpha = float(self.alpha)
        out = torch.empty_like(rhs)
        # A zero row at index len(other) stands in for the padding of short rows.
        padded_other = torch.cat([other, other.new_zeros((1, f))])  # (m + 1, f)
        for rows, lengths, width in side.blocks(f):
            ramp = torch.arange(width, device=other.device)  # (L,)
            starts = side.indptr_t[rows]  # (B,)
            inside = ramp[None, :] < lengths[:, None]  # (B, L)
            entry = torch.where(inside, starts[:, None] + ramp[None, :], 0)
            cols = torch.where(inside, side.cols[entry], len(other))  # (B, L)
            v = padded_other[cols]  # (B, L, f), zero rows past each row's length
            systems = torch.baddbmm(
                gram.expand(len(rows), f, f), v.transpose(1, 2), v, alpha=alpha
            )  # (B, f, f)
            chol = torch.linalg.cholesky(systems)
            out[rows] = torch.cholesky_solve(rhs[rows, :, None], chol)[:, :, 0]
        return out

    def _solve_cg(self, side: _Side, other: torch.Tensor, gram: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``cg_steps`` conjugate-gradient steps from ``x`` for every row at once (module docstring)."""
        alpha = float(self.alpha)

        def apply(p: torch.Tensor) -> torch.Tensor:
            return _system_product(side.pattern, p, other, gram, alpha)

        rhs = (1.0 + alpha) * (side.pattern @ other)  # (n, f): (1 + alpha) times the sum of u's items' y_i
        r = rhs - apply(x)
        p = r.clone()
        rs = (r * r).sum(dim=1)  # (n,)
        x = x.clone()
        for _ in range(int(self.cg_steps)):
            ap = apply(p)
            denom = (p * ap).sum(dim=1)
            # Converged rows (zero residual, so zero direction) would divide 0 by 0; they keep their value.
            step = torch.where(denom > 0, rs / denom.clamp_min(1e-30), 0.0)  # (n,)
            x.addcmul_(step[:, None], p)
            r.addcmul_(step[:, None], ap, value=-1.0)
            rs_new = (r * r).sum(dim=1)
            beta = torch.where(rs > 0, rs_new / rs.clamp_min(1e-30), 0.0)  # (n,)
            p = torch.addcmul(r, beta[:, None], p)
            rs = rs_new
        return x

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        fac: _Factors = self.modules_["factors"]  # type: ignore[assignment]
        with torch.no_grad():
            fac.user.copy_(self._solve(self._users_side, fac.user, fac.item))
            fac.item.copy_(self._solve(self._items_side, fac.item, fac.user))
            return {"loss": self._objective(fac.user, fac.item)}

    def _objective(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """The training objective, without the dense matrix (module docstring)."""
        side = self._users_side
        s = torch.sparse.sampled_addmm(side.pattern, x, y.T, beta=0.0).values()  # (nnz,) observed scores
        alpha = float(self.alpha)
        all_cells = torch.trace((x.T @ x) @ (y.T @ y))  # sum over every cell of score^2
        observed = ((1.0 + alpha) * (1.0 - s).square() - s.square()).sum()
        penalty = float(self.reg) * (x.square().sum() + y.square().sum())
        return float(all_cells + observed + penalty)

    def _score_tensor(self, users: torch.Tensor) -> torch.Tensor:
        fac: _Factors = self.modules_["factors"]  # type: ignore[assignment]
        return fac.user[users] @ fac.item.T
