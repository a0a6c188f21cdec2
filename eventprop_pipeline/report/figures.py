"""Report figures (matplotlib, Agg backend: no display needed). Each function writes one PNG and
returns its path, or None when the run has no data for it."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from eventprop_core.atomic import atomic_path


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def read_metrics_csv(path) -> dict[str, np.ndarray]:
    """Columns of the trainer's metrics.csv as float arrays (empty dict if the file is absent)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    cols = {}
    for key in rows[0]:
        try:
            cols[key] = np.array([float(r[key]) if r[key] not in ("", None) else np.nan for r in rows])
        except ValueError:
            continue
    return cols


def training_curves(metrics: dict, path: Path) -> Path | None:
    if not metrics or "epoch" not in metrics:
        return None
    plt = _plt()
    ep = metrics["epoch"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    panels = [("loss", [k for k in metrics if "loss" in k]), ("accuracy (%)", [k for k in metrics if "acc" in k]),
              ("spikes per hidden neuron per trial", [k for k in metrics if "spike" in k])]
    for ax, (ylabel, keys) in zip(axes, panels):
        for k in keys:
            y = metrics[k] * (100 if "acc" in k else 1)
            ax.plot(ep, y, marker="o", ms=3, label=k.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if keys:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("Training curves (from train/metrics.csv)")
    return _save(fig, path)


def hidden_raster(float_raster: np.ndarray, fixed_raster: np.ndarray | None, offset: int, path: Path,
                  title: str) -> Path:
    """float_raster (T, H) bool; fixed_raster (T+2, H) bool in Lava steps, shifted by -offset to float steps."""
    plt = _plt()
    rows = 2 if fixed_raster is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 3.0 * rows), sharex=True, squeeze=False)
    t, n = np.nonzero(float_raster)
    axes[0, 0].scatter(t, n, s=1.5, c="tab:blue", marker="|")
    axes[0, 0].set_title(f"float model: {len(t)} hidden spikes")
    if fixed_raster is not None:
        t2, n2 = np.nonzero(fixed_raster)
        axes[1, 0].scatter(t2 - offset, n2, s=1.5, c="tab:red", marker="|")
        axes[1, 0].set_title(f"fixed point (emulator = Lava): {len(t2)} hidden spikes")
    for ax in axes[:, 0]:
        ax.set_ylabel("hidden neuron")
        ax.set_xlim(0, float_raster.shape[0])
    axes[-1, 0].set_xlabel("time step (float model's steps)")
    fig.suptitle(title)
    return _save(fig, path)


def readout_traces(float_trace: np.ndarray, fixed_trace: np.ndarray, label: int, path: Path, title: str) -> Path:
    """float_trace (T, O) float V; fixed_trace (T, O): the integer readout v mapped to float units."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4))
    O = float_trace.shape[1]
    winner = int(np.argmax(float_trace.sum(axis=0)))
    for o in range(O):
        strong = o in (label, winner)
        color = "tab:green" if o == label else ("tab:orange" if o == winner else "0.7")
        ax.plot(float_trace[:, o], color=color, lw=1.6 if strong else 0.6,
                label=f"float, class {o}{' (true)' if o == label else ''}" if strong else None)
        ax.plot(fixed_trace[:, o], color=color, lw=1.0 if strong else 0.5, ls="--",
                label=f"fixed point, class {o}" if strong else None)
    ax.set_xlabel("time step")
    ax.set_ylabel("readout membrane V (float units)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return _save(fig, path)


def weight_histogram(weights: dict, grid: dict, path: Path) -> Path:
    """weights: name -> float array; grid: name -> (step in float weight units, n_levels, clip_lo, clip_hi)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(weights), figsize=(4.2 * len(weights), 3.4), squeeze=False)
    for ax, (name, w) in zip(axes[0], weights.items()):
        w = np.asarray(w).ravel()
        step, lo, hi = grid[name]
        ax.hist(w, bins=120, color="tab:blue", alpha=0.75)
        levels = np.arange(np.ceil(w.min() / step), np.floor(w.max() / step) + 1) * step
        if len(levels) <= 80:
            for x in levels:
                ax.axvline(x, color="tab:red", lw=0.4, alpha=0.5)
        else:
            ax.plot(levels, np.zeros_like(levels), "|", color="tab:red", ms=8)
        for x in (lo, hi):
            if w.min() - step <= x <= w.max() + step:
                ax.axvline(x, color="k", ls="--", lw=1)
        ax.set_title(f"{name}: grid step {step:.3g}")
        ax.set_xlabel("float weight")
    axes[0, 0].set_ylabel("count")
    fig.suptitle("Float weights and the fixed-point grid (red: representable levels, dashed: clip range)", y=1.04)
    return _save(fig, path)


def accuracy_vs_bits(rows: list[dict], float_accuracy: float, path: Path) -> Path | None:
    ok = [r for r in rows if r.get("accuracy") is not None]
    if not ok:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    bits = [r["weight_bits"] for r in ok]
    ax.plot(bits, [100 * r["accuracy"] for r in ok], "o-", color="tab:red", label="fixed point (emulator)")
    ax.axhline(100 * float_accuracy, color="tab:blue", ls="--", label="float model")
    ax.set_xlabel("weight bits")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(sorted(set(bits)))
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Accuracy vs weight bits (n={ok[0].get('n', '?')})")
    return _save(fig, path)


def confusion_matrices(mats: dict, path: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, len(mats), figsize=(5 * len(mats), 4.3), squeeze=False)
    for ax, (name, m) in zip(axes[0], mats.items()):
        im = ax.imshow(m, cmap="Blues")
        ax.set_title(name)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def activity_scatter(float_spikes: np.ndarray, fixed_spikes: np.ndarray, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.scatter(float_spikes, fixed_spikes, s=6, alpha=0.6)
    hi = max(float(np.max(float_spikes, initial=1)), float(np.max(fixed_spikes, initial=1)))
    ax.plot([0, hi], [0, hi], "k--", lw=0.8)
    ax.set_xlabel("hidden spikes per sample, float")
    ax.set_ylabel("hidden spikes per sample, fixed point")
    ax.set_title("Activity per test sample")
    return _save(fig, path)
