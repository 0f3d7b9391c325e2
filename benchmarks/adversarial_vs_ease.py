"""Issue 8: does EASEGAN beat tuned EASE, and does its adversarial part carry weight? (honest protocol)

Every variant below is tuned on the validation split only, with the same Optuna budget (``--trials``,
TPE seed 0, NDCG@20), then fitted with ``--seeds`` model seeds:

- ``easegan``: the full model (search space of :class:`gan4rec.models.gan.easegan.EASEGAN`);
- ``easegan-no-adv``: ``adv_weight=0`` (no discriminator; ``tau`` and ``d_lr`` leave the search space);
- ``easegan-no-noise``: ``noise_dim=0``;
- ``easegan-no-cond-dropout``: ``cond_dropout=0`` (the condition is the whole profile, as in CFGAN);
- ``ease``: EASE^R (``l2`` searched).

``--stage validation`` (the default) never reads test: each seed fits on train minus validation and the
per-user validation NDCG@20 is compared. ``--stage test`` runs the full protocol of
:func:`gan4rec.experiment.run_on_split` per seed (fit with validation, refit on the whole train with the
epoch count validation chose, test read once) and compares per-user test NDCG@20 as well. Only run it
for a candidate already named in ``benchmarks/results/issue8-preregistration.md``.

Per-user values are averaged over seeds, then ``easegan`` is compared with every other variant by a paired
Wilcoxon signed-rank test and a paired t-test across users, each family Holm-corrected.

    nice -n 10 python benchmarks/adversarial_vs_ease.py --dataset ml100k --trials 10 --seeds 5 \
        --stage validation --json benchmarks/results/adversarial-ml100k-validation.json

``--valid-repeats N`` scores every trial on the mean of N validation carvings (the committed classic
configs use 50 trials x 5 carvings). Variants can run in separate processes (one torch thread each, side
by side); their ``--json`` files keep the per-user values, and ``--combine A.json B.json ...`` (with the
same ``--stage``, ``--trials`` and ``--valid-repeats``) merges them and runs the tests without fitting.

The table prints the command, the machine, the thread count, and each variant's NDCG@20 as a ratio to
EASE's in the same run. The headline comparison with EASE through the CLI is
``gan4rec compare --models easegan,ease --trials N --seeds 5`` on the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GAN4REC_SHARED", ROOT.parent / "shared")) / "datasets"
METRIC = "NDCG@20"
CANDIDATE = "easegan"
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "easegan": ("easegan", {}),
    "easegan-no-adv": ("easegan", {"adv_weight": 0.0}),
    "easegan-no-noise": ("easegan", {"noise_dim": 0}),
    "easegan-no-cond-dropout": ("easegan", {"cond_dropout": 0.0}),
    "ease": ("ease", {}),
}
# Search-space entries that do nothing once a fixed param switches their part off.
UNUSED_WHEN = {"adv_weight": ("tau", "d_lr")}


def _split(dataset: str) -> tuple[Any, dict[str, Any], Any]:
    from gan4rec.experiment import DataSpec, Protocol, load_split

    if dataset == "ml100k":
        spec = DataSpec(train=str(SHARED / "cfgan-ml100k" / "ML100K.train"),
                        test=str(SHARED / "cfgan-ml100k" / "ML100K.test"), format="uir")
    elif dataset == "ml-latest-small":
        # Every rating is a positive; per-user 80/20 random split, seed 42 (the Protocol defaults).
        spec = DataSpec(data=str(SHARED / "ml-latest-small" / "ratings.csv"), format="auto")
    else:
        raise SystemExit(f"--dataset {dataset!r}; expected ml100k or ml-latest-small")
    protocol = Protocol(ks=(5, 10, 20), metric=METRIC)
    split, info = load_split(spec, protocol)
    return split, info, protocol


def _space(model: str, fixed: dict[str, Any]) -> dict[str, Any]:
    from gan4rec.models import MODELS

    drop = set(fixed)
    for key, unused in UNUSED_WHEN.items():
        if key in fixed and not fixed[key]:
            drop.update(unused)
    return {k: v for k, v in MODELS[model].search_space.items() if k not in drop}


def _run_variant(model: str, fixed: dict[str, Any], split: Any, protocol: Any, *, trials: int,
                 seeds: list[int], stage: str, valid_repeats: int = 1) -> dict[str, Any]:
    from gan4rec.evaluation.evaluator import evaluate
    from gan4rec.experiment import run_on_split
    from gan4rec.models import create
    from gan4rec.tuning import tune

    t0 = time.perf_counter()
    tuned = tune(model, split, n_trials=trials, metric=METRIC, ks=protocol.ks, fixed_params=fixed,
                 search_space=_space(model, fixed), seed=0, device="cpu", valid_repeats=valid_repeats)
    tune_s = time.perf_counter() - t0
    params = tuned.best_params
    runs, valid_users, test_users = [], [], []
    for seed in seeds:
        if stage == "test":
            res = run_on_split(model, params, split, {}, protocol, seed=seed, device="cpu")
            valid_m = res.result["metrics"]["valid"]
            test_users.append(res.test_eval.per_user[METRIC])
            runs.append({"seed": seed, "valid": valid_m[METRIC], "test": res.result["metrics"]["test"][METRIC],
                         "refit_params": res.result.get("refit_params", {})})
            # The per-user validation values come from the model fitted on train minus validation.
            fitted = create(model, params, random_state=seed, device="cpu").fit(split.train, split.valid)
        else:
            fitted = create(model, params, random_state=seed, device="cpu").fit(split.train, split.valid)
        ev = evaluate(fitted.score, split.train, split.valid, ks=protocol.ks, device="cpu")
        valid_users.append(ev.per_user[METRIC])
        if stage != "test":
            runs.append({"seed": seed, "valid": ev.metrics[METRIC], "refit_params": fitted.refit_params()})
    out = {
        "model": model, "fixed": fixed, "params": params, "tune_best_valid": tuned.best_value,
        "tune_seconds": round(tune_s, 1), "trials": tuned.to_json()["trials"], "runs": runs,
        "valid_mean": float(np.mean([r["valid"] for r in runs])),
        "valid_std": float(np.std([r["valid"] for r in runs], ddof=1)) if len(runs) > 1 else 0.0,
        "_valid_users": np.mean(valid_users, axis=0),
    }
    if test_users:
        out["test_mean"] = float(np.mean([r["test"] for r in runs]))
        out["test_std"] = float(np.std([r["test"] for r in runs], ddof=1)) if len(runs) > 1 else 0.0
        out["_test_users"] = np.mean(test_users, axis=0)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _significance(results: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    """``easegan`` against every other variant on the per-user values ``key``, Holm within each test."""
    from gan4rec.evaluation.significance import holm, paired_ttest, paired_wilcoxon

    if CANDIDATE not in results or key not in results[CANDIDATE]:
        return {}
    a = results[CANDIDATE][key]
    others = [n for n in results if n != CANDIDATE and key in results[n]]
    wil = [paired_wilcoxon(a, results[n][key]) for n in others]
    tt = [paired_ttest(a, results[n][key]) for n in others]
    wil_h, tt_h = holm([w.p_value for w in wil]), holm([t.p_value for t in tt])
    return {
        n: {"mean_diff": float(np.mean(a - results[n][key])), "wilcoxon": w.to_json(), "ttest": t.to_json(),
            "wilcoxon_p_holm": float(wh), "ttest_p_holm": float(th)}
        for n, w, t, wh, th in zip(others, wil, tt, wil_h, tt_h, strict=True)
    }


def _combine(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[int]]:
    """Fill ``results`` from the ``--combine`` files (their per-user values as arrays); checks they agree."""
    info: dict[str, Any] = {}
    seeds: list[int] = []
    for path in args.combine:
        rec = json.loads(path.read_text())
        same = {"dataset": rec["dataset"].get("split_fingerprint"), "stage": rec["stage"], "trials": rec["trials"],
                "valid_repeats": rec.get("valid_repeats", 1), "seeds": rec["seeds"]}
        want = {"dataset": info.get("split_fingerprint", same["dataset"]), "stage": args.stage,
                "trials": args.trials, "valid_repeats": args.valid_repeats, "seeds": seeds or rec["seeds"]}
        if same != want:
            raise SystemExit(f"{path}: {same} does not match {want} (pass the same --stage, --trials, "
                             "--valid-repeats as the runs)")
        info, seeds = rec["dataset"], rec["seeds"]
        for n, r in rec["variants"].items():
            if "valid_users" not in r:
                raise SystemExit(f"{path}: variant {n} has no per-user values (written by an older version)")
            results[n] = {("_" + k if k.endswith("_users") else k): (np.asarray(v) if k.endswith("_users") else v)
                          for k, v in r.items()}
    return info, seeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml100k", choices=["ml100k", "ml-latest-small"])
    ap.add_argument("--trials", type=int, default=10, help="Optuna trials per variant (the same for all)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--stage", default="validation", choices=["validation", "test"])
    ap.add_argument("--valid-repeats", type=int, default=1,
                    help="score each trial on this many validation carvings (the same for all variants)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--combine", type=Path, nargs="+", default=None, metavar="JSON",
                    help="no runs: merge the variants of these --json files (same dataset, stage, trials, "
                         "carvings and seeds; e.g. variants run in parallel processes) and test them")
    args = ap.parse_args(argv)

    import torch

    from gan4rec.atomic import atomic_write_text
    from gan4rec.models.base import versions

    torch.set_num_threads(1)
    names = [v for v in args.variants.split(",") if v]
    for n in names:
        if n not in VARIANTS:
            raise SystemExit(f"--variants: unknown variant {n!r}; known: {', '.join(VARIANTS)}")
    results: dict[str, dict[str, Any]] = {}
    if args.combine:
        info, seeds = _combine(args, results)
    else:
        split, info, protocol = _split(args.dataset)
        seeds = list(range(args.seeds))
        for n in names:
            model, fixed = VARIANTS[n]
            results[n] = _run_variant(model, fixed, split, protocol, trials=args.trials, seeds=seeds,
                                      stage=args.stage, valid_repeats=args.valid_repeats)
            r = results[n]
            print(f"{n}: valid {METRIC} {r['valid_mean']:.4f} +- {r['valid_std']:.4f}"
                  + (f", test {r['test_mean']:.4f} +- {r['test_std']:.4f}" if "test_mean" in r else "")
                  + f" ({r['seconds']} s)", flush=True)
    sig = {"valid": _significance(results, "_valid_users"), "test": _significance(results, "_test_users")}

    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"\ncommand: {command}\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus; "
          f"torch threads {torch.get_num_threads()}; data {info.get('file') or info.get('train')} "
          f"({info.get('n_users')} users, "
          f"{info.get('n_items')} items); {args.trials} trials x {args.valid_repeats} validation carvings, "
          f"seeds {seeds}, stage {args.stage}")
    ref = results.get("ease")
    print(f"{'variant':26s} {'valid':>8s} {'ratio':>6s} {'test':>8s} {'ratio':>6s} "
          f"{'p_wil(valid)':>12s} {'p_wil(test)':>12s}")
    for n, r in results.items():
        vr = r["valid_mean"] / ref["valid_mean"] if ref else float("nan")
        te = r.get("test_mean", float("nan"))
        tr = te / ref["test_mean"] if ref and "test_mean" in ref else float("nan")
        pv = sig["valid"].get(n, {}).get("wilcoxon_p_holm", float("nan"))
        pt = sig["test"].get(n, {}).get("wilcoxon_p_holm", float("nan"))
        print(f"{n:26s} {r['valid_mean']:8.4f} {vr:6.3f} {te:8.4f} {tr:6.3f} {pv:12.3g} {pt:12.3g}")
    if args.json:
        record = {
            "kind": "issue8-adversarial-vs-ease", "command": command, "dataset": info, "stage": args.stage,
            "metric": METRIC, "trials": args.trials, "valid_repeats": args.valid_repeats, "seeds": seeds,
            "machine": platform.node(),
            "torch_threads": torch.get_num_threads(), "versions": versions(),
            # Per-user values (seed means, in the split's user order) keep their names without the "_".
            "variants": {n: {k.lstrip("_"): (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
                         for n, r in results.items()},
            "significance": sig,
        }
        atomic_write_text(args.json, json.dumps(record, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
