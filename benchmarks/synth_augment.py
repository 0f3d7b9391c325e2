"""GAN augmentation for sparse users (issue 20, item 5), as pre-registered in synth-augment-prereg.md.

    PYTHONPATH=src python benchmarks/synth_augment.py --dataset ml-100k --seeds 5 \\
        --out benchmarks/results/synth-augment-ml-100k.json

Per seed: ``random_holdout(test_frac=0.2, valid_frac=0.2)``; 20% of users (drawn with the split seed)
keep 5 random train items (:func:`gan4rec.synth.augment.induce_sparse`); EASE's ``l2`` is picked on the
grid below twice from validation NDCG@20 (all users; the sparse users); the three addition rules add
``m`` items per sparse user to the training matrix and EASE (all-users ``l2``) is refitted on it. Every
arm scores each user from their real (cut) training row. Only then is test read, once per arm. The
JSON keeps the per-user test NDCG@20 of every arm, is rewritten after each seed (a cut run keeps its
seeds), and holds the pre-registered tests over the seeds done:

- primary: sparse users, GAN arm vs each other arm, paired Wilcoxon (pooled over seeds), Holm over four;
- secondary: the other users, GAN arm vs EASE alone, paired Wilcoxon and the mean difference's 95%
  percentile bootstrap interval (10,000 resamples of users); "lose nothing": its low end > -0.005.

``--table JSON`` prints the summary of a saved result again.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model, load_average

from gan4rec.artifacts import atomic_write_text
from gan4rec.data.datasets import load_dataset
from gan4rec.data.interactions import Interactions
from gan4rec.data.split import random_holdout
from gan4rec.evaluation.evaluator import evaluate
from gan4rec.evaluation.significance import holm, paired_ttest, paired_wilcoxon
from gan4rec.models import create
from gan4rec.synth.augment import (
    add_items,
    gan_additions,
    induce_sparse,
    n_additions,
    popularity_additions,
    score_additions,
)
from gan4rec.synth.generators import create_generator

log = logging.getLogger("synth_augment")

L2_GRID = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
ARMS = ("gan", "ease", "ease_tuned", "popularity", "knn")
METRIC = "NDCG@20"
LOSE_NOTHING = -0.005


def _ndcg(model: Any, train: Interactions, target: Interactions, exclude: Interactions | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Users and their NDCG@20 on ``target``, each scored from their row of ``train`` (the real items)."""
    hist = train.csr()

    def score(users: np.ndarray) -> np.ndarray:
        return model.score_history(hist[users])

    res = evaluate(score, train, target, ks=(20,), metrics=["NDCG"], exclude=() if exclude is None else exclude,
                   device="cpu")
    return res.users, res.per_user[METRIC]


def _ease(train: Interactions, l2: float) -> Any:
    return create("ease", {"l2": float(l2)}).fit(train)


