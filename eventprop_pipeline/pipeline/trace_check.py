"""Bit-exactness check of Lava against the emulator: readout voltage on every step, hidden spikes, class."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import TraceMismatchError


@dataclass
class TraceComparison:
    n_samples: int
    identical: bool
    first_mismatch: dict | None     # {sample, step, neuron, lava, emulator, what}
    pred_agreement: float
    hidden_counts_equal: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.identical:
            return f"Lava and emulator identical on all {self.n_samples} samples (readout v on every step, hidden spikes)"
        m = self.first_mismatch
        where = f"test sample {m['sample']}"
        if m.get("step") is not None:
            where += f", Lava step {m['step']}, readout neuron {m['neuron']}: Lava {m['lava']} vs emulator {m['emulator']}"
        return f"Lava and emulator differ ({m['what']}) first at {where}"

    def raise_if_different(self) -> None:
        if not self.identical:
            raise TraceMismatchError(self.describe() + "; the exported network is not bit-exact in Lava "
                                     "(the pipeline stops; results/lava.npz holds both traces)")


def compare_traces(indices, lava_v, emulator_v, lava_counts, emulator_counts, lava_pred, emulator_pred
                   ) -> TraceComparison:
    """Compare per sample; the first difference is the earliest step of the first differing sample."""
    indices = np.asarray(indices)
    lava_v, emulator_v = np.asarray(lava_v), np.asarray(emulator_v)
    lava_counts, emulator_counts = np.asarray(lava_counts), np.asarray(emulator_counts)
    agreement = float(np.mean(np.asarray(lava_pred) == np.asarray(emulator_pred))) if len(indices) else 1.0
    counts_equal = lava_counts.shape == emulator_counts.shape and bool(np.array_equal(lava_counts, emulator_counts))
    if lava_v.shape != emulator_v.shape:
        return TraceComparison(len(indices), False, {"sample": int(indices[0]) if len(indices) else None, "step": None,
                               "what": f"trace shapes {lava_v.shape} (Lava) vs {emulator_v.shape} (emulator)"},
                               agreement, counts_equal)
    for j, sample in enumerate(indices):
        diff = np.argwhere(lava_v[j] != emulator_v[j])
        if len(diff):
            step, neuron = (int(v) for v in diff[0])
            return TraceComparison(len(indices), False, {
                "sample": int(sample), "step": step, "neuron": neuron, "lava": int(lava_v[j, step, neuron]),
                "emulator": int(emulator_v[j, step, neuron]), "what": "readout voltage trace"}, agreement, counts_equal)
        if not counts_equal or not np.array_equal(lava_counts[j], emulator_counts[j]):
            return TraceComparison(len(indices), False, {"sample": int(sample), "step": None,
                                   "what": "hidden spike counts"}, agreement, counts_equal)
    return TraceComparison(len(indices), True, None, agreement, counts_equal)
