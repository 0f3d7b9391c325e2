"""Item cold start: warm, cold and overall NDCG/Precision/Recall@20 of the hybrids and of pure CF references.

On a cold-start split (:func:`gan4rec.data.split.cold_items`: 20% of the items cold, half of them for
validation, half for test; warm interactions 80/10/10) each model, in its own subprocess (so peak RSS is
its own):

1. is tuned with Optuna's TPE sampler (seeded) for ``--trials`` trials, each fitted on ``split.train`` and
   scored on the VALIDATION tasks. The objective of a cold-start model is the mean of its validation warm
   and cold NDCG@20: each task ranks one population, so it does not depend on how warm and cold scores
   compare, which step 2 settles. A pure CF model (``cold_start = False``) is tuned on warm NDCG@20 alone.
2. The best trial's model is calibrated (:func:`gan4rec.models.hybrid.common.calibrate`: ``cold_scale``
   and ``cold_offset`` on the validation overall task) — CF models are not: they give cold items nothing
   to rank by.
3. The test tasks are read once.

``ridge-map`` and ``dropoutnet`` need a tuned CF backbone: they take the best iALS params of the ``ials``
row of the same ``--json`` file (so run ``ials`` first; without it, iALS with ``reg=1``). Every fit runs
without validation-driven early stopping (epochs are params). Budget: the same ``--trials`` for each
model, except where ``--trials-for`` says otherwise (e.g. ``ease-side=3``: one fit of the ~20K-warm-item
Cholesky takes minutes on one core).

    GAN4REC_DATA=../shared/datasets python benchmarks/cold_start.py --data citeulike-t \\
        --models ials,content-knn,ridge-map,ease-side,dropoutnet --trials 6 --json benchmarks/results/cold-citeulike-t.json
    python benchmarks/cold_start.py --data ml-100k --item-features genres --trials 10

"Fit s" is the final fit of the chosen params; "peak MB" the child's peak RSS over the whole run (data,
tuning, calibration, evaluation). With ``--json`` the file is rewritten after every model, so a stopped
run keeps the rows it finished; rows of models not in ``--models`` are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model as _cpu_model

MODELS = ["ials", "bpr", "content-knn", "ridge-map", "ease-side", "dropoutnet"]
METRICS = ("NDCG@20", "Precision@20", "Recall@20")
# Held fixed while tuning (over the model's defaults); narrower spaces where the declared one is too costly on CPU.
FIXED: dict[str, dict[str, Any]] = {
    "ials": {"iterations": 10, "device": "cpu"},
    "bpr": {"epochs": 30, "device": "cpu"},
    "ease-side": {"max_memory_gb": 12.0},
    "dropoutnet": {"epochs": 20, "device": "cpu"},
}
SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "ials": {"n_factors": {"type": "categorical", "choices": [32, 64, 128]},
             "reg": {"type": "float", "low": 1e-2, "high": 1e2, "log": True},
             "alpha": {"type": "float", "low": 0.3, "high": 30.0, "log": True}},
    "bpr": {"n_factors": {"type": "categorical", "choices": [32, 64, 128]},
            "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
            "l2": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}},
}
BACKBONE_DEFAULT = {"reg": 1.0, "iterations": 10, "device": "cpu"}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(data: str, seed: int) -> Any:
    from gan4rec.data.datasets import load_dataset
    from gan4rec.data.split import cold_items

    return cold_items(load_dataset(data), random_state=seed)


def _metrics(res: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {task: {m: float(r.metrics[m]) for m in METRICS} for task, r in res.items()}


def _child(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Tune, calibrate and test one model; a JSON-ready row."""
    import optuna

    from gan4rec.evaluation.cold import evaluate_cold
    from gan4rec.models import MODELS as REGISTRY
    from gan4rec.models import create
    from gan4rec.models.hybrid.common import calibrate
    from gan4rec.tuning import suggest

    t0 = time.perf_counter()
    split = _load(args.data, args.seed)
    load_s = time.perf_counter() - t0
    cls = REGISTRY[model]
    fixed = dict(FIXED.get(model, {}))
    if cls.cold_start and args.item_features:
        fixed["item_features"] = args.item_features.split(",")
    if model in ("ridge-map", "dropoutnet"):
        fixed.update(backbone="ials", backbone_params=_backbone(args.json))
    space = {k: v for k, v in SPACES.get(model, cls.search_space).items() if k not in fixed}
    tasks = ("warm", "cold") if cls.cold_start else ("warm",)

    def objective(trial: Any) -> float:
        params = {**suggest(trial, space), **fixed}
        m = create(model, params, random_state=args.seed).fit(split.train)
        res = evaluate_cold(m.score, split, part="valid", tasks=tasks)
        for task in tasks:
            trial.set_user_attr(task, float(res[task].metrics["NDCG@20"]))
        return sum(float(res[t].metrics["NDCG@20"]) for t in tasks) / len(tasks)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))
    n_trials = int(dict(kv.split("=") for kv in args.trials_for.split(",") if kv).get(model, args.trials))
    t1 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    tune_s = time.perf_counter() - t1
    best = {**study.best_params, **fixed}
    t2 = time.perf_counter()
    final = create(model, best, random_state=args.seed).fit(split.train)
    fit_s = time.perf_counter() - t2
    calib: dict[str, Any] = {}
    if cls.cold_start:
        t3 = time.perf_counter()
        calib = calibrate(final, split, "NDCG@20")
        calib["seconds"] = time.perf_counter() - t3
        calib.pop("grid")
    valid = _metrics(evaluate_cold(final.score, split, part="valid"))
    test = _metrics(evaluate_cold(final.score, split, part="test"))
    return {"model": model, "data": args.data, "trials": n_trials, "params": best,
            "valid_objective": study.best_value, "load_s": load_s, "tune_s": tune_s, "fit_s": fit_s,
            "calibration": calib, "valid": valid, "test": test, "peak_rss_mb": _rss_mb(),
            "split": {"fingerprint": split.fingerprint, "cold_valid": len(split.cold_valid_items),
                      "cold_test": len(split.cold_test_items)}}


