"""Hardware-in-the-loop fine-tuning: Eventprop with the bit-exact fixed-point network in the loop
(docs/finetune.md)."""
from .run import FinetuneConfig, FinetuneInterrupted, FinetuneSummary, finetune

__all__ = ["FinetuneConfig", "FinetuneSummary", "FinetuneInterrupted", "finetune"]
