from .forward import ForwardResult, resolve_device, simulate
from .lif import Constants, LIFState, LIState, li_step, lif_step
from .readout import readout_weights

__all__ = ["simulate", "ForwardResult", "resolve_device", "Constants", "LIFState", "LIState", "lif_step",
           "li_step", "readout_weights"]
