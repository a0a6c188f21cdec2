"""Two small Lava processes for the Lava worker (imports Lava at module level).

- `EventSource` plays binary input spikes held as sparse events in its process parameters, one
  sample after another, each sample occupying `period` = T + 2 steps (no large Var.set() per sample).
- `StepRecorder` receives the hidden spikes and reads the readout v (`FullStepRecorder`: also u)
  every step through RefPorts; it writes them into memory-mapped files (row = step within the sample), which the
  runner reads after each sample. This avoids Var.get(), which moves one element per message.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort, PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort, RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class EventSource(AbstractProcess):
    """Sample k (in play order) sends, at its local step i = 0..period-1, input column i: the units of
    events whose step equals i (events are CSR per sample: offsets, steps, units)."""

    def __init__(self, *, n_input: int, period: int, offsets: np.ndarray, steps: np.ndarray,
                 units: np.ndarray, **kwargs) -> None:
        super().__init__(n_input=n_input, period=period, offsets=offsets, steps=steps, units=units, **kwargs)
        self.s_out = OutPort(shape=(n_input,))


@implements(proc=EventSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyEventSourceModel(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.n_input = proc_params["n_input"]
        self.period = proc_params["period"]
        self.offsets = proc_params["offsets"]
        self.steps = proc_params["steps"]
        self.units = proc_params["units"]

    def run_spk(self) -> None:
        sample, i = divmod(self.time_step - 1, self.period)
        out = np.zeros(self.n_input, dtype=bool)
        if sample + 1 < len(self.offsets):
            a, b = self.offsets[sample], self.offsets[sample + 1]
            steps = self.steps[a:b]
            lo, hi = np.searchsorted(steps, i), np.searchsorted(steps, i, side="right")
            out[self.units[a:b][lo:hi]] = True
        self.s_out.send(out)


class StepRecorder(AbstractProcess):
    """Records hidden spikes (InPort) and the readout v (RefPort) into memory maps of `period` rows."""

    def __init__(self, *, n_hidden: int, n_out: int, period: int, spikes_path: str, v_path: str,
                 **kwargs) -> None:
        super().__init__(n_hidden=n_hidden, n_out=n_out, period=period, spikes_path=spikes_path,
                         v_path=v_path, **kwargs)
        self.spikes_in = InPort(shape=(n_hidden,))
        self.v_ref = RefPort(shape=(n_out,))


class FullStepRecorder(StepRecorder):
    """StepRecorder that also reads the readout u (one more RefPort round trip per step)."""

    def __init__(self, *, u_path: str, **kwargs) -> None:
        super().__init__(u_path=u_path, **kwargs)
        self.u_ref = RefPort(shape=(kwargs["n_out"],))


class _RecorderModel(PyLoihiProcessModel):
    spikes_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    v_ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.period = proc_params["period"]
        shape_h = (self.period, proc_params["n_hidden"])
        self.shape_o = (self.period, proc_params["n_out"])
        self.spikes = np.memmap(proc_params["spikes_path"], dtype=np.uint8, mode="r+", shape=shape_h)
        self.v = np.memmap(proc_params["v_path"], dtype=np.int32, mode="r+", shape=self.shape_o)

    def run_spk(self) -> None:
        self.spikes[(self.time_step - 1) % self.period] = self.spikes_in.recv() != 0

    def post_guard(self) -> bool:
        return True

    def run_post_mgmt(self) -> None:
        self.v[(self.time_step - 1) % self.period] = self.v_ref.read()


@implements(proc=StepRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyStepRecorderModel(_RecorderModel):
    pass


@implements(proc=FullStepRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFullStepRecorderModel(_RecorderModel):
    u_ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.u = np.memmap(proc_params["u_path"], dtype=np.int32, mode="r+", shape=self.shape_o)

    def run_post_mgmt(self) -> None:
        super().run_post_mgmt()
        self.u[(self.time_step - 1) % self.period] = self.u_ref.read()
