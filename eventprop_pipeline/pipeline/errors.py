"""Errors raised by the pipeline stages (all PipelineError: the CLI prints them on one line)."""
from eventprop_core.errors import PipelineError, RunDirError  # noqa: F401  (RunDirError lives with the other base errors)


class TraceMismatchError(PipelineError):
    """Lava's fixed-point traces differ from the emulator's: the deployment is not bit-exact."""
