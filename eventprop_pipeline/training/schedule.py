"""Learning-rate schedule: ease-in per batch, then reduction on a validation plateau (per epoch)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class LRSchedule:
    """Plain data (saved in checkpoints). `lr` is the rate of the next batch; `target` its ceiling."""

    lr: float
    target: float
    ease_factor: float
    patience: int
    factor: float
    best_metric: float = float("-inf")
    epochs_since_best: int = 0

    @classmethod
    def from_optim(cls, optim) -> "LRSchedule":
        start = optim.lr_start if optim.lr_ease_in and optim.lr_start < optim.lr else optim.lr
        return cls(lr=start, target=optim.lr, ease_factor=optim.lr_ease_factor,
                   patience=optim.plateau_patience, factor=optim.plateau_factor)

    def after_batch(self) -> None:
        """Ease in: multiply by ease_factor per batch until the target is reached."""
        if self.lr < self.target:
            self.lr = min(self.lr * self.ease_factor, self.target)

    def after_epoch(self, metric: float) -> bool:
        """Record this epoch's validation metric (higher is better); True if the rate was reduced."""
        if metric > self.best_metric:
            self.best_metric = metric
            self.epochs_since_best = 0
            return False
        self.epochs_since_best += 1
        if self.patience and self.epochs_since_best >= self.patience:
            self.target *= self.factor
            self.lr = min(self.lr, self.target)
            self.epochs_since_best = 0
            return True
        return False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LRSchedule":
        return cls(**d)
