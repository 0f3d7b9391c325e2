"""Speed and memory of the GAN generator: fit on ML-100K, sample 100K users, and an ML-20M-sized catalogue.

    PYTHONPATH=src python benchmarks/synth_speed.py --threads 2 --out benchmarks/results/synth-speed.json

1. Fit the default GAN on ML-100K (all 943 users) with ``--threads`` torch threads; wall and CPU time.
2. Sample 100,000 users from it; wall time.
3. Memory at ML-20M size: a GAN over 26,744 items (ML-20M's catalogue) fitted for a few steps on
   ML-20M-shaped synthetic users, then 100,000 users sampled in chunks; the peak of traced Python/numpy
   allocations during sampling (tracemalloc), against the 10.7 GB a dense 100,000 x 26,744 float32
   matrix would take.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model, load_average

from gan4rec.artifacts import atomic_write_text
from gan4rec.data.datasets import load_dataset
from gan4rec.data.synthetic import make_synthetic
from gan4rec.synth.generators import create_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out: dict[str, object] = {"threads": args.threads, "cpu": cpu_model(), "load_average_before": load_average()}
    data = load_dataset("ml-100k")
    gen = create_generator("gan", {"n_threads": args.threads}, random_state=0)
    t0, c0 = time.perf_counter(), time.process_time()
    gen.fit(data)
    out["ml100k_fit_seconds"] = round(time.perf_counter() - t0, 2)
    # CPU seconds of this process: on a shared, loaded machine the wall time measures the neighbours too;
    # CPU seconds / threads is what the fit needs from free cores.
    out["ml100k_fit_cpu_seconds"] = round(time.process_time() - c0, 2)
    out["gan_params"] = gen.get_params()
    t0, c0 = time.perf_counter(), time.process_time()
    synth = gen.sample(args.users, random_state=1)
    out["ml100k_sample_seconds"] = round(time.perf_counter() - t0, 2)
    out["ml100k_sample_cpu_seconds"] = round(time.process_time() - c0, 2)
    out["ml100k_sample_users"] = synth.n_users
    print(json.dumps(out, indent=1), flush=True)

    big = make_synthetic(2_000, 26_744, 200_000, random_state=0)
    g2 = create_generator("gan", {"n_threads": args.threads, "steps": 3}, random_state=0).fit(big)
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    s2 = g2.sample(args.users, random_state=1)
    out["ml20m_items_sample_seconds"] = round(time.perf_counter() - t0, 2)
    out["ml20m_items_sample_cpu_seconds"] = round(time.process_time() - c0, 2)
    out["ml20m_items_sample_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    out["ml20m_items_dense_matrix_mb"] = round(args.users * 26_744 * 4 / 2**20, 1)
    out["ml20m_items_sample_nnz"] = int(s2.nnz)
    out["load_average_after"] = load_average()
    print(json.dumps(out, indent=1))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
