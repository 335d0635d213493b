#!/usr/bin/env bash
# openft on a CUDA GPU in one command: the training and inference test modules with CUDA as the device,
# training throughput against TRL, generation throughput; every figure in $OUT/gpu_check.json.
#   bash bench/gpu_check.sh                         # on the GPU machine (carry .whl: bench/gpu_wheels.sh)
#   bash bench/gpu_check.sh --dry-run [--strict]    # here: is everything in place? (no torch work)
#   bash bench/gpu_check.sh --dry-run --cpu-smoke   # ... and the stages on the CPU with a tiny model
# See bench/gpu_check.py for the stages and their time budgets.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export OUT=${OUT:-/tmp/openft-gpu-check}
# Unbuffered, so a run cut short still shows how far it got; offline, since that machine reaches no hub
# (a lookup would only wait for its timeout).
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false HF_HUB_DISABLE_PROGRESS_BARS=1
mkdir -p "$OUT"

case " $* " in
  *" --dry-run "* | *" --cpu-smoke "*) ;;
  *)
    # The GPU run: the carried wheels (TRL and openft's missing dependencies) go into a folder of their
    # own, ahead of the machine's packages on the path, never into them.
    if compgen -G ".whl/*.whl" >/dev/null; then
      site=${OPENFT_GPU_SITE:-/tmp/openft-gpu-site}
      "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl || echo "!! installing the wheels from .whl/ failed"
      export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    else
      echo "!! no .whl/ here: TRL and openft's service dependencies are missing (bench/gpu_wheels.sh)"
    fi
    ;;
esac
# openft from this working tree, and the bench package beside it.
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -m bench.gpu_check "$@" 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
