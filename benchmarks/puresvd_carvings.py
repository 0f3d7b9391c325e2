"""Validation NDCG@20 of PureSVD by factor count, on the CFGAN ML-100K split's validation carvings.

Why ``--valid-repeats`` exists: the validation carving of split seed 42 alone prefers fewer PureSVD factors
than the carvings of seeds 43-46 and their mean. Validation data only; test is never read.

    python benchmarks/puresvd_carvings.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GAN4REC_SHARED", ROOT.parent / "shared")) / "datasets" / "cfgan-ml100k"
FACTORS = [8, 10, 12, 13, 14, 15, 17, 20, 25, 30]


def main() -> int:
    if not (SHARED / "ML100K.train").is_file():
        print(f"skipped: {SHARED} is absent (the CFGAN ML-100K split)")
        return 0
    from gan4rec.evaluation.evaluator import evaluate
    from gan4rec.experiment import DataSpec, Protocol, load_split
    from gan4rec.models import create
    from gan4rec.tuning import validation_carvings

    spec = DataSpec(train=str(SHARED / "ML100K.train"), test=str(SHARED / "ML100K.test"), format="uir")
    split, _ = load_split(spec, Protocol(split_seed=42))
    print(f"# {' '.join([sys.executable, *sys.argv])}")
    print("| split seed | " + " | ".join(f"{f} factors" for f in FACTORS) + " |")
    print("|---|" + "---|" * len(FACTORS))
    rows = []
    for i, (train, valid) in enumerate(validation_carvings(split, 5)):
        row = []
        for f in FACTORS:
            model = create("puresvd", {"n_factors": f}, random_state=0).fit(train, valid)
            row.append(evaluate(model.score, train, valid, ks=(20,)).metrics["NDCG@20"])
        rows.append(row)
        print(f"| {42 + i} | " + " | ".join(f"{v:.4f}" for v in row) + " |", flush=True)
    print("| mean | " + " | ".join(f"{v:.4f}" for v in np.mean(rows, axis=0)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
