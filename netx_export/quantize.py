"""Float network -> Loihi 2 fixed point (docs/fixed_point.md).

Mapping that reproduces the float model (docs/float_model.md) in Lava's CUBA neuron:
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
  calibrate:  per layer, search q (any real value) around the percentile choice on a calibration
              set, run with the bit-exact emulator, for the most faithful conversion: candidates rank
              by (see SEARCH_CRITERION) agreement with the float model's predictions, then the readout
              score error vs the float model (continuous, so it still ranks candidates when agreement
              saturates; a step must beat the start clearly, not by noise), then the weight error.
              Label accuracy never ranks candidates (it is reported only): picking steps by accuracy
              on labelled data can turn an under-trained model into a different, better-scoring
              network, and "conversion loss" then no longer measures the conversion. The float
              model's scores (or predictions) are passed in by the caller (this package runs no float
              model). The percentile choice is always a candidate and wins ties, so calibrate never
              agrees less with the float model than percentile on the calibration set.
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

from eventprop_core.errors import PipelineError
from eventprop_core.network import Network

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

# fixed-point network -> readout scores (N, n_out) in float-model units, or predictions (N,) only
Evaluate = Callable[[FixedPointNetwork], np.ndarray]
SIGNIFICANCE = 2.0   # standard errors by which a candidate's score error must beat the search's start
SEARCH_CRITERION = ("agreement with the float model's predictions (higher first), then "
                    "score_error = sum|fixed score - float score| / sum|float score| on the "
                    "calibration set (lower), counted only where it beats the layer search's start (the "
                    f"percentile step) by more than {SIGNIFICANCE:g} standard errors of the paired per-sample "
                    "difference (else the start wins), then the searched layer's relative RMS weight error "
                    "(lower); label accuracy is reported, never ranked")


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

def sample_score_errors(fixed: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per sample, sum_c |fixed - reference| / mean_n sum_c |reference| (absolute if reference is 0):
    their mean is the score error.

    Why this measure: the goal is the float model's accuracy, so the search should reproduce the float
    model rather than fit the calibration labels (cross-entropy against labels rewards quantization
    noise that happens to help on a few dozen samples). The readout score carries every sample and
    class, not only the argmax, so it keeps ranking candidates when every one classifies the
    calibration set perfectly, and a smaller error leaves fewer held-out decisions to flip."""
    per_sample = np.abs(fixed - reference).sum(axis=1)
    den = float(np.abs(reference).sum(axis=1).mean())
    return per_sample / den if den > 0 else per_sample


def readout_score_error(fixed: np.ndarray, reference: np.ndarray) -> float:
    """sum |fixed - reference| / sum |reference| over samples and classes (see sample_score_errors)."""
    return float(sample_score_errors(fixed, reference).mean())


def clearly_lower(errors: np.ndarray, start: np.ndarray, k: float = SIGNIFICANCE) -> tuple[float, float, bool]:
    """(mean difference, its standard error, mean + k SE < 0) for paired per-sample errors.

    Why: with a few dozen calibration samples, differences between nearby steps are mostly noise;
    picking the smallest noisy value overfits (the held-out score error then gets worse than the
    percentile step's). Moving away from the start only on a clear gain keeps calibrate at least as
    good as percentile in expectation."""
    d = np.asarray(errors, np.float64) - np.asarray(start, np.float64)
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.inf
    return mean, se, bool(mean + k * se < 0)


