"""CFGAN training speed: the paper configuration on ML-100K, and one epoch at ML-1M and ML-20M sizes.

Three runs, each timed around ``fit`` (data loading and evaluation excluded), without any evaluation
during training:

- ``paper``: ``configs/cfgan-ml100k-paper.toml`` on the CFGAN ML-100K split (item-based ZP, 250 epochs =
  the original's 1000, 65,000 optimiser steps), fitted on the whole train as the replica does; test
  NDCG@20 is printed afterwards as a check that the run is a real one. Skipped with a message when
  ``../shared/datasets/cfgan-ml100k`` is absent.
- ``ml-1m``: one epoch of the same configuration on synthetic data of ML-1M's size (6,040 x 3,706, 1M
  interactions); the per-epoch masks still fit in memory.
- ``ml-20m``: one epoch on synthetic data of ML-20M's size (138,493 x 26,744, 20M interactions), user-based
  (rows are users), ``resample="batch"``: the dense rows x columns masks (15 GB) do not fit, so rows are
  densified per mini-batch from CSR. Mini-batches of 512 rows and one D and one G pass. By default the
  epoch runs over a random 5% of the users (every item kept, so every step has the full ML-20M width;
  ``--ml20m-rows 1`` runs the full epoch, about 20x longer).

For each run the table gives the wall time, the optimiser steps, ms per step, the FLOPs the steps
execute (matrix products ``2 m n k``; the sparse first layers as one add per gathered weight entry;
elementwise work and Adam not counted) and the achieved GFLOP/s next to the rate of a large dense
``torch.mm`` measured in the same process with the same threads. The ratio is given for the whole ``fit``
and for its epochs alone (the training loop's per-epoch times, without the one-time setup: weight
initialisation, CSR layouts, optimiser state), which matters for the one-epoch runs.

On a GPU, ``--device cuda`` trains there (``--precision bf16`` runs the training products in bfloat16;
give ``--precision`` twice to time both on the same data); the ceiling is then a large product on the
GPU in the run's precision (``8192^3``, TF32 off as in training), and the runs are timed after a
``torch.cuda.synchronize()``.

Usage::

    python benchmarks/cfgan_speed.py                  # 1 torch thread, all three runs
    python benchmarks/cfgan_speed.py --device cuda --precision fp32 --precision bf16 --only ml-20m --ml20m-rows 1
    python benchmarks/cfgan_speed.py --threads 2      # both cores (on an otherwise idle machine)
    python benchmarks/cfgan_speed.py --only paper --repeats 3 --json benchmarks/results/cfgan-speed.json
    python benchmarks/cfgan_speed.py --only paper --threads 2 --profile-epochs 10   # where the time goes

``--profile-epochs N`` adds a paper run of N epochs (and a second one-epoch run at each synthetic size)
under ``torch.profiler``: the self times of its ops, summed by kind (matrix products, Adam, sparse
gathers, other ops, time outside torch ops) and projected to the full run. Products plus Adam alone are
a floor for any run built on the same torch kernels.

Measure on a quiet machine: the script prints the load average before and after each run. With
``--threads 2`` training and the ``torch.mm`` ceiling both run torch's kernels on two intra-op threads.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model as _cpu_model
from _machine import load_average as _load
from _machine import matmul_seconds

#: CFGAN at the ML-20M-like size, over the paper configuration: user rows, masks drawn per mini-batch from
#: CSR (the dense rows x columns masks would not fit), mini-batches of 512, one D and one G pass.
ML20M_PARAMS: dict[str, Any] = {
    "mode": "user",
    "resample": "batch",
    "g_batch_size": 512,
    "d_batch_size": 512,
    "g_steps": 1,
    "d_steps": 1,
}

SHARED = Path(os.environ.get("GAN4REC_SHARED", ROOT.parent / "shared")) / "datasets"
PAPER_CONFIG = ROOT / "configs" / "cfgan-ml100k-paper.toml"






_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(n: int = 2048, repeats: int = 5, device: str = "cpu", precision: str = "fp32") -> float:
    """Best rate of a dense ``n x n`` product (float32 or bfloat16) with the current torch threads."""
    return 2 * n**3 / matmul_seconds(n, repeats, device, _DTYPES[precision]) / 1e9


def _layer_sizes(model: Any, n_cols: int) -> tuple[list[int], list[int]]:
    g = model._layers(model.g_hidden, "g_hidden") + [n_cols]
    d = model._layers(model.d_hidden, "d_hidden") + [1]
    return g, d


def epoch_flops(model: Any, n_train_rows: int, nnz: int, n_rows: int, n_cols: int, *, cached: bool) -> float:
    """FLOPs the matrix products and sparse gathers of one epoch execute (see the module docstring).

    Every term of a step is linear in its rows ``B`` or entries ``nnz_B``, so a pass costs the same
    expressions with the pass totals (``n_train_rows`` rows, ``nnz`` entries).
    """
    g, d = _layer_sizes(model, n_cols)
    n, e = float(n_train_rows), float(nnz)

    def dense(sizes: list[int], rows: float) -> float:  # layers above the first, forward
        return sum(2 * rows * a * b for a, b in itertools.pairwise(sizes))

    g_fwd = e * g[0] + dense(g, n)
    d_first_fake = 2 * n * n_cols * d[0]
    # G step: G forward, D forward on the fake, D backward to its input, G backward (weights and inputs).
    g_step = (
        g_fwd
        + e * d[0]
        + d_first_fake
        + dense(d, n)  # forwards
        + dense(d, n)
        + d_first_fake  # D input gradients
        + 2 * dense(g, n)
        + e * g[0]
    )  # G weight and input gradients, sparse first-layer gradient
    # D step: condition and real gathers, fake product, upper layers on 2B rows, their backward, and the
    # first layer's gradients (two sparse, one dense).
    d_step = 2 * e * d[0] + d_first_fake + dense(d, 2 * n) + 2 * dense(d, 2 * n) + 2 * e * d[0] + d_first_fake
    d_step += 0.0 if cached else g_fwd
    total = int(model.g_steps) * g_step + int(model.d_steps) * d_step
    if cached and int(model.d_steps):
        total += n_rows / max(n, 1.0) * g_fwd  # G(c) of all rows once per epoch
    return total


def _steps(model: Any, n_train_rows: int) -> int:
    g = -(-n_train_rows // int(model.g_batch_size)) * int(model.g_steps)
    d = -(-n_train_rows // int(model.d_batch_size)) * int(model.d_steps)
    return g + d


def run_one(label: str, model: Any, train: Any, *, epochs: int, ceiling: float, note: str) -> dict[str, Any]:
    load_before = _load()
    _sync(model.device)
    t = time.perf_counter()
    model.fit(train)
    _sync(model.device)
    wall = time.perf_counter() - t
    n_rows, n_cols = model._dims(train.n_users, train.n_items)
    degree = np.diff(model._row_csr(train)[0])
    n_train_rows = int((degree > 0).sum())
    cached = (
        model.resample == "epoch" and n_rows * n_cols * 4 <= model.dense_limit_bytes and not model.noise_dim
    )
    flops = epochs * epoch_flops(model, n_train_rows, train.nnz, n_rows, n_cols, cached=cached)
    steps = epochs * _steps(model, n_train_rows)
    # The training loop's own epoch times: the fit minus its one-time setup (weight init, CSR layouts,
    # optimiser state), which a one-epoch run does not amortise.
    epoch_s = float(sum(h["seconds"] for h in model.history_))
    row = {
        "run": label,
        "device": model.device,
        "precision": model.precision,
        "note": note,
        "rows": n_rows,
        "cols": n_cols,
        "train_rows": n_train_rows,
        "nnz": train.nnz,
        "epochs": epochs,
        "steps": steps,
        "wall_s": round(wall, 3),
        "ms_per_step": round(1e3 * wall / steps, 4),
        "gflop": round(flops / 1e9, 1),
        "gflops": round(flops / wall / 1e9, 2),
        "ceiling_gflops": round(ceiling, 1),
        "ratio": round(flops / wall / 1e9 / ceiling, 3),
        "epoch_s": round(epoch_s, 3),
        "setup_s": round(wall - epoch_s, 3),
        "ratio_epochs": round(flops / epoch_s / 1e9 / ceiling, 3),
        "load_before": load_before,
        "load_after": _load(),
    }
    return row


def _paper(args: argparse.Namespace, ceilings: dict[str, float]) -> list[dict[str, Any]]:
    from gan4rec.config import load_config
    from gan4rec.data.io import read_uir_pair
    from gan4rec.evaluation.evaluator import evaluate
    from gan4rec.models import create

    train_path, test_path = SHARED / "cfgan-ml100k" / "ML100K.train", SHARED / "cfgan-ml100k" / "ML100K.test"
    if not (train_path.is_file() and test_path.is_file()):
        print(f"paper: skipped ({train_path.parent} is absent)")
        return []
    train, test = read_uir_pair(train_path, test_path, format="uir")
    params = dict(load_config(PAPER_CONFIG)["params"])
    params.update({"n_threads": args.threads, "device": args.device})
    rows = []
    for precision, r in itertools.product(args.precision, range(args.repeats)):
        model = create("cfgan", {**params, "precision": precision}, random_state=r)
        row = run_one(
            "paper",
            model,
            train,
            epochs=int(params["epochs"]),
            ceiling=ceilings[precision],
            note="configs/cfgan-ml100k-paper.toml, ML-100K CFGAN split",
        )
        row["test_ndcg20"] = round(float(evaluate(model.score, train, test, ks=(20,)).metrics["NDCG@20"]), 4)
        row["seed"] = r
        rows.append(row)
        _print_row(row)
    if args.profile_epochs:
        for precision in args.precision:
            model = create("cfgan", {**params, "precision": precision, "epochs": args.profile_epochs}, random_state=0)
            rows.append(_kernel_times("paper", model, train, int(params["epochs"])))
    return rows


_PRODUCTS, _ADAM = "matrix products", "Adam (one fused kernel per player)"
#: torch.profiler op names by what they do in a CFGAN step
_KINDS = {
    _PRODUCTS: ("aten::mm", "aten::addmm", "aten::addmm_"),
    _ADAM: ("aten::_fused_adam_",),
    "sparse first-layer gathers": ("aten::_embedding_bag_forward_only", "aten::_embedding_bag", "aten::embedding_bag"),
}


def _kernel_times(label: str, model: Any, train: Any, epochs: int) -> dict[str, Any]:
    """Where a run's time goes: ``model.epochs`` epochs under ``torch.profiler``, projected to ``epochs``.

    Each op's self time (the kernel, without its children) is summed by kind; "outside torch ops" is the
    wall time minus all self times (Python, the loop, the profiler's own overhead). The products plus
    Adam, projected, bound from below any run that executes the same products and Adam update with
    torch's kernels, whatever it does around them.
    """
    from torch.profiler import ProfilerActivity, profile

    n = int(model.epochs)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        model.fit(train)
        wall = time.perf_counter() - t
    self_s: dict[str, float] = {}
    for e in prof.key_averages():
        self_s[e.key] = self_s.get(e.key, 0.0) + e.self_cpu_time_total / 1e6
    kinds = {k: sum(self_s.get(op, 0.0) for op in ops) for k, ops in _KINDS.items()}
    kinds["other torch ops"] = sum(self_s.values()) - sum(kinds.values())
    # The one-time setup of fit (weight init, layouts; mostly outside torch ops) is not projected.
    setup = wall - float(sum(h["seconds"] for h in model.history_))
    kinds["outside torch ops"] = wall - setup - sum(self_s.values())
    scale = epochs / n
    row = {
        "run": f"{label}-profile",
        "note": f"{n} epochs under torch.profiler, projected to {epochs}",
        "profiled_epochs": n,
        "wall_s": round(wall, 3),
        "setup_s": round(setup, 3),
        "projected_s": {k: v * scale for k, v in kinds.items()},
        "floor_s": (kinds[_PRODUCTS] + kinds[_ADAM]) * scale,
        "top_ops_s": {k: round(v, 4) for k, v in sorted(self_s.items(), key=lambda kv: -kv[1])[:12]},
    }
    total = sum(row["projected_s"].values())
    print(f"  {label}, {n} epochs under torch.profiler: {wall:.2f} s (setup {setup:.2f} s, not projected); "
          f"the epochs projected to {epochs}: {total:.1f} s")
    for k, v in row["projected_s"].items():
        print(f"    {k}: {v:.1f} s ({v / total:.0%})")
    print(f"    products + Adam alone: {row['floor_s']:.1f} s (a floor for any run on these kernels)")
    return row


def _synthetic(args: argparse.Namespace, ceilings: dict[str, float], size: str) -> list[dict[str, Any]]:
    from gan4rec.config import load_config
    from gan4rec.data.synthetic import SYNTHETIC_SIZES, make_synthetic
    from gan4rec.models import create

    n_users, n_items, n_inter = SYNTHETIC_SIZES[size]
    t = time.perf_counter()
    data = make_synthetic(n_users, n_items, n_inter, random_state=0)
    params = dict(load_config(PAPER_CONFIG)["params"])
    params.update({"n_threads": args.threads, "device": args.device, "epochs": 1})
    note = "paper configuration, item-based"
    if size == "ml-20m":
        share = float(args.ml20m_rows)
        if share < 1.0:
            from gan4rec.data.idmap import IdMap
            from gan4rec.data.interactions import Interactions

            # A random share of the users, re-indexed: fewer rows, the full ML-20M width.
            keep = np.flatnonzero(np.random.default_rng(0).random(n_users) < share)
            new_id = np.full(n_users, -1, dtype=np.int64)
            new_id[keep] = np.arange(len(keep))
            users = new_id[data.user_index()]
            entries = users >= 0
            data = Interactions.from_indices(
                users[entries], np.asarray(data.indices)[entries], IdMap(keep), data.item_map
            )
        params.update(ML20M_PARAMS)
        note = (
            f"user-based, resample=batch, batches 512, 1 D + 1 G pass, "
            f"{'all' if share >= 1 else f'{share:.1%} of the'} users"
        )
    print(
        f"{size}: {data.n_users} x {data.n_items}, {data.nnz} interactions "
        f"(made in {time.perf_counter() - t:.1f} s)"
    )
    rows = []
    for precision in args.precision:
        model = create("cfgan", {**params, "precision": precision}, random_state=0)
        rows.append(run_one(size, model, data, epochs=1, ceiling=ceilings[precision], note=note))
        _print_row(rows[-1])
        if args.profile_epochs:
            model = create("cfgan", {**params, "precision": precision}, random_state=0)
            rows.append(_kernel_times(size, model, data, 1))
    return rows


def _print_row(row: dict[str, Any]) -> None:
    extra = f", test NDCG@20 {row['test_ndcg20']}" if "test_ndcg20" in row else ""
    print(
        f"  {row['run']} ({row['device']}, {row['precision']}): {row['wall_s']:.1f} s, {row['steps']} steps, {row['ms_per_step']:.3f} ms/step, "
        f"{row['gflops']:.1f} GFLOP/s = {row['ratio']:.0%} of {row['ceiling_gflops']:.0f} "
        f"(epochs alone {row['epoch_s']:.1f} s = {row['ratio_epochs']:.0%}, setup {row['setup_s']:.2f} s); "
        f"load {row['load_before']} -> {row['load_after']}{extra}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads for training and the ceiling (default 1)"
    )
    p.add_argument("--repeats", type=int, default=1, help="paper runs (seeds 0..N-1); report the best")
    p.add_argument("--only", choices=["paper", "ml-1m", "ml-20m"], action="append", help="run only these")
    p.add_argument(
        "--profile-epochs",
        type=int,
        default=0,
        help="also profile this many paper epochs (and one epoch per synthetic size) by op kind (default off)",
    )
    p.add_argument("--ml20m-rows", type=float, default=0.05, help="share of users in the ML-20M-size epoch")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where CFGAN trains (default cpu)")
    p.add_argument(
        "--precision", choices=["fp32", "bf16"], action="append", help="training precision (repeatable; fp32)"
    )
    p.add_argument("--json", help="write the rows as JSON")
    args = p.parse_args(argv)
    args.precision = list(dict.fromkeys(args.precision or ["fp32"]))
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    if args.device == "cpu" and "bf16" in args.precision:
        print("error: --precision bf16 runs on --device cuda only (CFGAN refuses bf16 on the CPU)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    n_ceiling = 8192 if args.device == "cuda" else 2048
    ceilings = {pr: matmul_gflops(n_ceiling, device=args.device, precision=pr) for pr in args.precision}
    small = _small_gemm_gflops(device=args.device)
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else None
    print(
        f"machine: {_cpu_model()}; {os.cpu_count()} logical CPUs; torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); numpy {np.__version__}; load {_load()}"
        + (f"; GPU {gpu}" if gpu else "")
    )
    print(
        f"torch.mm ceiling on {args.device}: "
        + ", ".join(f"{pr} {g:.1f} GFLOP/s" for pr, g in ceilings.items())
        + f" ({n_ceiling}^3); a G-step-sized fp32 product (32x400x943): {small:.1f} GFLOP/s"
    )
    only = set(args.only or ["paper", "ml-1m", "ml-20m"])
    rows: list[dict[str, Any]] = []
    if "paper" in only:
        rows += _paper(args, ceilings)
    for size in ("ml-1m", "ml-20m"):
        if size in only:
            rows += _synthetic(args, ceilings, size)
    print()
    print(
        "| run | device | precision | setting | rows x cols | steps | wall s | ms/step | GFLOP | GFLOP/s "
        "| mm GFLOP/s | ratio | epochs alone s | ratio, epochs alone |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["run"].endswith("-profile"):
            continue
        print(
            f"| {r['run']} | {r['device']} | {r['precision']} | {r['note']} | {r['rows']} x {r['cols']} | "
            f"{r['steps']} | {r['wall_s']:.1f} | "
            f"{r['ms_per_step']:.3f} | {r['gflop']:.0f} | {r['gflops']:.1f} | {r['ceiling_gflops']:.0f} | "
            f"{r['ratio']:.0%} | {r['epoch_s']:.1f} | {r['ratio_epochs']:.0%} |"
        )
    if args.json:
        from gan4rec.atomic import atomic_write_text

        doc = {
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "machine": {
                "cpu": _cpu_model(),
                "logical_cpus": os.cpu_count(),
                "torch_threads": args.threads,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "gpu": gpu,
            },
            "device": args.device,
            "matmul_gflops": {pr: round(g, 1) for pr, g in ceilings.items()},
            "small_gemm_gflops": round(small, 1),
            "runs": rows,
        }
        atomic_write_text(args.json, json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _small_gemm_gflops(repeats: int = 200, device: str = "cpu") -> float:
    a, b = torch.randn(32, 400, device=device), torch.randn(400, 943, device=device)
    out = torch.empty(32, 943, device=device)
    for _ in range(10):
        torch.mm(a, b, out=out)
    _sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b, out=out)
    _sync(device)
    return 2 * 32 * 400 * 943 * repeats / (time.perf_counter() - t) / 1e9


if __name__ == "__main__":
    sys.exit(main())
