"""Item cold start: warm, cold and overall NDCG/Precision/Recall@20 of the hybrids and of pure CF references.

On a cold-start split (:func:`gan4rec.data.split.cold_items`: 20% of the items cold, half of them for
validation, half for test; warm interactions 80/10/10) each model, in its own subprocess (so peak RSS is
its own):

1. is tuned with Optuna's TPE sampler (seeded) for ``--trials`` trials, each fitted on ``split.train`` and
   scored on the VALIDATION tasks; the first trial is the model's defaults (where inside the space), and
   the best trial's fitted model is the final model (no refit). The objective of a cold-start model is the mean of its validation warm
   and cold NDCG@20: each task ranks one population, so it does not depend on how warm and cold scores
   compare, which step 2 settles. A pure CF model (``cold_start = False``) is tuned on warm NDCG@20 alone.
2. The best trial's model is calibrated (:func:`gan4rec.models.hybrid.common.calibrate`: ``cold_scale``
   and ``cold_offset`` on the validation overall task) — CF models are not: they give cold items nothing
   to rank by.
3. The test tasks are read once.

``ridge-map``, ``dropoutnet``, ``gar`` and ``gar-reg`` start from one shared CF backbone per split seed: the
best iALS params of the ``ials`` row of the same seed in the ``--json`` file (so run ``ials`` first; without
it, iALS with ``reg=1``), fitted ONCE in its own subprocess (the ``ials-backbone`` row: its fit time and peak
RSS) and handed to every trial of every one of those models (:mod:`gan4rec.models.hybrid.backbone`; the
factors equal a fresh fit's, so results are as if each trial refitted it). Their "fit s" is then their own
fit, without the backbone's. The GAN hybrids are scored through the backbone (``score_with="backbone"``, the
pre-registered candidate, ``benchmarks/results/issue18-preregistration.md``) and tune ``epochs`` in 1-10
(first trial 5); ``content-cfgan`` holds ``epochs = 8``. Every fit runs without validation-driven early stopping (epochs are params). Budget: the
same ``--trials`` for each model, except where ``--trials-for`` says otherwise.

``--seeds 0,1,2,3,4`` runs every model for each split seed in turn (the model and sampler seed equal the
split seed). With ``--json X.json`` the per-user test NDCG@20 of every task (with the user ids) goes to
``X.peruser.json`` (key ``model/seed``), for :mod:`cold_significance`.

    GAN4REC_DATA=../shared/datasets python benchmarks/cold_start.py --data citeulike-t --seeds 0 \
        --models ials,content-knn,ridge-map,ease-side,dropoutnet,gar,gar-reg --trials 1 \
        --json benchmarks/results/cold-citeulike-t-t1.json
    python benchmarks/cold_start.py --data ml-100k --item-features genres --trials 10

"Fit s" is the fit of the chosen trial; "peak MB" the child's peak RSS over the whole run (data,
tuning, calibration, evaluation). With ``--json`` the file is rewritten after every model, so a stopped
run keeps the rows it finished; rows of (model, seed) pairs not run now are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model as _cpu_model

MODELS = ["ials", "bpr", "content-knn", "ridge-map", "ease-side", "dropoutnet", "gar", "gar-reg", "content-cfgan"]
#: Models that start from the shared iALS backbone (the ``ials-backbone`` row).
ON_BACKBONE = ("ridge-map", "dropoutnet", "gar", "gar-reg")
BACKBONE_ROW = "ials-backbone"
METRICS = ("NDCG@20", "Precision@20", "Recall@20")
# Held fixed while tuning (over the model's defaults); narrower spaces where the declared one is too costly on CPU.
FIXED: dict[str, dict[str, Any]] = {
    "ials": {"iterations": 10, "device": "cpu"},
    "bpr": {"epochs": 30, "device": "cpu"},
    "ease-side": {"max_memory_gb": 12.0},
    "dropoutnet": {"epochs": 20, "device": "cpu"},
    "gar": {"score_with": "backbone", "device": "cpu"},
    "gar-reg": {"score_with": "backbone", "device": "cpu"},
    # 8 epochs: about 130 s a fit on CiteULike-t with the defaults (benchmarks/content_cfgan_speed.py).
    "content-cfgan": {"epochs": 8, "device": "cpu"},
}
_GAR_EPOCHS = {"type": "int", "low": 1, "high": 10}
#: The first trial's values where they differ from the model's defaults (which lie outside the space).
FIRST: dict[str, dict[str, Any]] = {"gar": {"epochs": 5}, "gar-reg": {"epochs": 5}}
SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "ials": {"n_factors": {"type": "categorical", "choices": [32, 64, 128]},
             "reg": {"type": "float", "low": 1e-2, "high": 1e2, "log": True},
             "alpha": {"type": "float", "low": 0.3, "high": 30.0, "log": True}},
    "bpr": {"n_factors": {"type": "categorical", "choices": [32, 64, 128]},
            "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
            "l2": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}},
}
#: Searched on top of the model's declared space.
EXTRA_SPACE: dict[str, dict[str, dict[str, Any]]] = {"gar": {"epochs": _GAR_EPOCHS}, "gar-reg": {"epochs": _GAR_EPOCHS}}
BACKBONE_DEFAULT = {"reg": 1.0, "iterations": 10, "device": "cpu"}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(data: str, seed: int) -> Any:
    from gan4rec.data.datasets import load_dataset
    from gan4rec.data.split import cold_items

    return cold_items(load_dataset(data), random_state=seed)


def _metrics(res: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {task: {m: float(r.metrics[m]) for m in METRICS} for task, r in res.items()}


def _per_user(res: dict[str, Any], split: Any) -> dict[str, dict[str, list[Any]]]:
    """Per-user test NDCG@20 of each task, with the users' original ids."""
    ids = split.train.user_map.ids
    return {task: {"users": np.asarray(ids)[r.users].tolist(), "NDCG@20": r.per_user["NDCG@20"].tolist()}
            for task, r in res.items()}


