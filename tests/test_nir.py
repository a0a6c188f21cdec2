"""NIR export and import (docs/nir.md), checked against truths outside the code under test:

- `nir.read` (the reference NIR library) reads back exactly the weights, and parameters equal to the
  formulas of docs/nir.md evaluated here;
- a forward-Euler loop of NIR's CubaLIF/CubaLI equations written here, fed only the file's parameters,
  steps exactly like this project's float model;
- Norse (another simulator, its own `from_nir` and neurons) simulates the exported file of a trained
  network and agrees with the float model on the synthetic test split;
- nodes written by snnTorch's own exporter import with snnTorch's convention;
- odd and corrupted graphs end in a NirGraphError that names the node (hypothesis fuzzing).
"""
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from eventprop_pipeline.cli.main import main  # noqa: E402
from eventprop_pipeline.model.forward import simulate  # noqa: E402
from eventprop_pipeline.model.readout import readout_weights  # noqa: E402
from eventprop_core.network import Network, load_network  # noqa: E402
from eventprop_pipeline.nir_io import NirGraphError, graph_to_network, read_nir, write_nir  # noqa: E402
from eventprop_core.params import ModelParams  # noqa: E402

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.toml"
ODD = ModelParams(tau_mem=15.0, tau_syn=4.0, v_thresh=0.8, dt=0.5, timesteps=40)
# Norse runs in float32, this model in float64: readouts agree to float32 rounding (relative ~1e-7 of the
# largest |V|) while every spike matches; 1e-5 leaves room for that and fails on any real mismatch.
READOUT_RTOL = 1e-5


def small_net(seed=1, params=ODD, sizes=(12, 7, 3)):
    net = Network.initialise(*sizes, params=params, seed=seed)
    net.weights["input_hidden"] *= 8      # make the hidden layer fire in the short runs below
    return net


def raster(shape, rate, seed):
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


# --- the file as nir.read sees it ------------------------------------------------------------------------

@pytest.mark.parametrize("convention", ["discrete", "continuous"])
def test_nir_read_round_trip_reproduces_weights_and_parameters(tmp_path, convention):
    net = small_net()
    path = write_nir(net, tmp_path / "m.nir", convention=convention)
    g = nir.read(path)
    assert {k: type(v).__name__ for k, v in g.nodes.items()} == {
        "input": "Input", "input_hidden": "Linear", "hidden": "CubaLIF", "hidden_hidden": "Linear",
        "hidden_output": "Linear", "readout": "CubaLI", "output": "Output"}
    assert ("hidden", "hidden_hidden") in g.edges and ("hidden_hidden", "hidden") in g.edges   # the cycle
    for name, key in (("input_hidden", "input_hidden"), ("hidden_hidden", "hidden_hidden"),
                      ("hidden_output", "hidden_output")):
        assert g.nodes[name].weight.dtype == np.float32
        assert np.array_equal(g.nodes[name].weight, net.weights[key].T)       # NIR is (out, in)
    p, dt = net.params, net.params.dt / 1000
    alpha, beta = math.exp(-p.dt / p.tau_mem), math.exp(-p.dt / p.tau_syn)
    if convention == "discrete":   # docs/nir.md: tau' = dt/(1 - decay), r = 1/(1 - alpha), w_in = (1 - alpha) tau_syn/dt
        want = {"tau_mem": dt / (1 - alpha), "tau_syn": dt / (1 - beta), "r": 1 / (1 - alpha),
                "w_in": (1 - alpha) * p.tau_syn / p.dt}
    else:
        want = {"tau_mem": p.tau_mem / 1000, "tau_syn": p.tau_syn / 1000, "r": 1.0, "w_in": p.tau_syn / 1000}
    for node, size in (("hidden", 7), ("readout", 3)):
        for field, value in want.items():
            np.testing.assert_allclose(getattr(g.nodes[node], field), np.full(size, value), rtol=1e-12, err_msg=field)
        assert np.array_equal(g.nodes[node].v_leak, np.zeros(size))
    assert np.array_equal(g.nodes["hidden"].v_threshold, np.full(7, 0.8))
    assert np.array_equal(g.nodes["hidden"].v_reset, np.zeros(7))
    assert g.metadata["convention"] == convention and g.metadata["time_unit"] == "s"
    assert float(g.metadata["dt"]) == dt and int(g.metadata["timesteps"]) == 40
    assert g.metadata["threshold_comparison"] == ">="
    back, conv = graph_to_network(g)
    assert back.params == net.params and conv.name == convention
    for k in net.weights:
        assert np.array_equal(back.weights[k], net.weights[k]), k


