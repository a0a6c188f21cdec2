"""NIR graph or file -> Network, for graphs of this model's shape, from this project or other tools.

Accepted: Input -> Linear|Affine -> CubaLIF (optionally with a recurrent Linear|Affine in a cycle, also
inside a sub-graph as snnTorch writes it) -> Linear|Affine -> CubaLI (or a CubaLIF that never spikes) -> Output,
with zero biases, zero v_leak and v_reset, and parameters shared by all neurons of a layer and by the two
layers. Anything else is a NirGraphError that names the node and what is wrong.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from eventprop_core.errors import ConfigError, NetworkFileError
from eventprop_core.network import Network
from eventprop_core.params import ModelParams
from .detect import Convention, detect_convention, meta_value
from .errors import NirGraphError
from .mapping import NirNeuron, nir_to_layer

SHAPE = "Input -> Linear -> CubaLIF (+ recurrent Linear) -> Linear -> CubaLI -> Output"
DEFAULT_TIMESTEPS = ModelParams().timesteps


def read_nir(path, **options) -> tuple[Network, Convention]:
    """Read a NIR file (nir.read) and convert it; see `graph_to_network` for the options."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise NirGraphError(f"{path}: NIR file not found")
    try:
        graph = nir.read(path)
    except Exception as exc:  # h5py, KeyError, AssertionError, ValueError ... from a foreign or broken file
        raise NirGraphError(f"{path}: not a readable NIR graph ({type(exc).__name__}: {exc})") from None
    return graph_to_network(graph, source=str(path), **options)


def _flatten(graph, prefix: str = ""):
    """Nodes and edges with sub-graphs inlined (their Input/Output nodes become pass-throughs)."""
    import nir

    nodes, edges, passthrough = {}, [], set()
    entry, exit_ = {}, {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_pass = _flatten(node, full + ".")
            nodes.update(sub_nodes)
            edges += sub_edges
            passthrough |= sub_pass
            entry[name] = [full + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Input)]
            exit_[name] = [full + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Output)]
            passthrough |= set(entry[name]) | set(exit_[name])
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        for s in exit_.get(src, [prefix + src]):
            for d in entry.get(dst, [prefix + dst]):
                edges.append((s, d))
    return nodes, edges, passthrough


def _collapse(nodes: dict, edges: list, passthrough: set):
    for p in passthrough:
        preds = [s for s, d in edges if d == p]
        succs = [d for s, d in edges if s == p]
        edges = [(s, d) for s, d in edges if p not in (s, d)] + [(s, d) for s in preds for d in succs]
        nodes.pop(p, None)
    return nodes, sorted(set(edges))


def _uniform(source, node_name, field, values, size, *, allow_inf=False) -> float:
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise NirGraphError(f"{source}: node {node_name!r}: {field} is not numeric ({values!r:.60})") from None
    if arr.size == 1 and size > 1:
        arr = np.repeat(arr, size)
    if arr.size != size:
        raise NirGraphError(f"{source}: node {node_name!r}: {field} has {arr.size} values for a layer of {size} neurons")
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        raise NirGraphError(f"{source}: node {node_name!r}: {field} has non-finite values ({arr[bad][0]})")
    lo, hi = float(arr.min()), float(arr.max())
    if not math.isclose(lo, hi, rel_tol=1e-9, abs_tol=1e-300):
        raise NirGraphError(f"{source}: node {node_name!r}: {field} differs between neurons ({lo:g} .. {hi:g}); "
                            f"this model shares one value per layer")
    return lo


class _Graph:
    """The flattened graph with the lookups the shape check needs."""

    def __init__(self, source, nodes, edges):
        self.source, self.nodes = source, nodes
        self.succ, self.pred = defaultdict(list), defaultdict(list)
        for s, d in edges:
            if s not in nodes or d not in nodes:
                raise NirGraphError(f"{source}: edge ({s!r}, {d!r}) names a node that is not in the graph")
            self.succ[s].append(d)
            self.pred[d].append(s)

    def fail(self, name, message):
        node = self.nodes.get(name)
        kind = type(node).__name__ if node is not None else "?"
        raise NirGraphError(f"{self.source}: node {name!r} ({kind}): {message} (this model is {SHAPE})")

    def only(self, name, names, what):
        if len(names) != 1:
            self.fail(name, f"needs exactly one {what}, has {len(names)} ({', '.join(map(repr, names)) or 'none'})")
        return names[0]

    def expect(self, name, types, role):
        if not isinstance(self.nodes[name], types):
            self.fail(name, f"found where the {role} ({' or '.join(t.__name__ for t in types)}) belongs")
        return self.nodes[name]


