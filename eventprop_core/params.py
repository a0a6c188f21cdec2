"""Neuron and simulation parameters of the recurrent LIF network (docs/float_model.md)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .errors import ConfigError

READOUTS = ("avg_var_exp_weight",)


@dataclass(frozen=True)
class ModelParams:
    """Parameters shared by training, evaluation and export. Times are in milliseconds."""

    tau_mem: float = 20.0
    tau_syn: float = 5.0
    v_thresh: float = 1.0
    dt: float = 1.0
    timesteps: int = 1000
    readout: str = "avg_var_exp_weight"

    def __post_init__(self):
        for name in ("tau_mem", "tau_syn", "v_thresh", "dt"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
        if self.tau_mem == self.tau_syn:
            raise ConfigError("tau_mem and tau_syn must differ (Eventprop's adjoint divides by their difference)")
        if not isinstance(self.timesteps, int) or self.timesteps < 1:
            raise ConfigError(f"timesteps must be a positive integer, got {self.timesteps!r}")
        if self.readout not in READOUTS:
            raise ConfigError(f"unknown readout {self.readout!r}; supported: {', '.join(READOUTS)}")

    @property
    def alpha(self) -> float:
        """Membrane decay per step, exp(-dt/tau_mem)."""
        return math.exp(-self.dt / self.tau_mem)

    @property
    def beta(self) -> float:
        """Synaptic decay per step, exp(-dt/tau_syn)."""
        return math.exp(-self.dt / self.tau_syn)

    @property
    def i_scale(self) -> float:
        """mlGeNN's scale_i factor (tau_syn/dt)(1 - beta)."""
        return (self.tau_syn / self.dt) * (1.0 - self.beta)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelParams":
        """Strict: a table of the fields above, integers as integers, no bools or strings for numbers."""
        if not isinstance(data, dict):
            raise ConfigError(f"params must be a table of {', '.join(cls.__dataclass_fields__)}, got {data!r}")
        unknown = sorted(str(k) for k in data if k not in cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}")
        known = dict(data)
        if "timesteps" in known:
            t = known["timesteps"]
            if isinstance(t, bool) or not isinstance(t, int):
                raise ConfigError(f"timesteps must be a positive integer, got {t!r}")
        for k in ("tau_mem", "tau_syn", "v_thresh", "dt"):
            if k in known:
                v = known[k]
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ConfigError(f"{k} must be a positive finite number, got {v!r}")
                known[k] = float(v)
        if "readout" in known and not isinstance(known["readout"], str):
            raise ConfigError(f"readout must be a string, got {known['readout']!r}")
        return cls(**known)
