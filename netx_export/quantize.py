"""Float network -> Loihi 2 fixed point (DESIGN.md section 6).

Mapping that reproduces the float model (section 4) in Lava's CUBA neuron:
  iDecay = round(4096 (1 - beta)), vDecay = round(4096 (1 - alpha));
  Lava's v integrates u without a (1 - alpha) factor, so each weight is scaled to
  w_s = (1 - alpha) IScale W and quantized as w_int = round(w_s / q) with one step q per layer
  (hidden: input and recurrent weights together, they share one exponent in netx);
  then u = 64 (1 - alpha) I / q and v = 64 V / q.
  Threshold: the float model spikes on V >= v_thresh, i.e. v >= 64 v_thresh / q; Lava spikes on
  v > 64 vThMant, i.e. v >= 64 vThMant + 1; so vThMant = round(v_thresh / q - 1/64).
  The readout never spikes: vThMant = 2^17.

Step strategies:
  percentile: q = 2^(floor(log2 p99 |w_s|) - (bits - 2)) (the reference exporter; weights beyond
              the bit range saturate, counted in the report);
  calibrate:  per layer, search q (any real value) around the percentile choice to maximise the
              fixed-point accuracy on a calibration set, measured with the bit-exact emulator;
              ties go to the higher agreement with the float predictions, then the smaller
              weight error. The percentile choice is always a candidate, so calibrate is never
              worse than percentile on the calibration set.
Values Loihi cannot represent at all (decays outside 12 bits, a threshold mantissa beyond 17 bits,
weights outside the range at a step forced with `steps=`) raise QuantizationError unless
clip=True, which clamps them and lists them in the report.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from eventprop_pipeline.errors import PipelineError
from eventprop_pipeline.network import Network

from .fixed_point import DECAY_UNIT, MAX_WEIGHT_BITS, NON_SPIKING_VTH, STATE_SCALE, VTH_MANT_MAX, \
    FixedPointLayer, FixedPointNetwork
from .limits import I_DECAY_RANGE, V_DECAY_RANGE, bits_needed, u_wrap_limit, validate_network, weight_range, \
    worst_case_u
from .quant_report import LayerReport, QuantizationReport

STRATEGIES = ("percentile", "calibrate")
LAYERS = ("hidden", "readout")
COARSE_EXPONENTS = tuple(k / 2 for k in range(-4, 3))   # q_p * 2^(k/2): q_p/4 .. 2 q_p
REFINE_EXPONENTS = (0.25, 0.125)                        # then best * 2^(+-1/4), best * 2^(+-1/8)
PERCENTILE = 99.0

Evaluate = Callable[[FixedPointNetwork], np.ndarray]   # fixed-point network -> predictions (N,)


class QuantizationError(PipelineError):
    """The float network cannot be represented on Loihi 2 with the requested settings."""


class UWrapWarning(UserWarning):
    """u (24-bit, wrapping) could overflow for some inputs."""


@dataclass(frozen=True)
class ScaledWeights:
    """Float weights in Lava orientation (post, pre), multiplied by (1 - alpha) IScale."""
    hidden_in: np.ndarray
    hidden_rec: np.ndarray
    readout: np.ndarray

    @classmethod
    def of(cls, net: Network) -> "ScaledWeights":
        p = net.params
        scale = (1.0 - p.alpha) * p.i_scale
        w = {k: np.asarray(v, np.float64).T * scale for k, v in net.weights.items()}
        return cls(w["input_hidden"], w["hidden_hidden"], w["hidden_output"])

    def layer(self, name: str) -> list[np.ndarray]:
        return [self.hidden_in, self.hidden_rec] if name == "hidden" else [self.readout]


# ------------------------------------------------------------------------------------ building blocks

def percentile_step(weights: list[np.ndarray], bits: int) -> float:
    """The reference exporter's power-of-two step: p99 of |w| lands in [2^(bits-2), 2^(bits-1))."""
    flat = np.abs(np.concatenate([w.ravel() for w in weights]))
    p = float(np.percentile(flat, PERCENTILE))
    if p <= 0:
        p = float(flat.max())
    if p <= 0:
        return 1.0   # all-zero weights: any step represents them exactly
    return 2.0 ** (math.floor(math.log2(p)) - (bits - 2))


