#!/usr/bin/env bash
# Prepares .gpu/, what `bash bench/gpu_run.sh` needs on a bare GPU machine (see CONTRIBUTING.md, "GPU checks"):
#   .gpu/cifar10.bin   the CIFAR-10 JPEGs packed into one file (../shared/tools/jpegpack.py; 56 MB, byte-exact)
#   .gpu/jpegpack.py   the tool that unpacks it there
#   .gpu/whl/          Python 3.12 wheels of what that machine lacks (pydantic, albumentations and their needs), at
#                      the versions installed here, so both machines run the same code
# and keeps .gpu/ out of git (.git/info/exclude). Run it from the checkout, with the venv that has `.[train]`:
#   bash bench/gpu_prepare.sh [DATASET_DIR]      (default: ../shared/datasets/cifar10-jpeg)
# Then: run(command="bash bench/gpu_run.sh 585 ...", carry=[".gpu"]).
set -eu
data=${1:-../shared/datasets/cifar10-jpeg}
tool=../shared/tools/jpegpack.py
mkdir -p .gpu/whl
grep -qx '.gpu/' .git/info/exclude 2>/dev/null || echo '.gpu/' >> .git/info/exclude
[ -f .gpu/cifar10.bin ] || python3 "$tool" pack "$data" .gpu/cifar10.bin
cp "$tool" .gpu/jpegpack.py
pins=$(python3 - <<'EOF'
import importlib.metadata as m
names = ["pydantic", "pydantic_core", "annotated-types", "typing-inspection", "typing_extensions",
         "albumentations", "albucore", "simsimd", "stringzilla"]
print(" ".join(f"{n}=={m.version(n)}" for n in names))
EOF
)
rm -f .gpu/whl/*.whl
# shellcheck disable=SC2086
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d .gpu/whl $pins
ls .gpu/whl
du -sh .gpu | tail -1   # what travels: at most 64 MiB with the checkout