def test_nir_equations_stepped_with_the_files_parameters_equal_the_float_model(tmp_path):
    """Forward Euler of NIR's CubaLIF/CubaLI ODEs (spike = 1 in its step, threshold >, reset to v_reset),
    one step per dt, with the graph's edges as the only wiring: the float model's traces exactly,
    with the one-step synapse delay of the metadata (input and readout one step later)."""
    net = small_net(seed=3)
    g = nir.read(write_nir(net, tmp_path / "m.nir"))
    dt = float(g.metadata["dt"])
    assert int(g.metadata["synapse_delay_steps"]) == 1
    n = {k: g.nodes[k] for k in g.nodes}
    T = 40
    x = raster((2, T, 12), 0.3, seed=4)
    u = np.zeros_like(x)
    u[:, 1:] = x[:, :-1]                      # input one step later
    hid, out = n["hidden"], n["readout"]
    i_h = np.zeros((2, 7))
    v_h = np.zeros((2, 7))
    s = np.zeros((2, 7))
    i_o = np.zeros((2, 3))
    v_o = np.zeros((2, 3))
    trace, spikes = np.zeros((2, T, 3)), np.zeros((2, T, 7), bool)
    for k in range(T):
        drive = u[:, k] @ n["input_hidden"].weight.T.astype(np.float64) + s @ n["hidden_hidden"].weight.T.astype(np.float64)
        i_h = i_h + dt / hid.tau_syn * (-i_h + hid.w_in * drive)
        v_h = v_h + dt / hid.tau_mem * (hid.v_leak - v_h + hid.r * i_h)
        s = (v_h > hid.v_threshold).astype(np.float64)
        v_h = np.where(s > 0, hid.v_reset, v_h)
        i_o = i_o + dt / out.tau_syn * (-i_o + out.w_in * (s @ n["hidden_output"].weight.T.astype(np.float64)))
        v_o = v_o + dt / out.tau_mem * (out.v_leak - v_o + out.r * i_o)
        trace[:, k], spikes[:, k] = v_o, s > 0
    ref = simulate(net, x, record=True)
    assert ref.hidden_spikes.sum() > 20
    assert np.array_equal(spikes, ref.hidden_spikes)
    np.testing.assert_allclose(trace[:, :-1], ref.readout_trace[:, 1:], rtol=1e-9, atol=1e-12)   # readout one step later
    assert np.all(ref.readout_trace[:, 0] == 0)


@pytest.mark.parametrize("dt, tolerance", [(1.0, 0.3), (0.1, 0.035), (0.01, 0.0035)])
def test_continuous_convention_is_the_ode_this_model_approaches_as_dt_shrinks(tmp_path, dt, tolerance):
    """The analytic response of the file's continuous CubaLI to one Dirac spike of weight 1 (I jumps by
    w_in/tau_syn, tau_mem dv/dt = -v + r I) against this model's readout step function: they differ by
    O(dt) (docs/nir.md), here at most `tolerance` of the peak."""
    import torch
    from eventprop_pipeline.model.lif import Constants, LIState, li_step

    params = ModelParams(tau_mem=20.0, tau_syn=5.0, dt=dt, timesteps=int(100 / dt))
    g = nir.read(write_nir(small_net(params=params, sizes=(2, 2, 1)), tmp_path / "m.nir", convention="continuous"))
    ro = g.nodes["readout"]
    tau_s, tau_m, r, w_in = (float(np.asarray(getattr(ro, f))[0]) for f in ("tau_syn", "tau_mem", "r", "w_in"))
    t = np.arange(params.timesteps) * dt / 1000
    exact = r * (w_in / tau_s) * tau_s / (tau_m - tau_s) * (np.exp(-t / tau_m) - np.exp(-t / tau_s))
    zero = torch.zeros(1, dtype=torch.float64)
    state, trace = LIState(zero, zero, zero), []
    for k in range(params.timesteps):
        state = li_step(state, torch.ones(1, dtype=torch.float64) if k == 0 else zero, Constants.of(params), 0.0)
        trace.append(float(state.v))
    error = np.abs(np.array(trace) - exact).max() / exact.max()
    assert tolerance / 10 < error <= tolerance


