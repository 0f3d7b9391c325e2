"""content-cfgan: fit time, peak memory and VALIDATION NDCG@20 on the cold-item splits, 1 torch thread.

One fit per dataset, as ``benchmarks/cold_start.py`` fits a trial: ``create("content-cfgan", params,
random_state=seed).fit(split.train)`` (no validation during training, so ``epochs`` is what runs), then
the warm and cold VALIDATION tasks of :func:`gan4rec.evaluation.cold.evaluate_cold` (never the test part).
Prints one JSON line per dataset: the load and fit seconds, the training loop's per-epoch seconds, the peak
RSS of the process so far, the last epoch's losses and the validation NDCG@20 of both tasks.

``--trace`` instead fits with the cold validation task inside the loop (``eval_every=1``, no early
stopping) and prints every epoch's losses and cold validation NDCG@20, to see how the game moves.

Usage::

    GAN4REC_DATA=/work/shared/datasets python benchmarks/content_cfgan_speed.py --data citeulike-t \\
        --params '{"epochs": 4, "device": "cpu"}'
    python benchmarks/content_cfgan_speed.py --data ml-100k,ml-latest-small --params '{"epochs": 10}'
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model, load_average


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(data: str, params: dict[str, Any], seed: int, trace: bool) -> dict[str, Any]:
    """Fit and validate content-cfgan on ``data``'s cold-item split; a JSON-ready row."""
    from gan4rec.data.datasets import load_dataset
    from gan4rec.data.split import cold_items
    from gan4rec.evaluation.cold import evaluate_cold
    from gan4rec.models import create

    t0 = time.perf_counter()
    split = cold_items(load_dataset(data), random_state=seed)
    load_s = time.perf_counter() - t0
    params = {"device": "cpu", **params}
    if trace:
        params.update(eval_every=1, patience=None)
    t1 = time.perf_counter()
    model = create("content-cfgan", params, random_state=seed).fit(split.train, split.valid if trace else None)
    fit_s = time.perf_counter() - t1
    history = model.history_
    row: dict[str, Any] = {
        "data": data, "seed": seed, "params": params, "load_s": round(load_s, 2), "fit_s": round(fit_s, 2),
        "epoch_s": [round(h["seconds"] - h.get("valid_seconds", 0.0), 2) for h in history],
        "last": {k: round(v, 4) for k, v in history[-1].items() if k.endswith("loss")} if history else {},
    }
    if trace:
        row["trace"] = [{k: round(v, 4) for k, v in h.items() if k != "seconds"} for h in history]
    res = evaluate_cold(model.score, split, part="valid", tasks=("warm", "cold"))
    row["valid_ndcg20"] = {task: round(float(r.metrics["NDCG@20"]), 4) for task, r in res.items()}
    row["peak_rss_mb"] = round(_rss_mb())
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", default="citeulike-t,ml-latest-small,ml-100k", help="comma-separated names")
    parser.add_argument("--params", default="{}", help="JSON params over the defaults")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trace", action="store_true", help="validate the cold task every epoch")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    print(json.dumps({"cpu": cpu_model(), "load": load_average(), "threads": args.threads}), flush=True)
    for data in args.data.split(","):
        print(json.dumps(run(data, json.loads(args.params), args.seed, args.trace)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
