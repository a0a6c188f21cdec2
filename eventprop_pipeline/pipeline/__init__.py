"""The end-to-end pipeline: train -> quantize + export (NetX HDF5) -> evaluate (float, emulator)
-> Lava check -> report, resumable stage by stage (RUN_DIR/stages.json)."""
from .errors import RunDirError, TraceMismatchError
from .manifest import StageManifest
from .options import DataSpec, DeployOptions, ModelSource
from .runner import STAGES, PipelineResult, run_pipeline

__all__ = ["run_pipeline", "PipelineResult", "STAGES", "DataSpec", "DeployOptions", "ModelSource", "StageManifest",
           "RunDirError", "TraceMismatchError"]
