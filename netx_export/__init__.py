"""Loihi 2 deployment: quantizer, NetX HDF5 writer/reader, bit-exact emulator and Lava runner.

Needs numpy and h5py only at import; numba (emulator kernel) and Lava (runner) load on first use.
"""
from .fixed_point import FixedPointLayer, FixedPointNetwork

_LAZY = {
    "write_netx": "netx_export.hdf5_io",
    "read_netx": "netx_export.hdf5_io",
    "quantize": "netx_export.quantize",
    "emulate": "netx_export.emulator",
    "run_lava": "netx_export.lava_runner",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'netx_export' has no attribute {name!r}")


__all__ = ["FixedPointNetwork", "FixedPointLayer", *_LAZY]
