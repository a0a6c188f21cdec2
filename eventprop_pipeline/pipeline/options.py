"""What a pipeline run needs: where the float model comes from, which data, and the deployment options."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..data.events import SpikeDataset
from eventprop_core.errors import ConfigError
from eventprop_core.params import ModelParams

SCALES = ("auto", "calibrate", "percentile")   # auto: calibrate when a training split exists


@dataclass(frozen=True)
class DataSpec:
    """One data split, loaded binned with the network's dt and T (so data and network always agree)."""

    dataset: str = "synthetic"
    data_root: str | None = None
    split: str = "test"
    limit: int | None = None
    graded: bool = False
    synthetic: dict = field(default_factory=dict)   # SyntheticConfig fields (seed, n_test, ...)

    def load(self, params: ModelParams, *, split: str | None = None, limit: int | None = None,
             metadata: dict | None = None) -> SpikeDataset:
        """metadata: the network's provenance or NetX metadata (its delay-line input transform)."""
        from ..data.delay_lines import for_network
        from ..data.registry import load_dataset
        from ..data.synthetic import SyntheticConfig

        syn = SyntheticConfig(**self.synthetic) if self.dataset == "synthetic" else None
        return load_dataset(self.dataset, split or self.split, data_root=self.data_root, dt=params.dt,
                            timesteps=params.timesteps, graded=self.graded, synthetic=syn,
                            limit=self.limit if limit is None else limit, delays=for_network(metadata))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelSource:
    """Where stage 1 gets the float model: train it, load a network file, or import mlGeNN."""

    kind: str                       # "train" | "model" | "mlgenn"
    path: str | None = None         # network .npz or mlGeNN folder
    epoch: str | None = None        # mlGeNN epoch key
    config_path: str | None = None  # training config file (kind "train")

    def __post_init__(self):
        if self.kind not in ("train", "model", "mlgenn"):
            raise ConfigError(f"model source must be train, model or mlgenn, got {self.kind!r}")
        if self.kind == "mlgenn" and (self.path is None or self.epoch is None):
            raise ConfigError("--mlgenn DIR needs --epoch E (the epoch key of DIR/<E>-<connection>-g.npy)")
        if self.kind == "model" and self.path is None:
            raise ConfigError("--model needs a network file path")


@dataclass(frozen=True)
class DeployOptions:
    """Stages 2-4: quantization, evaluation, Lava check. Every field has a default."""

    weight_bits: int = 8
    scale: str = "auto"
    clip: bool = False
    calibration_samples: int = 256     # training-split samples for --scale calibrate/auto
    sweep_bits: tuple = (8, 6, 4, 2)   # accuracy-vs-bits figure (emulator)
    sweep_samples: int | None = None   # test samples for the sweep (None: the whole evaluated split)
    lava_samples: int = 8
    lava: bool = True                  # False: Lava check skipped (recorded as skipped)
    lava_seed: int = 0                 # picks the Lava subset
    batch_size: int = 64
    device: str = "auto"               # float model: cpu, cuda or auto
    inspect_sample: int = 0            # test sample shown in the raster / trace figures
    latency_samples: int = 8           # batch-1 float latency measurement
    finetune_epochs: int = 0           # > 0: fine-tune with the fixed-point network in the loop (docs/finetune.md)
    finetune_lr: float = 0.0           # its Adam step, in quantization levels (0: 0.02 * 2^(weight_bits - 2))

    def __post_init__(self):
        for name in ("weight_bits", "calibration_samples", "lava_samples", "lava_seed", "batch_size",
                     "inspect_sample", "latency_samples", "sweep_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (value is None and name == "sweep_samples" or isinstance(value, int)):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        for name in ("clip", "lava"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("scale", "device"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.sweep_bits, tuple) or any(isinstance(b, bool) for b in self.sweep_bits):
            raise ConfigError(f"sweep_bits must be a list of integers in 1..8, got {self.sweep_bits!r}")
        if self.lava_seed < 0:
            raise ConfigError(f"lava_seed must be >= 0, got {self.lava_seed}")
        if not isinstance(self.weight_bits, int) or not 1 <= self.weight_bits <= 8:
            raise ConfigError(f"weight_bits must be an integer in 1..8 (Loihi 2 weights), got {self.weight_bits!r}")
        if self.scale not in SCALES:
            raise ConfigError(f"scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        bad = [b for b in self.sweep_bits if not isinstance(b, int) or not 1 <= b <= 8]
        if bad:
            raise ConfigError(f"sweep_bits must be integers in 1..8, got {list(self.sweep_bits)!r}")
        for name in ("lava_samples", "calibration_samples", "batch_size", "latency_samples", "inspect_sample"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name in ("lava_samples", "inspect_sample") else 1):
                raise ConfigError(f"{name} must be a {'non-negative' if name in ('lava_samples', 'inspect_sample') else 'positive'} "
                                  f"integer, got {value!r}")
        if not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 0:
            raise ConfigError(f"finetune_epochs must be a non-negative integer, got {self.finetune_epochs!r}")
        if not isinstance(self.finetune_lr, (int, float)) or not self.finetune_lr >= 0:
            raise ConfigError(f"finetune_lr must be a number >= 0 (0: the default), got {self.finetune_lr!r}")
        if self.sweep_samples is not None and (not isinstance(self.sweep_samples, int) or self.sweep_samples < 1):
            raise ConfigError(f"sweep_samples must be a positive integer, got {self.sweep_samples!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sweep_bits"] = list(self.sweep_bits)
        return d

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "DeployOptions":
        known = set(cls.__dataclass_fields__)
        odd = [k for k in data if not isinstance(k, str)]
        if odd:
            raise ConfigError(f"{source}: [pipeline] key {odd[0]!r} is not a name (keys must be strings)")
        unknown = sorted(set(data) - known)
        if unknown:
            import difflib
            hints = [f"{k} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(k, known, 1)) else k for k in unknown]
            raise ConfigError(f"{source}: unknown [pipeline] key(s): {', '.join(hints)}")
        values = dict(data)
        if "sweep_bits" in values:
            if not isinstance(values["sweep_bits"], (list, tuple)):
                raise ConfigError(f"{source}: [pipeline] sweep_bits = {values['sweep_bits']!r}: expected a list "
                                  f"such as [8, 6, 4, 2]")
            values["sweep_bits"] = tuple(values["sweep_bits"])
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{source}: [pipeline] {exc}") from None
