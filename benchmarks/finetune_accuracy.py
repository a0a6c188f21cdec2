"""Fine-tuning benchmark: emulator accuracy of few-bit exports before and after hardware-in-the-loop
fine-tuning (`eventprop finetune`), against the float model, and against a float control run: the
same loop (same batches, epochs, Adam step in quantization levels, no augmentation, best epoch on
the same validation hold-out) with the float model instead of the fixed-point network in the loop.
The control separates what fine-tuning gains by training longer from what it gains by training on
the fixed-point network.

Prints `name: value` lines (accuracies in %, on the test split).

    .venv/bin/python benchmarks/finetune_accuracy.py MODEL --dataset shd --data-root DIR \\
        [--bits 2,4] [--epochs 10] [--out-dir DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def emit(name: str, value) -> None:
    if isinstance(value, float):
        value = f"{value:.4g}"
    print(f"{name}: {value}", flush=True)


def float_control(cfg, log=lambda *a: None) -> float:
    """The fine-tuning loop with the float model in it; test accuracy of its best validation epoch."""
    from eventprop_pipeline.data.batching import batch_indices
    from eventprop_pipeline.evaluation import evaluate_float
    from eventprop_pipeline.eventprop import LossOptions, compute_batch
    from eventprop_pipeline.eventprop.loss_terms import cross_entropy
    from eventprop_pipeline.finetune.run import _initial_fixed_point, _load_data
    from eventprop_pipeline.finetune.grid import Grid
    from eventprop_core.network import Network, load_network
    from eventprop_pipeline.training.adam import AdamState, adam_step

    net = load_network(cfg.model)
    data = _load_data(cfg, net)
    template, _ = _initial_fixed_point(cfg, net, data)       # same grid units, so the same lr means the same
    grid = Grid(template, (1.0 - net.params.alpha) * net.params.i_scale)
    shadow = grid.shadow_of(net)
    adam = AdamState.zeros_like(shadow)
    options = LossOptions(reg_lambda_upper=cfg.reg_lambda_upper, reg_nu_upper=cfg.reg_nu_upper)

    def network(s):
        return Network({k: s[k] * grid.step(k) / grid.weight_scale for k in s}, net.params)

    def validation(s):
        r = evaluate_float(network(s), data.valid, device="cpu")
        return r.accuracy, -float(cross_entropy(r.score.astype(np.float64), data.valid.labels).mean())

    best, best_shadow = validation(shadow), {k: v.copy() for k, v in shadow.items()}
    for epoch in range(1, cfg.epochs + 1):
        for idx in batch_indices(len(data.train), cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch):
            batch = data.train.subset(idx)
            r = compute_batch(network(shadow), batch, batch.labels, options, device="cpu")
            grads = {k: np.asarray(g, np.float64) * grid.step(k) / grid.weight_scale for k, g in r.grads.items()}
            adam_step(shadow, grads, adam, cfg.adam_lr, beta1=cfg.adam_beta1, beta2=cfg.adam_beta2, eps=cfg.adam_eps)
        v = validation(shadow)
        log(f"float control epoch {epoch}: valid {100 * v[0]:.1f}%")
        if v > best:
            best, best_shadow = v, {k: x.copy() for k, x in shadow.items()}
    return evaluate_float(network(best_shadow), data.test, device="cpu").accuracy


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--data-root")
    p.add_argument("--bits", default="2,4")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", default="auto", help="Adam step in quantization levels; one value, or one per --bits "
                                                "(default auto: finetune's default, 0.02 * 2^(bits - 2))")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", help="keep the fine-tuning runs here (default: a temporary folder)")
    p.add_argument("--no-control", action="store_true", help="skip the float control run")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from eventprop_pipeline.finetune import FinetuneConfig, finetune

    quiet = dict(progress=False, log=lambda *a, **k: None)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out_dir or tmp)
        bits_list = [int(b) for b in args.bits.split(",")]
        lrs = [None if x == "auto" else float(x) for x in args.lr.split(",")]
        lrs = lrs * len(bits_list) if len(lrs) == 1 else lrs
        for bits, lr in zip(bits_list, lrs):
            cfg = FinetuneConfig(model=args.model, weight_bits=bits, epochs=args.epochs, lr=lr, seed=args.seed,
                                 dataset=args.dataset, data_root=args.data_root)
            t0 = time.perf_counter()
            s = finetune(cfg, out / f"finetune_{bits}bit", force=True, **quiet)
            float_acc = s.float_test_accuracy
            emit("float_accuracy", 100 * float_acc)
            emit(f"emulator_{bits}bit_before", 100 * s.emulator_test_accuracy_before)
            emit(f"emulator_{bits}bit_after", 100 * s.emulator_test_accuracy)
            emit(f"agreement_{bits}bit_before_after", f"{100 * s.agreement_before:.2f} -> {100 * s.agreement:.2f}")
            emit(f"gap_to_float_{bits}bit_pp_before", 100 * (float_acc - s.emulator_test_accuracy_before))
            emit(f"gap_to_float_{bits}bit_pp_after", 100 * (float_acc - s.emulator_test_accuracy))
            emit(f"best_epoch_{bits}bit", s.best_epoch)
            emit(f"lr_{bits}bit_levels", cfg.adam_lr)
            emit(f"finetune_seconds_{bits}bit", time.perf_counter() - t0)
            if not args.no_control:     # the same loop and learning rate (in this grid's levels), float model
                t0 = time.perf_counter()
                control = float_control(cfg)
                emit(f"float_control_{bits}bit_lr_accuracy", 100 * control)
                emit(f"finetuned_minus_float_control_{bits}bit_pp", 100 * (s.emulator_test_accuracy - control))
                emit(f"float_control_seconds_{bits}bit", time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
