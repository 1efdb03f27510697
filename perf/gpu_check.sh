#!/usr/bin/env bash
# GPU check for a lent device machine (Python 3.12, torch, no recbole, no dask, no ../shared there). Installs nothing
# from the network. Prepare here first:
#   mkdir -p .data && cp -r ../shared/datasets/ml-100k-grouplens/ml-100k .data/      (.data/ is git-ignored)
# then run on the device with carry [".data"] and a timeout of about 540 s (the steps below are capped to fit):
#   bash perf/gpu_check.sh
# It prints, in order: (1) the same trials on CPU and GPU, metrics side by side in units of seed spread;
# (2) the whole ML-100K `run --all` on one GPU with K trials sharing it (--jobs K worker processes), capped in time,
# with its per-protocol trial times; (3) the per-method cost table of issue 18 on the GPU; (4) 4 SASRec seeds
# trained as one batched model (torch.func) against one after another: per-seed metrics and the speed-up.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1 PROMO_BENCH_CACHE="$PWD/.gpu-cache"
K="${K:-4}"
DATA=(--dataset ml-100k --data-dir .data/ml-100k --allow-unverified --no-progress)
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
# entry points need an install; --no-deps --no-build-isolation keeps it offline
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || { echo "pip install -e . failed: the method entry points need it"; exit 1; }
python3 -m benchmark.cli data verify ml-100k --data-dir .data/ml-100k 2>&1 | tail -1 || true

echo "== (1) the same trials on CPU and on GPU (3 seeds, paper budget) =="
SAME=(--method bpr-mf dssm deepmusic heater --protocol loo cold --seeds 3)
timeout 150 python3 -m benchmark.cli run "${SAME[@]}" "${DATA[@]}" --device cpu --jobs 4 --results .gpu-results/cpu 2>&1 | tail -2
timeout 90 python3 -m benchmark.cli run "${SAME[@]}" "${DATA[@]}" --device cuda --jobs "$K" --results .gpu-results/cuda 2>&1 | tail -2
python3 perf/quality_diff.py .gpu-results/cpu .gpu-results/cuda

echo "== (2) run --all on one GPU, $K trials sharing it, at most 150 s (a rerun resumes it) =="
start=$(date +%s)
timeout 150 python3 -m benchmark.cli run --all "${DATA[@]}" --device cuda --jobs "$K" --results .gpu-results/all 2>&1 \
    | grep -E "^(planned|expected|done)" || true
echo "wall s: $(( $(date +%s) - start )); trials stored: $(find .gpu-results/all -name '*.json' -path '*/ml-100k/*' | wc -l) of 180"
python3 perf/run_times.py .gpu-results/all 2>&1 | tail -25

echo "== (3) per-method cost on the GPU (issue 18's table, 1 epoch) =="
timeout 80 python3 perf/bench_methods.py --device cuda --data-dir .data/ml-100k --epochs 1 --protocols loo --threads 4 \
    --methods sasrec promo dropoutnet clcrec heater

echo "== (4) 4 SASRec seeds as one batched model against one after another (2 epochs) =="
timeout 60 python3 perf/batched_seeds.py --device cuda --data-dir .data/ml-100k --seeds 4 --epochs 2 2>&1 \
    | grep -v -i warn | tail -8
