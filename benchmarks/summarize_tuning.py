"""Print the markdown table of tuned results from ``benchmarks/results/tune-*.json``.

Those files are written by ``benchmarks/tune_baselines.sh`` (and ``gan4rec tune --json``). Each holds the
best params chosen on validation, and the test metrics of the refit on the full train per seed.

    python benchmarks/summarize_tuning.py [--metric NDCG@20] [--valid-repeats 5] [--files 'tune-x5t50-*.json']

Only the results tuned with the given number of validation carvings (``protocol.valid_repeats``, 1 by
default) are listed, so the two protocols never mix in one table; ``--files`` picks one set of runs (one
trial budget) by file name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metric", default="NDCG@20")
    p.add_argument("--valid-repeats", type=int, default=1)
    p.add_argument("--files", default="tune-*.json", help="glob under benchmarks/results")
    args = p.parse_args()
    rows = []
    for f in sorted(RESULTS.glob(args.files)):
        r = json.loads(f.read_text())
        if r.get("protocol", {}).get("valid_repeats", 1) != args.valid_repeats:
            continue
        seeds = r.get("per_seed", [])
        vals = [s["metrics"]["test"][args.metric] for s in seeds]
        mean = sum(vals) / len(vals)
        std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
        test = r["metrics"]["test"]
        rows.append((mean, r["model"], std, len(vals), r["tuning"]["best_value"], test, len(r["trials"]),
                     sum(s["fit_seconds"] for s in seeds) / max(1, len(seeds)), r["best_params"]))
    k = args.metric.split("@")[1]
    print(f"| model | test {args.metric} (mean +- std) | seeds | P@{k} | R@{k} | MRR@{k} | valid {args.metric} "
          f"| trials | fit s | best params (chosen on validation) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mean, model, std, n, valid, test, trials, fit_s, params in sorted(rows, key=lambda r: -r[0]):
        shown = {key: (float(f"{v:.4g}") if isinstance(v, float) else v) for key, v in params.items()}
        print(f"| {model} | {mean:.4f} +- {std:.4f} | {n} | {test[f'Precision@{k}']:.4f} | {test[f'Recall@{k}']:.4f} "
              f"| {test[f'MRR@{k}']:.4f} | {valid:.4f} | {trials} | {fit_s:.2f} | `{json.dumps(shown)}` |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
