#!/usr/bin/env bash
# The GPU figures in one call of a lent GPU machine (see bench/gpu.py): what travels is the checkout plus .gpu/
# (the CIFAR-10 JPEGs packed into one file by ../shared/tools/jpegpack.py, that tool, and the wheels the machine
# lacks: pydantic, albumentations and their needs). Results go to $OUT (gpu.json, gpu.md, logs.tar.gz).
#   bash bench/gpu_run.sh SECONDS [bench/gpu.py arguments...]
set -u
budget=${1:-480}; shift || true
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
started=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 RFCALC_CACHE=/tmp/rfcache NO_ALBUMENTATIONS_UPDATE=1
[ -d /tmp/cifar ] || python3 .gpu/jpegpack.py unpack .gpu/cifar10.bin /tmp/cifar >/dev/null || exit 1
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -c "import rfcalc.trainer.data as d; d.load_data('/tmp/cifar')" 2>&1 | tail -2   # decode once into the cache
echo "setup: $(( $(date +%s) - started )) s"
left=$(( budget - ($(date +%s) - started) - 15 ))
timeout "$left" python3 bench/gpu.py --data /tmp/cifar --out /tmp/gb --budget "$left" "$@" 2>&1 | tee "$OUT/gpu.log" | grep -v "^\[" 
cp /tmp/gb/gpu.json /tmp/gb/gpu.md "$OUT/" 2>/dev/null
tar -czf "$OUT/logs.tar.gz" -C /tmp/gb --exclude='*.pt' --exclude='*.png' . 2>/dev/null
cat /tmp/gb/gpu.md 2>/dev/null
echo "total: $(( $(date +%s) - started )) s"