def _share_backbone(split: Any, args: argparse.Namespace) -> float:
    """Put the ``ials-backbone`` factors of ``--backbone-file`` in the backbone memo; its fit seconds."""
    from safetensors.numpy import load_file

    from gan4rec.models.hybrid.backbone import remember_backbone

    arrays = load_file(args.backbone_file)
    meta = json.loads(Path(args.backbone_file + ".json").read_text())
    if meta["train_fingerprint"] != split.train.fingerprint():
        raise RuntimeError(f"{args.backbone_file} was fitted on other training data")
    remember_backbone("ials", meta["params"], split.train, None, random_state=args.seed, device=None,
                      user=arrays["user"], item=arrays["item"], refit=meta["refit"], fit_s=meta["fit_s"])
    return float(meta["fit_s"])


def _backbone_child(args: argparse.Namespace) -> dict[str, Any]:
    """Fit the shared backbone once (the tuned ``ials`` params of this seed) and save its factors."""
    from safetensors.numpy import save_file

    from gan4rec.models.hybrid.backbone import backbone_factors

    t0 = time.perf_counter()
    split = _load(args.data, args.seed)
    load_s = time.perf_counter() - t0
    params = _backbone(args.json, args.seed)
    fit = backbone_factors("ials", params, split.train, None, random_state=args.seed, device=None)
    save_file({"user": fit.user, "item": fit.item}, args.backbone_file)
    Path(args.backbone_file + ".json").write_text(json.dumps(
        {"params": params, "refit": fit.refit, "fit_s": fit.fit_s, "train_fingerprint": split.train.fingerprint()}))
    return {"model": BACKBONE_ROW, "data": args.data, "seed": args.seed, "trials": 0, "params": params,
            "load_s": load_s, "fit_s": fit.fit_s, "peak_rss_mb": _rss_mb(),
            "factors": [list(fit.user.shape), list(fit.item.shape)]}


