"""gan4rec against the libraries users compare it with: CPU time of equal work, one thread each side.

Each comparison fits the same model with the same hyperparameters and the same number of iterations
(epochs, CG steps) in gan4rec and in a peer library, on the same training part, and reports the ratio of
their process CPU times (``time.process_time``). Equal work is checked, not assumed: NDCG@20 of both sides
on the same test part, computed by gan4rec's evaluator outside the timed part, must agree within 0.003
(the ``match`` column; BPR's samplers differ, so a BPR row compares accuracy loosely).

Peers: ``implicit`` (iALS exact and CG, BPR-MF, ItemKNN cosine, its NDCG evaluator), ``cornac`` (BPR-MF,
EASE) and LensKit, each where it imports; a missing peer is skipped with the reason printed. Install them
with ``pip install -e .[peers]``.

Fairness: one thread everywhere (``OMP_NUM_THREADS=1`` and friends set before numpy loads,
``threadpoolctl.threadpool_limits(1)``, ``torch.set_num_threads(1)``, implicit's ``num_threads=1``). The
sides alternate, A B A B A B (``--pairs``), so a load change on a shared machine hits both; the table gives
the min and the median of the per-pair ratios gan4rec / peer (below 1: gan4rec is faster).

The models and settings:

- iALS: ``reg`` and ``alpha`` of ``configs/ials-ml100k.toml``; implicit's confidence is ``alpha * r``,
  ours ``1 + alpha * r``, so implicit gets ``alpha + 1``. ``cg``: 3 CG steps (implicit's default). implicit
  starts from gan4rec's initial factors, so both do the same arithmetic and NDCG@20 must agree.
- BPR-MF: ours ``optimizer="sgd"`` (the paper's update, as implicit and cornac); implicit's
  ``regularization`` is the coefficient of the gradient step, ours ``l2`` that of the objective (gradient
  ``2 l2``), so ours gets half. Negatives: ours uniform over the user's unobserved items, implicit's from
  its item column (popularity-weighted, liked ones skipped), cornac's uniform over all items.
  ``bpr-implicit-64``: ours with ``backend="implicit"`` (implicit's kernel behind gan4rec's model: our
  initialisation, weights copied in and out each epoch, a seed per epoch) against implicit itself.
- ItemKNN: cosine, 100 neighbours, no shrinkage (implicit's ``CosineRecommender(K=100)``); implicit
  keeps each source item's neighbours, gan4rec each target item's, so accuracy is compared loosely.
- EASE: ``l2`` of ``configs/ease-ml100k.toml``; cornac's ``EASE(lamb, posB=False)``.
- evaluator: NDCG@20 over every test user of the same iALS factors: gan4rec's :func:`evaluate` against
  implicit's ``ndcg_at_k`` (the work is the ranking, not the model).

Usage::

    GAN4REC_DATA=../shared/datasets python benchmarks/peers.py --json benchmarks/results/peers-ml100k.json
    GAN4REC_DATA=../shared/datasets python benchmarks/peers.py --tune-bpr --json benchmarks/results/peers-bpr-tuning.json
    GAN4REC_DATA=../shared/datasets python benchmarks/peers.py --data ml-100k --only bpr \
        --json benchmarks/results/peers-bpr-ml100k.json                       # the BPR-MF rows alone
    python benchmarks/peers.py --data ml-1m --only bpr --bpr-epochs 10 --json benchmarks/results/peers-bpr-ml1m.json
    python benchmarks/peers.py --quick                     # ML-100K only, 2 pairs, few iterations
    python benchmarks/peers.py --data ml-1m --only ials-cg --pairs 3
    python benchmarks/peers.py --profile ials-cg-64        # where gan4rec's time goes (torch.profiler)
    python benchmarks/peers.py --scale --json benchmarks/results/peers-ml20m.json   # ML-20M size, peak RSS
    python benchmarks/peers.py --scale --only bpr --json benchmarks/results/peers-bpr-ml20m.json  # its BPR runs
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model, load_average

from gan4rec.data.interactions import Interactions
from gan4rec.data.split import random_holdout
from gan4rec.evaluation.evaluator import evaluate
from gan4rec.models import create

IALS_REG, IALS_ALPHA = 36.319624054514684, 4.213230205880386  # configs/ials-ml100k.toml
EASE_L2 = 500.0
BPR_LR, BPR_REG, BPR_BATCH = 0.05, 0.01, 1024  # implicit's gradient-step regularisation; ours l2 = half
TOL = 0.003

Score = Callable[[np.ndarray], np.ndarray]


@dataclass
class Side:
    """One library's run of a comparison: ``run()`` does the timed work and returns an untimed scorer."""

    library: str
    run: Callable[[], Callable[[], float]]