def quantize_array(w: np.ndarray, step: float, bits: int) -> tuple[np.ndarray, int]:
    """round(w / step) saturated at the signed `bits`-bit range; returns (int64 array, number saturated)."""
    lo, hi = weight_range(bits)
    raw = np.rint(w / step)
    clipped = int(((raw < lo) | (raw > hi)).sum())
    return np.clip(raw, lo, hi).astype(np.int64), clipped


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def threshold_mantissa(v_thresh: float, step: float) -> int:
    """Lava spikes on v > 64 vThMant (v >= 64 vThMant + 1); the float model on v >= 64 v_thresh / step."""
    return _round_half_up(v_thresh / step - 1.0 / STATE_SCALE)


class _Clamp:
    """Applies clip=True/False to values outside Loihi's ranges and remembers what it clamped."""

    def __init__(self, clip: bool):
        self.clip = clip
        self.clamped: list[str] = []

    def __call__(self, value: int, lo: int, hi: int, what: str, fix: str) -> int:
        if lo <= value <= hi:
            return value
        if not self.clip:
            raise QuantizationError(f"{what} = {value} is outside Loihi 2's range [{lo}, {hi}]; {fix} "
                                    f"(or pass clip=True / --clip to clamp it)")
        clamped = min(max(value, lo), hi)
        self.clamped.append(f"{what}: {value} -> {clamped}")
        return clamped


def decays(net: Network, clamp: _Clamp) -> tuple[int, int]:
    p = net.params
    i_decay = clamp(_round_half_up(DECAY_UNIT * (1.0 - p.beta)), *I_DECAY_RANGE, "iDecay",
                    f"tau_syn/dt = {p.tau_syn / p.dt:g} is not representable in a 12-bit decay")
    v_decay = clamp(_round_half_up(DECAY_UNIT * (1.0 - p.alpha)), *V_DECAY_RANGE, "vDecay",
                    f"tau_mem/dt = {p.tau_mem / p.dt:g} is not representable in a 12-bit decay")
    return i_decay, v_decay


@dataclass
class _Built:
    fxnet: FixedPointNetwork
    clipped: dict[str, int]
    clamped: list[str]


def build(net: Network, steps: dict[str, float], bits: int, *, clip: bool = False,
          forced: tuple[str, ...] = (), metadata: dict | None = None) -> _Built:
    """Fixed-point network for given per-layer steps. Weights saturate (counted) unless the layer is in
    `forced` and clip is off, where saturation is an error."""
    clamp = _Clamp(clip)
    sw = ScaledWeights.of(net)
    i_decay, v_decay = decays(net, clamp)
    clipped = {}
    q_h, q_o = steps["hidden"], steps["readout"]
    w_in, c_in = quantize_array(sw.hidden_in, q_h, bits)
    w_rec, c_rec = quantize_array(sw.hidden_rec, q_h, bits)
    w_out, c_out = quantize_array(sw.readout, q_o, bits)
    clipped["hidden"], clipped["readout"] = c_in + c_rec, c_out
    for name in forced:
        if clipped[name] and not clip:
            raise QuantizationError(f"{name} layer: {clipped[name]} weight(s) exceed the {bits}-bit range "
                                    f"{list(weight_range(bits))} at step {steps[name]:.6g}; use a larger step "
                                    f"or pass clip=True / --clip to saturate them")
    vth = clamp(threshold_mantissa(net.params.v_thresh, q_h), 0, VTH_MANT_MAX, "hidden vThMant",
                f"v_thresh / step = {net.params.v_thresh / q_h:.6g} needs more than 17 bits: use a larger step")
    hidden = FixedPointLayer("dense_rec", w_in, i_decay, v_decay, vth, weight_rec=w_rec, step=float(q_h),
                             weight_bits=bits)
    readout = FixedPointLayer("dense", w_out, i_decay, v_decay, NON_SPIKING_VTH, step=float(q_o), weight_bits=bits)
    fxnet = FixedPointNetwork(net.n_input, hidden, readout, timesteps=net.params.timesteps, dt=net.params.dt,
                              metadata=dict(metadata or {}))
    validate_network(fxnet, source="quantized network")
    return _Built(fxnet, clipped, clamp.clamped)


