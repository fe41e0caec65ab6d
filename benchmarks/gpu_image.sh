#!/usr/bin/env bash
# The GPU part of the image benchmark in one command, for a lent GPU machine (device tool):
#   mkdir -p .data && cp ../shared/data/cifar10/cifar10-jpeg75.tar.gz .data/   # git-ignored
#   run: bash benchmarks/gpu_image.sh   (carry: .data)
# Runs the project from src/ (no install), writes logs and results to $OUT (or ./runs/gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT="${OUT:-runs/gpu}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 benchmarks/image_speed.py --device=cuda --model=wrn28_10 --compile --epochs=3 \
  --images=20480 2>&1 | tee "$OUT/speed.txt"
python3 benchmarks/image.py --cifar=.data/cifar10-jpeg75.tar.gz --device=cuda --seeds=1 \
  --runs_dir=/tmp/uqbench-runs --output="$OUT/image.md" 2>&1 | tee "$OUT/image.log"
