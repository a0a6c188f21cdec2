"""Deployment benchmark: bit-exact emulator vs Lava's fixed-point CPU simulator, and the conversion loss
of the mlGeNN fixture (700-256-20, T = 1000) at several weight widths and step strategies.

Prints `name: value` lines. The data are the fixture's 128 test samples (a trained network, so the
activity is realistic); the SHD-sized run repeats them to 2264 samples (the SHD test set size).

    .venv/bin/python benchmarks/deploy_speed.py [--quick] [--lava-samples N]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DIR = ROOT / "tests" / "data" / "mlgenn_hidden256"
SHD_TEST_SIZE = 2264


def emit(name: str, value) -> None:
    if isinstance(value, float):
        value = f"{value:.4g}"
    print(f"{name}: {value}", flush=True)


def quantize_quiet(net, **kw):
    from netx_export.quantize import quantize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize(net, **kw)


def speed(net, data, lava_samples: int) -> None:
    from netx_export.emulator import emulate
    from netx_export.hdf5_io import write_netx
    from netx_export.lava_runner import run_lava

    fx, _ = quantize_quiet(net, weight_bits=8)
    emulate(fx, data.subset([0]))                          # compile the kernel (cached on disk after)
    shd_sized = np.arange(SHD_TEST_SIZE) % len(data)
    t0 = time.perf_counter()
    emu_all = emulate(fx, data, indices=shd_sized)
    seconds = time.perf_counter() - t0
    emit("emulator_seconds_shd_test_2264", seconds)
    emit("emulator_ms_per_sample", 1000 * seconds / SHD_TEST_SIZE)
    emit("emulator_mean_hidden_spikes_per_sample", float(emu_all.hidden_spike_counts.sum(axis=1).mean()))

    deep_speed(fx, data, shd_sized, seconds)

    idx = np.arange(lava_samples)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_netx(fx, Path(tmp) / "fixture.h5")
        lava = run_lava(path, data, indices=idx, progress=False, record_trace=True, record_hidden=True)
    # The first sample includes compiling the network and starting Lava's processes.
    startup, per_sample = lava.sample_seconds[0], lava.sample_seconds[1:]
    emu = emulate(fx, data, indices=idx, record_trace=True, record_hidden=True)
    lava_ms = 1000 * float(np.mean(per_sample))
    emit("lava_first_sample_seconds_with_startup", float(startup))
    emit("lava_ms_per_sample", lava_ms)
    emit("lava_samples_timed", f"{len(per_sample)} (readout u and v read every step, hidden spikes recorded)")
    emit("emulator_speedup_vs_lava", lava_ms / (1000 * seconds / SHD_TEST_SIZE))
    same = [bool(np.array_equal(lava.readout_v[k], emu.readout_v[k])
                 and np.array_equal(lava.readout_u[k], emu.readout_u[k])
                 and np.array_equal(lava.hidden_spikes[k], emu.hidden_spikes[k])) for k in range(lava_samples)]
    emit("traces_identical", f"{all(same)} ({sum(same)}/{lava_samples} samples: hidden spikes, readout u and v, "
                             f"every step)")


def deep_speed(fx, data, indices, two_layer_seconds: float) -> None:
    """The NetX runtime on a deeper network with delays (docs/netx_runtime.md): the fixture's recurrent
    layer, then a dense layer of 128 with per-synapse delays 0..20 and per-neuron thresholds, then 20
    outputs that spike; timed against the two-layer network in the same run."""
    from netx_export.emulator import emulate
    from netx_export.fixed_point import FixedPointLayer, FixedPointNetwork

    rng = np.random.default_rng(0)
    mid = FixedPointLayer("dense", rng.integers(-40, 100, (128, fx.hidden.size)), 800, 200,
                          rng.integers(2000, 4000, 128), delay=rng.integers(0, 21, (128, fx.hidden.size)))
    out = FixedPointLayer("dense", rng.integers(-100, 128, (20, 128)), 800, 200, 2**16)
    deep = FixedPointNetwork(fx.n_input, fx.hidden, mid, out, timesteps=fx.timesteps)
    emulate(deep, data.subset([0]))
    t0 = time.perf_counter()
    r = emulate(deep, data, indices=indices)
    seconds = time.perf_counter() - t0
    emit("emulator_ms_per_sample_700_256rec_128delays_20", 1000 * seconds / len(indices))
    emit("emulator_deep_with_delays_vs_two_layer_time", seconds / two_layer_seconds)
    emit("emulator_deep_spikes_per_sample_by_layer",
         " / ".join(f"{c.sum(axis=1).mean():.0f}" for c in r.layer_spike_counts))


def conversion_loss(net, data, quick: bool) -> None:
    from eventprop_pipeline.evaluation import evaluate_float
    from netx_export.emulator import emulate

    n = len(data)
    calib, held_out = data.subset(range(n // 2)), data.subset(range(n // 2, n))
    float_result = evaluate_float(net, data, batch_size=64, device="cpu")
    float_pred = float_result.pred
    float_acc = float(np.mean(float_pred[n // 2:] == held_out.labels))
    emit("float_accuracy_fixture_heldout", float_acc)
    strategies = ("percentile",) if quick else ("percentile", "calibrate")
    for bits in (8, 6, 4):
        for strategy in strategies:
            t0 = time.perf_counter()
            fx, _ = quantize_quiet(net, weight_bits=bits, strategy=strategy,
                                   calibration=calib if strategy == "calibrate" else None,
                                   float_predictions=float_pred[:n // 2] if strategy == "calibrate" else None,
                                   float_scores=float_result.score[:n // 2] if strategy == "calibrate" else None)
            acc = float(np.mean(emulate(fx, held_out).pred == held_out.labels))
            emit(f"conversion_loss_pp_{bits}bit_{strategy}", 100 * (float_acc - acc))
            emit(f"quantize_seconds_{bits}bit_{strategy}", time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 Lava samples, percentile strategy only")
    p.add_argument("--lava-samples", type=int, default=None,
                   help="samples run in Lava, the first one untimed (default 4, --quick 2)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from eventprop_pipeline.data.spike_files import read_spike_file
    from eventprop_pipeline.mlgenn_import import import_mlgenn

    net = import_mlgenn(FIXTURE_DIR, 29)
    data = read_spike_file(FIXTURE_DIR / "SHD" / "shd_test.h5", name="shd")
    emit("network", f"{net.n_input}-{net.n_hidden}-{net.n_output}, T = {data.timesteps}, "
                    f"fixture {len(data)} test samples")
    speed(net, data, max(2, args.lava_samples or (2 if args.quick else 4)))
    conversion_loss(net, data, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
