"""Issue 8 probe (validation only): how much could GAN-style augmentation of the data help EASE at best?

Augmenting the training users with samples of a generator G adds ``w * E_G[x x^T]`` to EASE's Gram matrix
``X^T X``. As a generous stand-in for a well-trained generator, this probe uses the rank-``r`` truncated
SVD reconstruction ``Xh`` of ``X`` itself (a smooth, low-rank model of the profiles, like the covariance a
latent-variable generator would produce) and fits EASE on ``X^T X + w Xh^T Xh`` with ``l2 (1 + w)``, over a
small grid. Scores are ``X B`` (the real profiles). Validation data only (the CFGAN ML-100K split's 20%
per-user validation carving of train, seed 42); test is never read. The grid's best is chosen on the same
validation data, so its gain is optimistic.

    python benchmarks/issue8_gram_probe.py
"""

from __future__ import annotations

import itertools
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GAN4REC_SHARED", ROOT.parent / "shared")) / "datasets" / "cfgan-ml100k"
RANKS, WEIGHTS, L2S = (32, 64, 128), (0.5, 1.0, 2.0), (300.0, 455.0, 600.0)


def main() -> int:
    if not (SHARED / "ML100K.train").is_file():
        print(f"skipped: {SHARED} is absent (the CFGAN ML-100K split)")
        return 0
    import torch

    from gan4rec.evaluation.evaluator import evaluate
    from gan4rec.experiment import DataSpec, Protocol, load_split
    from gan4rec.models.baselines.ease import ease_weights_from_gram_

    torch.set_num_threads(1)
    spec = DataSpec(train=str(SHARED / "ML100K.train"), test=str(SHARED / "ML100K.test"), format="uir")
    split, _ = load_split(spec, Protocol(ks=(20,), metric="NDCG@20"))
    x = split.train.csr().astype(np.float64).toarray()  # (943, 1653): train minus validation
    gram = x.T @ x
    xt = torch.from_numpy(x).float()

    def ndcg(g: np.ndarray, l2: float) -> float:
        bt = torch.from_numpy(ease_weights_from_gram_(g.copy(), l2))
        ev = evaluate(lambda u: xt[torch.as_tensor(u)] @ bt, split.train, split.valid, ks=(20,), device="cpu")
        return float(ev.metrics["NDCG@20"])

    print(f"command: python {' '.join(sys.argv)}\nmachine: {platform.node()} {platform.machine()}, "
          f"{os.cpu_count()} cpus; torch threads {torch.get_num_threads()}; validation only")
    ease = {l2: ndcg(gram, l2) for l2 in L2S}
    ref = max(ease.values())
    print("| r | w | l2 | valid NDCG@20 | ratio to the best EASE |\n|---|---|---|---|---|")
    for l2, v in ease.items():
        print(f"| EASE | 0 | {l2:g} | {v:.4f} | {v / ref:.3f} |")
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    best = (ref, "EASE")
    for r in RANKS:
        xh = (u[:, :r] * s[:r]) @ vt[:r]
        smooth = xh.T @ xh
        for w, l2 in itertools.product(WEIGHTS, L2S):
            v = ndcg(gram + w * smooth, l2 * (1.0 + w))
            print(f"| {r} | {w:g} | {l2:g} | {v:.4f} | {v / ref:.3f} |", flush=True)
            best = max(best, (v, f"r={r} w={w:g} l2={l2:g}"))
    print(f"best: {best[1]} {best[0]:.4f} ({best[0] - ref:+.4f} over the best EASE of the grid)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