def _weight(g: _Graph, name: str, rows: int | None, cols: int | None) -> np.ndarray:
    import nir

    node = g.nodes[name]
    w = np.asarray(node.weight)
    if w.ndim != 2 or 0 in w.shape:
        g.fail(name, f"weight must be a non-empty 2-D (out, in) matrix, got shape {w.shape}")
    if (rows is not None and w.shape[0] != rows) or (cols is not None and w.shape[1] != cols):
        g.fail(name, f"weight has shape {w.shape}, expected ({rows if rows is not None else 'any'}, "
                     f"{cols if cols is not None else 'any'})")
    if not np.issubdtype(w.dtype, np.number) or not np.isfinite(w).all():
        g.fail(name, "weight has non-numeric or non-finite values")
    if isinstance(node, nir.Affine):
        b = np.asarray(node.bias, dtype=np.float64)
        if b.size and (not np.isfinite(b).all() or np.any(b != 0)):
            g.fail(name, "has a non-zero bias; this model has no biases")
    return w.astype(np.float64)


def _neuron(g: _Graph, name: str, size: int, *, spiking: bool) -> tuple[NirNeuron, float]:
    node = g.nodes[name]
    vals = {}
    for field in ("tau_syn", "tau_mem", "r", "w_in", "v_leak"):
        vals[field] = _uniform(g.source, name, field, getattr(node, field), size)
    if vals["v_leak"] != 0:
        g.fail(name, f"v_leak = {vals['v_leak']:g}; this model has no leak potential (v_leak must be 0)")
    for field in ("tau_syn", "tau_mem", "r", "w_in"):
        if vals[field] <= 0:
            g.fail(name, f"{field} = {vals[field]:g} must be positive")
    threshold = math.inf
    if hasattr(node, "v_threshold"):
        threshold = _uniform(g.source, name, "v_threshold", node.v_threshold, size, allow_inf=True)
        reset = _uniform(g.source, name, "v_reset", node.v_reset, size)
        if spiking and (reset != 0 or not (0 < threshold < math.inf)):
            g.fail(name, f"v_reset = {reset:g}, v_threshold = {threshold:g}; this model resets to 0 and needs a "
                         f"positive finite threshold")
        if not spiking and threshold != math.inf:
            g.fail(name, f"the readout is a spiking CubaLIF (v_threshold = {threshold:g}); this model's readout "
                         f"never spikes (use CubaLI, or v_threshold = inf)")
    return NirNeuron(vals["tau_syn"], vals["tau_mem"], vals["r"], vals["w_in"]), threshold


def _layer_size(g: _Graph, name: str, weight_name: str) -> int:
    """Neurons in a layer: the rows of its incoming weight (NIR also allows scalar neuron parameters)."""
    w = np.asarray(g.nodes[weight_name].weight)
    if w.ndim != 2 or 0 in w.shape:
        g.fail(weight_name, f"weight must be a non-empty 2-D (out, in) matrix, got shape {w.shape}")
    node = g.nodes[name]
    arr = np.asarray(node.v_threshold if hasattr(node, "v_threshold") else node.tau_mem)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.size not in (1, w.shape[0])):
        g.fail(name, f"has neuron parameters of shape {arr.shape}, but {weight_name!r} feeds it {w.shape[0]} values")
    return int(w.shape[0])


