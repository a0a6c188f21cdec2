"""The one place that turns a --device value into a device name, with a clear error."""
from __future__ import annotations

import warnings

from eventprop_core.errors import ConfigError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


class DeviceWarning(UserWarning):
    """--device auto fell back to the CPU although torch sees a GPU (shown as one `warning:` line)."""


def resolve_device_name(device) -> str:
    """'cpu', 'cuda[:N]' or 'torch-cpu' (the PyTorch engine on the CPU, for checks); 'auto' picks CUDA
    when present. A CUDA device on a machine without CUDA is a ConfigError, not a crash later."""
    name = str(device).strip().lower()
    if name in ("cpu", "torch-cpu"):
        return name
    import torch
    if name == "auto":   # CUDA only where the fused engine can run there (numba's CUDA target too)
        if not torch.cuda.is_available():
            return "cpu"
        from .eventprop.cuda_engine import unusable_reason
        why = unusable_reason()
        if why is None:
            return "cuda"
        warnings.warn(f"a CUDA GPU is present but the fused CUDA engine cannot run: {why}; using the CPU "
                      "engine (pass --device cpu to choose it explicitly)", DeviceWarning, stacklevel=2)
        return "cpu"
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: CUDA is not available on this machine (use cpu or auto)")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return name
    raise ConfigError(f"device {device!r} is not supported; use {DEVICE_CHOICES}")
