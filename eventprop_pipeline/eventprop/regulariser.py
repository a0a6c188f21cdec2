"""mlGeNN's hidden spike-count regulariser, expressed as a per-neuron jump of the Eventprop adjoint.

mlGeNN subtracts r_n = lambda (N_n - nu B) / B^2 from LambdaV at every spike of hidden neuron n,
where N_n is the neuron's spike count summed over the batch. This is a heuristic (a spike count
has no gradient): r_n is dR/dN_n of R = lambda/2 sum_n (N_n / B - nu)^2 applied per spike, i.e. the
gradient of r_n * V_n(t_spike) with the spike's own time held fixed. mlGeNN's adjoint is -kappa
times ours (ours is dL/dV), kappa = adjoint_units.mlgenn_scale, so the jump in our units is
r_n / kappa. The regulariser then weighs against the cross-entropy as in mlGeNN because the loss's
own jump term uses mlGeNN's discretisation too (adjoint_units.jump_ratio; docs/regulariser.md).
"""
from __future__ import annotations

import numpy as np

from eventprop_core.params import ModelParams

from .adjoint_units import mlgenn_scale
from .options import LossOptions


def _branch(batch_counts: np.ndarray, B: int, opts: LossOptions) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron: lambda of the active branch and the excess N - nu B it acts on."""
    n = batch_counts.astype(np.float64)
    upper = n > opts.reg_nu_upper * B
    nu_lower = opts.reg_nu_upper if opts.reg_nu_lower is None else opts.reg_nu_lower
    excess = np.where(upper, n - opts.reg_nu_upper * B, n - nu_lower * B)
    lam = np.where(upper, opts.reg_lambda_upper, opts.reg_lambda_lower)
    if opts.reg_nu_lower is not None:
        lam = np.where(upper | (n < nu_lower * B), lam, 0.0)
    return lam, excess


def adjoint_jumps(batch_counts: np.ndarray, B: int, opts: LossOptions, p: ModelParams) -> np.ndarray:
    """Amount added to dL/dV of hidden neuron n at each of its spikes (H,), float64."""
    if not opts.regularised:
        return np.zeros(len(batch_counts))
    lam, excess = _branch(batch_counts, B, opts)
    kappa = mlgenn_scale(p)
    return lam * excess / (B * B) / kappa


def penalty(batch_counts: np.ndarray, B: int, opts: LossOptions, p: ModelParams) -> float:
    """Nominal value lambda/2 sum_n (N_n/B - nu)^2 / kappa, in the units of the loss (reported only)."""
    if not opts.regularised:
        return 0.0
    lam, excess = _branch(batch_counts, B, opts)
    kappa = mlgenn_scale(p)
    return float(0.5 * np.sum(lam * (excess / B) ** 2) / kappa)
