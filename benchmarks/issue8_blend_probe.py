"""Issue 8 probe (validation only): does a GAN add more to a strong model as an ensemble member than a
non-adversarial model does?

The issue lists "a hybrid that combines a GAN with collaborative filtering" as a direction. This probe
measures the best case of the simplest such hybrid: a blend ``(1 - b) z(base) + b z(other)`` of two
models' scores, ``z`` standardising each user's scores over all items, for bases EASE and iALS and
for second models CFGAN (the tuned config and the paper replica) and, as controls, BPR-MF, Mult-VAE,
iALS and EASE. Every model uses its committed config (``configs/<model>-ml100k.toml``) with seed 0 and is
fitted on the train part of each validation carving (the CFGAN ML-100K split, 20% of each user's train
items, seeds 42..42+carvings-1); the models trained in the shared loop (iALS, BPR-MF, Mult-VAE, CFGAN)
validate on that same validation part (early stopping, best epoch kept), so their curves are optimistic,
the GANs' as much as the controls'. Test is never read. The blend weight is
chosen on the same validation data, so every gain printed is an upper bound.

    python benchmarks/issue8_blend_probe.py --carvings 5 --json benchmarks/results/issue8-blend-probe.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GAN4REC_SHARED", ROOT.parent / "shared")) / "datasets" / "cfgan-ml100k"
#: registry name and config file of each model the probe fits
FITS = {
    "ease": ("ease", "ease-ml100k.toml"),
    "ials": ("ials", "ials-ml100k.toml"),
    "bpr": ("bpr", "bpr-ml100k.toml"),
    "multvae": ("multvae", "multvae-ml100k.toml"),
    "cfgan": ("cfgan", "cfgan-ml100k.toml"),
    "cfgan-paper": ("cfgan", "cfgan-ml100k-paper.toml"),
}
GAN = ("cfgan", "cfgan-paper")
BASES = ("ease", "ials")
WEIGHTS = tuple(round(0.05 * i, 2) for i in range(11))  # 0 .. 0.5


def standardise(s: np.ndarray) -> np.ndarray:
    s = s.astype(np.float64)
    return (s - s.mean(axis=1, keepdims=True)) / (s.std(axis=1, keepdims=True) + 1e-12)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--carvings", type=int, default=5, help="validation carvings (split seeds 42, 43, ...)")
    ap.add_argument("--json", help="write the curves here")
    args = ap.parse_args()
    if not (SHARED / "ML100K.train").is_file():
        print(f"skipped: {SHARED} is absent (the CFGAN ML-100K split)")
        return 0
    import torch

    from gan4rec.evaluation.evaluator import evaluate
    from gan4rec.experiment import DataSpec, Protocol, load_split
    from gan4rec.models import create

    torch.set_num_threads(1)
    print(f"command: python {' '.join(sys.argv)}\nmachine: {platform.node()} {platform.machine()}, "
          f"{os.cpu_count()} cpus; torch threads {torch.get_num_threads()}; validation only", flush=True)
    spec = DataSpec(train=str(SHARED / "ML100K.train"), test=str(SHARED / "ML100K.test"), format="uir")
    # curves[base][other][carving] = valid NDCG@20 at each blend weight
    curves: dict[str, dict[str, list[list[float]]]] = {b: {} for b in BASES}
    alone: dict[str, list[float]] = {name: [] for name in FITS}  # each model's own valid NDCG@20
    for c in range(args.carvings):
        split, _ = load_split(spec, Protocol(ks=(20,), metric="NDCG@20", split_seed=42 + c))
        users = np.arange(split.train.n_users)

        def ndcg(s: np.ndarray, split: Any = split) -> float:
            st = torch.from_numpy(s).float()
            ev = evaluate(lambda u: st[torch.as_tensor(u)], split.train, split.valid, ks=(20,), device="cpu")
            return float(ev.metrics["NDCG@20"])

        scores = {}
        for name, (model, config) in FITS.items():
            t0 = time.perf_counter()
            with open(ROOT / "configs" / config, "rb") as f:
                params = tomllib.load(f)["params"]
            m = create(model, params, random_state=0)
            m.fit(split.train, split.valid)
            scores[name] = standardise(m.score(users))
            alone[name].append(ndcg(scores[name]))
            print(f"carving {42 + c}: {name} valid NDCG@20 {alone[name][-1]:.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for base in BASES:
            for other in FITS:
                if other != base:
                    curve = [ndcg((1 - w) * scores[base] + w * scores[other]) for w in WEIGHTS]
                    curves[base].setdefault(other, []).append(curve)
    print(f"\nvalid NDCG@20 alone, mean over {args.carvings} carvings: "
          + ", ".join(f"{name} {np.mean(v):.4f}" for name, v in alone.items()))
    print(f"\nvalid NDCG@20, mean over {args.carvings} carvings; best blend weight chosen on the same data")
    print("| base | second model | adversarial | base alone | best blend | weight | gain |\n|---|---|---|---|---|---|---|")
    summary = []
    for base in BASES:
        for other, per in curves[base].items():
            mean = np.mean(per, axis=0)
            i = int(np.argmax(mean))
            row = {"base": base, "other": other, "adversarial": other in GAN, "base_alone": float(mean[0]),
                   "best": float(mean[i]), "weight": WEIGHTS[i], "gain": float(mean[i] - mean[0])}
            summary.append(row)
            print(f"| {base} | {other} | {'yes' if other in GAN else 'no'} | {mean[0]:.4f} | {mean[i]:.4f} | "
                  f"{WEIGHTS[i]:g} | {mean[i] - mean[0]:+.4f} |")
    if args.json:
        from gan4rec.atomic import atomic_write_text

        out = {"command": " ".join(sys.argv), "weights": WEIGHTS, "alone": alone, "curves": curves, "summary": summary}
        atomic_write_text(Path(args.json), json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
