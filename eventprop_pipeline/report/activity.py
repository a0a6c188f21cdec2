"""Activity counts per sample: hidden spikes and synaptic operations (one per spike per target)."""
from __future__ import annotations

import numpy as np


def synaptic_ops(input_spikes: np.ndarray, hidden_spikes: np.ndarray, n_hidden: int, n_output: int) -> np.ndarray:
    """Synaptic operations per sample of the dense 700 -> H (recurrent) -> O network.

    Every input spike is delivered to all H hidden neurons; every hidden spike to all H hidden
    neurons (recurrence) and all O readout neurons. Counts spikes, so float and fixed point
    differ only through their hidden spikes.
    """
    input_spikes = np.asarray(input_spikes, dtype=np.int64)
    hidden_spikes = np.asarray(hidden_spikes, dtype=np.int64)
    return input_spikes * n_hidden + hidden_spikes * (n_hidden + n_output)


def neuron_updates(timesteps: int, n_hidden: int, n_output: int) -> int:
    """Neuron state updates per sample: every neuron is updated on every time step."""
    return int(timesteps) * (n_hidden + n_output)