def layer_report(name: str, layer: FixedPointLayer, weights: list[np.ndarray], n_clipped: int,
                 v_thresh: float) -> LayerReport:
    w = np.concatenate([x.ravel() for x in weights])
    ints = np.concatenate([layer.weight.ravel()] + ([layer.weight_rec.ravel()] if layer.weight_rec is not None else []))
    err = layer.step * ints - w
    rms_w = float(np.sqrt(np.mean(w ** 2))) if w.size else 0.0
    max_w = float(np.abs(w).max()) if w.size else 0.0
    rms = float(np.sqrt(np.mean(err ** 2))) if w.size else 0.0
    u_max = worst_case_u(layer)
    risk = u_max >= u_wrap_limit()
    if name == "hidden":   # effective float threshold: v >= 64 vThMant + 1 state units
        th_err = abs((layer.vth_mant + 1.0 / STATE_SCALE) * layer.step - v_thresh) / v_thresh
    else:
        th_err = 0.0
    return LayerReport(name=name, step=layer.step, weight_bits=layer.weight_bits, bits_used=bits_needed(ints),
                       n_weights=int(w.size), n_clipped=n_clipped,
                       clipped_fraction=n_clipped / w.size if w.size else 0.0,
                       rms_error=rms, rel_rms_error=rms / rms_w if rms_w else 0.0,
                       max_rel_error=float(np.abs(err).max()) / max_w if max_w else 0.0,
                       i_decay=layer.i_decay, v_decay=layer.v_decay, vth_mant=layer.vth_mant,
                       threshold_rel_error=float(th_err), worst_case_u=float(u_max.max()) if u_max.size else 0.0,
                       u_wrap_risk=bool(risk.any()), neurons_at_wrap_risk=int(risk.sum()))


def _weight_error(built: _Built, sw: ScaledWeights, name: str) -> float:
    layer = built.fxnet.hidden if name == "hidden" else built.fxnet.readout
    ints = [layer.weight] + ([layer.weight_rec] if layer.weight_rec is not None else [])
    num = sum(float(((layer.step * i - w) ** 2).sum()) for i, w in zip(ints, sw.layer(name)))
    den = sum(float((w ** 2).sum()) for w in sw.layer(name))
    return math.sqrt(num / den) if den else 0.0


# ------------------------------------------------------------------------------------------ the search

class _Scorer:
    """Evaluates candidate steps once each (cached) and ranks them by (accuracy, agreement with the
    float predictions, -weight error of the layer being searched)."""

    def __init__(self, net: Network, bits: int, clip: bool, evaluate: Evaluate, labels: np.ndarray,
                 float_pred: np.ndarray | None):
        self.net, self.bits, self.clip, self.evaluate = net, bits, clip, evaluate
        self.labels, self.float_pred = labels, float_pred
        self.sw = ScaledWeights.of(net)
        self.cache: dict[tuple[float, float], dict] = {}
        self.log: list[dict] = []

    def result(self, steps: dict[str, float]) -> dict:
        key = (float(steps["hidden"]), float(steps["readout"]))
        if key not in self.cache:
            built = build(self.net, steps, self.bits, clip=self.clip)
            pred = np.asarray(self.evaluate(built.fxnet))
            entry = {"hidden_step": key[0], "readout_step": key[1],
                     "accuracy": float(np.mean(pred == self.labels)),
                     "agreement": float(np.mean(pred == self.float_pred)) if self.float_pred is not None else None,
                     "hidden_weight_error": _weight_error(built, self.sw, "hidden"),
                     "readout_weight_error": _weight_error(built, self.sw, "readout")}
            self.cache[key] = {**entry, "pred": pred}
            self.log.append(entry)
        return self.cache[key]

    def rank(self, steps: dict[str, float], layer: str) -> tuple:
        r = self.result(steps)
        return (r["accuracy"], r["agreement"] or 0.0, -r[f"{layer}_weight_error"])

    def try_rank(self, steps: dict[str, float], layer: str) -> tuple | None:
        """rank(), or None for a candidate Loihi cannot represent (e.g. a threshold beyond 17 bits)."""
        try:
            return self.rank(steps, layer)
        except PipelineError as exc:
            self.log.append({"hidden_step": float(steps["hidden"]), "readout_step": float(steps["readout"]),
                             "skipped": str(exc)})
            return None


