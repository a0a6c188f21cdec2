"""The numbers of the comparison report, computed from a run folder's saved results only."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from eventprop_core.network import load_network
from eventprop_core.errors import RunDirError
from ..run_files import load_arrays, load_json
from .activity import neuron_updates, synaptic_ops
from .costs import JETSON_MJ_PER_SAMPLE, JETSON_MS_PER_SAMPLE, SOURCES, estimate_loihi_cost

MAX_LISTED = 20


def _acc(pred, label) -> dict:
    pred, label = np.asarray(pred), np.asarray(label)
    n = int(len(label))
    correct = int(np.sum(pred == label))
    return {"n": n, "correct": correct, "accuracy": correct / n if n else None}


def _activity(res: dict, n_hidden: int, n_output: int, timesteps: int) -> dict:
    hidden = np.asarray(res["hidden_spikes"], dtype=np.int64)
    syn = synaptic_ops(res["input_spikes"], hidden, n_hidden, n_output)
    return {"hidden_spikes_mean": float(hidden.mean()), "spikes_per_neuron": float(hidden.mean() / n_hidden),
            "synops_mean": float(syn.mean()), "input_spikes_mean": float(np.mean(res["input_spikes"])),
            "neuron_updates": neuron_updates(timesteps, n_hidden, n_output)}


def confusion_matrix(pred, label, n_classes: int) -> np.ndarray:
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (np.asarray(label), np.asarray(pred)), 1)
    return m


def compute_summary(run_dir) -> dict:
    run_dir = Path(run_dir)
    res = run_dir / "results"
    fl, em = load_arrays(res / "float.npz"), load_arrays(res / "emulator.npz")
    if not np.array_equal(fl["label"], em["label"]):
        raise RunDirError(f"{res}: float.npz and emulator.npz hold different test samples; rerun the evaluate stage")
    net = load_network(run_dir / "model.npz")
    H, O, T = net.n_hidden, net.n_output, net.params.timesteps
    timing = load_json(res / "timing.json")
    s = {"model": {"input": net.n_input, "hidden": H, "output": O, "timesteps": T, "dt": net.params.dt}}
    acc = {"float": _acc(fl["pred"], fl["label"]), "emulator": _acc(em["pred"], em["label"])}
    agree = fl["pred"] == em["pred"]
    disagree = np.flatnonzero(~agree)
    s["agreement"] = {"float_vs_emulator": float(agree.mean()), "n": int(len(agree)), "n_disagree": int(len(disagree)),
                      "disagree_samples": disagree[:MAX_LISTED].tolist(),
                      "float_right_emulator_wrong": int(np.sum((fl["pred"] == fl["label"]) & (em["pred"] != em["label"]))),
                      "float_wrong_emulator_right": int(np.sum((fl["pred"] != fl["label"]) & (em["pred"] == em["label"])))}
    s["lava"] = _lava_summary(res, fl, em, acc)
    s["accuracy"] = acc
    fa, ea = acc["float"]["accuracy"], acc["emulator"]["accuracy"]
    s["conversion_loss_pp"] = 100.0 * (fa - ea) if fa is not None and ea is not None else None
    s["activity"] = {"float": _activity(fl, H, O, T), "emulator": _activity(em, H, O, T)}
    s["activity"]["difference"] = {k: s["activity"]["emulator"][k] - s["activity"]["float"][k]
                                   for k in ("hidden_spikes_mean", "spikes_per_neuron", "synops_mean")}
    s["costs"] = {}
    for name in ("float", "emulator"):
        a = s["activity"][name]
        s["costs"][name] = estimate_loihi_cost(a["synops_mean"], a["neuron_updates"],
                                               a["hidden_spikes_mean"] + a["input_spikes_mean"]).to_dict()
    s["costs"]["jetson_reference"] = {"ms_per_sample": JETSON_MS_PER_SAMPLE, "mj_per_sample": JETSON_MJ_PER_SAMPLE}
    s["costs"]["sources"] = SOURCES
    s["timing"] = timing
    sweep_path = res / "sweep.json"
    s["sweep"] = load_json(sweep_path) if sweep_path.is_file() else None
    quant_path = run_dir / "quantization.json"
    s["quantization"] = load_json(quant_path) if quant_path.is_file() else None
    s["n_classes"] = int(max(fl["label"].max(initial=0), fl["pred"].max(initial=0), em["pred"].max(initial=0)) + 1)
    return s


def _lava_summary(res: Path, fl: dict, em: dict, acc: dict) -> dict:
    check_path = res / "lava_check.json"
    if not check_path.is_file():
        return {"status": "not run"}
    check = load_json(check_path)
    if check.get("skipped"):
        return {"status": "skipped", "reason": check.get("reason", "")}
    lv = load_arrays(res / "lava.npz")
    idx = lv["indices"]
    acc["lava"] = _acc(lv["pred"], lv["label"])
    acc["lava_subset_float"] = _acc(fl["pred"][idx], fl["label"][idx])
    acc["lava_subset_emulator"] = _acc(em["pred"][idx], em["label"][idx])
    return {"status": "identical" if check.get("identical") else "MISMATCH", "indices": idx.tolist(),
            "lava_vs_emulator_pred": float(np.mean(lv["pred"] == em["pred"][idx])) if len(idx) else None,
            "lava_vs_float_pred": float(np.mean(lv["pred"] == fl["pred"][idx])) if len(idx) else None,
            "check": check}
