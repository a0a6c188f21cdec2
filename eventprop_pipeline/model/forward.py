"""Batched float forward pass of the recurrent LIF network (docs/float_model.md), CPU or CUDA."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from eventprop_core.network import Network
from .lif import Constants, LIFState, LIState, li_step, lif_step
from .readout import readout_weights


@dataclass
class ForwardResult:
    readout: np.ndarray              # (B, n_out) float32: VAvg after T steps
    hidden_spike_counts: np.ndarray  # (B, n_hidden) int64
    readout_trace: np.ndarray | None = None   # (B, T, n_out) readout V per step
    hidden_spikes: np.ndarray | None = None   # (B, T, n_hidden) bool

    @property
    def prediction(self) -> np.ndarray:
        return np.argmax(self.readout, axis=1)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if isinstance(device, torch.device):
        return device
    from ..devices import resolve_device_name
    name = resolve_device_name(device)
    return torch.device("cpu" if name == "torch-cpu" else name)


@torch.no_grad()
def simulate(net: Network, spikes, *, device="cpu", record: bool = False,
             dtype: torch.dtype = torch.float64) -> ForwardResult:
    """Run a batch of dense input spikes (B, T, n_in) through the network from a fresh state.

    Step k: synapses deliver step k-1's spikes, then readout and hidden neurons update. An input
    spike in bin k therefore acts from step k+1, a hidden spike of step k on the readout at k+1.
    float64 (the default) keeps rounding far below mlGeNN's float32 noise, so a threshold
    decision differs from mlGeNN's only where mlGeNN's own rounding decides it.
    """
    dev = resolve_device(device)
    x = torch.as_tensor(np.asarray(spikes), dtype=dtype, device=dev)
    B, T, n_in = x.shape
    if n_in != net.n_input:
        from eventprop_core.errors import DataError
        raise DataError(f"input has {n_in} channels but the network expects {net.n_input}")
    w_ih = torch.as_tensor(net.weights["input_hidden"], device=dev, dtype=dtype)
    w_hh = torch.as_tensor(net.weights["hidden_hidden"], device=dev, dtype=dtype)
    w_ho = torch.as_tensor(net.weights["hidden_output"], device=dev, dtype=dtype)
    c = Constants.of(net.params)
    rw = readout_weights(net.params, T)
    # Input of step k is the input bin k-1 projected through W_ih (bin T-1 never acts).
    drive = torch.zeros(B, T, net.n_hidden, device=dev, dtype=dtype)
    if T > 1:
        drive[:, 1:] = x[:, :-1] @ w_ih
    H, O = net.n_hidden, net.n_output
    hidden = LIFState(torch.zeros(B, H, device=dev, dtype=dtype), torch.zeros(B, H, device=dev, dtype=dtype))
    out = LIState(torch.zeros(B, O, device=dev, dtype=dtype), torch.zeros(B, O, device=dev, dtype=dtype),
                  torch.zeros(B, O, device=dev, dtype=torch.float64))
    s = torch.zeros(B, H, device=dev, dtype=dtype)
    counts = torch.zeros(B, H, device=dev, dtype=dtype)
    trace = torch.zeros(B, T, O, device=dev, dtype=dtype) if record else None
    raster = torch.zeros(B, T, H, device=dev, dtype=torch.bool) if record else None
    for k in range(T):
        out = li_step(out, s @ w_ho, c, float(rw[k]))
        hidden, s = lif_step(hidden, drive[:, k] + s @ w_hh, c)
        counts += s
        if record:
            trace[:, k] = out.v
            raster[:, k] = s.bool()
    return ForwardResult(out.v_avg.float().cpu().numpy(), counts.long().cpu().numpy(),
                         trace.cpu().numpy() if record else None, raster.cpu().numpy() if record else None)
