"""Constants that tie this engine's discrete adjoint to mlGeNN's (docs/regulariser.md).

The engines keep A = dL/dV and Bq = dL/du (u: synaptic input). mlGeNN keeps LambdaV = -kappa A and
LambdaI = -kappa rho Bq, with the two numbers below, so its weight gradient -tau_syn LambdaI is
(1 - alpha) / dt (about 1 / tau_mem) times ours: a scale Adam does not see.
"""
from __future__ import annotations

from eventprop_core.params import ModelParams


def mlgenn_scale(p: ModelParams) -> float:
    """kappa = (1 - alpha) / (tau_mem dt): mlGeNN's LambdaV is -kappa times our dL/dV (its readout drive
    g / (tau_mem B T dt) enters LambdaV with weight 1 - alpha, ours g / (B T) with weight 1)."""
    return (1.0 - p.alpha) / (p.tau_mem * p.dt)


def jump_ratio(p: ModelParams) -> float:
    """rho in the jump term sum_post W (A_post - rho Bq_post): (1 - beta) / ((1 - alpha) IScale).

    Continuous Eventprop has tau_mem / tau_syn here; this value tends to it as dt -> 0. With it the
    term is exactly (Bq_post[k+1] - Bq_post[k+2]) / ((1 - alpha) IScale), the discrete change of the
    post-synaptic sensitivity over one step, which vanishes for a steady readout error as in mlGeNN.
    With tau_mem / tau_syn the term keeps a residual of about (1 - (1 - alpha) tau_mem / dt) A_post
    (2.5 % of A at dt = 1, tau_mem = 20) that outweighs the true O(tau / T) signal: the loss then
    drives hidden neurons about 0.006 T times harder than in mlGeNN and the spike regulariser is
    relatively 0.17x as strong at T = 1000.
    """
    return (1.0 - p.beta) / ((1.0 - p.alpha) * p.i_scale)
