"""Which convention (docs/nir.md) and time step a NIR graph follows: from this project's metadata, from
options, or recognised from the parameters that other exporters write.

Exporters disagree: snnTorch writes r = tau_mem/dt and w_in = tau_syn/dt with its fixed dt = 1e-4 s
(a forward-Euler reading), Norse writes r = 1 and w_in = 1 and no dt (also Euler, dt = 0.001 s by
default), this project writes its convention and dt in the graph metadata. A graph that says nothing
and has r = 1 cannot tell its time step: then `--dt` must be given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import NirGraphError
from .mapping import CONVENTIONS, MS_PER_UNIT, NirNeuron


@dataclass(frozen=True)
class Convention:
    name: str          # one of CONVENTIONS
    dt: float          # simulation step, in time_unit
    time_unit: str     # "s" or "ms"
    reason: str        # how it was determined, for the user


def meta_value(metadata: dict, key: str):
    """A metadata entry as a plain Python value (h5py returns bytes and numpy scalars)."""
    value = metadata.get(key) if isinstance(metadata, dict) else None
    if isinstance(value, bytes):
        value = value.decode("utf8", "replace")
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    return value


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0)


def detect_convention(source: str, metadata: dict, hidden: NirNeuron, *, convention: str | None = None,
                      dt: float | None = None, time_unit: str | None = None) -> Convention:
    """Options win over metadata, metadata over what the parameters suggest."""
    reasons = []
    unit = time_unit or meta_value(metadata, "time_unit") or "s"
    if unit not in MS_PER_UNIT:
        raise NirGraphError(f"{source}: time unit {unit!r} is not supported (use s or ms, e.g. --time-unit s)")

    name = convention if convention not in (None, "auto") else meta_value(metadata, "convention")
    if name is not None and name not in CONVENTIONS:
        raise NirGraphError(f"{source}: unknown convention {name!r} (give --convention {' or '.join(CONVENTIONS)})")
    if name is not None:
        reasons.append(f"convention {name} from {'the option' if convention not in (None, 'auto') else 'the metadata'}")
    elif not _close(hidden.r, 1.0):
        name = "discrete"
        reasons.append("convention discrete (forward Euler) recognised from r != 1 (r = tau_mem/dt, as snnTorch writes)")
    elif _close(hidden.w_in, hidden.tau_syn) and not _close(hidden.tau_syn, 1.0):
        name = "continuous"
        reasons.append("convention continuous recognised from r = 1, w_in = tau_syn")
    else:
        name = "discrete"
        reasons.append("convention discrete (forward Euler, as Norse reads r = 1, w_in = 1) assumed")

    step = dt if dt is not None else meta_value(metadata, "dt")
    if dt is not None:
        reasons.append(f"dt {dt:g} {unit} from the option")
    elif step is not None:
        reasons.append(f"dt {step:g} {unit} from the metadata")
    elif name == "discrete" and not _close(hidden.r, 1.0):
        step = hidden.tau_mem / hidden.r
        reasons.append(f"dt {step:g} {unit} recognised from r = tau_mem/dt")
    else:
        raise NirGraphError(f"{source}: the graph does not say its time step and its parameters (r = {hidden.r:g}) "
                            f"do not show it: give --dt in {unit} (Norse's exporter assumes 0.001 s, "
                            f"snnTorch's 0.0001 s)")
    if not isinstance(step, (int, float)) or not math.isfinite(step) or step <= 0:
        raise NirGraphError(f"{source}: time step dt = {step!r} must be a positive number")
    return Convention(name, float(step), unit, "; ".join(reasons))