def run_seed(data: Interactions, seed: int, gan_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One seed of the study: every choice on validation, then test read once per arm.

    ``gan_params`` overrides the GAN's defaults (tests only; the study uses the defaults).
    """
    t0 = time.perf_counter()
    split = random_holdout(data, test_frac=0.2, valid_frac=0.2, random_state=seed)
    assert split.valid is not None and split.test is not None
    train, sparse = induce_sparse(split.train, np.random.default_rng(seed))
    m = n_additions(split.train.user_counts())
    out: dict[str, Any] = {"seed": seed, "n_users": data.n_users, "n_sparse": len(sparse), "m": m,
                           "m_if_from_cut_train": n_additions(train.user_counts()),
                           "train_nnz": int(split.train.nnz), "cut_train_nnz": int(train.nnz)}
    is_sparse = np.zeros(data.n_users, dtype=bool)
    is_sparse[sparse] = True

    # EASE's l2 on validation: all users, and the sparse users (the two best models kept, nothing else).
    best: dict[str, tuple[float, float, Any]] = {}  # which -> (mean, l2, model)
    grid = []
    for l2 in L2_GRID:
        model = _ease(train, l2)
        users, nd = _ndcg(model, train, split.valid)
        row = {"l2": l2, "all": float(nd.mean()), "sparse": float(nd[is_sparse[users]].mean())}
        grid.append(row)
        for which in ("all", "sparse"):
            if which not in best or row[which] > best[which][0]:
                best[which] = (row[which], l2, model)
        log.info("seed %d EASE l2=%g: validation NDCG@20 all %.4f, sparse %.4f", seed, l2, row["all"], row["sparse"])
    out["valid_grid"] = grid
    out["l2_all"], out["l2_sparse"] = best["all"][1], best["sparse"][1]
    l2 = out["l2_all"]

    # The three addition rules, from the training matrix only.
    gen = create_generator("gan", dict(gan_params or {}), random_state=seed).fit(train)
    synth = gen.sample(10 * data.n_users, random_state=seed + 1)
    knn = create("userknn", {"topk": 50, "similarity": "cosine"}).fit(train)
    additions = {
        "gan": gan_additions(train, sparse, synth, m),
        "popularity": popularity_additions(train, sparse, m, np.random.default_rng(seed + 1)),
        "knn": score_additions(train, sparse, knn.score(sparse), m),
    }
    out["gan_params"] = gen.get_params()
    out["gan_fit_seconds"] = gen.fit_seconds_
    out["added_per_user"] = {k: float(np.mean([len(v) for v in a.values()])) for k, a in additions.items()}
    models = {"ease": best["all"][2], "ease_tuned": best["sparse"][2]}
    for arm, add in additions.items():
        models[arm] = _ease(add_items(train, add), l2)

    # Test, read once per arm, after every choice above.
    users_ref: np.ndarray | None = None
    per_user: dict[str, list[float]] = {}
    for arm in ARMS:
        users, nd = _ndcg(models[arm], train, split.test, exclude=split.valid)
        if users_ref is None:
            users_ref = users
        elif not np.array_equal(users, users_ref):
            raise RuntimeError("arms were evaluated on different users")
        per_user[arm] = nd.tolist()
    assert users_ref is not None
    sp_mask = is_sparse[users_ref]
    out["users"] = users_ref.tolist()
    out["sparse_mask"] = sp_mask.tolist()
    out["per_user_test"] = per_user
    out["test_mean"] = {arm: {"sparse": float(np.mean(np.asarray(v)[sp_mask])),
                              "others": float(np.mean(np.asarray(v)[~sp_mask]))} for arm, v in per_user.items()}
    out["seconds"] = time.perf_counter() - t0
    return out


def bootstrap_ci(d: np.ndarray, seed: int = 0, n_resamples: int = 10_000) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of ``d`` (resampling its entries)."""
    from scipy.stats import bootstrap

    res = bootstrap((d,), np.mean, confidence_level=0.95, n_resamples=n_resamples, method="percentile",
                    random_state=np.random.default_rng(seed), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def analyse(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """The pre-registered tests over the seeds in ``seeds`` (users pooled, nested in seeds)."""
    pooled = {arm: np.concatenate([np.asarray(s["per_user_test"][arm]) for s in seeds]) for arm in ARMS}
    mask = np.concatenate([np.asarray(s["sparse_mask"], dtype=bool) for s in seeds])
    primary: dict[str, Any] = {}
    others = [a for a in ARMS if a != "gan"]
    for arm in others:
        a, b = pooled["gan"][mask], pooled[arm][mask]
        primary[arm] = {"gan_mean": float(a.mean()), "other_mean": float(b.mean()),
                        "mean_difference": float((a - b).mean()), "wilcoxon": paired_wilcoxon(a, b).to_json(),
                        "ttest": paired_ttest(a, b).to_json()}
    adj = holm([primary[a]["wilcoxon"]["p"] for a in others])
    for arm, p in zip(others, adj, strict=True):
        primary[arm]["p_holm"] = float(p)
        primary[arm]["significant"] = bool(p <= 0.05)
    a, b = pooled["gan"][~mask], pooled["ease"][~mask]
    low, high = bootstrap_ci(a - b)
    secondary = {"gan_mean": float(a.mean()), "ease_mean": float(b.mean()), "mean_difference": float((a - b).mean()),
                 "bootstrap_95": [low, high], "wilcoxon": paired_wilcoxon(a, b).to_json(),
                 "lose_nothing": bool(low > LOSE_NOTHING)}
    return {"seeds": [s["seed"] for s in seeds], "n_sparse_pairs": int(mask.sum()), "n_other_pairs": int((~mask).sum()),
            "mean_by_arm": {arm: {"sparse": float(pooled[arm][mask].mean()), "others": float(pooled[arm][~mask].mean())}
                            for arm in ARMS},
            "primary": primary, "secondary": secondary}


def table(res: dict[str, Any]) -> str:
    """Markdown lines: mean NDCG@20 per arm and stratum, and the tests."""
    an = res["analysis"]
    head = (f"{res['dataset']}, seeds {an['seeds']}: {an['n_sparse_pairs']} sparse and {an['n_other_pairs']} "
            "other user-seed pairs")
    lines = [head, "", "| arm | sparse NDCG@20 | others NDCG@20 | GAN - arm (sparse) | Wilcoxon p | Holm p |",
             "|---|---|---|---|---|---|"]
    for arm in ARMS:
        mb = an["mean_by_arm"][arm]
        pr = an["primary"].get(arm)
        cells = ["-", "-", "-"] if pr is None else [f"{pr['mean_difference']:+.4f}", f"{pr['wilcoxon']['p']:.3g}",
                                                    f"{pr['p_holm']:.3g}"]
        lines.append(f"| {arm} | {mb['sparse']:.4f} | {mb['others']:.4f} | " + " | ".join(cells) + " |")
    se = an["secondary"]
    lines.append("")
    lines.append(f"Others, GAN - EASE: {se['mean_difference']:+.4f} (95% bootstrap {se['bootstrap_95'][0]:+.4f} .. "
                 f"{se['bootstrap_95'][1]:+.4f}), Wilcoxon p = {se['wilcoxon']['p']:.3g}; lose nothing "
                 f"(low end > {LOSE_NOTHING}): {se['lose_nothing']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out")
    ap.add_argument("--table", metavar="JSON", help="print the summary of a saved result")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return
    if not args.dataset or not args.out:
        ap.error("--dataset and --out are required (or --table JSON)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data = load_dataset(args.dataset)
    res: dict[str, Any] = {"dataset": args.dataset, "shape": list(data.shape), "nnz": int(data.nnz),
                           "protocol": "benchmarks/results/synth-augment-prereg.md", "l2_grid": list(L2_GRID),
                           "cpu": cpu_model(), "load_average_before": load_average(), "runs": []}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        res["runs"].append(run_seed(data, seed))
        res["analysis"] = analyse(res["runs"])
        res["seconds"] = time.perf_counter() - t0
        res["load_average_after"] = load_average()
        atomic_write_text(Path(args.out), json.dumps(res, indent=None, allow_nan=False) + "\n")
        log.info("seed %d done in %.0f s: %s", seed, res["runs"][-1]["seconds"], res["runs"][-1]["test_mean"])
    print(table(res))


if __name__ == "__main__":
    main()
