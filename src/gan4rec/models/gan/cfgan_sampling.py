"""PM and ZR sampling of :mod:`gan4rec.models.gan.cfgan`: exact per-epoch subsets and per-batch masks."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numpy as np
import torch

from gan4rec.models.gan.cfgan_kernels import Batch

__all__ = ["FLOOR_EPS", "MaskSampling", "sample_subsets_np", "sample_subsets_torch", "subset_counts"]

# k = floor(ratio * n) must agree with the original's int(n * percent / 100) when ratio * n lands a hair
# below an integer (0.7 * 900 = 629.99...).
FLOOR_EPS = 1e-9


def subset_counts(n_unobserved: np.ndarray, ratio: float) -> np.ndarray:
    return np.floor(ratio * n_unobserved + FLOOR_EPS).astype(np.int64)


def sample_subsets_np(observed: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """For each row, a uniform subset of exactly ``floor(ratio * n_unobserved)`` unobserved columns.

    Random float32 keys, observed columns set above every key, one SIMD sort of the keys per row: a
    column is drawn when its key is at most the row's ``k``-th smallest. Where the ``k``-th and
    ``(k+1)``-th smallest keys tie (probability about 1e-4 per row) the rule would draw one column too
    many, so such rows are drawn again with float64 keys and an argsort; whether a row is redrawn does not
    depend on which columns tied, so every ``k``-subset stays equally likely.

    Parameters
    ----------
    observed
        ``(n, C)`` boolean.
    ratio
        Fraction in ``[0, 1]``.
    rng
        The generator.

    Returns
    -------
    np.ndarray
        ``(n, C)`` boolean mask of the drawn columns.
    """
    n, c = observed.shape
    k = subset_counts(c - observed.sum(axis=1), ratio)  # (n,)
    keys = rng.random((n, c), dtype=np.float32)  # (n, C) in [0, 1)
    np.copyto(keys, np.float32(2.0), where=observed)
    ordered = np.sort(keys, axis=1)  # (n, C)
    rows = np.arange(n)
    kth = ordered[rows, np.maximum(k - 1, 0)]  # (n,) k-th smallest key
    tied = (k > 0) & (k < c) & (ordered[rows, np.minimum(k, c - 1)] == kth)
    kth[k == 0] = -1.0
    mask = keys <= kth[:, None]
    bad = np.flatnonzero(tied)
    if bad.size:
        keys64 = rng.random((bad.size, c))
        keys64[observed[bad]] = 2.0
        order = np.argsort(keys64, axis=1, kind="stable")
        redo = np.zeros((bad.size, c), dtype=bool)
        np.put_along_axis(redo, order, np.arange(c)[None, :] < k[bad, None], axis=1)
        mask[bad] = redo
    return mask


def sample_subsets_torch(observed: torch.Tensor, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """:func:`sample_subsets_np` on a device: random keys and an argsort per row (exact)."""
    n, c = observed.shape
    k = torch.floor(ratio * (c - observed.sum(dim=1)).double() + FLOOR_EPS).long()  # (n,)
    keys = torch.rand((n, c), generator=gen, device=observed.device).masked_fill_(observed, 2.0)
    order = keys.argsort(dim=1, stable=True)  # (n, C)
    take = torch.arange(c, device=observed.device)[None, :] < k[:, None]
    return torch.zeros_like(observed).scatter_(1, order, take)



class MaskSampling:
    """Drawing the PM and ZR samples, mixed into the model (see the ``resample`` parameter)."""

    #: Entries per 16-bit draw of the CPU batch masks (:meth:`_cpu_masks`): 256 KB of draws, in cache.
    _mask_chunk: ClassVar[int] = 2**17
    _pool: ThreadPoolExecutor | None = None

    # Set by the model (declared for type checkers).
    scheme: str
    pm_ratio: float
    zr_ratio: float
    device_: torch.device
    np_rng_: np.random.Generator
    rank_np_rng_: np.random.Generator
    torch_gen_: torch.Generator
    rank_torch_gen_: torch.Generator
    _dense: bool
    _n_cols: int
    _observed_f: torch.Tensor
    _scratch: Callable[..., torch.Tensor]

    @property
    def _uses_pm(self) -> bool:
        return self.scheme in ("zp", "pm")

    @property
    def _uses_zr(self) -> bool:
        return self.scheme in ("zp", "zr")


    def _draw(self, observed: np.ndarray | torch.Tensor, ratio: float) -> torch.Tensor:
        """Uniform subsets of the unobserved entries as a float32 ``(n, C)`` 0/1 tensor on the device.

        Drawn from the generators all ranks share: every rank draws the same samples for all rows, so a
        row's samples stay one set per epoch for its D and G passes (as in the original) even when those
        passes visit it on different ranks.
        """
        if isinstance(observed, np.ndarray):
            mask = sample_subsets_np(observed, ratio, self.np_rng_)
            return torch.from_numpy(mask.view(np.uint8)).to(self.device_, torch.float32)
        return sample_subsets_torch(observed, ratio, self.torch_gen_).float()

    def _masks(
        self, observed: np.ndarray | torch.Tensor, observed_f: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(k, zr)`` for these rows: real entries plus PM samples, and the ZR samples (or ``None``)."""
        keep = observed_f
        if self._uses_pm:
            keep = self._draw(observed, float(self.pm_ratio)).add_(observed_f)
        zr = self._draw(observed, float(self.zr_ratio)) if self._uses_zr else None
        return keep, zr

    def _batch_masks(
        self, batch: Batch, *, with_zr: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(k, zr)`` for one mini-batch with ``resample="batch"``.

        The batch's rows are densified from CSR (or taken from the dense rows when kept); each unobserved
        entry is drawn independently with probability ``pm_ratio`` / ``zr_ratio``: the expected sizes of
        the exact per-epoch draws, without a sort of every row per mini-batch. ``with_zr=False`` (D's
        steps, which do not use them) skips the ZR draw.

        On the CPU see :meth:`_cpu_masks`; on a GPU the draws are floats from the rank's torch generator.
        """
        ratios = [
            float(self.pm_ratio) if self._uses_pm else None,
            float(self.zr_ratio) if self._uses_zr and with_zr else None,
        ]
        if self.device_.type == "cpu":
            return self._cpu_masks(batch, ratios)
        if self._dense:
            real = self._observed_f.index_select(0, batch.rows)  # (B, C)
        else:
            real = torch.zeros((len(batch), self._n_cols), device=self.device_)
            lengths = torch.diff(batch.offsets, append=batch.offsets.new_tensor([len(batch.cols)]))
            pos = torch.repeat_interleave(torch.arange(len(batch), device=self.device_), lengths)
            real[pos, batch.cols] = 1.0
        free = 1.0 - real
        gen = self.rank_torch_gen_
        keep = real
        if ratios[0] is not None:
            keep = torch.rand(real.shape, generator=gen, device=self.device_).lt_(ratios[0]).mul_(free)
            keep = keep.add_(real)
        zr = None
        if ratios[1] is not None:
            zr = torch.rand(real.shape, generator=gen, device=self.device_).lt_(ratios[1]).mul_(free)
        return keep, zr

    def _cpu_masks(
        self, batch: Batch, ratios: list[float | None]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`_batch_masks` on the CPU: ``(k, zr)`` of the batch's rows, drawn with numpy.

        The draws are 16-bit integers (each raw 64-bit output of the generator cut in four) compared
        with ``round(ratio * 2^16)`` (the probability differs from ``ratio`` by at most ``2^-17``):
        torch's CPU ``rand`` took 28% of an ML-20M-sized epoch and these draws are about 8x cheaper.
        They are drawn a few rows at a time, so the 16-bit draws stay in cache and each mask is written
        once, as float32 0/1; then the real entries are set (PM: to 1, so ``k`` holds them) or cleared
        (ZR: never a real entry) by one scatter over the batch's nonzeros. The rows are split in two
        halves, each drawn from its own generator seeded from the rank's numpy generator; with two or
        more torch threads the second half runs on the epoch's worker thread (numpy releases the GIL
        for these fills), so the bits are the same however many threads run. Without PM, ``k`` is the
        0/1 rows themselves.
        """
        n, n_cols = len(batch), self._n_cols
        masks = [
            None if ratio is None else self._scratch(name, n, torch.float32)
            for ratio, name in zip(ratios, ("keep", "zr"), strict=True)
        ]
        real = self._scratch("real", n, torch.float32) if masks[0] is None else None
        cols = batch.cols.numpy()
        ends = np.append(batch.offsets.numpy(), len(cols))  # (B + 1,) row r's entries: ends[r]:ends[r + 1]
        seeds = self.rank_np_rng_.integers(0, 2**63, size=2)
        half = (n + 1) // 2
        # Rows per draw: a multiple of 4, so every draw but a half's last consumes whole 64-bit outputs
        # and the stream (hence the bits) is the same as one draw per half.
        chunk = max(4, (self._mask_chunk // max(n_cols, 1)) // 4 * 4)

        def fill(lo: int, hi: int, seed: int) -> None:
            # Flat positions of the real entries within rows lo:hi.
            flat = np.repeat(np.arange(hi - lo) * n_cols, np.diff(ends[lo : hi + 1]))
            flat += cols[ends[lo] : ends[hi]]
            if real is not None:
                part = real[lo:hi].numpy()
                part.fill(0.0)
                part.reshape(-1)[flat] = 1.0
            gen = np.random.PCG64(seed)  # raw 64-bit outputs only
            for ratio, mask, value in zip(ratios, masks, (1.0, 0.0), strict=True):
                if ratio is None or mask is None:
                    continue
                part = mask[lo:hi].numpy()
                threshold = round(ratio * 65536)
                for s in range(0, hi - lo, chunk):
                    block = part[s : s + chunk]
                    bits = gen.random_raw((block.size + 3) // 4).view(np.uint16)
                    np.less(bits[: block.size].reshape(block.shape), threshold, out=block, casting="unsafe")
                # PM: drawn or real (k); ZR: drawn and not real.
                part.reshape(-1)[flat] = value

        pool = self._pool
        later = pool.submit(fill, half, n, int(seeds[1])) if pool is not None else None
        fill(0, half, int(seeds[0]))
        if later is not None:
            later.result()
        else:
            fill(half, n, int(seeds[1]))
        keep = masks[0] if masks[0] is not None else real
        assert keep is not None
        return keep, masks[1]