class _Scorer:
    """Evaluates candidate steps once each (cached) and ranks them by SEARCH_CRITERION:
    (agreement, -score error if clearly below the start's, start first, -weight error)."""

    def __init__(self, net: Network, bits: int, clip: bool, evaluate: Evaluate, labels: np.ndarray,
                 float_pred: np.ndarray | None, float_scores: np.ndarray | None):
        self.net, self.bits, self.clip, self.evaluate = net, bits, clip, evaluate
        self.labels, self.float_pred = labels, float_pred
        self._float_scores = float_scores
        self.sw = ScaledWeights.of(net)
        self.cache: dict[tuple[float, float], dict] = {}
        self.log: list[dict] = []

    def float_scores(self) -> np.ndarray | None:
        return self._float_scores

    def result(self, steps: dict[str, float], layer: str | None = None) -> dict:
        """The candidate's criteria (cached); {"skipped": why} for steps Loihi cannot represent
        (e.g. a threshold beyond 17 bits)."""
        key = (float(steps["hidden"]), float(steps["readout"]))
        if key in self.cache:
            return self.cache[key]
        entry = {"hidden_step": key[0], "readout_step": key[1], "searched_layer": layer}
        try:
            built = build(self.net, steps, self.bits, clip=self.clip)
        except PipelineError as exc:
            entry["skipped"] = str(exc)
            self.cache[key] = entry
            self.log.append(entry)
            return entry
        pred, score = _predictions_and_scores(self.evaluate(built.fxnet), self.labels, self.net)
        reference = self.float_scores() if score is not None else None
        errors = sample_score_errors(score, reference) if reference is not None else None
        entry.update({"accuracy": float(np.mean(pred == self.labels)),
                      "agreement": (float(np.mean(pred == self.float_pred)) if self.float_pred is not None
                                    else None),
                      "score_error": float(errors.mean()) if errors is not None else None,
                      "hidden_weight_error": _weight_error(built, self.sw, "hidden"),
                      "readout_weight_error": _weight_error(built, self.sw, "readout")})
        self.cache[key] = {**entry, "pred": pred, "sample_errors": errors, "entry": entry}
        self.log.append(entry)
        return self.cache[key]

    def rank(self, steps: dict[str, float], layer: str, start: dict[str, float]) -> tuple | None:
        """The sort key of SEARCH_CRITERION (larger is better) within the search of `layer` that began
        at `start`, or None for a skipped candidate."""
        r, s = self.result(steps, layer), self.result(start, layer)
        if "skipped" in r:
            return None
        if r["score_error"] is None or s["score_error"] is None:   # no scores: weight error decides
            return (r["agreement"], 0.0, 0, -r[f"{layer}_weight_error"])
        is_start = r is s
        if is_start:
            score_error = r["score_error"]
        else:
            diff, std_error, clear = clearly_lower(r["sample_errors"], s["sample_errors"])
            r["entry"].setdefault("vs_start", {"start_hidden_step": s["hidden_step"],
                                               "start_readout_step": s["readout_step"],
                                               "score_error_diff": diff,
                                               "std_error": std_error if math.isfinite(std_error) else None,
                                               "clearly_lower": clear})
            score_error = r["score_error"] if clear else max(r["score_error"], s["score_error"])
        return (r["agreement"], -score_error, int(is_start), -r[f"{layer}_weight_error"])

    def mark(self, steps: dict[str, float], flag: str) -> None:
        key = (float(steps["hidden"]), float(steps["readout"]))
        for entry in self.log:
            if (entry["hidden_step"], entry["readout_step"]) == key and "skipped" not in entry:
                entry[flag] = True


def calibrate_steps(scorer: _Scorer, start: dict[str, float], layers=LAYERS) -> dict[str, float]:
    """Coordinate search per layer (hidden, then readout): a coarse grid of steps around the start,
    then two refinements around the best. The start is evaluated first and kept unless beaten, so
    the result never ranks below the start on the calibration set."""
    steps = dict(start)
    for layer in layers:
        base, layer_start = steps[layer], dict(steps)
        best_q, best = base, scorer.rank(steps, layer, layer_start)
        candidates = [base * 2.0 ** k for k in COARSE_EXPONENTS]
        for q in candidates:
            s = scorer.rank({**steps, layer: q}, layer, layer_start)
            if s is not None and (best is None or s > best):
                best_q, best = q, s
        for delta in REFINE_EXPONENTS:
            centre = best_q
            for sign in (-1, 1):
                q = centre * 2.0 ** (sign * delta)
                s = scorer.rank({**steps, layer: q}, layer, layer_start)
                if s is not None and (best is None or s > best):
                    best_q, best = q, s
        steps[layer] = best_q
    return steps


# ---------------------------------------------------------------------------------------- entry point