@pytest.mark.parametrize("convention", ["discrete", "continuous"])
def test_import_of_export_gives_the_same_float_predictions(tmp_path, convention):
    net = small_net(seed=5)
    back, _ = read_nir(write_nir(net, tmp_path / "m.nir", convention=convention))
    x = raster((6, 40, 12), 0.25, seed=6)
    a, b = simulate(net, x), simulate(back, x)
    assert np.array_equal(a.readout, b.readout) and np.array_equal(a.hidden_spike_counts, b.hidden_spike_counts)


# --- an independent simulator: Norse ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small network trained here with configs/smoke.toml (~13 s), and its synthetic test split."""
    pytest.importorskip("norse", reason="Norse is in the dev extra (pip install -e '.[dev]')")
    from eventprop_pipeline.training import load_train_config, train
    from eventprop_pipeline.training.splits import load_run_data

    cfg = load_train_config(SMOKE, {})
    summary = train(cfg, tmp_path_factory.mktemp("nir") / "run", progress=False, log=lambda *a, **k: None)
    return load_network(summary.best_path), load_run_data(cfg).test


def norse_model(graph, dt):
    """Norse 1.1's own NIR import (nirtorch.load with norse's node mapping, as norse.torch.from_nir does).
    Norse maps CubaLIF but not CubaLI: the readout is built from Norse's LIBoxCell exactly the way Norse
    maps CubaLIF (w_in * x -> synapse cell -> r * i -> membrane cell), without the spike."""
    from nirtorch import load as graph_to_torch_module   # builds modules from a NIR graph (no file read)
    import torch
    from norse.torch.module import leaky_integrator_box as li_box
    from norse.torch.utils.import_nir import _import_norse_module

    class NorseCubaLI(torch.nn.Module):
        def __init__(self, node):
            super().__init__()
            t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
            self.w_in, self.r = t(node.w_in), t(node.r)
            self.synapse = li_box.LIBoxCell(li_box.LIBoxParameters(tau_mem_inv=1 / t(node.tau_syn), v_leak=t(node.v_leak)), dt=dt)
            self.membrane = li_box.LIBoxCell(li_box.LIBoxParameters(tau_mem_inv=1 / t(node.tau_mem), v_leak=t(node.v_leak)), dt=dt)

        def forward(self, x, state=None):
            state = state or (None, None)
            i, s_syn = self.synapse(self.w_in * x, state[0])
            v, s_mem = self.membrane(self.r * i, state[1])
            return v, (s_syn, s_mem)

    return graph_to_torch_module(graph, lambda node: NorseCubaLI(node) if isinstance(node, nir.CubaLI)
                         else _import_norse_module(node, dt=dt))


def test_norse_simulates_the_exported_file_like_the_float_model(trained, tmp_path):
    import torch

    net, test = trained
    path = write_nir(net, tmp_path / "model.nir")
    graph = nir.read(path)
    x = test.dense(range(len(test)))
    B, T, _ = x.shape
    u = np.zeros_like(x)
    u[:, 1:] = x[:, :-1]           # this model's input acts one step after its bin (metadata: synapse delay)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # norse/nirtorch deprecation notices
        model = norse_model(graph, dt=float(graph.metadata["dt"]))
        state, trace = None, []
        with torch.no_grad():
            for k in range(T):
                v, state = model(torch.as_tensor(u[:, k]), state)
                trace.append(v.numpy().astype(np.float64))
    trace = np.stack(trace, 1)                       # Norse's readout V at step k = this model's at k + 1
    weights = readout_weights(net.params, T)
    norse_readout = (trace[:, :-1] * weights[1:, None]).sum(1)
    ref = simulate(net, x, record=True)
    assert np.mean(ref.prediction == test.labels) >= 0.9          # a network that has learned the task
    assert np.mean(np.argmax(norse_readout, 1) == ref.prediction) >= 0.99
    scale = np.abs(ref.readout_trace).max()
    assert np.abs(trace[:, :-1] - ref.readout_trace[:, 1:]).max() <= READOUT_RTOL * scale
    assert np.abs(norse_readout - ref.readout).max() <= READOUT_RTOL * np.abs(ref.readout).max()


