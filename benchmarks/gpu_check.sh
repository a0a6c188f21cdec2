#!/usr/bin/env bash
# The one GPU check of the fused CUDA engine (docs/gpu_engine.md), prepared to run on a machine with
# an NVIDIA GPU in about 8 minutes: installs this checkout without dependencies, runs the real-GPU
# tests (tests/test_gpu_engine_cuda.py: the kernels against the numba CPU engine), then the CUDA
# benchmark (benchmarks/train_speed.py --cuda-only), then, where an SHD-layout data folder is given
# in $GPU_CHECK_DATA, a whole `eventprop train --config speech --device cuda` run on it (capped by
# $GPU_CHECK_TRAIN_S seconds, default 200). Results also go to $OUT (or ./gpu_check_out).
#
#   bash benchmarks/gpu_check.sh [python]
#   GPU_CHECK_DATA=path/to/espeak_commands bash benchmarks/gpu_check.sh
#
# Needs torch with CUDA and numba's CUDA target (pip install '.[cuda]', i.e. numba-cuda[cu13]).
set -uo pipefail
PY=${1:-${PYTHON:-python3}}
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-gpu_check_out}
mkdir -p "$OUT_DIR"
status=0

# numba's CUDA target finds libNVVM through CUDA_HOME when no pip package provides it.
if [ -z "${CUDA_HOME:-}" ] && [ -d /usr/local/cuda/nvvm ]; then export CUDA_HOME=/usr/local/cuda; fi

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT_DIR/nvidia_smi.txt"
"$PY" - <<'PYEOF' 2>&1 | tee "$OUT_DIR/versions.txt"
import platform, numpy, numba, torch
print("python", platform.python_version(), "numpy", numpy.__version__, "numba", numba.__version__,
      "torch", torch.__version__, "torch cuda", torch.cuda.is_available())
from numba import cuda
print("numba.cuda", getattr(cuda, "implementation", "?"), "available", cuda.is_available())
if cuda.is_available():
    cuda.detect()
PYEOF

echo "== install (no dependencies, no network)"
"$PY" -m pip install --quiet --no-deps --no-build-isolation -e . \
  || echo "note: editable install failed; running from the checkout via PYTHONPATH"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export EVENTPROP_REAL_CUDA=1          # tests/conftest.py: the real CUDA target, not the simulator

echo "== real-GPU tests"
timeout ${GPU_CHECK_TEST_S:-240} "$PY" -m pytest -q -rs tests/test_gpu_engine_cuda.py \
  "tests/test_eventprop_engine.py::test_cuda_engine_matches_cpu_engine" 2>&1 | tee "$OUT_DIR/gpu_tests.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
if ! grep -q " passed" "$OUT_DIR/gpu_tests.txt"; then   # all skipped is a failure here: they must run
  echo "error: the real-GPU tests did not run (the skip reasons above say why)"
  status=1
fi

echo "== benchmark"
timeout ${GPU_CHECK_BENCH_S:-300} "$PY" benchmarks/train_speed.py --cuda-only 2>&1 | tee "$OUT_DIR/train_speed_cuda.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
if [ -n "${GPU_CHECK_DATA:-}" ]; then
  echo "== training on $GPU_CHECK_DATA (--config speech --device cuda, at most ${GPU_CHECK_TRAIN_S:-200} s)"
  RUN=$(mktemp -d)/speech_cuda
  timeout ${GPU_CHECK_TRAIN_S:-200} "$PY" -m eventprop_pipeline.cli.main train --config speech --dataset shd \
    --data-root "$GPU_CHECK_DATA" --device cuda --out "$RUN" 2>&1 | tail -n 40 | tee "$OUT_DIR/train_speech_cuda.txt"
  cp "$RUN/metrics.csv" "$OUT_DIR/train_speech_cuda_metrics.csv" 2>/dev/null
  cp "$RUN/summary.json" "$OUT_DIR/train_speech_cuda_summary.json" 2>/dev/null
fi
exit $status
