"""End to end at MovieLens-20M size: generate, save, load, split, one CFGAN epoch, full-ranking evaluation.

One process runs the stages in order on synthetic data of ML-20M's size (138,493 users x 26,744 items,
20,000,263 interactions; :data:`gan4rec.data.synthetic.SYNTHETIC_SIZES`):

1. ``generate``: :func:`~gan4rec.data.synthetic.make_synthetic` (seed 0).
2. ``save-parquet``: :func:`~gan4rec.data.io.write_interactions` to a Parquet file (user, item, rating,
   timestamp).
3. ``load-parquet``: :func:`~gan4rec.data.io.read_interactions` of that file (the generated data is
   dropped first, so the load starts from the file alone).
4. ``split``: the default protocol's split (:class:`gan4rec.experiment.Protocol`): per-user random holdout,
   20% test, 20% of the rest for validation, seed 42.
5. ``train``: one epoch of CFGAN, user-based (rows are users), ``resample="batch"`` (the PM/ZR masks are
   drawn per mini-batch from CSR, so no dense users x items matrix is held), mini-batches of 512 rows and
   one D and one G pass: the ML-20M settings of ``benchmarks/cfgan_speed.py``, run over every user.
6. ``evaluate``: :func:`~gan4rec.evaluation.evaluator.evaluate` of that model on the test part, full
   ranking over all items for every user with a test item, train and validation items excluded,
   NDCG/Recall/... at 5, 10, 20.

With ``--csv`` two more stages write the same data as CSV and read it back (the text reader's cost).

Per-stage peak RSS: before each stage the process resets its peak-RSS counter (``VmHWM``) by writing
``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0, allowed on one's own process); the stage's peak is
``VmHWM`` read right after it, so it includes whatever earlier stages left alive (the loaded data stays
alive through training, as in a real run). The overall peak is the largest stage peak. Where the reset is
refused, the column shows the process's peak so far (``ru_maxrss``) and the table says so.

Each stage also reports its process CPU time (all threads) and the load average before and after: on a
shared machine the wall time of a stage grows with the other processes' load, its CPU time much less.

The reference is the best rate of a 2048^3 float32 ``torch.mm`` measured in the same process with the same
threads; each stage's wall time is also given as a multiple of that matmul's time, to compare machines.

Usage::

    nice -n 10 python benchmarks/scale_ml20m.py                  # full size, 2 threads, writes the JSON
    nice -n 10 python benchmarks/scale_ml20m.py --scale 0.1      # a tenth of the users and interactions
    nice -n 10 python benchmarks/scale_ml20m.py --csv --json /tmp/x.json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model as _cpu_model
from _machine import load_average as _load
from _machine import matmul_seconds
from cfgan_speed import ML20M_PARAMS

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "scale-ml20m.json"
PAPER_CONFIG = ROOT / "configs" / "cfgan-ml100k-paper.toml"
# The ML-20M-size settings of benchmarks/cfgan_speed.py, on top of the paper configuration.
CFGAN_ML20M = {**ML20M_PARAMS, "epochs": 1, "device": "cpu"}
GIB = 2**30


# ------------------------------------------------------------------------------------------- machine






# ------------------------------------------------------------------------------------------- memory
def _status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or ``None`` off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports kB


def _reset_peak() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class Stages:
    """Times each stage and records its peak RSS (see the module docstring for how)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.per_stage_peaks = True

    @contextlib.contextmanager
    def stage(self, name: str, note: str = "") -> Iterator[dict[str, Any]]:
        gc.collect()
        reset = _reset_peak()
        self.per_stage_peaks &= reset
        rss_before = _status_kb("VmRSS")
        row: dict[str, Any] = {"stage": name, "note": note, "load_before": _load()}
        print(f"[{name}] ...", flush=True)
        t, cpu = time.perf_counter(), time.process_time()
        yield row
        row["wall_s"] = round(time.perf_counter() - t, 2)
        row["cpu_s"] = round(time.process_time() - cpu, 2)
        hwm = _status_kb("VmHWM") if reset else None
        row["peak_rss_gb"] = round((hwm * 1024 if hwm is not None else _maxrss_bytes()) / GIB, 3)
        row["rss_before_gb"] = None if rss_before is None else round(rss_before * 1024 / GIB, 3)
        rss_after = _status_kb("VmRSS")
        row["rss_after_gb"] = None if rss_after is None else round(rss_after * 1024 / GIB, 3)
        row["load_after"] = _load()
        self.rows.append(row)
        print(
            f"[{name}] {row['wall_s']:.1f} s (CPU {row['cpu_s']:.1f} s), peak RSS {row['peak_rss_gb']:.2f} GB "
            f"(before {row['rss_before_gb']} GB, after {row['rss_after_gb']} GB) {note}",
            flush=True,
        )