@dataclass
class Case:
    name: str
    dataset: str
    work: str
    sides: list[Side]
    loose: bool = False  # accuracy is reported, not required to match (different samplers)
    results: dict[str, Any] = field(default_factory=dict)


def _ndcg(score: Score, train: Interactions, test: Interactions) -> float:
    res = evaluate(score, train, test, ks=[20], metrics=["NDCG"], device="cpu")
    return float(res.metrics["NDCG@20"])


def _peer_versions() -> tuple[dict[str, str], dict[str, str]]:
    found, missing = {}, {}
    for name in ("implicit", "cornac", "lenskit"):
        try:
            mod = __import__(name)
            found[name] = str(getattr(mod, "__version__", "?"))
        except Exception as exc:  # noqa: BLE001 - a peer that fails to import is skipped, with the reason
            missing[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:120]
    return found, missing


# ---------------------------------------------------------------------------------------------- sides
def _ours(model: str, params: dict[str, Any], train: Interactions, test: Interactions) -> Side:
    def run() -> Callable[[], float]:
        m = create(model, {**params, **({"device": "cpu"} if model in ("ials", "bpr") else {})}, random_state=0)
        m.fit(train)
        return lambda: _ndcg(m.score, train, test)

    return Side("gan4rec", run)


def _bpr_params(epochs: int, backend: str, lr: float = BPR_LR, reg: float = BPR_REG) -> dict[str, Any]:
    """gan4rec's BPR-MF with ``optimizer="sgd"``, 64 factors; ``reg`` is implicit's (ours ``l2 = reg / 2``)."""
    return {"n_factors": 64, "lr": lr, "l2": reg / 2, "epochs": epochs, "batch_size": BPR_BATCH,
            "optimizer": "sgd", "backend": backend, "patience": None, "n_threads": 1}


