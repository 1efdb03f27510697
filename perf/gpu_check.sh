#!/usr/bin/env bash
# GPU check for a lent device machine (Python 3.12, torch, no recbole, no ../shared there).
# Prepare here first:  mkdir -p .data && cp -r ../shared/datasets/ml-100k-grouplens/ml-100k .data/
# (.data/ is git-ignored), then run this script on the device with carry [".data"]. Installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
# entry points need an install; --no-deps --no-build-isolation keeps it offline
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || { echo "pip install -e . failed: the method entry points need it"; exit 1; }
# per-method cost (issue 18's table) on the GPU: seconds per epoch, trial, backbone, start-up, peak RSS
python3 perf/bench_methods.py --device cuda --data-dir .data/ml-100k --epochs 1 --protocols loo cold --threads 4 \
    --methods sasrec promo ppr dropoutnet heater gar bpr-mf dcn clcrec
python3 perf/bench_skeleton.py --device cuda --data-dir .data/ml-100k
python3 perf/bench_promo.py --device cuda --data-dir .data/ml-100k
python3 perf/bench_skeleton.py --device cpu --data-dir .data/ml-100k --methods bpr-mf dssm
# cold protocol: per-method training rows/s and full-ranking evaluation users/s (GPU, then the CPU reference)
python3 perf/bench_cold.py --device cuda --data-dir .data/ml-100k
python3 perf/bench_cold.py --device cpu --data-dir .data/ml-100k --methods bpr-mf deepmusic aldi
# warmup protocol: fit and stage-loop time per method (GPU, then the CPU reference)
python3 perf/bench_warmup.py --device cuda --data-dir .data/ml-100k
python3 perf/bench_warmup.py --device cpu --data-dir .data/ml-100k --methods deepfm cvar