def _structure(g: _Graph) -> dict:
    """Find the roles of the nodes (or fail naming the first node that does not fit)."""
    import nir

    allowed = (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.CubaLIF, nir.CubaLI)
    for name, node in g.nodes.items():
        if isinstance(node, (nir.LIF, nir.LI, nir.IF, nir.I)):
            g.fail(name, "has no synaptic current; this model's neurons are current-based (CubaLIF, CubaLI)")
        if not isinstance(node, allowed):
            g.fail(name, "this node type cannot be represented")
    inputs = [n for n, v in g.nodes.items() if isinstance(v, nir.Input)]
    outputs = [n for n, v in g.nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NirGraphError(f"{g.source}: the graph has {len(inputs)} Input and {len(outputs)} Output nodes; "
                            f"this model has one of each ({SHAPE})")
    role = {"input": inputs[0], "output": outputs[0]}
    dense = (nir.Linear, nir.Affine)
    role["input_hidden"] = g.only(role["input"], g.succ[role["input"]], "successor")
    g.expect(role["input_hidden"], dense, "input weights")
    role["hidden"] = g.only(role["input_hidden"], g.succ[role["input_hidden"]], "successor")
    g.expect(role["hidden"], (nir.CubaLIF,), "hidden layer")
    hidden = role["hidden"]
    if hidden in g.succ[hidden]:
        g.fail(hidden, "has an edge to itself without a weight matrix; put a Linear in the cycle")
    loops = [p for p in g.pred[hidden] if p != role["input_hidden"]]
    if len(loops) > 1:
        g.fail(hidden, f"has {len(loops) + 1} inputs ({', '.join(map(repr, g.pred[hidden]))}); this model has the "
                       f"input weights and at most one recurrent matrix")
    if loops:
        role["hidden_hidden"] = loops[0]
        g.expect(loops[0], dense, "recurrent weights")
        if g.pred[loops[0]] != [hidden] or g.succ[loops[0]] != [hidden]:
            g.fail(loops[0], "the recurrent matrix must take the hidden layer's spikes and feed only the hidden layer")
    forward = [s for s in g.succ[hidden] if s != role.get("hidden_hidden")]
    role["hidden_output"] = g.only(hidden, forward, "successor besides the recurrent matrix")
    g.expect(role["hidden_output"], dense, "readout weights")
    role["readout"] = g.only(role["hidden_output"], g.succ[role["hidden_output"]], "successor")
    g.expect(role["readout"], (nir.CubaLI, nir.CubaLIF), "readout")
    if g.succ[role["readout"]] != [role["output"]]:
        g.fail(role["readout"], "must feed the Output node and nothing else")
    for name in ("input_hidden", "hidden_output", "readout", "output"):
        if len(g.pred[role[name]]) != 1:
            g.fail(role[name], f"has {len(g.pred[role[name]])} inputs, expected 1")
    stray = sorted(set(g.nodes) - set(role.values()))
    if stray:
        g.fail(stray[0], "is not part of the chain")
    return role


def _params_from(source, names, metadata, hidden_map, readout_map, threshold, timesteps) -> ModelParams:
    for field in ("tau_mem_ms", "tau_syn_ms"):
        a, b = getattr(hidden_map, field), getattr(readout_map, field)
        if not math.isclose(a, b, rel_tol=1e-6):
            raise NirGraphError(f"{source}: nodes {names[0]!r} (hidden) and {names[1]!r} (readout) differ in "
                                f"{field[:-3]} ({a:g} vs {b:g} ms after the convention's mapping); this model shares "
                                f"tau_mem and tau_syn between the two layers")
    steps = timesteps if timesteps is not None else meta_value(metadata, "timesteps")
    steps = int(steps) if steps is not None else DEFAULT_TIMESTEPS
    try:
        derived = ModelParams(tau_mem=hidden_map.tau_mem_ms, tau_syn=hidden_map.tau_syn_ms, v_thresh=threshold,
                              dt=hidden_map.dt_ms, timesteps=steps)
    except ConfigError as exc:
        raise NirGraphError(f"{source}: the graph maps to invalid parameters: {exc}") from None
    stored = meta_value(metadata, "eventprop_params")
    if isinstance(stored, str):   # this project's exact values, used where the nodes agree with them
        try:
            exact = ModelParams.from_dict(json.loads(stored))
        except (ValueError, TypeError, ConfigError):
            return derived
        same = all(math.isclose(getattr(exact, f), getattr(derived, f), rel_tol=1e-9)
                   for f in ("tau_mem", "tau_syn", "v_thresh", "dt"))
        if same:
            return ModelParams.from_dict({**exact.to_dict(), "timesteps": steps})
    return derived


def graph_to_network(graph, *, source: str = "NIR graph", convention: str | None = None, dt: float | None = None,
                     time_unit: str | None = None, timesteps: int | None = None) -> tuple[Network, Convention]:
    """Convert a nir.NIRGraph of this model's shape. Options override what the metadata says; `dt` is in
    `time_unit` (default: the metadata's, else seconds)."""
    import nir

    if not isinstance(graph, nir.NIRGraph):
        raise NirGraphError(f"{source}: the file holds a single {type(graph).__name__} node, not a graph ({SHAPE})")
    try:
        nodes, edges, passthrough = _flatten(graph)
        nodes, edges = _collapse(nodes, edges, passthrough)
    except (TypeError, ValueError, AttributeError) as exc:   # edges that are not (source, target) names
        raise NirGraphError(f"{source}: malformed nodes or edges ({type(exc).__name__}: {exc})") from None
    g = _Graph(source, nodes, edges)
    role = _structure(g)
    H = _layer_size(g, role["hidden"], role["input_hidden"])
    O = _layer_size(g, role["readout"], role["hidden_output"])
    declared = g.nodes[role["input"]].input_type
    n_in_declared = np.asarray(declared.get("input", []) if isinstance(declared, dict) else []).ravel()
    w_ih = _weight(g, role["input_hidden"], H, None)
    if n_in_declared.size == 1 and int(n_in_declared[0]) != w_ih.shape[1]:
        g.fail(role["input"], f"declares {int(n_in_declared[0])} inputs but {role['input_hidden']!r} takes {w_ih.shape[1]}")
    w_hh = _weight(g, role["hidden_hidden"], H, H) if "hidden_hidden" in role else np.zeros((H, H))
    w_ho = _weight(g, role["hidden_output"], O, H)
    hidden, threshold = _neuron(g, role["hidden"], H, spiking=True)
    readout, _ = _neuron(g, role["readout"], O, spiking=False)

    metadata = graph.metadata if isinstance(graph.metadata, dict) else {}
    conv = detect_convention(source, metadata, hidden, convention=convention, dt=dt, time_unit=time_unit)
    maps = {}
    for name, neuron in ((role["hidden"], hidden), (role["readout"], readout)):
        try:
            maps[name] = nir_to_layer(neuron, conv.name, conv.dt, conv.time_unit)
        except ValueError as exc:
            g.fail(name, str(exc))
    hmap, rmap = maps[role["hidden"]], maps[role["readout"]]
    params = _params_from(source, (role["hidden"], role["readout"]), metadata, hmap, rmap, threshold, timesteps)

    def scaled(name, w, gain):
        w = w.T if math.isclose(gain, 1.0, rel_tol=1e-9) else w.T * gain
        if not np.all(np.abs(w) <= np.finfo(np.float32).max):
            g.fail(name, f"weights times the layer's gain {gain:.6g} (docs/nir.md) do not fit in float32")
        return w.astype(np.float32)

    weights = {"input_hidden": scaled(role["input_hidden"], w_ih, hmap.weight_gain),
               "hidden_hidden": scaled(role.get("hidden_hidden", role["hidden"]), w_hh, hmap.weight_gain),
               "hidden_output": scaled(role["hidden_output"], w_ho, rmap.weight_gain)}
    provenance = {"imported_from": source, "nir_convention": conv.reason,
                  "nir_nodes": {k: v for k, v in role.items()}}
    original = meta_value(metadata, "provenance")
    if isinstance(original, str):
        provenance["nir_provenance"] = original
    try:
        return Network(weights, params, provenance), conv
    except (ConfigError, NetworkFileError) as exc:   # e.g. weights that overflow float32 after the gain
        raise NirGraphError(f"{source}: {exc}") from None
