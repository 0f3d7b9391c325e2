"""Bit-level fingerprint of every registry model's quick fit, for refactors that must change no result.

Each row fits one model configuration on a small seeded synthetic dataset (with a validation part, so the
epoch-based models run the shared training loop's validation and early stopping), scores every user and
hashes the float32 scores, the recommended lists and the saved tensors (sha256). CFGAN runs the 16
configurations of its earlier speed work (mode x scheme x resample x g_loss), IRGAN a few of its options.

Run it before and after a change, on the same machine, and compare the files::

    python benchmarks/fingerprint.py --out /tmp/before.json
    ... change ...
    python benchmarks/fingerprint.py --out /tmp/after.json --compare /tmp/before.json

``--compare`` reruns each row with the full params the old file recorded (so a change of defaults does
not move a row), exits 1 and names each differing row. One torch thread, so the bits do not depend on the
thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan4rec.data.split import random_holdout
from gan4rec.data.synthetic import make_synthetic
from gan4rec.models import MODELS, create

EPOCHS = {"epochs": 6, "eval_every": 2, "patience": 2, "device": "cpu"}
QUICK: dict[str, dict[str, Any]] = {
    "toppop": {},
    "itemknn": {"topk": 50},
    "userknn": {"topk": 50},
    "ease": {"l2": 200.0},
    "slim": {"alpha": 0.1, "topk": 50, "max_iter": 30},
    "rp3beta": {"topk": 50},
    "puresvd": {"n_factors": 20},
    "bpr": {"n_factors": 16, "lr": 0.01, "batch_size": 256, **EPOCHS},
    "bpr-sparse_adam": {"n_factors": 16, "lr": 0.01, "batch_size": 256, "optimizer": "sparse_adam", **EPOCHS},
    "multvae": {"hidden": 64, "latent": 16, "batch_size": 100, "total_anneal_steps": 50, **EPOCHS},
    "ials": {"n_factors": 16, "iterations": 4, "eval_every": 1, "patience": 2, "device": "cpu"},
    "ials-cg": {"n_factors": 16, "iterations": 4, "solver": "cg", "eval_every": 1, "patience": 2,
                "device": "cpu"},
    "easegan": {"hidden": 32, "noise_dim": 8, "d_hidden": 16, "batch_size": 64, **EPOCHS},
    "irgan": {"n_factors": 16, "pretrain_epochs": 4, "pretrain_batch_size": 256, "epochs": 3, "d_epochs": 1,
              "g_epochs": 1, "d_batch_size": 512, "g_batch_users": 32, "device": "cpu"},
    "irgan-log-ema-sgd": {"n_factors": 16, "pretrain_epochs": 4, "pretrain_batch_size": 256, "epochs": 3,
                          "d_epochs": 1, "g_epochs": 1, "d_batch_size": 512, "g_batch_users": 32,
                          "reward": "log", "baseline": "ema", "g_optimizer": "sgd", "device": "cpu"},
    "irgan-mlp": {"n_factors": 16, "scorer": "mlp", "mlp_hidden": 16, "pretrain_epochs": 4,
                  "pretrain_batch_size": 256, "epochs": 3, "d_epochs": 1, "g_epochs": 1, "d_batch_size": 512,
                  "g_batch_users": 32, "device": "cpu"},
}
_BACKBONE = {"backbone_params": {"n_factors": 8, "epochs": 4, "eval_every": 2, "patience": 2, "device": "cpu"}}
_HYBRID_TORCH = {"content_dim": 16, "epochs": 4, "eval_every": 2, "patience": 2, "device": "cpu"}
QUICK.update({
    # The cold-start hybrids read the synthetic data's genres as item content.
    "content-knn": {},
    "ridge-map": {**_BACKBONE},
    "ease-side": {},
    "dropoutnet": {"hidden": 16, **_BACKBONE, **_HYBRID_TORCH},
    "gar": {"g_hidden": 16, "d_hidden": 16, **_BACKBONE, **_HYBRID_TORCH},
    "gar-reg": {"g_hidden": 16, "d_hidden": 16, **_BACKBONE, **_HYBRID_TORCH},
    "content-cfgan": {"g_hidden": 16, "d_hidden": 16, **_HYBRID_TORCH},
})
_CFGAN_BASE = {"g_hidden": 32, "d_hidden": 16, "g_batch_size": 32, "d_batch_size": 32, "g_steps": 2,
               "d_steps": 1, **EPOCHS}
for _mode, _scheme, _resample, _loss in itertools.product(("user", "item"), ("zr", "pm", "zp", "none"),
                                                          ("epoch", "batch"), ("nonsaturating",)):
    QUICK[f"cfgan-{_mode}-{_scheme}-{_resample}"] = {**_CFGAN_BASE, "mode": _mode, "scheme": _scheme,
                                                     "resample": _resample, "g_loss": _loss}


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def _full_params(name: str, quick: dict[str, Any]) -> dict[str, Any]:
    """Every param spelled out (defaults included), so a later change of defaults cannot move a row."""
    params = {**MODELS[_model_name(name)].default_params(), **quick}
    params.pop("random_state", None)
    return params


def _model_name(row: str) -> str:
    """The registry name of a row: the row itself, or its part before the first '-' (``cfgan-user-zr-epoch``)."""
    return row if row in MODELS else row.split("-")[0]


def _row(name: str, params: dict[str, Any], split) -> dict[str, Any]:
    model_name = _model_name(name)
    t0 = time.perf_counter()
    model = create(model_name, params, random_state=0).fit(split.train, split.valid)
    fit_s = time.perf_counter() - t0
    users = np.arange(split.train.n_users)
    scores = np.asarray(model.score(users), dtype=np.float32)
    items, _ = model.recommend(users, k=20)
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "m")
        tensors = sorted((Path(tmp) / "m").rglob("tensors.safetensors"))
        weights = hashlib.sha256(tensors[0].read_bytes()).hexdigest()[:16] if tensors else ""
    return {"scores": _sha(scores), "recommended": _sha(np.asarray(items, dtype=np.int64)),
            "weights": weights, "fit_s": round(fit_s, 2), "params": params}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--compare", type=Path, help="an earlier --out file; exit 1 on any difference")
    ap.add_argument("--only", help="comma-separated row names (prefix match)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    # 300 users x 400 items: small enough for 40 rows in minutes, big enough for every model's code paths.
    data = make_synthetic(300, 400, 9000, random_state=0)
    split = random_holdout(data, test_frac=0.2, valid_frac=0.2, random_state=42)
    rows: dict[str, Any] = {}
    names = [n for n in QUICK if not args.only or any(n.startswith(p) for p in args.only.split(","))]
    missing = set(MODELS) - {_model_name(n) for n in QUICK}
    if missing and not args.only:
        print(f"fingerprint: registry models without a row: {sorted(missing)}", file=sys.stderr)
        return 1
    print(f"| row | scores | recommended | weights | fit s |  (torch threads: {torch.get_num_threads()})")
    print("|---|---|---|---|---|")
    old = json.loads(args.compare.read_text()) if args.compare else {}
    for n in names:
        # With --compare, each row reruns the exact params the old file recorded.
        params = old[n]["params"] if n in old else _full_params(n, QUICK[n])
        rows[n] = _row(n, params, split)
        r = rows[n]
        print(f"| {n} | {r['scores']} | {r['recommended']} | {r['weights']} | {r['fit_s']} |", flush=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    if args.compare:
        keys = ("scores", "recommended", "weights")
        diff = [n for n in rows if n in old and any(rows[n][k] != old[n][k] for k in keys)]
        absent = [n for n in rows if n not in old]
        print(f"compared with {args.compare}: {len(rows) - len(diff) - len(absent)} identical, "
              f"{len(diff)} differ {diff}, {len(absent)} not in the old file {absent}")
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
