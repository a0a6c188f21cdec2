"""Training with Eventprop: config, Adam, augmentation, checkpoints and the resumable training loop."""
from .adam import AdamState, adam_step
from .checkpoint import CheckpointError, load_checkpoint
from .config import TrainConfig, build_config, load_train_config
from .trainer import TrainingInterrupted, TrainSummary, train

__all__ = ["TrainConfig", "load_train_config", "build_config", "train", "TrainSummary", "TrainingInterrupted",
           "AdamState", "adam_step", "CheckpointError", "load_checkpoint"]
