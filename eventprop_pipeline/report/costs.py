"""Cost ESTIMATES of one inference on Loihi from operation counts, with the sources of every figure.

These are back-of-envelope estimates, not measurements: per-operation energy and time from the
published Loihi characterisation, multiplied by this network's counted operations. They leave
out static/idle power, host I/O, and the per-step barrier synchronisation, and assume all work
runs on one core (no parallel speed-up), so the latency is an upper bound on compute time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

# Davies et al. 2018, "Loihi: A Neuromorphic Manycore Processor with On-Chip Learning",
# IEEE Micro 38(1):82-99, doi:10.1109/MM.2018.112130359, Table 1 (pre-silicon/silicon figures, 14 nm).
LOIHI_SYNOP_ENERGY_PJ = 23.6        # energy per synaptic spike operation (minimum)
LOIHI_SYNOP_TIME_NS = 3.5           # time per synaptic spike operation (maximum)
LOIHI_NEURON_UPDATE_ENERGY_PJ = 81.0  # energy per neuron update, active neuron (52 pJ inactive)
LOIHI_NEURON_UPDATE_TIME_NS = 8.4     # time per neuron update, active neuron (5.3 ns inactive)
LOIHI_SPIKE_ENERGY_PJ = 1.7         # within-tile spike energy
# Intel Labs, "Taking Neuromorphic Computing to the Next Level with Loihi 2", technology brief (2021),
# and Orchard et al. 2021, "Efficient Neuromorphic Signal Processing with Loihi 2", IEEE SiPS,
# arXiv:2111.03746: Loihi 2 processes up to 10x faster than Loihi. No per-operation energy table is
# published for Loihi 2, so the energy estimate keeps Loihi's per-op energy (conservative).
LOIHI2_SPEEDUP = 10.0
# docs/reference_figures.md (the reference Eventprop-to-Loihi-2 study): Jetson Orin Nano, batch 1.
JETSON_MS_PER_SAMPLE = 26.0
JETSON_MJ_PER_SAMPLE = 85.0

SOURCES = [
    "Davies et al. 2018, Loihi: A Neuromorphic Manycore Processor with On-Chip Learning, IEEE Micro 38(1), "
    "Table 1: 23.6 pJ and 3.5 ns per synaptic spike op; 81 pJ and 8.4 ns per active neuron update; "
    "1.7 pJ per within-tile spike (Loihi 1, 14 nm; 23.6 pJ/SOP is the widely quoted headline figure, "
    "the other per-operation figures should be checked against the paper before quoting absolute values).",
    "Intel Labs 2021, Loihi 2 technology brief, and Orchard et al. 2021, Efficient Neuromorphic Signal "
    "Processing with Loihi 2 (IEEE SiPS, arXiv:2111.03746): Loihi 2 up to 10x faster than Loihi "
    "(used only to scale the latency; energy per op kept at Loihi's).",
    "Reference Eventprop-to-Loihi-2 study (docs/reference_figures.md): Jetson Orin Nano, batch 1, ~26 ms and "
    "~85 mJ per sample.",
]


@dataclass(frozen=True)
class CostEstimate:
    synaptic_ops: float       # mean per sample
    neuron_updates: float
    spikes: float             # hidden spikes routed per sample (+ input spikes injected)
    energy_uj: float          # Loihi per-op figures
    latency_ms_loihi: float   # serial (one core) Loihi op time
    latency_ms_loihi2: float  # the same divided by the Loihi 2 speed-up

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def energy_ratio_vs_jetson(self) -> float:
        return JETSON_MJ_PER_SAMPLE * 1e3 / self.energy_uj if self.energy_uj > 0 else float("inf")


def estimate_loihi_cost(synaptic_ops: float, neuron_updates: float, spikes: float) -> CostEstimate:
    energy_pj = (synaptic_ops * LOIHI_SYNOP_ENERGY_PJ + neuron_updates * LOIHI_NEURON_UPDATE_ENERGY_PJ
                 + spikes * LOIHI_SPIKE_ENERGY_PJ)
    time_ns = synaptic_ops * LOIHI_SYNOP_TIME_NS + neuron_updates * LOIHI_NEURON_UPDATE_TIME_NS
    return CostEstimate(float(synaptic_ops), float(neuron_updates), float(spikes), energy_pj * 1e-6,
                        time_ns * 1e-6, time_ns * 1e-6 / LOIHI2_SPEEDUP)
