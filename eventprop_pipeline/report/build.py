"""`build_report(run_dir)`: report.md, figures/*.png and results/summary.json from saved results only
(no training, no Lava): `eventprop compare RUN_DIR` calls it to rebuild a report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from netx_export.fixed_point import STATE_SCALE

from eventprop_core.atomic import atomic_write_text
from eventprop_core.network import load_network
from eventprop_core.provenance import utc_now
from ..run_files import load_arrays, load_json, save_json
from . import figures as fg
from .summary import compute_summary, confusion_matrix
from .tables import accuracy_rows, accuracy_table_text, markdown_table

SUMMARY_FILE = "summary.json"


def load_summary(run_dir) -> dict:
    return load_json(Path(run_dir) / "results" / SUMMARY_FILE)


def effective_step(w_float_post_pre: np.ndarray, w_int: np.ndarray) -> float:
    """Least-squares float value of one integer weight unit (independent of the quantizer's conventions)."""
    wi = np.asarray(w_int, dtype=np.float64)
    denom = float(np.sum(wi * wi))
    return float(np.sum(np.asarray(w_float_post_pre, np.float64) * wi) / denom) if denom > 0 else float("nan")


def fixed_readout_in_float_units(fixed_v: np.ndarray, readout_step: float, timesteps: int) -> np.ndarray:
    """Integer readout v per Lava step -> float V per float-model step.

    readout_step is the quantizer's step q of the readout layer, in the scaled units Lava integrates
    ((1 - alpha) IScale times the float weight), so V_float = v_int * q / 64 (Lava shifts by 6 bits).
    Trace index j is Lava step j + 1, which matches float step j (netx_export.emulator).
    """
    v = np.asarray(fixed_v, dtype=np.float64) * (readout_step / STATE_SCALE)
    return v[LAVA_TRACE_OFFSET:LAVA_TRACE_OFFSET + timesteps]


LAVA_TRACE_OFFSET = 0


def _figures(run_dir: Path, s: dict) -> dict[str, Path]:
    figdir = run_dir / "figures"
    res = run_dir / "results"
    out = {}
    p = fg.training_curves(fg.read_metrics_csv(run_dir / "train" / "metrics.csv"), figdir / "training_curves.png")
    if p:
        out["training_curves"] = p
    net = load_network(run_dir / "model.npz")
    fx = None
    if (run_dir / "network.net").is_file():
        from netx_export.hdf5_io import read_netx
        fx = read_netx(run_dir / "network.net")
    inspect_path = res / "inspect.npz"
    if inspect_path.is_file() and fx is not None:
        ins = load_arrays(inspect_path)
        i, label = int(ins["sample"]), int(ins["label"])
        out["raster"] = fg.hidden_raster(ins["float_raster"], ins.get("fixed_raster"), LAVA_TRACE_OFFSET,
                                         figdir / "hidden_raster.png", f"Hidden spikes, test sample {i} (class {label})")
        fixed = fixed_readout_in_float_units(ins["fixed_v"], fx.readout.step, ins["float_trace"].shape[0])
        out["traces"] = fg.readout_traces(ins["float_trace"], fixed, label, figdir / "readout_traces.png",
                                          f"Readout voltage, test sample {i} (class {label}): float (solid) vs fixed point (dashed)")
    if fx is not None:
        weights, grid = {}, {}
        for name, w, wi in (("input_hidden", net.weights["input_hidden"].T, fx.hidden.weight),
                            ("hidden_hidden", net.weights["hidden_hidden"].T, fx.hidden.weight_rec),
                            ("hidden_output", net.weights["hidden_output"].T, fx.readout.weight)):
            if wi is None:
                continue
            step = effective_step(net.weights["input_hidden"].T, fx.hidden.weight) if name == "hidden_hidden" else \
                effective_step(w, wi)
            bits = fx.readout.weight_bits if name == "hidden_output" else fx.hidden.weight_bits
            weights[name] = w
            grid[name] = (step, -(2 ** (bits - 1)) * step, (2 ** (bits - 1) - 1) * step)
        out["weights"] = fg.weight_histogram(weights, grid, figdir / "weight_histogram.png")
    if s.get("sweep"):
        p = fg.accuracy_vs_bits(s["sweep"]["rows"], s["accuracy"]["float"]["accuracy"], figdir / "accuracy_vs_bits.png")
        if p:
            out["bits"] = p
    fl, em = load_arrays(res / "float.npz"), load_arrays(res / "emulator.npz")
    C = s["n_classes"]
    out["confusion"] = fg.confusion_matrices({"float model": confusion_matrix(fl["pred"], fl["label"], C),
                                              "fixed point (emulator)": confusion_matrix(em["pred"], em["label"], C)},
                                             figdir / "confusion.png")
    out["activity"] = fg.activity_scatter(fl["hidden_spikes"], em["hidden_spikes"], figdir / "activity.png")
    return out


def _fmt(x, spec=".1f"):
    return "n/a" if x is None else format(x, spec)


def render_markdown(run_dir: Path, s: dict, figs: dict[str, Path]) -> str:
    rel = {k: p.relative_to(run_dir).as_posix() for k, p in figs.items()}
    m, acc, ag, lava = s["model"], s["accuracy"], s["agreement"], s["lava"]
    L = [f"# Float vs fixed point vs Lava: comparison report",
         "",
         f"Run folder `{run_dir}`; network {m['input']} -> {m['hidden']} (recurrent LIF) -> {m['output']} (LI readout), "
         f"T = {m['timesteps']} steps of {m['dt']:g} ms. Generated {utc_now()} "
         f"from the saved results in `results/` (rebuild with `eventprop compare {run_dir}`).",
         "", "## Accuracy", "",
         markdown_table(["backend", "n", "accuracy", "note"], [list(r) for r in accuracy_rows(s)]), ""]
    if s["conversion_loss_pp"] is not None:
        L.append(f"Conversion loss (float - emulator, whole test split): **{s['conversion_loss_pp']:+.2f} percentage points**.")
    if lava["status"] == "identical":
        chk = lava["check"]
        L.append(f"Lava (`Loihi2SimCfg(select_tag='fixed_pt')`) reproduced the emulator bit for bit on all "
                 f"{chk['n_samples']} checked samples (readout voltage on every step, hidden spike counts), "
                 f"{_fmt(chk.get('seconds_per_sample'), '.2f')} s per sample in Lava.")
    elif lava["status"] == "skipped":
        L.append(f"**The Lava check was skipped ({lava.get('reason') or 'no reason recorded'}): the fixed-point "
                 f"results are NOT verified in Lava.**")
    elif lava["status"] == "MISMATCH":
        L.append(f"**Lava and the emulator DIFFER**: {lava['check'].get('first_mismatch')}")
    L += ["", "## Per-sample agreement", "",
          f"- float vs emulator: same predicted class on {100 * ag['float_vs_emulator']:.2f} % of {ag['n']} samples "
          f"({ag['n_disagree']} differ; float right and emulator wrong: {ag['float_right_emulator_wrong']}, "
          f"the reverse: {ag['float_wrong_emulator_right']}).",
          ]
    if ag["disagree_samples"]:
        L.append(f"- first differing samples: {', '.join(map(str, ag['disagree_samples']))}")
    if lava.get("lava_vs_emulator_pred") is not None:
        L.append(f"- Lava vs emulator: {100 * lava['lava_vs_emulator_pred']:.2f} %; Lava vs float: "
                 f"{100 * lava['lava_vs_float_pred']:.2f} % (samples {', '.join(map(str, lava['indices'][:MAX_IDX]))}"
                 f"{' ...' if len(lava['indices']) > MAX_IDX else ''}).")
    if "confusion" in rel:
        L += ["", f"![confusion matrices]({rel['confusion']})"]
    a = s["activity"]
    L += ["", "## Activity", "",
          "Synaptic operations count one operation per spike per target neuron: each input spike reaches all "
          "hidden neurons; each hidden spike all hidden neurons (recurrence) and all readout neurons.", "",
          markdown_table(["per sample (test mean)", "float", "fixed point", "difference"], [
              ["hidden spikes", _fmt(a["float"]["hidden_spikes_mean"]), _fmt(a["emulator"]["hidden_spikes_mean"]),
               _fmt(a["difference"]["hidden_spikes_mean"], "+.1f")],
              ["spikes per hidden neuron", _fmt(a["float"]["spikes_per_neuron"], ".2f"),
               _fmt(a["emulator"]["spikes_per_neuron"], ".2f"), _fmt(a["difference"]["spikes_per_neuron"], "+.2f")],
              ["synaptic operations", _fmt(a["float"]["synops_mean"], ".3g"), _fmt(a["emulator"]["synops_mean"], ".3g"),
               _fmt(a["difference"]["synops_mean"], "+.3g")],
              ["input spikes", _fmt(a["float"]["input_spikes_mean"]), _fmt(a["emulator"]["input_spikes_mean"]), "0"],
              ["neuron updates (T x neurons)", a["float"]["neuron_updates"], a["emulator"]["neuron_updates"], "0"]])]
    if "activity" in rel:
        L += ["", f"![activity]({rel['activity']})"]
    c, t = s["costs"], s["timing"]
    ce = c["emulator"]
    L += ["", "## Cost per inference: ESTIMATES (not measured on Loihi)", "",
          "Estimated from the fixed-point network's counted operations times published per-operation figures. "
          "Excludes static/idle power, host I/O and per-step barrier synchronisation; assumes all work on one "
          "core, so the latency is a serial upper bound on compute time.", "",
          markdown_table(["quantity", "estimate", "basis"], [
              ["energy per inference", f"{ce['energy_uj']:.1f} uJ",
               "synaptic ops x 23.6 pJ + neuron updates x 81 pJ + spikes x 1.7 pJ (Loihi, Davies et al. 2018)"],
              ["latency per inference, Loihi", f"{ce['latency_ms_loihi']:.2f} ms",
               "synaptic ops x 3.5 ns + neuron updates x 8.4 ns, one core (Davies et al. 2018)"],
              ["latency per inference, Loihi 2", f"{ce['latency_ms_loihi2']:.2f} ms",
               "Loihi figure / 10 (\"up to 10x faster\": Intel 2021 brief; Orchard et al. 2021)"],
              ["Jetson Orin Nano (reference, measured there)", f"{c['jetson_reference']['ms_per_sample']:.0f} ms, "
               f"{c['jetson_reference']['mj_per_sample']:.0f} mJ", "docs/reference_figures.md (reference study, batch 1)"],
              ["energy ratio Jetson / Loihi estimate", f"{c['jetson_reference']['mj_per_sample'] * 1e3 / ce['energy_uj']:.0f}x",
               "dynamic energy only; the reference study reports ~200x including everything"]]),
          "", "Sources:", ""] + [f"- {src}" for src in c["sources"]]
    L += ["", "## Measured: float model on this machine", "",
          markdown_table(["quantity", "value"], [
              ["machine", t.get("machine", "?")],
              ["test-split evaluation", f"{t['n']} samples in {t['float_seconds']:.2f} s "
               f"({_fmt(t.get('float_samples_per_s'), '.1f')} samples/s, batch {t.get('float_batch_size')})"],
              [f"latency, batch 1 (median of {t.get('latency_n', '?')} samples)",
               f"{_fmt(t.get('batch1_ms_median'), '.2f')} ms per sample"],
              ["fixed-point emulator", f"{t['n']} samples in {t['emulator_seconds']:.2f} s "
               f"({_fmt(t.get('emulator_samples_per_s'), '.1f')} samples/s)"]])]
    L += ["", "## Figures", ""]
    captions = {"training_curves": "Training curves (loss, accuracy, spikes per neuron per epoch)",
                "raster": "Hidden-layer raster, float vs fixed point, one test sample",
                "traces": "Readout voltage, float vs fixed point (integer v mapped to float units), same sample",
                "weights": "Weight histograms with the quantization grid",
                "bits": "Accuracy vs weight bits (emulator)"}
    for key, cap in captions.items():
        if key in rel:
            L += [f"### {cap}", "", f"![{cap}]({rel[key]})", ""]
    q = s.get("quantization")
    if q:
        L += ["## Quantization", "", _quantization_table(q), ""]
    if s.get("sweep"):
        L += ["## Accuracy vs weight bits", "", markdown_table(["weight bits", "accuracy (emulator)", "n / error"], [
            [r["weight_bits"], _fmt(None if r.get("accuracy") is None else 100 * r["accuracy"], ".2f") + " %",
             r.get("n", r.get("error", ""))] for r in s["sweep"]["rows"]]), ""]
    return "\n".join(L) + "\n"


MAX_IDX = 16


QUANT_COLUMNS = ("name", "weight_bits", "bits_used", "step", "vth_mant", "i_decay", "v_decay", "clipped_fraction",
                 "rel_rms_error", "max_rel_error", "u_wrap_risk")


def _quantization_table(q: dict) -> str:
    """Per-layer table of the quantizer's report (quantization.json holds everything)."""
    layers = q.get("layers") if isinstance(q, dict) else None
    if not isinstance(layers, list) or not all(isinstance(r, dict) for r in layers):
        return "See `quantization.json`."
    cols = [c for c in QUANT_COLUMNS if any(c in r for r in layers)]
    fmt = (lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))
    text = markdown_table(cols, [[fmt(r.get(c, "")) for c in cols] for r in layers])
    extra = {k: q[k] for k in ("strategy", "clip", "n_calibration", "float_accuracy", "fixed_accuracy",
                                 "agreement", "percentile_agreement")
             if q.get(k) is not None}
    return text + "\n\n" + ", ".join(f"{k}: {fmt(v)}" for k, v in extra.items()) + " (all fields: `quantization.json`)"


def build_report(run_dir) -> dict:
    """Write report.md, figures/ and results/summary.json; return the summary (numbers of the report)."""
    run_dir = Path(run_dir)
    s = compute_summary(run_dir)
    figs = _figures(run_dir, s)
    s["figures"] = {k: p.relative_to(run_dir).as_posix() for k, p in figs.items()}
    s["accuracy_table"] = accuracy_table_text(s)
    atomic_write_text(run_dir / "report.md", render_markdown(run_dir, s, figs))
    save_json(run_dir / "results" / SUMMARY_FILE, s)
    return s