def _child(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Tune, calibrate and test one model; a JSON-ready row.

    Long because: one tuning run from data to test row, in the order the module docstring gives.
    """
    import optuna

    from gan4rec.evaluation.cold import evaluate_cold
    from gan4rec.models import MODELS as REGISTRY
    from gan4rec.models import create
    from gan4rec.models.hybrid.common import calibrate
    from gan4rec.tuning import defaults_in_space, suggest

    if model == BACKBONE_ROW:
        return _backbone_child(args)
    t0 = time.perf_counter()
    split = _load(args.data, args.seed)
    load_s = time.perf_counter() - t0
    cls = REGISTRY[model]
    fixed = dict(FIXED.get(model, {}))
    if cls.cold_start and args.item_features:
        fixed["item_features"] = args.item_features.split(",")
    backbone_s = None
    if model in ON_BACKBONE:
        fixed.update(backbone="ials", backbone_params=_backbone(args.json, args.seed))
        backbone_s = _share_backbone(split, args) if args.backbone_file else None
    space = {k: v for k, v in {**SPACES.get(model, cls.search_space), **EXTRA_SPACE.get(model, {})}.items()
             if k not in fixed}
    tasks = ("warm", "cold") if cls.cold_start else ("warm",)

    kept: dict[str, Any] = {"value": -1.0}  # the best trial's fitted model, reused as the final model

    def objective(trial: Any) -> float:
        params = {**suggest(trial, space), **fixed}
        t = time.perf_counter()
        m = create(model, params, random_state=args.seed).fit(split.train)
        fit_s = time.perf_counter() - t
        res = evaluate_cold(m.score, split, part="valid", tasks=tasks)
        for task in tasks:
            trial.set_user_attr(task, float(res[task].metrics["NDCG@20"]))
        trial.set_user_attr("fit_s", fit_s)
        value = sum(float(res[t].metrics["NDCG@20"]) for t in tasks) / len(tasks)
        if value > kept["value"]:
            kept.update(value=value, model=m, fit_s=fit_s, params=params)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))
    study.enqueue_trial({**defaults_in_space(space, cls.default_params()), **FIRST.get(model, {})})
    n_trials = int(dict(kv.split("=") for kv in args.trials_for.split(",") if kv).get(model, args.trials))
    t1 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    tune_s = time.perf_counter() - t1
    final, fit_s, best = kept["model"], kept["fit_s"], kept["params"]
    calib: dict[str, Any] = {}
    if cls.cold_start:
        t3 = time.perf_counter()
        calib = calibrate(final, split, "NDCG@20")
        calib["seconds"] = time.perf_counter() - t3
        calib.pop("grid")
    valid = _metrics(evaluate_cold(final.score, split, part="valid"))
    test_res = evaluate_cold(final.score, split, part="test")
    return {"model": model, "data": args.data, "seed": args.seed, "trials": n_trials, "params": best,
            "valid_objective": study.best_value, "load_s": load_s, "tune_s": tune_s, "fit_s": fit_s,
            "trial_fit_s": [t.user_attrs.get("fit_s") for t in study.trials], "backbone_fit_s": backbone_s,
            "calibration": calib, "valid": valid, "test": _metrics(test_res), "peak_rss_mb": _rss_mb(),
            "per_user": _per_user(test_res, split),
            "split": {"fingerprint": split.fingerprint, "cold_valid": len(split.cold_valid_items),
                      "cold_test": len(split.cold_test_items)}}


def _backbone(json_path: str | None, seed: int) -> dict[str, Any]:
    """Best iALS params of the ``ials`` row of ``seed`` in ``json_path`` (``BACKBONE_DEFAULT`` without one)."""
    if json_path and Path(json_path).is_file():
        for row in json.loads(Path(json_path).read_text()).get("rows", []):
            if row.get("model") == "ials" and row.get("seed", 0) == seed and "params" in row:
                return dict(row["params"])
    return dict(BACKBONE_DEFAULT)


def _print_row(r: dict[str, Any]) -> None:
    if "error" in r:
        print(f"{r['model']:<13} {r.get('seed', '?'):>4} {r['error']}", flush=True)
        return
    if "test" not in r:
        print(f"{r['model']:<13} {r['seed']:>4} {r['fit_s']:>7.1f} {r['peak_rss_mb']:>7.0f}", flush=True)
        return
    t = r["test"]
    cal = r["calibration"]
    cal_s = f"{cal['cold_scale']:g}/{cal['cold_offset']:.3g}" if cal else "-"
    cells = " ".join(f"{t[task][m]:>7.4f}" if task in t else f"{'-':>7}" for task in ("warm", "cold", "overall")
                     for m in METRICS)
    print(f"{r['model']:<13} {r['seed']:>4} {r['fit_s']:>7.1f} {r['peak_rss_mb']:>7.0f} {cal_s:>13} {cells}",
          flush=True)


def _run_child(model: str, seed: int, args: argparse.Namespace, env: dict[str, str],
               backbone_file: str) -> dict[str, Any]:
    """One model (or the backbone) of one seed in its own subprocess; its row, or an error row."""
    argv = [a for a in sys.argv[1:]]
    cmd = [sys.executable, __file__, *argv, "--seed", str(seed), "--child", model, "--backbone-file", backbone_file]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=args.timeout, env=env)
        lines = proc.stdout.strip().splitlines()
        row = json.loads(lines[-1]) if lines else {"model": model, "error": (proc.stderr.strip()
                                                                           .splitlines() or ["?"])[-1]}
    except subprocess.TimeoutExpired:
        row = {"model": model, "error": f"stopped at --timeout {args.timeout:g} s"}
    except json.JSONDecodeError:
        row = {"model": model, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    row.setdefault("seed", seed)
    row.setdefault("data", args.data)
    row["wall_s"] = time.perf_counter() - t  # the whole child: load, tuning, calibration, evaluation
    return row


def _save(args: argparse.Namespace, out: dict[str, Any], per_user: dict[str, Any]) -> None:
    from gan4rec.artifacts import atomic_write_text

    atomic_write_text(Path(args.json), json.dumps(out, indent=1) + "\n")
    atomic_write_text(Path(args.json).with_suffix(".peruser.json"), json.dumps(per_user) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="citeulike-t", help="registry dataset with item features")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--item-features", default="", help="comma-separated item feature names (default: all numeric)")
    p.add_argument("--trials", type=int, default=6, help="Optuna trials per model")
    p.add_argument("--trials-for", default="", help="per-model trial counts, e.g. ease-side=3,dropoutnet=4")
    p.add_argument("--seed", type=int, default=0, help="split, sampler and model seed (one seed)")
    p.add_argument("--seeds", default="", help="comma-separated seeds, each run in turn (overrides --seed)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="read/write the rows as JSON (and X.peruser.json)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--backbone-file", default="", help=argparse.SUPPRESS)
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
    return _parent(args)


def _parent(args: argparse.Namespace) -> int:
    """Run every (seed, model) in its own subprocess, saving the rows after each."""
    env = {**os.environ, **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                           "OPENBLAS_NUM_THREADS")}}
    seeds = [int(s) for s in args.seeds.split(",") if s] or [args.seed]
    models = args.models.split(",")
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {_cpu_model()}, {os.cpu_count()} cores; threads per model: {args.threads}; "
          f"load average {os.getloadavg()[0]:.2f}")
    out: dict[str, Any] = {"command": " ".join(sys.argv), "rows": []}
    per_user: dict[str, Any] = {}
    # The rows this run replaces: its models', and the backbone's only where one of its models needs it.
    rerun = [*models, BACKBONE_ROW] if set(models) & set(ON_BACKBONE) else models
    now = {(m, s) for m in rerun for s in seeds}
    if args.json and Path(args.json).is_file():
        # Merge: every other key of the file stays (its first command, notes); this command is added to
        # ``more_commands``, and its rows replace only the (model, seed) rows it reruns.
        before = json.loads(Path(args.json).read_text())
        out = {**before, "more_commands": [*before.get("more_commands", []), out["command"]]}
        out["rows"] = [r for r in before.get("rows", []) if (r.get("model"), r.get("seed", 0)) not in now]
        pu = Path(args.json).with_suffix(".peruser.json")
        if pu.is_file():
            per_user = {k: v for k, v in json.loads(pu.read_text()).items()
                        if (k.split("/")[0], int(k.split("/")[1])) not in now}
    heads = " ".join(f"{task[:4]}-{m.split('@')[0][:4]:>2}" for task in ("warm", "cold", "all")
                     for m in METRICS)
    print(f"{'model':<13} {'seed':>4} {'fit s':>7} {'peak MB':>7} {'scale/offset':>13} {heads}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cold-backbone-") as tmp:
        for seed in seeds:
            backbone_file = ""
            for model in models:
                if model in ON_BACKBONE and not backbone_file:
                    backbone_file = str(Path(tmp) / f"ials-{seed}.safetensors")
                    row = _run_child(BACKBONE_ROW, seed, args, env, backbone_file)
                    _print_row(row)
                    out["rows"].append(row)
                    if "error" in row:
                        backbone_file = ""  # each model then fits the backbone itself, as before
                row = _run_child(model, seed, args, env, backbone_file if model in ON_BACKBONE else "")
                if "per_user" in row:
                    per_user[f"{model}/{seed}"] = row.pop("per_user")
                _print_row(row)
                out["rows"].append(row)
                if args.json:
                    _save(args, out, per_user)
    return 0


if __name__ == "__main__":
    sys.exit(main())