# --- graphs written by other tools -----------------------------------------------------------------------

def test_nodes_from_snntorchs_exporter_import_with_its_euler_convention():
    pytest.importorskip("nirtorch", reason="snnTorch's exporter imports nirtorch (dev extra)")
    import torch
    import snntorch as snn
    from snntorch.export_nir import _extract_snntorch_module

    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(4, 5, bias=False), torch.nn.Linear(5, 3, bias=False)
    rsyn = snn.RSynaptic(alpha=0.8, beta=0.9, threshold=0.5, linear_features=5, reset_mechanism="zero")
    with torch.no_grad():
        rsyn.recurrent.bias.zero_()
    readout = snn.Synaptic(alpha=0.8, beta=0.9, threshold=float("inf"))
    nodes = {"fc1": _extract_snntorch_module(fc1), "rsyn": _extract_snntorch_module(rsyn),
             "fc2": _extract_snntorch_module(fc2), "syn": _extract_snntorch_module(readout),
             "input": nir.Input(input_type={"input": np.array([4])}),
             "output": nir.Output(output_type={"output": np.array([3])})}
    assert isinstance(nodes["rsyn"], nir.NIRGraph)      # snnTorch writes the recurrence as a sub-graph
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc1"), ("fc1", "rsyn"), ("rsyn", "fc2"), ("fc2", "syn"),
                                         ("syn", "output")], type_check=False)
    net, conv = graph_to_network(g)
    assert conv.name == "discrete" and conv.dt == pytest.approx(1e-4) and "snnTorch" in conv.reason
    # snnTorch: syn = alpha syn + x, mem = beta mem + syn, i.e. this model's beta and alpha with V = c * mem
    p = net.params
    assert p.alpha == pytest.approx(0.9, rel=1e-6) and p.beta == pytest.approx(0.8, rel=1e-6)
    assert p.v_thresh == 0.5 and p.dt == pytest.approx(0.1)
    c = (1 - p.alpha) * p.i_scale
    np.testing.assert_allclose(net.weights["input_hidden"], fc1.weight.detach().numpy().T / c, rtol=1e-5)
    np.testing.assert_allclose(net.weights["hidden_hidden"], rsyn.recurrent.weight.detach().numpy().T / c, rtol=1e-5)
    np.testing.assert_allclose(net.weights["hidden_output"], fc2.weight.detach().numpy().T / c, rtol=1e-5)


def norse_style_graph(**changes):
    """What Norse's exporter writes: r = 1, w_in = 1, no dt, no metadata."""
    H, O = 4, 2
    hidden = dict(tau_syn=np.full(H, 0.005), tau_mem=np.full(H, 0.02), r=np.ones(H), v_leak=np.zeros(H),
                  v_threshold=np.full(H, 0.3), w_in=np.ones(H))
    readout = dict(tau_syn=np.full(O, 0.005), tau_mem=np.full(O, 0.02), r=np.ones(O), v_leak=np.zeros(O), w_in=np.ones(O))
    hidden.update(changes.pop("hidden", {}))
    readout.update(changes.pop("readout", {}))
    rng = np.random.default_rng(0)
    nodes = {"in": nir.Input(input_type={"input": np.array([3])}),
             "w1": nir.Affine(weight=rng.normal(size=(H, 3)).astype(np.float32), bias=np.zeros(H, np.float32)),
             "lif": nir.CubaLIF(**hidden), "rec": nir.Linear(weight=rng.normal(size=(H, H)).astype(np.float32)),
             "w2": nir.Linear(weight=rng.normal(size=(O, H)).astype(np.float32)), "li": nir.CubaLI(**readout),
             "out": nir.Output(output_type={"output": np.array([O])})}
    nodes.update(changes.pop("nodes", {}))
    edges = changes.pop("edges", [("in", "w1"), ("w1", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "w2"),
                                  ("w2", "li"), ("li", "out")])
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_a_graph_without_time_step_needs_dt_and_then_maps_its_euler_decays():
    with pytest.raises(NirGraphError, match="--dt"):
        graph_to_network(norse_style_graph())
    net, conv = graph_to_network(norse_style_graph(), dt=0.001)
    assert conv.name == "discrete"
    p = net.params
    assert p.dt == pytest.approx(1.0) and p.v_thresh == pytest.approx(0.3)
    assert p.alpha == pytest.approx(1 - 0.001 / 0.02) and p.beta == pytest.approx(1 - 0.001 / 0.005)
    # Euler gain (dt/tau_syn)(dt/tau_mem) per unit weight, over this model's c = (1 - alpha) IScale
    gain = (0.001 / 0.005) * (0.001 / 0.02) / ((1 - p.alpha) * p.i_scale)
    w1 = norse_style_graph().nodes["w1"].weight
    np.testing.assert_allclose(net.weights["input_hidden"], w1.T * gain, rtol=1e-6)


