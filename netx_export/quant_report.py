"""What the quantizer did, per layer and on the calibration set: a dataclass that prints as a table
and saves as JSON."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eventprop_core.atomic import atomic_write_text


@dataclass
class LayerReport:
    name: str                  # "hidden" (in + recurrent, one step) or "readout"
    step: float                # float value of one weight unit, in scaled-weight units ((1-alpha) IScale W)
    weight_bits: int           # requested width
    bits_used: int             # width actually needed by the integer weights
    n_weights: int
    n_clipped: int             # weights saturated at the bit range
    clipped_fraction: float
    rms_error: float           # RMS of (step * w_int - w_scaled)
    rel_rms_error: float       # rms_error / RMS(w_scaled)
    max_rel_error: float       # max |step * w_int - w_scaled| / max |w_scaled|
    i_decay: int
    v_decay: int
    vth_mant: int
    threshold_rel_error: float  # |effective threshold - v_thresh| / v_thresh (0 for the readout)
    worst_case_u: float        # largest |u| if every same-sign synapse fired every step
    u_wrap_risk: bool          # worst_case_u >= 2^23: u could wrap around in 24 bits
    neurons_at_wrap_risk: int


@dataclass
class QuantizationReport:
    strategy: str
    weight_bits: int
    clip: bool
    layers: list[LayerReport]
    clipped_params: list[str] = field(default_factory=list)   # decays / thresholds clamped with clip=True
    warnings: list[str] = field(default_factory=list)
    n_calibration: int = 0
    float_accuracy: float | None = None
    fixed_accuracy: float | None = None       # emulator, on the calibration set
    percentile_accuracy: float | None = None  # emulator accuracy of the percentile choice (calibrate only)
    agreement: float | None = None            # fraction of samples where float and fixed predict alike
    percentile_agreement: float | None = None  # the same for the percentile choice
    score_error: float | None = None          # sum|fixed - float readout score| / sum|float score|
    percentile_score_error: float | None = None   # the same for the percentile choice
    criterion: str | None = None              # calibrate: how the candidates in `search` were ranked
    # calibrate: every candidate evaluated, with the criterion values it was ranked by (accuracy,
    # agreement, score_error, hidden/readout_weight_error; vs_start: its score-error difference to the
    # start of its layer's search, the standard error of that difference and whether it is clearly
    # lower), the layer whose search evaluated it ("searched_layer"), "skipped" (why Loihi cannot
    # represent it), and the flags "percentile" / "chosen"
    search: list[dict] = field(default_factory=list)

    def layer(self, name: str) -> LayerReport:
        return next(layer for layer in self.layers if layer.name == name)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path) -> Path:
        path = Path(path)
        atomic_write_text(path, self.to_json() + "\n")
        return path

    def table(self) -> str:
        head = (f"{'layer':<8} {'step':>11} {'bits':>5} {'clipped':>9} {'rel RMS':>8} {'max rel':>8} "
                f"{'iDecay':>6} {'vDecay':>6} {'vThMant':>7} {'th err':>7} {'u wrap':>7}")
        rows = [f"quantization: strategy {self.strategy}, {self.weight_bits}-bit weights"
                f"{', clip on' if self.clip else ''}", head, "-" * len(head)]
        for r in self.layers:
            rows.append(f"{r.name:<8} {r.step:>11.4e} {r.bits_used:>2}/{r.weight_bits:<2} "
                        f"{100 * r.clipped_fraction:>8.3f}% {100 * r.rel_rms_error:>7.2f}% "
                        f"{100 * r.max_rel_error:>7.2f}% {r.i_decay:>6} {r.v_decay:>6} {r.vth_mant:>7} "
                        f"{100 * r.threshold_rel_error:>6.2f}% {'RISK' if r.u_wrap_risk else 'ok':>7}")
        if self.n_calibration:
            acc = [f"calibration set: {self.n_calibration} samples"]
            if self.float_accuracy is not None:
                acc.append(f"float {100 * self.float_accuracy:.2f}%")
            if self.fixed_accuracy is not None:
                acc.append(f"fixed point (emulator) {100 * self.fixed_accuracy:.2f}%")
            if self.percentile_accuracy is not None and self.strategy != "percentile":
                acc.append(f"percentile choice {100 * self.percentile_accuracy:.2f}%")
            if self.agreement is not None:
                line = f"agreement with float {100 * self.agreement:.2f}%"
                if self.percentile_agreement is not None and self.strategy != "percentile":
                    line += f" (percentile choice {100 * self.percentile_agreement:.2f}%)"
                acc.append(line)
            rows.append(", ".join(acc))
            if self.score_error is not None:
                line = f"readout score error vs float {100 * self.score_error:.2f}%"
                if self.percentile_score_error is not None and self.strategy != "percentile":
                    line += f" (percentile choice {100 * self.percentile_score_error:.2f}%)"
                rows.append(line)
        if self.search:
            evaluated = [e for e in self.search if "skipped" not in e]
            chosen = next((e for e in self.search if e.get("chosen")), None)
            start = next((e for e in self.search if e.get("percentile")), None)
            moved = "" if chosen is None or start is None else "; step moved from percentile: " + (", ".join(
                layer for layer in ("hidden", "readout") if chosen[f"{layer}_step"] != start[f"{layer}_step"])
                or "none")
            rows.append(f"calibrate: {len(evaluated)} candidates evaluated, {len(self.search) - len(evaluated)} "
                        f"skipped{moved} (why: the report JSON's 'criterion' and per-candidate 'search')")
        rows += [f"clamped (clip on): {p}" for p in self.clipped_params]
        rows += [f"warning: {w}" for w in self.warnings]
        return "\n".join(rows)
