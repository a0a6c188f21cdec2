"""Builds NetX files for the runtime tests with h5py directly, from the documented layouts (lava-dl's
netx reader, and ml_genn_netx's, /work/shared/DESIGN.md 12b), independent of this project's writer."""
from __future__ import annotations

import h5py
import numpy as np


def put_type(g, value: str, vlen: bool = False) -> None:
    if vlen:
        g.create_dataset("type", data=np.array([value.encode("ascii")], dtype=h5py.string_dtype("ascii")))
    else:
        g.create_dataset("type", (1,), "S10", [value.encode("ascii")])


def write_raw_netx(path, n_input: int | None, layers: list[dict], *, mlgenn: bool = False):
    """layers: dicts with kind, weight, optional weight_rec, bias, delay, delay_rec, and neuron (a dict of
    iDecay, vDecay, vThMant, or None for no neuron group); optional n (the size, when weight is flat)
    and neuron_type (default CUBA). mlgenn=True writes ml_genn_netx's extras:
    empty inFeatures / outFeatures / gradedSpike datasets, refDelay, float32 weights, vlen type strings."""
    wdtype = np.float32 if mlgenn else np.int16
    with h5py.File(path, "w") as f:
        top = f.create_group("layer")
        k = 0
        if n_input is not None:
            g = top.create_group("0")
            put_type(g, "input", vlen=mlgenn)
            g.create_dataset("shape", data=np.array([n_input], np.int64))
            if mlgenn:
                g.create_dataset("inFeatures", data=np.zeros(0, np.float32))
                g.create_dataset("outFeatures", data=np.zeros(0, np.float32))
            k = 1
        for spec in layers:
            g = top.create_group(str(k))
            k += 1
            put_type(g, spec["kind"], vlen=mlgenn)
            g.create_dataset("shape", data=np.array([spec.get("n", np.shape(spec["weight"])[0])], np.int64))
            g.create_dataset("weight", data=np.asarray(spec["weight"]).astype(wdtype))
            if "weight_rec" in spec:
                g.create_dataset("weight_rec", data=np.asarray(spec["weight_rec"]).astype(wdtype))
            for name in ("bias", "delay", "delay_rec"):
                if spec.get(name) is not None:
                    g.create_dataset(name, data=spec[name])
            if mlgenn:
                g.create_dataset("inFeatures", data=np.zeros(0, np.float32))
                g.create_dataset("outFeatures", data=np.zeros(0, np.float32))
            neuron = spec.get("neuron")
            if neuron is None:
                continue
            n = g.create_group("neuron")
            put_type(n, spec.get("neuron_type", "CUBA"), vlen=mlgenn)
            for name, value in neuron.items():
                n.create_dataset(name, data=value)
            if mlgenn:
                n.create_dataset("refDelay", data=np.int32(1))
                n.create_dataset("gradedSpike", data=np.zeros(0, np.float32))
    return path