# ------------------------------------------------------------------------------------------- stages
def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from gan4rec.config import load_config
    from gan4rec.data.io import read_interactions, write_interactions
    from gan4rec.data.split import random_holdout
    from gan4rec.data.synthetic import SYNTHETIC_SIZES, make_synthetic
    from gan4rec.evaluation.evaluator import evaluate
    from gan4rec.experiment import Protocol
    from gan4rec.models import create

    full_users, n_items, full_nnz = SYNTHETIC_SIZES["ml-20m"]
    n_users = max(1, round(full_users * args.scale))
    nnz = round(full_nnz * args.scale)
    st = Stages()
    info: dict[str, Any] = {"n_users": n_users, "n_items": n_items, "n_interactions": nnz}

    with st.stage("generate", f"{n_users} x {n_items}, {nnz} interactions, seed 0") as row:
        data = make_synthetic(n_users, n_items, nnz, random_state=0)
    parquet = workdir / "ml20m-like.parquet"
    with st.stage("save-parquet") as row:
        write_interactions(data, parquet)
        row["note"] = f"{parquet.stat().st_size / 2**20:.0f} MiB"
    if args.csv:
        csv = workdir / "ml20m-like.csv"
        with st.stage("save-csv") as row:
            write_interactions(data, csv)
            row["note"] = f"{csv.stat().st_size / 2**20:.0f} MiB"
    del data
    if args.csv:
        with st.stage("load-csv") as row:
            from_csv = read_interactions(csv)
            row["note"] = f"{from_csv.n_users} x {from_csv.n_items}, {from_csv.nnz} interactions"
        del from_csv
        csv.unlink()
    with st.stage("load-parquet") as row:
        data = read_interactions(parquet)
        row["note"] = f"{data.n_users} x {data.n_items}, {data.nnz} interactions"
    info.update({"loaded_users": data.n_users, "loaded_items": data.n_items, "loaded_nnz": data.nnz})
    parquet.unlink()

    proto = Protocol()
    with st.stage("split") as row:
        split = random_holdout(
            data, test_frac=proto.test_frac, valid_frac=proto.valid_frac, random_state=proto.split_seed
        )
        assert split.valid is not None and split.test is not None
        row["note"] = (
            f"random holdout test {proto.test_frac}, valid {proto.valid_frac}, seed {proto.split_seed}: "
            f"{split.train.nnz} / {split.valid.nnz} / {split.test.nnz}"
        )
    del data

    params = dict(load_config(PAPER_CONFIG)["params"])
    params.update(CFGAN_ML20M)
    params["n_threads"] = args.threads
    model = create("cfgan", params, random_state=0)
    with st.stage("train", "CFGAN 1 epoch, user-based, resample=batch, batches 512, 1 D + 1 G pass") as row:
        model.fit(split.train)
    info["cfgan_params"] = params

    with st.stage("evaluate") as row:
        res = evaluate(
            model.score, split.train, split.test, ks=(5, 10, 20), exclude=split.valid,
            batch_size=args.eval_batch,
        )
        row["note"] = (
            f"{res.n_users} users x {split.train.n_items} items, full ranking, train+valid excluded, "
            f"batch {args.eval_batch}; NDCG@20 {res.metrics['NDCG@20']:.4f}"
        )
        row["users_per_s"] = round(res.n_users / max(res.seconds, 1e-9), 1)
    info["eval_users"] = res.n_users
    info["metrics"] = {k: round(v, 6) for k, v in res.metrics.items()}
    return {"info": info, "stages": st.rows, "per_stage_peaks": st.per_stage_peaks}


