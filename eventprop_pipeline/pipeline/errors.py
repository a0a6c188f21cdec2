"""Errors raised by the pipeline stages (all PipelineError: the CLI prints them on one line)."""
from ..errors import PipelineError


class RunDirError(PipelineError):
    """The run folder holds an unrelated or unreadable run, or a needed result is missing."""


class LavaUnavailableError(PipelineError):
    """Lava (lava-nc + lava-dl) cannot be imported."""


class TraceMismatchError(PipelineError):
    """Lava's fixed-point traces differ from the emulator's: the deployment is not bit-exact."""