def calibrate_steps(scorer: _Scorer, start: dict[str, float], layers=LAYERS) -> dict[str, float]:
    """Coordinate search per layer (hidden, then readout): a coarse grid of steps around the start,
    then two refinements around the best. The start is evaluated first and kept unless beaten, so
    the result is never less accurate than the start on the calibration set."""
    steps = dict(start)
    for layer in layers:
        base = steps[layer]
        best_q, best = base, scorer.rank(steps, layer)
        candidates = [base * 2.0 ** k for k in COARSE_EXPONENTS]
        for q in candidates:
            s = scorer.try_rank({**steps, layer: q}, layer)
            if s is not None and s > best:
                best_q, best = q, s
        for delta in REFINE_EXPONENTS:
            centre = best_q
            for sign in (-1, 1):
                q = centre * 2.0 ** (sign * delta)
                s = scorer.try_rank({**steps, layer: q}, layer)
                if s is not None and s > best:
                    best_q, best = q, s
        steps[layer] = best_q
    return steps


# ---------------------------------------------------------------------------------------- entry point

def quantize(net: Network, *, weight_bits: int = 8, strategy: str = "percentile", calibration=None,
             clip: bool = False, steps: dict[str, float] | None = None, evaluate: Evaluate | None = None,
             float_predictions: np.ndarray | None = None, batch_size: int = 64
             ) -> tuple[FixedPointNetwork, QuantizationReport]:
    """Quantize a float network to Loihi 2 fixed point.

    calibration: a SpikeDataset; required for strategy="calibrate", optional otherwise (then the
    report gives float and fixed-point accuracy on it). evaluate: fixed-point network ->
    predictions on the calibration set (default: the bit-exact emulator). float_predictions: the
    float model's predictions on it (default: computed with the float model). steps: force the
    step of "hidden" and/or "readout" (weights beyond the range then need clip=True).
    """
    if strategy not in STRATEGIES:
        raise QuantizationError(f"unknown scale strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if isinstance(weight_bits, bool) or not isinstance(weight_bits, int) or not 1 <= weight_bits <= MAX_WEIGHT_BITS:
        raise QuantizationError(f"weight bits {weight_bits!r} outside 1..{MAX_WEIGHT_BITS} "
                                f"(Loihi 2 synapses hold at most {MAX_WEIGHT_BITS}-bit weights)")
    steps = dict(steps or {})
    unknown = set(steps) - set(LAYERS)
    bad = [k for k, v in steps.items() if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0)]
    if unknown or bad:
        raise QuantizationError(f"steps must map 'hidden'/'readout' to positive numbers, got {steps!r}")
    if strategy == "calibrate" and calibration is None:
        raise QuantizationError("strategy 'calibrate' needs a calibration data set (--dataset/--split/--limit)")
    if calibration is not None:
        _check_calibration(net, calibration)

    sw = ScaledWeights.of(net)
    start = {name: steps.get(name, percentile_step(sw.layer(name), weight_bits)) for name in LAYERS}
    forced = tuple(steps)
    scorer = None
    if calibration is not None:
        if float_predictions is None:
            float_predictions = _float_predictions(net, calibration, batch_size)
        if np.shape(float_predictions) != (len(calibration),):
            raise QuantizationError(f"float_predictions has shape {np.shape(float_predictions)}, expected "
                                    f"({len(calibration)},) for the calibration set")
        scorer = _Scorer(net, weight_bits, clip, evaluate or _emulator_evaluate(calibration, batch_size),
                         np.asarray(calibration.labels), np.asarray(float_predictions))
    if strategy == "calibrate":
        build(net, start, weight_bits, clip=clip, forced=forced)   # raises early on unrepresentable values
        chosen = calibrate_steps(scorer, start, [name for name in LAYERS if name not in forced])
    else:
        chosen = start

    metadata = {
        "source": "eventprop_pipeline.Network",
        "params": net.params.to_dict(),
        "provenance": net.provenance,
        "weight_scale": (1.0 - net.params.alpha) * net.params.i_scale,
        "quantization": {"strategy": strategy, "weight_bits": weight_bits, "clip": clip,
                         "steps": {k: float(v) for k, v in chosen.items()}},
    }
    built = build(net, chosen, weight_bits, clip=clip, forced=forced, metadata=metadata)
    fx = built.fxnet
    report = _report(net, built, sw, strategy, weight_bits, clip)
    if scorer is not None:
        chosen_result = scorer.result(chosen)
        report.n_calibration = len(scorer.labels)
        report.float_accuracy = float(np.mean(scorer.float_pred == scorer.labels))
        report.fixed_accuracy = chosen_result["accuracy"]
        report.agreement = chosen_result["agreement"]
        if not forced:
            report.percentile_accuracy = scorer.result(start)["accuracy"]
        report.search = list(scorer.log) if strategy == "calibrate" else []
    return fx, report