# ------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0,
                   help="share of ML-20M's users and interactions (the 26,744 items are kept); default 1")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--eval-batch", type=int, default=1024, help="users per evaluation batch (default 1024)")
    p.add_argument("--csv", action="store_true", help="also write and read the data as CSV")
    p.add_argument("--workdir", help="folder for the data files (default: a temporary folder)")
    p.add_argument("--json", help=f"write the results here (default at --scale 1: {DEFAULT_JSON.relative_to(ROOT)})")
    args = p.parse_args(argv)
    if not 0 < args.scale <= 1:
        p.error(f"--scale {args.scale}; expected a share in (0, 1]")
    torch.set_num_threads(args.threads)
    ref = matmul_seconds()
    command = " ".join(["python", "benchmarks/scale_ml20m.py", *(argv if argv is not None else sys.argv[1:])])
    machine = {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    print(f"command: {command}")
    print(
        f"machine: {machine['cpu']}; {machine['logical_cpus']} logical CPUs, {machine['memory_gb']} GiB; "
        f"torch {machine['torch']}, {machine['torch_threads']} thread(s); load {_load()}"
    )
    print(f"reference: 2048^3 float32 torch.mm {ref * 1e3:.1f} ms ({2 * 2048**3 / ref / 1e9:.1f} GFLOP/s)")

    t = time.perf_counter()
    with contextlib.ExitStack() as stack:
        workdir = Path(args.workdir) if args.workdir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        out = run(args, workdir)
    total = time.perf_counter() - t
    # Resetting VmHWM also resets ru_maxrss (both read the kernel's high-water mark): the overall peak is
    # then the largest stage peak (the setup before the first stage holds far less).
    peak = max(r["peak_rss_gb"] for r in out["stages"]) if out["per_stage_peaks"] else _maxrss_bytes() / GIB
    for row in out["stages"]:
        row["wall_over_ref"] = round(row["wall_s"] / ref, 1)

    how = (
        "VmHWM after a reset through /proc/self/clear_refs"
        if out["per_stage_peaks"]
        else "ru_maxrss so far (the VmHWM reset was refused)"
    )
    print()
    print(f"command: {command}")
    print(f"machine: {machine['cpu']}, {machine['logical_cpus']} CPUs, torch threads {machine['torch_threads']}")
    print(f"reference: torch.mm 2048^3 {ref * 1e3:.1f} ms; stage peak RSS = {how}")
    print("| stage | wall s | CPU s | wall / ref | peak RSS GB | RSS after GB | load before -> after | note |")
    print("|---|---|---|---|---|---|---|---|")
    for r in out["stages"]:
        print(
            f"| {r['stage']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['wall_over_ref']:.0f} | "
            f"{r['peak_rss_gb']:.2f} | {r['rss_after_gb']} | {r['load_before']} -> {r['load_after']} | "
            f"{r['note']} |"
        )
    print(f"| total | {total:.1f} |  | {total / ref:.0f} | {peak:.2f} |  |  | overall peak RSS |")

    target = Path(args.json) if args.json else (DEFAULT_JSON if args.scale == 1 else None)
    if target is not None:
        from gan4rec.atomic import atomic_write_text

        doc = {
            "command": command,
            "machine": machine,
            "reference": {"what": "best of 5 float32 torch.mm 2048^3", "seconds": round(ref, 5),
                          "gflops": round(2 * 2048**3 / ref / 1e9, 1)},
            "peak_rss_method": how,
            "total_s": round(total, 1),
            "peak_rss_gb": round(peak, 3),
            **out,
        }
        atomic_write_text(target, json.dumps(doc, indent=2) + "\n")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