def _backbone(json_path: str | None) -> dict[str, Any]:
    """Best iALS params from the ``ials`` row of ``json_path`` (``BACKBONE_DEFAULT`` without one)."""
    if json_path and Path(json_path).is_file():
        for row in json.loads(Path(json_path).read_text()).get("rows", []):
            if row.get("model") == "ials" and "params" in row:
                return dict(row["params"])
    return dict(BACKBONE_DEFAULT)


def _print_row(r: dict[str, Any]) -> None:
    if "error" in r:
        print(f"{r['model']:<12} {r['error']}")
        return
    t = r["test"]
    cal = r["calibration"]
    cal_s = f"{cal['cold_scale']:g}/{cal['cold_offset']:.3g}" if cal else "-"
    cells = " ".join(f"{t[task][m]:>7.4f}" for task in ("warm", "cold", "overall") for m in METRICS)
    print(f"{r['model']:<12} {r['fit_s']:>7.1f} {r['peak_rss_mb']:>7.0f} {cal_s:>13} {cells}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="citeulike-t", help="registry dataset with item features")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--item-features", default="", help="comma-separated item feature names (default: all numeric)")
    p.add_argument("--trials", type=int, default=6, help="Optuna trials per model")
    p.add_argument("--trials-for", default="", help="per-model trial counts, e.g. ease-side=3,dropoutnet=4")
    p.add_argument("--seed", type=int, default=0, help="split, sampler and model seed")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="read/write the rows as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        import torch

        from gan4rec.errors import Gan4recError

        torch.set_num_threads(args.threads)
        try:
            row = _child(args.child, args)
        except Gan4recError as e:
            print(json.dumps({"model": args.child, "error": str(e).splitlines()[0]}))
            return 3
        print(json.dumps(row))
        return 0

    env = {**os.environ, **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                           "OPENBLAS_NUM_THREADS")}}
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {_cpu_model()}, {os.cpu_count()} cores; threads per model: {args.threads}; "
          f"load average {os.getloadavg()[0]:.2f}")
    out: dict[str, Any] = {"command": " ".join(sys.argv), "rows": []}
    if args.json and Path(args.json).is_file():
        out["rows"] = [r for r in json.loads(Path(args.json).read_text()).get("rows", [])
                       if r.get("model") not in args.models.split(",")]
    heads = " ".join(f"{task[:4]}-{m.split('@')[0][:4]:>2}" for task in ("warm", "cold", "all")
                     for m in METRICS)
    print(f"{'model':<12} {'fit s':>7} {'peak MB':>7} {'scale/offset':>13} {heads}")
    for model in args.models.split(","):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--child", model]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
            lines = proc.stdout.strip().splitlines()
            row = json.loads(lines[-1]) if lines else {"model": model, "error": (proc.stderr.strip()
                                                                               .splitlines() or ["?"])[-1]}
        except subprocess.TimeoutExpired:
            row = {"model": model, "error": f"stopped at --timeout {args.timeout:g} s"}
        except json.JSONDecodeError:
            row = {"model": model, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        _print_row(row)
        out["rows"].append(row)
        if args.json:
            from gan4rec.artifacts import atomic_write_text

            atomic_write_text(Path(args.json), json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
