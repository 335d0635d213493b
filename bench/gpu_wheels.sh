#!/usr/bin/env bash
# Download the wheels listed in bench/gpu_wheels.txt into .whl/ (ignored by git), built for the GPU
# machine: CPython 3.12 on x86-64 Linux. Run here, where PyPI is reachable; then carry `.whl` with the
# device call that runs `bash bench/gpu_check.sh` (which installs them into a folder of its own there).
#   bash bench/gpu_wheels.sh            # then: bash bench/gpu_check.sh --dry-run --strict
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# A fresh folder: a wheel left from an earlier pin would be a second version of its package.
rm -rf .whl && mkdir -p .whl
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
  manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
target=(--only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}")
"$PYTHON" -m pip download --quiet --no-deps "${target[@]}" -d .whl -r bench/gpu_wheels.txt
# A trial of the install the GPU run does, for that interpreter: two versions of one package, or a wheel
# for another platform, fail here rather than there.
trial=$(mktemp -d)
"$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --target "$trial" \
  "${target[@]}" .whl/*.whl
rm -rf "$trial"
du -sh .whl
