"""Eventprop training of recurrent LIF networks, with mlGeNN semantics, for deployment on Loihi 2.

Importing this package does not import torch; the training and simulation parts load it on use.
"""
from eventprop_core.errors import ConfigError, DataError, NetworkFileError, PipelineError
from eventprop_core.network import Network, load_network
from eventprop_core.params import ModelParams

__version__ = "0.1.0"

_LAZY = {
    "loss_and_gradients": ("eventprop_pipeline.eventprop", "loss_and_gradients"),
    "simulate": ("eventprop_pipeline.model", "simulate"),
    "load_dataset": ("eventprop_pipeline.data", "load_dataset"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'eventprop_pipeline' has no attribute {name!r}")


__all__ = ["Network", "load_network", "ModelParams", "PipelineError", "NetworkFileError", "DataError",
           "ConfigError", "loss_and_gradients", "simulate", "load_dataset"]