def _ials_start(params: dict[str, Any], train: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """gan4rec's initial iALS factors for ``params`` and seed 0 (what its fit starts from)."""
    m = create("ials", {**params, "device": "cpu"}, random_state=0)
    m._setup_fit(train)  # the fit's own set-up, so the start is exactly the one fit() uses
    fac = m.modules_["factors"]
    return fac.user.numpy().copy(), fac.item.numpy().copy()


def _implicit_als(params: dict[str, Any], train: Interactions, test: Interactions) -> Side:
    """implicit's ALS from gan4rec's starting factors: the same iterations then do the same arithmetic."""
    from implicit.cpu.als import AlternatingLeastSquares

    csr = train.csr().astype(np.float32)
    user0, item0 = _ials_start(params, train)

    def run() -> Callable[[], float]:
        m = AlternatingLeastSquares(factors=params["n_factors"], regularization=IALS_REG,
                                    alpha=IALS_ALPHA + 1.0, iterations=params["iterations"],
                                    use_cg=params["solver"] == "cg", calculate_training_loss=False,
                                    num_threads=1, random_state=0)
        m.user_factors, m.item_factors = user0.copy(), item0.copy()
        m.fit(csr, show_progress=False)
        return lambda: _ndcg(lambda u: m.user_factors[u] @ m.item_factors.T, train, test)

    return Side("implicit", run)


def _implicit_bpr(f: int, epochs: int, train: Interactions, test: Interactions) -> Side:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    csr = train.csr().astype(np.float32)

    def run() -> Callable[[], float]:
        # implicit adds the item bias as one more factor (its user side fixed at 1).
        m = BayesianPersonalizedRanking(factors=f, learning_rate=BPR_LR, regularization=BPR_REG,
                                        iterations=epochs, num_threads=1, random_state=0)
        m.fit(csr, show_progress=False)
        return lambda: _ndcg(lambda u: m.user_factors[u] @ m.item_factors.T, train, test)

    return Side("implicit", run)


def _cornac_dataset(train: Interactions) -> tuple[Any, np.ndarray, np.ndarray]:
    """A cornac train set and, for our user and item indices, cornac's (users in order, items mapped)."""
    import cornac

    users = train.user_index()
    items = np.asarray(train.indices)
    triples = list(zip(users.tolist(), items.tolist(), [1.0] * len(users), strict=True))
    ds = cornac.data.Dataset.from_uir(triples, seed=0)
    u_map = np.array([ds.uid_map[u] for u in range(train.n_users)])
    i_map = np.array([ds.iid_map.get(i, -1) for i in range(train.n_items)])
    return ds, u_map, i_map


def _cornac_bpr(f: int, epochs: int, train: Interactions, test: Interactions) -> Side:
    import cornac

    ds, u_map, i_map = _cornac_dataset(train)

    def run() -> Callable[[], float]:
        m = cornac.models.BPR(k=f, max_iter=epochs, learning_rate=BPR_LR, lambda_reg=BPR_REG, seed=0,
                              num_threads=1, verbose=False)
        m.fit(ds)

        def score(u: np.ndarray) -> np.ndarray:
            s = m.u_factors[u_map[u]] @ m.i_factors.T + m.i_biases[None, :]
            return np.where(i_map[None, :] >= 0, s[:, np.maximum(i_map, 0)], -np.inf)

        return lambda: _ndcg(score, train, test)

    return Side("cornac", run)


def _cornac_ease(train: Interactions, test: Interactions) -> Side:
    import cornac

    ds, u_map, i_map = _cornac_dataset(train)

    def run() -> Callable[[], float]:
        m = cornac.models.EASE(lamb=EASE_L2, posB=False, seed=0, verbose=False)
        m.fit(ds)

        def score(u: np.ndarray) -> np.ndarray:
            s = np.asarray(m.U[u_map[u]] @ m.B)  # (b, cornac's items)
            return np.where(i_map[None, :] >= 0, s[:, np.maximum(i_map, 0)], -np.inf)

        return lambda: _ndcg(score, train, test)

    return Side("cornac", run)


def _implicit_cosine(k: int, train: Interactions, test: Interactions) -> Side:
    from implicit.nearest_neighbours import CosineRecommender

    csr = train.csr().astype(np.float32)

    def run() -> Callable[[], float]:
        m = CosineRecommender(K=k, num_threads=1)
        m.fit(csr, show_progress=False)
        return lambda: _ndcg(lambda u: (csr[u] @ m.similarity).toarray(), train, test)

    return Side("implicit", run)


def _evaluator_sides(train: Interactions, test: Interactions) -> list[Side]:
    """Both evaluators rank the same implicit ALS factors (fitted once, untimed) for every test user."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.evaluation import ndcg_at_k

    csr, test_csr = train.csr().astype(np.float32), test.csr().astype(np.float32)
    m = AlternatingLeastSquares(factors=64, regularization=IALS_REG, alpha=IALS_ALPHA + 1.0, iterations=5,
                                calculate_training_loss=False, num_threads=1, random_state=0)
    m.fit(csr, show_progress=False)

    def ours() -> Callable[[], float]:
        value = _ndcg(lambda u: m.user_factors[u] @ m.item_factors.T, train, test)
        return lambda: value

    def theirs() -> Callable[[], float]:
        value = float(ndcg_at_k(m, csr, test_csr, K=20, show_progress=False, num_threads=1))
        return lambda: value

    return [Side("gan4rec", ours), Side("implicit", theirs)]


# ---------------------------------------------------------------------------------------------- cases
def _cases(dataset: str, data: Interactions, args: argparse.Namespace, peers: dict[str, str]) -> list[Case]:
    split = random_holdout(data, test_frac=0.2, valid_frac=0.0, random_state=42)
    train, test = split.train, split.test
    assert test is not None
    quick = args.quick
    iters = 5 if quick else 15
    # Exact solves at 256 factors cost minutes per iteration at ML-1M size on one thread: fewer there.
    exact_iters = {64: iters, 256: iters} if dataset == "ml-100k" else {64: 3, 256: 1}
    epochs = 5 if quick else args.bpr_epochs
    cases: list[Case] = []
    has_implicit, has_cornac = "implicit" in peers, "cornac" in peers
    for f in (64, 256):
        for solver in ("cholesky", "cg"):
            n = exact_iters[f] if solver == "cholesky" else iters
            label = "exact" if solver == "cholesky" else "cg"
            params = {"n_factors": f, "reg": IALS_REG, "alpha": IALS_ALPHA, "iterations": n, "solver": solver,
                      "cg_steps": 3, "n_threads": 1}
            sides = [_ours("ials", params, train, test)]
            if has_implicit:
                sides.append(_implicit_als(params, train, test))
            cases.append(Case(f"ials-{label}-{f}", dataset, f"{n} iterations", sides))
    sides = [_ours("bpr", _bpr_params(epochs, "torch"), train, test)]
    if has_implicit:
        sides.append(_implicit_bpr(64, epochs, train, test))
    if has_cornac:
        sides.append(_cornac_bpr(64, epochs, train, test))
    cases.append(Case("bpr-sgd-64", dataset, f"{epochs} epochs", sides, loose=True))
    if has_implicit:
        sides = [_ours("bpr", _bpr_params(epochs, "implicit"), train, test), _implicit_bpr(64, epochs, train, test)]
        cases.append(Case("bpr-implicit-64", dataset, f"{epochs} epochs", sides, loose=True))
    sides = [_ours("ease", {"l2": EASE_L2}, train, test)]
    if has_cornac:
        sides.append(_cornac_ease(train, test))
    cases.append(Case("ease", dataset, "one fit", sides))
    sides = [_ours("itemknn", {"topk": 100, "shrink": 0.0, "similarity": "cosine"}, train, test)]
    if has_implicit:
        sides.append(_implicit_cosine(100, train, test))
    # implicit keeps each source item's K neighbours, gan4rec each target item's (the usual ItemKNN): the
    # same cost, not the same lists, so the accuracy is compared loosely.
    cases.append(Case("itemknn-cosine", dataset, "one fit", sides, loose=True))
    if has_implicit:
        cases.append(Case("evaluator", dataset, "NDCG@20, all test users", _evaluator_sides(train, test)))
    if args.only:
        cases = [c for c in cases if any(c.name.startswith(p) for p in args.only.split(","))]
    return cases


def _run_case(case: Case, pairs: int) -> None:
    """Alternate the sides ``pairs`` times; ratios gan4rec / peer per pair; NDCG of each side's last run."""
    times: dict[str, list[float]] = {s.library: [] for s in case.sides}
    ndcg: dict[str, float] = {}
    for _ in range(pairs):
        for side in case.sides:
            t0 = time.process_time()
            scorer = side.run()
            times[side.library].append(time.process_time() - t0)
            ndcg[side.library] = scorer()
    ours = times["gan4rec"]
    for side in case.sides[1:]:
        ratios = [a / b for a, b in zip(ours, times[side.library], strict=True)]
        diff = ndcg["gan4rec"] - ndcg[side.library]
        case.results[side.library] = {
            "ratio_min": min(ratios), "ratio_median": statistics.median(ratios),
            "cpu_s_gan4rec": ours, "cpu_s_peer": times[side.library],
            "ndcg_gan4rec": ndcg["gan4rec"], "ndcg_peer": ndcg[side.library], "ndcg_diff": diff,
            "match": abs(diff) <= TOL,
        }
    if len(case.sides) == 1:
        case.results["-"] = {"cpu_s_gan4rec": ours, "ndcg_gan4rec": ndcg["gan4rec"]}


def _tune_bpr(data: Interactions, epochs: int, every: int) -> dict[str, Any]:
    """BPR-MF of gan4rec (``optimizer="sgd"``, both backends) and implicit, tuned on validation, same grid.

    Grid: learning rate x regularisation (implicit's gradient-step coefficient; gan4rec's ``l2`` is half
    of it, the same update), 64 factors, up to ``epochs`` epochs with NDCG@20 on validation every
    ``every`` epochs; the best (setting, epoch) on validation is kept and its test NDCG@20 reported (test
    read once per library, validation and train items excluded from the ranking). Each library's CPU
    seconds over its whole grid (validation included) are recorded too.
    """
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    split = random_holdout(data, test_frac=0.2, valid_frac=0.2, random_state=42)
    train, valid, test = split.train, split.valid, split.test
    assert valid is not None and test is not None
    csr = train.csr().astype(np.float32)
    grid = [(lr, reg) for lr in (0.003, 0.01, 0.03, 0.1) for reg in (0.0003, 0.001, 0.01, 0.03)]
    libs = {"gan4rec": "torch", "gan4rec-implicit": "implicit", "implicit": None}
    out: dict[str, Any] = {"grid": grid, "epochs": epochs, "every": every, "trials": {},
                           "cpu_s": dict.fromkeys(libs, 0.0)}
    best: dict[str, tuple[float, Any]] = {}
    for lr, reg in grid:
        line = []
        for lib, backend in libs.items():
            t0 = time.process_time()
            if backend is not None:
                params = {**_bpr_params(epochs, backend, lr, reg), "eval_every": every, "device": "cpu"}
                m = create("bpr", params, random_state=0).fit(train, valid)
                curve = [r["valid_NDCG@20"] for r in m.history_ if r.get("valid_NDCG@20") is not None]
                found = (m.best_epoch_, m.score)
            else:
                curve, found = _implicit_curve(BayesianPersonalizedRanking, csr, train, valid, lr, reg, epochs,
                                               every)
            out["cpu_s"][lib] += time.process_time() - t0
            out["trials"][f"{lib} lr={lr} reg={reg}"] = curve
            if max(curve) > best.get(lib, (-1.0, None))[0]:
                best[lib] = (max(curve), (lr, reg, *found))
            line.append(f"{lib} {max(curve):.4f}")
        print(f"  lr={lr} reg={reg}: best valid NDCG@20 " + ", ".join(line), flush=True)
    print("\n| library | lr | reg | epochs (chosen) | valid NDCG@20 | test NDCG@20 | grid CPU s |")
    print("|---|---|---|---|---|---|---|")
    for lib, (v, (lr, reg, ep, score)) in best.items():
        res = evaluate(score, train, test, ks=[20], metrics=["NDCG"], exclude=valid, device="cpu")
        t = float(res.metrics["NDCG@20"])
        out[lib] = {"lr": lr, "reg": reg, "epoch": ep, "valid": v, "test": t}
        print(f"| {lib} | {lr} | {reg} | {ep} | {v:.4f} | {t:.4f} | {out['cpu_s'][lib]:.1f} |")
    return out


def _implicit_curve(cls: Any, csr: Any, train: Interactions, valid: Interactions, lr: float, reg: float,
                    epochs: int, every: int) -> tuple[list[float], tuple[int, Score]]:
    """implicit's validation curve for one setting and its best (epoch, scorer)."""
    im = cls(factors=64, learning_rate=lr, regularization=reg, iterations=epochs, num_threads=1, random_state=0)
    curve: list[float] = []
    kept: dict[str, Any] = {}

    # implicit calls back with (iteration, seconds, correct, skipped) after each epoch.
    def validate(it: int, *_stats: float) -> None:
        if (it + 1) % every == 0:
            u, q = im.user_factors.copy(), im.item_factors.copy()
            curve.append(_ndcg(lambda x: u[x] @ q.T, train, valid))
            if curve[-1] >= max(curve):
                kept["factors"], kept["epoch"] = (u, q), it + 1

    im.fit(csr, show_progress=False, callback=validate)
    u, q = kept["factors"]
    return curve, (kept["epoch"], lambda x: u[x] @ q.T)


def _profile(args: argparse.Namespace) -> int:
    """Run gan4rec's side of ``args.profile`` (on the first of ``--data``) once under torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    name = (args.data or "ml-100k").split(",")[0]
    data, what = _load(name)
    if data is None:
        print(f"skipped: {what}")
        return 0
    cases = [c for c in _cases(name, data, args, {}) if c.name == args.profile]
    if not cases:
        print(f"--profile {args.profile!r}: no such comparison", file=sys.stderr)
        return 2
    with threadpool_limits(1), profile(activities=[ProfilerActivity.CPU]) as prof:
        cases[0].sides[0].run()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return 0


SCALE_RUNS = ("gan4rec:ials-cg", "implicit:ials-cg", "gan4rec:bpr-sgd", "gan4rec:bpr-implicit", "implicit:bpr-sgd")


def _vm_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _scale_child(run: str) -> dict[str, Any]:
    """One fit at synthetic ML-20M size in this (child) process: CPU seconds and peak RSS of the fit."""
    from gan4rec.data.datasets import load_dataset

    library, model = run.split(":")
    data = load_dataset("synthetic", size="ml-20m", random_state=0)
    csr = data.csr().astype(np.float32) if library == "implicit" else None
    rss_before = _vm_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    except OSError:
        pass
    t0, w0 = time.process_time(), time.perf_counter()
    if library == "gan4rec" and model == "ials-cg":
        create("ials", {"n_factors": 492, "reg": IALS_REG, "alpha": IALS_ALPHA, "iterations": 1, "solver": "cg",
                        "device": "cpu", "n_threads": 1}, random_state=0).fit(data)
    elif library == "gan4rec":
        backend = "implicit" if model == "bpr-implicit" else "torch"
        create("bpr", {**_bpr_params(1, backend), "device": "cpu"}, random_state=0).fit(data)
    elif model == "ials-cg":
        from implicit.cpu.als import AlternatingLeastSquares

        AlternatingLeastSquares(factors=492, regularization=IALS_REG, alpha=IALS_ALPHA + 1.0, iterations=1,
                                use_cg=True, calculate_training_loss=False, num_threads=1,
                                random_state=0).fit(csr, show_progress=False)
    else:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        BayesianPersonalizedRanking(factors=64, learning_rate=BPR_LR, regularization=BPR_REG, iterations=1,
                                    num_threads=1, random_state=0).fit(csr, show_progress=False)
    return {"run": run, "cpu_s": time.process_time() - t0, "wall_s": time.perf_counter() - w0,
            "peak_rss_gb": _vm_kb("VmHWM") / 2**20, "rss_before_gb": rss_before / 2**20}


def _scale(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each run of :data:`SCALE_RUNS` in its own subprocess (its own peak RSS), in order."""
    import subprocess

    rows = []
    print("\n| run (ML-20M size) | work | CPU s | wall s | peak RSS GB | RSS with data GB |\n|---|---|---|---|---|---|")
    for run in SCALE_RUNS:
        if "implicit" in run and "implicit" not in _peer_versions()[0]:
            continue
        if args.only and not any(run.split(":")[1].startswith(x) for x in args.only.split(",")):
            continue
        proc = subprocess.run([sys.executable, __file__, "--scale-child", run], capture_output=True, text=True,
                              check=False,
                              timeout=args.scale_timeout)
        if proc.returncode != 0:
            print(f"| {run} | failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]} |")
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        work = "1 iteration, 492 factors, 3 CG steps" if "ials" in run else "1 epoch, 64 factors"
        print(f"| {run} | {work} | {row['cpu_s']:.1f} | {row['wall_s']:.1f} | {row['peak_rss_gb']:.2f} | "
              f"{row['rss_before_gb']:.2f} |", flush=True)
    return rows


def _load(name: str) -> tuple[Interactions | None, str]:
    from gan4rec.data.datasets import load_dataset

    if name == "ml-1m":
        return load_dataset("synthetic", size="ml-1m", random_state=0), "synthetic ML-1M size (seed 0)"
    if not os.environ.get("GAN4REC_DATA"):
        return None, "GAN4REC_DATA is not set (point it at a folder holding ml-100k/)"
    try:
        return load_dataset("ml-100k", offline=True), "MovieLens-100K"
    except Exception as exc:  # noqa: BLE001 - skipped with the reason; the other sizes still run
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="comma-separated: ml-100k, ml-1m (default both; --quick: ml-100k)")
    ap.add_argument("--pairs", type=int, default=None, help="A B alternations per comparison (default 3)")
    ap.add_argument("--only", help="comma-separated comparison name prefixes (ials-cg, bpr, ease, ...)")
    ap.add_argument("--bpr-epochs", type=int, default=50, help="BPR-MF epochs on both sides (default 50)")
    ap.add_argument("--quick", action="store_true", help="ML-100K, 2 pairs, 5 iterations/epochs")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--profile", metavar="NAME",
                    help="instead: profile gan4rec's side of comparison NAME once (torch.profiler, top ops)")
    ap.add_argument("--scale", action="store_true",
                    help="instead: one iALS CG iteration and one BPR-MF epoch at synthetic ML-20M size, each "
                         "library in its own process, CPU time and peak RSS")
    ap.add_argument("--scale-timeout", type=float, default=1800, help="--scale: seconds per run")
    ap.add_argument("--scale-child", help=argparse.SUPPRESS)
    ap.add_argument("--tune-epochs", type=int, default=100, help="--tune-bpr: most epochs (default 100)")
    ap.add_argument("--tune-bpr", action="store_true",
                    help="instead: tune BPR-MF of gan4rec and implicit on ML-100K validation, same grid")
    args = ap.parse_args(argv)
    if args.scale_child:
        torch.set_num_threads(1)
        with threadpool_limits(1):
            print(json.dumps(_scale_child(args.scale_child)))
        return 0
    pairs = args.pairs or (2 if args.quick else 3)
    names = (args.data or ("ml-100k" if args.quick else "ml-100k,ml-1m")).split(",")
    torch.set_num_threads(1)
    peers, missing = _peer_versions()
    command = "python benchmarks/peers.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"command: `{command}`")
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs; load average before {load_average()}")
    print(f"threads: 1 per side (torch {torch.get_num_threads()}, threadpoolctl 1, implicit num_threads=1); "
          f"torch {torch.__version__}; peers: " + ", ".join(f"{k} {v}" for k, v in peers.items()))
    for name, why in missing.items():
        print(f"skipped peer {name}: {why}")
    out: dict[str, Any] = {"command": command, "cpu": cpu_model(), "peers": peers, "skipped_peers": missing,
                           "pairs": pairs, "load_before": load_average(), "cases": []}
    if args.profile:
        return _profile(args)
    if args.scale:
        out["scale"] = _scale(args)
        if args.json:
            _write_json(args.json, out)
        return 0
    if args.tune_bpr:
        data, what = _load("ml-100k")
        if data is None:
            print(f"skipped: {what}")
            return 0
        with threadpool_limits(1):
            out["tune_bpr"] = _tune_bpr(data, epochs=args.tune_epochs, every=10)
        if args.json:
            _write_json(args.json, out)
        return 0
    print("\n| data | comparison | work | peer | CPU ratio gan4rec/peer min | median | gan4rec s | peer s "
          "| NDCG@20 gan4rec | peer | match |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with threadpool_limits(1):
        for name in names:
            data, what = _load(name)
            if data is None:
                print(f"| {name} | skipped: {what} |")
                continue
            for case in _cases(name, data, args, peers):
                _run_case(case, pairs)
                for lib, r in case.results.items():
                    if lib == "-":
                        print(f"| {name} | {case.name} | {case.work} | (no peer installed) | | | "
                              f"{min(r['cpu_s_gan4rec']):.3f} | | {r['ndcg_gan4rec']:.4f} | | |")
                        continue
                    match = ("yes" if r["match"] else "NO") + (" (loose)" if case.loose else "")
                    print(f"| {name} | {case.name} | {case.work} | {lib} | {r['ratio_min']:.2f} | "
                          f"{r['ratio_median']:.2f} | {statistics.median(r['cpu_s_gan4rec']):.3f} | "
                          f"{statistics.median(r['cpu_s_peer']):.3f} | {r['ndcg_gan4rec']:.4f} | "
                          f"{r['ndcg_peer']:.4f} | {match} |", flush=True)
                out["cases"].append({"data": name, "dataset": what, "name": case.name, "work": case.work,
                                     "results": case.results})
    out["load_after"] = load_average()
    print(f"\nload average after {out['load_after']}; ratios are of process CPU time, per alternated pair")
    if args.json:
        _write_json(args.json, out)
    return 0


def _write_json(path: Path, out: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
