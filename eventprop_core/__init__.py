"""What training and deployment share, with numpy as the only dependency: the framework-neutral network
description (`Network`, `ModelParams`), user-facing errors, atomic writes and provenance.

`eventprop_pipeline` (training, CLI) and `netx_export` (Loihi 2 deployment) both import it; it
imports neither, so the dependencies point one way and Lava's environment needs no torch.
"""
from .errors import ConfigError, DataError, NetworkFileError, PipelineError, RunDirError
from .network import Network, load_network
from .params import ModelParams

__all__ = ["Network", "load_network", "ModelParams", "PipelineError", "NetworkFileError", "DataError",
           "ConfigError", "RunDirError"]
