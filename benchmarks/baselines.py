"""Fit time, peak memory and full-ranking evaluation throughput of every baseline.

Each model runs in its own subprocess (so peak RSS is its own), on the CFGAN ML-100K split or on the
synthetic dataset at a preset size. The table prints the command, the machine, the thread count, and each
fit time as a ratio to a reference run in the same process (a 2048^3 float32 torch matmul), so numbers
from different machines can be compared.

    python benchmarks/baselines.py --data cfgan                 # the CFGAN ML-100K split (../shared)
    python benchmarks/baselines.py --data ml-20m --models ease,itemknn,puresvd --timeout 1800

Params: the tuned configs ``configs/<model>-ml100k.toml`` where present, else the model defaults;
torch models are timed for ``--epochs`` epochs. On the synthetic sizes BPR-MF switches to
``optimizer="sparse_adam"`` (lazy Adam on sparse embedding gradients): dense Adam steps all ~39M embedding
parameters on each of ML-20M's 62K steps, which did not finish one epoch in 1800 s.

A model that refuses the size up front (e.g. EASE, whose dense items x items inverse needs about
``12 n_items^2`` bytes, over its ``max_memory_gb``) shows its one-line :class:`~gan4rec.errors.Gan4recError`
message; a child killed by a signal (SIGKILL: most likely the kernel's out-of-memory killer) or stopped at
``--timeout`` says so. With ``--json`` the file is rewritten after every model, so a long run that is
stopped keeps the rows it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model as _cpu_model
from _machine import matmul_seconds

SHARED = Path(os.environ.get("GAN4REC_SHARED", ROOT.parent / "shared")) / "datasets" / "cfgan-ml100k"
MODELS = ["toppop", "itemknn", "userknn", "rp3beta", "ease", "slim", "puresvd", "ials", "bpr", "multvae"]
EPOCH_PARAMS = {"bpr": "epochs", "multvae": "epochs", "ials": "iterations"}
SCALE_PARAMS = {"bpr": {"optimizer": "sparse_adam"}}  # on the synthetic sizes, over the ML-100K config


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(model: str, data: str, epochs: int, eval_users: int) -> dict:
    """Load the data, fit one model and evaluate it; a JSON-ready row (raises on failure)."""
    import numpy as np

    from gan4rec.evaluation.evaluator import evaluate
    from gan4rec.models import create

    t0 = time.perf_counter()
    if data == "cfgan":
        from gan4rec.data.io import read_uir_pair

        train, test = read_uir_pair(SHARED / "ML100K.train", SHARED / "ML100K.test", format="uir")
    else:
        from gan4rec.data.datasets import load_dataset
        from gan4rec.data.split import random_holdout

        split = random_holdout(load_dataset("synthetic", size=data), test_frac=0.2, valid_frac=0.0,
                               random_state=42)
        train, test = split.train, split.test
    load_s = time.perf_counter() - t0
    rss_data = _rss_mb()
    params: dict = {}
    cfg = ROOT / "configs" / f"{model}-ml100k.toml"
    if cfg.is_file():
        params = dict(tomllib.loads(cfg.read_text()).get("params", {}))
    if data != "cfgan":
        params.update(SCALE_PARAMS.get(model, {}))
    if model in EPOCH_PARAMS:
        params[EPOCH_PARAMS[model]] = epochs
    m = create(model, params, random_state=0)
    t0, c0 = time.perf_counter(), time.process_time()
    m.fit(train)
    fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    users = np.arange(min(eval_users, train.n_users))
    rng = np.random.default_rng(0)
    users = np.sort(rng.choice(train.n_users, size=len(users), replace=False))
    t0 = time.perf_counter()
    res = evaluate(m.score, train, test, ks=(20,), users=users)
    eval_s = time.perf_counter() - t0
    return {
        "model": model, "n_users": train.n_users, "n_items": train.n_items, "nnz": train.nnz,
        "load_s": load_s, "fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "eval_users": int(res.n_users), "eval_s": eval_s,
        "users_per_s": res.n_users / eval_s if eval_s else float("nan"), "ndcg20": res.metrics["NDCG@20"],
        "rss_data_mb": rss_data, "peak_rss_mb": _rss_mb(), "params": params,
    }






def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="cfgan", help="cfgan (the real ML-100K split) or a synthetic size: "
                   "ml-100k, ml-1m, ml-20m")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--epochs", type=int, default=5, help="epochs/iterations timed for torch models and iALS")
    p.add_argument("--eval-users", type=int, default=10_000)
    p.add_argument("--timeout", type=float, default=1200, help="seconds per model")
    p.add_argument("--threads", type=int, default=1, help="OMP/MKL/OpenBLAS/torch threads per model")
    p.add_argument("--json", help="write the rows as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.child:
        import torch

        from gan4rec.errors import Gan4recError

        torch.set_num_threads(args.threads)
        try:
            row = _child(args.child, args.data, args.epochs, args.eval_users)
        except Gan4recError as e:  # a clear refusal (size, memory, bad parameter): one line for the table
            print(json.dumps({"model": args.child, "error": str(e).splitlines()[0]}))
            return 3
        print(json.dumps(row))
        return 0
    if args.data == "cfgan" and not (SHARED / "ML100K.train").is_file():
        print(f"skip: {SHARED} is absent (the CFGAN split lives in ../shared/datasets)")
        return 0

    import torch

    torch.set_num_threads(args.threads)
    ref = matmul_seconds()
    env = {**os.environ, **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                           "OPENBLAS_NUM_THREADS")}}
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    machine = {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": round(memory_gib, 1),
               "threads_per_model": args.threads, "torch": torch.__version__,
               "load_average_start": os.getloadavg()[0]}
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {_cpu_model()}, {os.cpu_count()} cores, {memory_gib:.0f} GiB; "
          f"threads per model: {args.threads}; torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}")
    print(f"reference: 2048^3 float32 matmul {ref * 1e3:.1f} ms ({2 * 2048**3 / ref / 1e9:.0f} GFLOP/s)")
    header = f"{'model':<9} {'users':>7} {'items':>6} {'nnz':>9} {'fit s':>8} {'fit/ref':>8} {'peak MB':>8} " \
             f"{'data MB':>8} {'eval users/s':>12} {'NDCG@20':>8}"
    print(header)
    print("-" * len(header))
    rows: list[dict] = []
    for model in args.models.split(","):
        cmd = [sys.executable, __file__, "--child", model, "--data", args.data, "--epochs", str(args.epochs),
               "--eval-users", str(args.eval_users), "--threads", str(args.threads)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            r = {"model": model, "error": f"did not finish within --timeout {args.timeout:.0f} s"}
        else:
            r = _child_row(model, proc)
        r["wall_s"] = time.perf_counter() - t0
        r["load_average_after"] = os.getloadavg()[0]
        rows.append(r)
        if "error" in r:
            print(f"{model:<9} {r['error']}")
        else:
            r["fit_over_ref"] = r["fit_s"] / ref
            print(f"{model:<9} {r['n_users']:>7} {r['n_items']:>6} {r['nnz']:>9} {r['fit_s']:>8.2f} "
                  f"{r['fit_over_ref']:>8.1f} {r['peak_rss_mb']:>8.0f} {r['rss_data_mb']:>8.0f} "
                  f"{r['users_per_s']:>12.0f} {r['ndcg20']:>8.4f}")
        sys.stdout.flush()
        if args.json:
            from gan4rec.atomic import atomic_write_text

            doc = {"argv": sys.argv, "machine": machine, "reference_s": ref, "rows": rows}
            atomic_write_text(args.json, json.dumps(doc, indent=1))
    print(f"(torch models and iALS: {args.epochs} epochs/iterations; fit/ref = fit time / reference matmul time)")
    return 0


def _child_row(model: str, proc: subprocess.CompletedProcess) -> dict:
    """The child's JSON row, or an ``error`` row saying why it gave none (refusal, crash, signal)."""
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    if last.startswith("{"):
        return json.loads(last)
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        why = " (most likely the out-of-memory killer)" if sig == "SIGKILL" else ""
        return {"model": model, "error": f"killed by {sig}{why}"}
    reason = (proc.stderr.strip().splitlines() or ["?"])[-1]
    return {"model": model, "error": f"failed (exit {proc.returncode}): {reason}"}


if __name__ == "__main__":
    raise SystemExit(main())
