#!/usr/bin/env bash
# The GPU part of the image benchmark in one command, for a lent GPU machine (device tool):
#   mkdir -p .data && cp ../shared/data/cifar10/cifar10-jpeg75.tar.gz .data/   # git-ignored
#   run: bash benchmarks/gpu_image.sh   (carry: .data; timeout_s 600)
# Runs every method of benchmarks/image.py under the `fast` protocol, seed 0, with the 15
# corruptions, stopping new cells after $BUDGET seconds (default 540) so the whole command fits
# 10 minutes; finished cells are in $OUT/raw/cifar10-fast/ (copy them to docs/results/raw/ and
# rebuild the page with `python benchmarks/image.py --settings=none`). Run it again to fill the
# cells left over. Runs the project from src/ (no install).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT="${OUT:-runs/gpu}"
BUDGET="${BUDGET:-540}"
mkdir -p "$OUT/raw"
cp -r docs/results/raw/cifar10-fast "$OUT/raw/" 2>/dev/null || true
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
start=$(date +%s)
timeout --signal=KILL "$BUDGET" python3 benchmarks/image.py --settings=cifar10-fast --seeds=0 \
  --cifar=.data/cifar10-jpeg75.tar.gz --runs_dir=/tmp/uqbench-runs --raw_dir="$OUT/raw" \
  --output="$OUT/image.md" 2>&1 | tee "$OUT/image.log" || echo "stopped after ${BUDGET}s"
echo "wall: $(( $(date +%s) - start ))s; cells: $(ls "$OUT"/raw/cifar10-fast | wc -l)" | tee -a "$OUT/image.log"