@pytest.mark.parametrize("change, words", [
    ({"nodes": {"lif": nir.LIF(tau=np.full(4, 0.02), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4))}},
     ["'lif'", "(LIF)", "current-based"]),
    ({"nodes": {"w1": nir.Affine(weight=np.ones((4, 3), np.float32), bias=np.ones(4, np.float32))}}, ["'w1'", "bias"]),
    ({"hidden": {"tau_mem": np.array([0.02, 0.02, 0.03, 0.02])}}, ["'lif'", "tau_mem", "differs between neurons"]),
    ({"hidden": {"v_leak": np.full(4, 0.1)}}, ["'lif'", "v_leak"]),
    ({"readout": {"tau_mem": np.full(2, 0.03)}}, ["'lif'", "'li'", "shares tau_mem"]),
    ({"nodes": {"li": nir.CubaLIF(tau_syn=np.full(2, 0.005), tau_mem=np.full(2, 0.02), r=np.ones(2), v_leak=np.zeros(2),
                                  v_threshold=np.ones(2), w_in=np.ones(2))}}, ["'li'", "never spikes"]),
    ({"nodes": {"rec": nir.Linear(weight=np.ones((4, 5), np.float32))}}, ["'rec'", "shape (4, 5)"]),
    ({"nodes": {"sc": nir.Scale(scale=np.ones(4))}, "edges": [("in", "w1"), ("w1", "lif"), ("lif", "sc"), ("sc", "lif"),
                                                              ("lif", "w2"), ("w2", "li"), ("li", "out")]},
     ["'sc'", "Scale", "cannot be represented"]),
    ({"edges": [("in", "w1"), ("w1", "lif"), ("lif", "lif"), ("lif", "w2"), ("w2", "li"), ("li", "out")]},
     ["'lif'", "edge to itself"]),
    ({"edges": [("in", "w1"), ("w1", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "w2"), ("w2", "li")]},
     ["'li'", "Output"]),
])
def test_graphs_this_model_cannot_represent_fail_naming_the_node(change, words):
    with pytest.raises(NirGraphError) as info:
        graph_to_network(norse_style_graph(**change), dt=0.001, source="g.nir")
    message = str(info.value)
    assert message.startswith("g.nir: ") and "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_a_graph_without_recurrence_imports_with_a_zero_recurrent_matrix():
    g = norse_style_graph(edges=[("in", "w1"), ("w1", "lif"), ("lif", "w2"), ("w2", "li"), ("li", "out")])
    g.nodes.pop("rec")
    net, _ = graph_to_network(g, dt=0.001)
    assert not net.weights["hidden_hidden"].any()


# --- fuzzing: odd graphs and broken files end in one clear error ---------------------------------------------

MUTATIONS = ("drop_edge", "add_edge", "ghost_edge", "drop_node", "nan", "negative", "huge", "reshape", "retype", "scalar",
             "text")


def mutate(g, rng, op):
    names = sorted(g.nodes)
    name = names[rng.integers(len(names))]
    node = g.nodes[name]
    fields = [f for f in ("weight", "tau_syn", "tau_mem", "r", "w_in", "v_threshold", "v_leak") if hasattr(node, f)]
    if op == "drop_edge" and g.edges:
        g.edges.pop(int(rng.integers(len(g.edges))))
    elif op == "add_edge":
        g.edges.append((names[rng.integers(len(names))], name))
    elif op == "ghost_edge":
        g.edges.append((name, "ghost"))
    elif op == "drop_node":
        g.nodes.pop(name)
        g.edges = [e for e in g.edges if name not in e]
    elif op == "text" and fields:
        setattr(node, fields[rng.integers(len(fields))], np.array(["a", "b"]))
    elif op in ("nan", "negative", "huge", "reshape", "scalar") and fields:
        field = fields[rng.integers(len(fields))]
        try:
            value = np.array(getattr(node, field), dtype=np.float64)
        except ValueError:     # already made text by an earlier mutation
            return
        if op == "nan":
            value.flat[rng.integers(value.size)] = np.nan
        elif op == "negative":
            value = -np.abs(value)
        elif op == "huge":
            with np.errstate(over="ignore"):
                value = value * 1e300
        elif op == "reshape":
            value = np.ones(tuple(int(d) for d in rng.integers(1, 4, size=rng.integers(0, 3))))
        else:
            value = np.float64(rng.normal())
        setattr(node, field, value)
    elif op == "retype":
        g.nodes[name] = nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), ops=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3))
