#!/usr/bin/env bash
# All GPU checks in one short run, for a session that is lent a GPU machine (target: < 8 minutes on an H200).
#
#   1. nvidia-smi and torch's view of the device;
#   2. one CFGAN epoch at ML-20M size (synthetic 138,493 x 26,744, 20M interactions, user-based,
#      resample=batch, batches 512, every user) on cuda in fp32 and in bf16 (benchmarks/cfgan_speed.py);
#   3. the same epoch on the CPU over 5% of the users (all threads), for the per-step ratio;
#   4. evaluator throughput, full ranking at ML-20M size: cuda over all users with a test item, CPU over
#      the first EVAL_CPU_USERS of them (users per second, and the ratio);
#   5. the test suite's CUDA tests: python -m pytest -m "not slow" -k cuda.
#
# Output: everything goes to $OUT/gpu_check.log (and the terminal); cfgan_speed's tables also as JSON in
# $OUT. Without $OUT: benchmarks/results/gpu-check-<UTC time>/. Exits 2 at once, with one line, where no
# CUDA device is usable; otherwise with the number of failed steps (each step runs even if one before failed).
#
# Usage (from the repository root):  bash benchmarks/gpu_check.sh
#   EVAL_CPU_USERS=5000 ML20M_CPU_ROWS=0.02 bash benchmarks/gpu_check.sh   # a shorter CPU reference

set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-benchmarks/results/gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
EVAL_CPU_USERS=${EVAL_CPU_USERS:-10000}
ML20M_CPU_ROWS=${ML20M_CPU_ROWS:-0.05}
THREADS=$(nproc 2>/dev/null || echo 1)

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi missing or failing); run this on a GPU machine" >&2
    exit 2
fi
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: nvidia-smi sees a GPU but torch.cuda.is_available() is False (CPU-only torch build?)" >&2
    exit 2
fi

mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
: >"$LOG"
FAILED=0
START=$SECONDS

step() {  # step NAME CMD...: run CMD, log it with its time and exit status
    local name=$1 t0=$SECONDS rc
    shift
    echo "=== $name: $*" | tee -a "$LOG"
    "$@" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$LOG"
    [ "$rc" -eq 0 ] || FAILED=$((FAILED + 1))
}

step nvidia-smi nvidia-smi
step torch "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'device', torch.cuda.get_device_name(), 'capability', torch.cuda.get_device_capability(), \
'bf16', torch.cuda.is_bf16_supported())"

step cfgan-ml20m-cuda "$PY" benchmarks/cfgan_speed.py --device cuda --precision fp32 --precision bf16 \
    --only ml-20m --ml20m-rows 1 --json "$OUT/cfgan-ml20m-cuda.json"
step cfgan-ml20m-cpu "$PY" benchmarks/cfgan_speed.py --device cpu --threads "$THREADS" \
    --only ml-20m --ml20m-rows "$ML20M_CPU_ROWS" --json "$OUT/cfgan-ml20m-cpu.json"

step evaluator-ml20m "$PY" - "$EVAL_CPU_USERS" "$THREADS" <<'EOF'
"""Full-ranking evaluator throughput at ML-20M size: cuda (all test users) against the CPU (a prefix)."""
import sys
import time

import numpy as np
import torch

from gan4rec.data.split import random_holdout
from gan4rec.data.synthetic import SYNTHETIC_SIZES, make_synthetic
from gan4rec.evaluation.evaluator import evaluate

cpu_users, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
t = time.perf_counter()
data = make_synthetic(*SYNTHETIC_SIZES["ml-20m"], random_state=0)
sp = random_holdout(data, test_frac=0.2, valid_frac=0.2, random_state=42)
users = np.flatnonzero(np.diff(sp.test.indptr) > 0)
print(f"data: {data.n_users} x {data.n_items}, {data.nnz} interactions, {len(users)} test users "
      f"({time.perf_counter() - t:.1f} s)")
gen = torch.Generator().manual_seed(0)
U, V = torch.randn(data.n_users, 64, generator=gen), torch.randn(data.n_items, 64, generator=gen)  # MF-like scores
rates = {}
for device, subset in (("cuda", users), ("cpu", users[:cpu_users])):
    u, v = U.to(device), V.to(device)

    def score(batch: np.ndarray) -> torch.Tensor:
        return u[torch.as_tensor(batch, device=device)] @ v.T  # (b, n_items) on the device

    evaluate(score, sp.train, sp.test, ks=(10,), users=subset[:2048], exclude=sp.valid, device=device)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    res = evaluate(score, sp.train, sp.test, ks=(5, 10, 20), users=subset, exclude=sp.valid, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    rates[device] = len(subset) / wall
    print(f"{device}: {len(subset)} users x {data.n_items} items in {wall:.2f} s = {rates[device]:,.0f} users/s "
          f"(NDCG@10 {res.metrics['NDCG@10']:.4f}, {threads} CPU threads)")
print(f"cuda / cpu throughput: {rates['cuda'] / rates['cpu']:.1f}x")
EOF

step pytest-cuda "$PY" -m pytest -q -m "not slow" -k cuda -p no:cacheprovider

echo "gpu_check: $FAILED step(s) failed; total $((SECONDS - START)) s; log in $LOG" | tee -a "$LOG"
exit "$FAILED"
