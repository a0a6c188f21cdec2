"""The fused CUDA engine on a real GPU against the numba CPU engine (marker gpu; skipped, with the
reason, where no CUDA GPU is usable). Run: EVENTPROP_REAL_CUDA=1 python -m pytest -m gpu, or
benchmarks/gpu_check.sh. The same checks run in numba's CUDA simulator in test_gpu_engine_sim.py."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from gpu_cases import OPTIONS, assert_close, assert_same_spike_record, compare_with_cpu, problem


def _skip_reason() -> str | None:
    if numba.config.ENABLE_CUDASIM:
        return "numba's CUDA simulator is on for this session; run with EVENTPROP_REAL_CUDA=1 (benchmarks/gpu_check.sh)"
    from eventprop_pipeline.eventprop import cuda_engine
    why = cuda_engine._missing()
    return f"no CUDA GPU usable here: {why}" if why else None


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))]

# GPU fused multiply-adds round differently from the CPU: allow that in float64, nothing else.
FMA_RTOL = 1e-12


def medium(seed, **kw):
    return problem(seed=seed, **{"B": 8, "T": 300, "n_in": 100, "H": 128, "O": 10, "rate": 0.03, **kw})


@pytest.mark.parametrize("H", [128, 1100], ids=["one_round", "two_rounds"])
def test_spike_record_equals_cpu_engine(H):
    net, x, y = medium(0, H=H, T=200 if H > 1000 else 300, n_in=100)
    total, _ = assert_same_spike_record(net, x, y, den_rtol=FMA_RTOL)
    assert total > 1000


@pytest.mark.parametrize("name", list(OPTIONS))
def test_float64_gradients_match_cpu_engine(name):
    net, x, y = medium(1, graded=name == "avg")
    compare_with_cpu(net, x, y, OPTIONS[name], np.float64, exact64=False)


def test_float32_close_to_cpu_engine():
    from eventprop_pipeline.eventprop import LossOptions, compute_batch
    net, x, y = medium(2, T=100)
    compare_with_cpu(net, x, y, OPTIONS["regularised"], np.float32)
    # Longer runs in float32 may flip a rare threshold decision; the batch must still agree closely.
    net, x, y = medium(3, T=1000, B=16)
    a = compute_batch(net, x, y, LossOptions(), device="cpu")
    b = compute_batch(net, x, y, LossOptions(), device="cuda")
    assert np.abs(a.hidden_spike_counts - b.hidden_spike_counts).sum() <= 1e-3 * a.hidden_spike_counts.sum()
    assert b.loss == pytest.approx(a.loss, rel=1e-3)


def test_predict_and_evaluate_on_cuda_use_the_fused_kernel():
    from eventprop_pipeline.data import from_events
    from eventprop_pipeline.evaluation import evaluate_float
    from eventprop_pipeline.eventprop import predict
    net, x, y = medium(4, T=200)
    b, t, u = np.nonzero(x)
    data = from_events(b, t, u, y, n_channels=x.shape[2], n_classes=10, timesteps=200, dt=1.0)
    v_cpu, c_cpu = predict(net, data, device="cpu")
    v_gpu, c_gpu = predict(net, data, device="cuda")
    assert np.abs(c_cpu - c_gpu).sum() <= 2
    assert_close(v_cpu, v_gpu, 1e-3, "readout")
    assert (evaluate_float(net, data, device="cuda").pred == np.argmax(v_gpu, axis=1)).all()