def test_fuzzed_graphs_import_or_fail_with_a_clear_error(seed, ops):
    g = norse_style_graph()
    rng = np.random.default_rng(seed)
    for op in ops:
        mutate(g, rng, op)
    try:
        net, _ = graph_to_network(g, dt=0.001, source="fuzz.nir")
    except NirGraphError as exc:
        assert str(exc).startswith("fuzz.nir: ") and "\n" not in str(exc)
    else:
        assert isinstance(net, Network) and all(np.isfinite(w).all() for w in net.weights.values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_files_fail_with_a_clear_error(tmp_path, data):
    path = tmp_path / "m.nir"
    if not path.exists():
        write_nir(small_net(sizes=(3, 4, 2)), path)
    raw = bytearray(path.read_bytes())
    broken = tmp_path / "broken.nir"
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[:data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            raw[data.draw(st.integers(0, len(raw) - 1), label="at")] ^= 0xFF
    broken.write_bytes(bytes(raw))
    try:
        net, _ = read_nir(broken)
    except NirGraphError as exc:
        assert str(exc).startswith(f"{broken}: ") and "\n" not in str(exc)
    else:
        assert isinstance(net, Network)


# --- CLI and pipeline ----------------------------------------------------------------------------------------

def test_cli_export_and_import_nir(tmp_path, capsys):
    net = small_net(seed=7)
    model = net.save(tmp_path / "model.npz")
    assert main(["export", str(model), "--format", "nir", "--out", str(tmp_path / "model.nir")]) == 0
    assert "NIR graph 12 -> 7 CubaLIF" in capsys.readouterr().out
    assert main(["export", str(model), "--format", "nir", "--weight-bits", "4", "--out", str(tmp_path / "q.nir")]) == 1
    assert "--weight-bits only apply to --format netx" in capsys.readouterr().err
    assert not (tmp_path / "q.nir").exists()
    assert main(["import-nir", str(tmp_path / "model.nir"), "--out", str(tmp_path / "back.npz")]) == 0
    back = load_network(tmp_path / "back.npz")
    assert back.params == net.params
    assert all(np.array_equal(back.weights[k], net.weights[k]) for k in net.weights)
    capsys.readouterr()
    assert main(["import-nir", str(model), "--out", str(tmp_path / "x.npz")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {model}: not a readable NIR graph") and "\n" not in err
    g = norse_style_graph()
    nir.write(tmp_path / "norse.nir", g)
    assert main(["import-nir", str(tmp_path / "norse.nir"), "--out", str(tmp_path / "y.npz")]) == 1
    assert "--dt" in capsys.readouterr().err
    assert main(["import-nir", str(tmp_path / "norse.nir"), "--out", str(tmp_path / "y.npz"), "--dt", "0.001",
                 "--timesteps", "77"]) == 0
    assert load_network(tmp_path / "y.npz").params.timesteps == 77


TINY = """\
seed = 0
device = "cpu"
[synthetic]
n_train = 40
n_test = 12
[network]
hidden = 16
timesteps = 60
[optim]
epochs = 1
batch_size = 16
[augment]
blend = false
[pipeline]
latency_samples = 2
"""


def test_pipeline_writes_network_nir_next_to_network_net(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    out = tmp_path / "run"
    assert main(["pipeline", "--config", str(tmp_path / "tiny.toml"), "--no-lava", "--sweep-bits", "8",
                 "--out", str(out)]) == 0
    assert (out / "network.net").is_file()
    back, _ = read_nir(out / "network.nir")
    model = load_network(out / "model.npz")
    assert back.params == model.params
    assert all(np.array_equal(back.weights[k], model.weights[k]) for k in model.weights)