def _report(net: Network, built: _Built, sw: ScaledWeights, strategy: str, bits: int, clip: bool
            ) -> QuantizationReport:
    fx = built.fxnet
    layers = [layer_report(name, layer, sw.layer(name), built.clipped[name], net.params.v_thresh)
              for name, layer in zip(LAYERS, fx.layers)]
    report = QuantizationReport(strategy=strategy, weight_bits=bits, clip=clip, layers=layers,
                                clipped_params=built.clamped)
    for r in layers:
        if r.u_wrap_risk:
            msg = (f"{r.name} layer: {r.neurons_at_wrap_risk} neuron(s) could wrap u around 24 bits in the worst "
                   f"case (every same-sign input firing every step: |u| up to {r.worst_case_u:.3g} >= 2^23); "
                   f"real inputs are far sparser, check the fixed-point accuracy")
            report.warnings.append(msg)
            warnings.warn(msg, UWrapWarning, stacklevel=3)
    return report


def _check_calibration(net: Network, data) -> None:
    if data.n_channels != net.n_input:
        raise QuantizationError(f"calibration data {data.name}: {data.n_channels} channels, "
                                f"but the network has {net.n_input} inputs")
    if len(data) == 0:
        raise QuantizationError(f"calibration data {data.name} is empty")
    if data.timesteps != net.params.timesteps:
        raise QuantizationError(f"calibration data {data.name}: {data.timesteps} time steps, "
                                f"but the network runs {net.params.timesteps}")


def _float_predictions(net: Network, data, batch_size: int) -> np.ndarray:
    from eventprop_pipeline.evaluation import evaluate_float   # torch, imported only when needed

    return evaluate_float(net, data, batch_size=batch_size, device="cpu").pred


def _emulator_evaluate(data, batch_size: int) -> Evaluate:
    try:
        from .emulator import emulate
    except ImportError as exc:
        raise QuantizationError(f"the fixed-point emulator is not available ({exc}); "
                                f"pass evaluate=... to quantize()") from None

    def evaluate(fx: FixedPointNetwork) -> np.ndarray:
        return np.asarray(emulate(fx, data, batch_size=batch_size).pred)

    return evaluate