def quantize(net: Network, *, weight_bits: int = 8, strategy: str = "percentile", calibration=None,
             clip: bool = False, steps: dict[str, float] | None = None, evaluate: Evaluate | None = None,
             float_predictions: np.ndarray | None = None, float_scores: np.ndarray | None = None,
             batch_size: int = 64) -> tuple[FixedPointNetwork, QuantizationReport]:
    """Quantize a float network to Loihi 2 fixed point.

    calibration: a SpikeDataset; required for strategy="calibrate", optional otherwise (then the
    report gives the fixed-point accuracy on it, and agreement with the float model when its
    scores/predictions are given). evaluate: fixed-point network -> readout scores (N, n_out) in
    float-model units, or predictions (N,), on the calibration set (default: the bit-exact
    emulator's scores). float_scores / float_predictions: the float model's readout scores /
    predictions on the calibration set, computed by the caller (this package runs no float model);
    calibrate needs at least one of them (the predictions default to the argmax of the scores;
    without scores the score error cannot break ties). steps: force the step of "hidden" and/or
    "readout" (weights beyond the range then need clip=True).
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
        labels = np.asarray(calibration.labels)
        if float_scores is not None:
            float_scores = _checked_scores(float_scores, labels, net, "float_scores")
            if float_predictions is None:
                float_predictions = np.argmax(float_scores, axis=1)
        if float_predictions is not None and np.shape(float_predictions) != (len(calibration),):
            raise QuantizationError(f"float_predictions has shape {np.shape(float_predictions)}, expected "
                                    f"({len(calibration)},) for the calibration set")
        if strategy == "calibrate" and float_predictions is None:
            raise QuantizationError("strategy 'calibrate' matches the float model: pass its readout scores on the "
                                    "calibration set as float_scores=... (or its predictions as float_predictions=...)")
        scorer = _Scorer(net, weight_bits, clip, evaluate or _emulator_evaluate(calibration, batch_size),
                         labels, None if float_predictions is None else np.asarray(float_predictions), float_scores)
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
    if calibration is not None:
        metadata["quantization"]["calibration"] = {"data": getattr(calibration, "name", "dense array"),
                                                   "samples": len(calibration)}
    built = build(net, chosen, weight_bits, clip=clip, forced=forced, metadata=metadata)
    fx = built.fxnet
    report = _report(net, built, sw, strategy, weight_bits, clip)
    if scorer is not None:
        chosen_result = scorer.result(chosen)
        report.n_calibration = len(scorer.labels)
        if scorer.float_pred is not None:
            report.float_accuracy = float(np.mean(scorer.float_pred == scorer.labels))
        report.fixed_accuracy = chosen_result["accuracy"]
        report.agreement = chosen_result["agreement"]
        report.score_error = chosen_result["score_error"]
        if not forced:
            report.percentile_accuracy = scorer.result(start)["accuracy"]
            report.percentile_agreement = scorer.result(start)["agreement"]
            report.percentile_score_error = scorer.result(start)["score_error"]
        if strategy == "calibrate":
            if not forced:
                scorer.mark(start, "percentile")
            scorer.mark(chosen, "chosen")
            report.criterion = SEARCH_CRITERION
            report.search = list(scorer.log)
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


def _checked_scores(scores, labels: np.ndarray, net: Network, what: str) -> np.ndarray:
    scores = np.asarray(scores, np.float64)
    if scores.shape != (len(labels), net.n_output) or not np.isfinite(scores).all():
        got = f"shape {scores.shape}" + ("" if np.isfinite(scores).all() else " with non-finite values")
        raise QuantizationError(f"{what}: expected finite readout scores of shape ({len(labels)}, {net.n_output}) "
                                f"for the calibration set, got {got}")
    return scores


def _predictions_and_scores(out, labels: np.ndarray, net: Network) -> tuple[np.ndarray, np.ndarray | None]:
    """An evaluate() result: (N, n_out) scores -> (argmax, scores); (N,) predictions -> (them, None)."""
    out = np.asarray(out)
    if out.ndim == 2:
        scores = _checked_scores(out, labels, net, "evaluate() result")
        return np.argmax(scores, axis=1), scores
    if out.shape != labels.shape:
        raise QuantizationError(f"evaluate() result: expected predictions of shape {labels.shape} or scores of "
                                f"shape ({len(labels)}, {net.n_output}), got shape {out.shape}")
    return out, None


def _emulator_evaluate(data, batch_size: int) -> Evaluate:
    try:
        from .emulator import emulate
    except ImportError as exc:
        raise QuantizationError(f"the fixed-point emulator is not available ({exc}); "
                                f"pass evaluate=... to quantize()") from None

    def evaluate(fx: FixedPointNetwork) -> np.ndarray:
        return np.asarray(emulate(fx, data, batch_size=batch_size).score)

    return evaluate
