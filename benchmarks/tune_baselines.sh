#!/usr/bin/env bash
# Tune every baseline on the CFGAN ML-100K split with the same Optuna budget (validation only: 20% of
# each user's train items, seed 42), refit on the full train, test once per seed. Writes the tuned
# configs to configs/<model>-ml100k.toml and the results to benchmarks/results/tune-<model>.json.
#
#   bash benchmarks/tune_baselines.sh [TRIALS] [MODEL ...]
set -euo pipefail
cd "$(dirname "$0")/.."
SPLIT=${GAN4REC_SHARED:-../shared}/datasets/cfgan-ml100k
if [ ! -f "$SPLIT/ML100K.train" ]; then
  echo "skip: $SPLIT/ML100K.train is absent (the CFGAN split lives in ../shared/datasets)" >&2
  exit 0
fi
TRIALS=${1:-25}
shift || true
MODELS=${*:-toppop itemknn userknn rp3beta ease slim puresvd ials bpr multvae}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
echo "threads: OMP/MKL/OpenBLAS=1; trials per model: $TRIALS; $(nproc --all) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for m in $MODELS; do
  case $m in bpr|multvae|ials) seeds=5 ;; *) seeds=1 ;; esac
  # Mult-VAE's epochs are capped (early stopping on validation inside) so a trial takes about a minute.
  case $m in multvae) fixed='{"epochs": 100, "eval_every": 5, "patience": 4}' ;; *) fixed='{}' ;; esac
  echo "== $m ($seeds seed(s), fixed params $fixed)"
  /usr/bin/time -f "$m: %e s wall, %M KB peak RSS" gan4rec -q tune --model "$m" --trials "$TRIALS" --seeds "$seeds" \
    --params "$fixed" \
    --train "$SPLIT/ML100K.train" --test "$SPLIT/ML100K.test" --format uir \
    --save-config "configs/$m-ml100k.toml" --json "benchmarks/results/tune-$m.json"
done
