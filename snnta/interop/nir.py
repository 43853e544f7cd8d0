"""NIR export and import: a snnta network as a continuous-time NIR graph, and any NIR graph as a snnta deployment.

**What a graph means here** (``docs/nir.md``).  Nodes are NIR's continuous-time neurons; every
neuron obeys ``dx/dt = A x + B I(t)``, and ``I`` is the node's input *held constant over each step*
(the level reading that snnTorch's and Norse's NIR code use; a step's input is the count of events in
the bin times the weights).  A graph written by snnta carries in its metadata the training bin width
``dt`` and the rule that turned per-step parameters into continuous ones (``rule``), so that importing it
at that ``dt`` with that rule gives back the same per-step parameters:

- ``zoh``: ``A = log(A_bar)/dt``, ``B = Psi(A, dt)^-1 B_bar`` (exact for a level held over the bin;
  importing at another ``dt_T`` is then exactly the ``integral`` adaptation);
- ``euler``: ``A = (A_bar - I)/dt``, ``B = B_bar/dt`` (forward Euler on the level, what snnTorch and
  Norse do when they run a graph: ``v += dt/tau (v_leak - v + R I)``).

Node types: snnta's ``lif`` is ``nir.LIF`` (``tau``, ``r = tau B``, ``v_leak = 0``), the readout
``li`` is ``nir.LI``, ``cuba_lif`` is ``nir.CubaLIF`` (``r = tau_mem A_01``, ``w_in = tau_syn B_1``).
Every other neuron model is written as the extension node :class:`SnntaNeuron`, which holds the
model's ``A``, ``B``, threshold and reset as they are (readable by anyone: it *is* the ODE) plus the
model's name; NIR's own reader does not know it, :func:`read_nir` does.

**Reset.**  snnta resets by subtraction: a spike adds ``reset`` to the state (``u -= threshold`` for
LIF).  NIR's ``LIF`` declares a reset *to* ``v_reset``.  snnta writes ``v_reset = threshold + reset_u``
(``0`` for snnta's LIF) and marks the node ``metadata["reset"] = "subtract"``; it reads any LIF, IF or
CubaLIF as subtraction of ``v_threshold - v_reset``.  The two agree whenever ``u`` equals the threshold
at the spike, which is always the case in continuous time for a crossing by drift; in discrete steps
subtraction keeps the overshoot above threshold (snnTorch's ``reset_mechanism="subtract"`` with
``reset_delay=False``, Norse's ``reset_subtract``), reset-to-value drops it.

Recurrent weights are ``Linear`` nodes on a two-edge cycle ``neuron -> w_rec -> neuron``; a recurrent
spike arrives one step later, as in every discrete simulator.  A deployment whose recurrent spikes arrive
``d > 1`` bins later (``spikes=source_delay``) gets a ``Delay`` node of ``(d - 1) dt`` seconds on the cycle
(``neuron -> w_rec -> delay -> neuron``), and reading such a graph at ``dt'`` gives ``d' = 1 + delay / dt'``
(a whole number, or a one-line error).  The graph's metadata records the whole spike step; read back at the
bin width it was written at, a snnta graph gets that step again (an adapted deployment's spike budget
belongs to its bin), at any other bin width the trained step, one spike per bin.  snnta's logits are the time
average of the readout's potential (not part of the graph).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from snnta.core import ssm
from snnta.core.deployment import Deployment
from snnta.core.model import ModelConfig, SNNClassifier
from snnta.core.neurons import NEURONS
from snnta.core.neurons.step import SpikeStep, StepParams
from snnta.core.units import check_dt
from snnta.errors import CheckpointError, ConfigError

try:
    import nir
except ImportError:  # pragma: no cover - the error is raised where nir is needed
    nir = None

#: rules from per-step to continuous parameters (and back) for a graph
RULES = ("zoh", "euler")
FORMAT = "snnta-nir"


def _need_nir():
    if nir is None:
        raise ConfigError("NIR support needs the nir package: pip install nir (or pip install -e '.[nir]')")


def _check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ConfigError(f"rule: unknown NIR rule {rule!r}; choose one of: {', '.join(RULES)}")
    return rule


def to_continuous(p: StepParams, rule: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` in float64 from per-step ``p`` under ``rule`` (``B`` per unit level input)."""
    A_bar, B_bar = p.A_bar.detach().cpu().double(), p.B_bar.detach().cpu().double()
    if _check_rule(rule) == "zoh":
        return ssm.continuous(A_bar, B_bar, p.dt, "zoh")
    eye = torch.eye(A_bar.shape[-1], dtype=A_bar.dtype).expand(A_bar.shape)
    return (A_bar - eye) / p.dt, B_bar / p.dt


def to_step(A: torch.Tensor, B: torch.Tensor, dt: float, rule: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step ``(A_bar, B_bar)`` at ``dt`` under ``rule``: ``zoh`` exact for a level, ``euler`` forward Euler."""
    if _check_rule(rule) == "zoh":
        return ssm.discretize(A, B, dt, "zoh")
    eye = torch.eye(A.shape[-1], dtype=A.dtype).expand(A.shape)
    return eye + A * dt, B * dt


if nir is not None:
    @dataclass(eq=False)
    class SnntaNeuron(nir.NIRNode):
        """snnta's NIR extension for neuron models NIR has no node for (adLIF, resonate-and-fire, ...).

        ``dx/dt = A x + B I(t)`` per neuron (``A [H, n, n]`` in 1/s, ``B [H, n]``); ``x[0]`` is the membrane
        potential; when it reaches ``v_threshold`` the neuron spikes and ``reset [H, n]`` is added to ``x``.
        ``kind`` names the snnta model (``adlif``, ``rf``, ...), ``state_names`` its states (comma-separated).
        """

        A: np.ndarray
        B: np.ndarray
        v_threshold: np.ndarray
        reset: np.ndarray
        kind: str = "ssm"
        state_names: str = "u"
        spiking: bool = True

        def __post_init__(self):
            self.A, self.B = np.asarray(self.A), np.asarray(self.B)
            self.v_threshold, self.reset = np.asarray(self.v_threshold), np.asarray(self.reset)
            H = self.A.shape[0]
            if self.A.shape[1:] != (self.B.shape[1],) * 2 or self.B.shape[0] != H or self.v_threshold.shape != (H,) \
                    or self.reset.shape != self.B.shape:
                raise ConfigError("SnntaNeuron: need A [H, n, n], B [H, n], v_threshold [H], reset [H, n]")
            self.input_type = {"input": np.array([H])}
            self.output_type = {"output": np.array([H])}
else:  # pragma: no cover
    SnntaNeuron = None


# --------------------------------------------------------------------------- export

def _neuron_node(kind: str, A: np.ndarray, B: np.ndarray, theta: np.ndarray, reset: np.ndarray, spiking: bool,
                 state_names: tuple[str, ...]):
    n = A.shape[-1]
    meta = {"reset": "subtract", "snnta_kind": kind}
    if n == 1 and kind in ("lif", "li"):
        tau = -1.0 / A[:, 0, 0]
        r = tau * B[:, 0]
        if not spiking:
            return nir.LI(tau=tau, r=r, v_leak=np.zeros_like(tau), metadata={"snnta_kind": kind})
        return nir.LIF(tau=tau, r=r, v_leak=np.zeros_like(tau), v_threshold=theta, v_reset=theta + reset[:, 0],
                       metadata=meta)
    # NIR's CubaLIF has A_10 = B_0 = 0; from float32 per-step parameters they come back as ~1e-7 of the rest
    tiny = 1e-5
    if kind == "cuba_lif" and n == 2 and np.all(reset[:, 1] == 0) \
            and np.all(np.abs(A[:, 1, 0]) <= tiny * np.abs(A).max(axis=(1, 2))) \
            and np.all(np.abs(B[:, 0]) <= tiny * np.abs(B).max(axis=1)):
        tau_mem, tau_syn = -1.0 / A[:, 0, 0], -1.0 / A[:, 1, 1]
        # the ~1e-7 residuals ride along in metadata, so that snnta's own round trip stays bit-exact
        meta.update(snnta_A_10=A[:, 1, 0].copy(), snnta_B_0=B[:, 0].copy())
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem * A[:, 0, 1], v_leak=np.zeros_like(tau_mem),
                           v_threshold=theta, v_reset=theta + reset[:, 0], w_in=tau_syn * B[:, 1], metadata=meta)
    return SnntaNeuron(A=A, B=B, v_threshold=theta, reset=reset, kind=kind, state_names=",".join(state_names),
                       spiking=bool(spiking), metadata={"snnta_kind": kind})


def to_nir(dep: Deployment, rule: str = "zoh", dataset: dict | None = None) -> "nir.NIRGraph":
    """The network of ``dep`` (per-step parameters at ``dep.dt``) as a continuous-time NIR graph.

    ``rule`` (``zoh`` or ``euler``) maps the per-step parameters to continuous ones (module docstring);
    ``euler`` is the form in which snnTorch and Norse run a graph at ``dt``.
    """
    _need_nir()
    _check_rule(rule)
    if dep.rebinned:
        raise ConfigError("export: a method=rebin deployment is its source network run on re-binned input; "
                          "export the source checkpoint instead")
    model = dep.model
    step = dep.spike_step
    pops = model.populations()
    nodes = {"input": nir.Input(input_type={"input": np.array([model.cfg.n_in])})}
    edges = []
    prev = "input"
    weights = [(layer.w_in.weight, layer.w_rec) for layer in model.layers] + [(model.readout.weight, None)]
    for i, (p, pop, (w_in, w_rec)) in enumerate(zip(dep.params, pops, weights)):
        A, B = to_continuous(p, rule)
        name = f"layer{i}" if i < len(model.layers) else "readout"
        nodes[f"{name}.w_in"] = nir.Linear(weight=w_in.detach().cpu().double().numpy())
        nodes[name] = _neuron_node(pop.kind, A.numpy(), B.numpy(), p.threshold.detach().cpu().double().numpy(),
                                   p.reset.detach().cpu().double().numpy(), p.spiking, pop.state_names)
        edges += [(prev, f"{name}.w_in"), (f"{name}.w_in", name)]
        if w_rec is not None:
            nodes[f"{name}.w_rec"] = nir.Linear(weight=w_rec.detach().cpu().double().numpy())
            edges.append((name, f"{name}.w_rec"))
            if step.delay > 1:  # the latency beyond the one step every simulator has: (d - 1) dt
                nodes[f"{name}.delay"] = nir.Delay(delay=np.full(w_rec.shape[0], (step.delay - 1) * float(dep.dt)))
                edges += [(f"{name}.w_rec", f"{name}.delay"), (f"{name}.delay", name)]
            else:
                edges.append((f"{name}.w_rec", name))
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array([model.cfg.n_classes])})
    edges.append((prev, "output"))
    from snnta._version import __version__

    meta = {"format": FORMAT, "snnta_version": __version__, "dt": float(dep.dt), "rule": rule,
            "reset": "subtract", "input": "level: each step's input held constant over the step",
            "readout": "logits = time average of the readout potential", "method": dep.method,
            "spike_step": json.dumps(asdict(step)),
            "model_config": json.dumps(model.cfg.to_dict())}
    if dataset:
        meta["dataset"] = json.dumps(dataset)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(path: str | os.PathLike, graph) -> Path:
    """Write ``graph`` as a NIR (HDF5) file, atomically (temp file + rename)."""
    _need_nir()
    from snnta.util.io import atomic_write

    return atomic_write(path, lambda f: nir.write(f, graph), mode="w+b")  # h5py reads back what it writes


def _convert(d: dict):
    """A node from NIR's dict form, with :class:`SnntaNeuron` and nested graphs handled here."""
    kind = d.get("type")
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "SnntaNeuron":
        kw = {k: v for k, v in d.items() if k != "type"}
        for k in ("kind", "state_names"):
            if isinstance(kw.get(k), bytes):
                kw[k] = kw[k].decode()
        kw["spiking"] = bool(kw.get("spiking", True))
        return SnntaNeuron(**kw)
    if kind == "NIRGraph":
        nodes = {k: _convert(v) for k, v in d["nodes"].items()}
        edges = [tuple(x.decode() if isinstance(x, bytes) else str(x) for x in e) for e in d["edges"]]
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(d.get("metadata", {})), type_check=False)
    return nir.dict2NIRNode(d)


def read_nir(path: str | os.PathLike):
    """Read a NIR file (NIR's own node types and snnta's :class:`SnntaNeuron`)."""
    _need_nir()
    import h5py
    from nir.serialization import hdf2dict

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"NIR file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            d = hdf2dict(f["node"])
    except (OSError, KeyError) as e:
        raise CheckpointError(f"{path} is not a readable NIR file ({type(e).__name__})") from None
    return _convert(d)


# --------------------------------------------------------------------------- import

def _meta(graph) -> dict:
    out = {}
    for k, v in (graph.metadata or {}).items():
        v = v.decode() if isinstance(v, bytes) else v
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def _flatten(graph, prefix: str = ""):
    """Nodes and edges of ``graph`` with nested graphs inlined (their Input/Output nodes bypassed)."""
    nodes, edges = {}, []
    inner = {}
    for k, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(node, f"{prefix}{k}.")
            ins = [n for n, v in sub_nodes.items() if isinstance(v, nir.Input)]
            outs = [n for n, v in sub_nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise ConfigError(f"NIR: nested graph {k!r} needs one Input and one Output node")
            first = [b for a, b in sub_edges if a == ins[0]]
            last = [a for a, b in sub_edges if b == outs[0]]
            inner[f"{prefix}{k}"] = (first, last)
            nodes.update({n: v for n, v in sub_nodes.items() if n not in (ins[0], outs[0])})
            edges += [(a, b) for a, b in sub_edges if a != ins[0] and b != outs[0]]
        else:
            nodes[f"{prefix}{k}"] = node
    for a, b in graph.edges:
        a, b = f"{prefix}{a}", f"{prefix}{b}"
        srcs = inner[a][1] if a in inner else [a]
        dsts = inner[b][0] if b in inner else [b]
        edges += [(s, t) for s in srcs for t in dsts]
    return nodes, list(dict.fromkeys(edges))


_NEURON_TYPES = ("LIF", "LI", "CubaLIF", "IF", "SnntaNeuron")


def _is_neuron(node) -> bool:
    return type(node).__name__ in _NEURON_TYPES


def _weight(node, name: str) -> np.ndarray:
    if isinstance(node, nir.Affine):
        if np.any(np.asarray(node.bias) != 0):
            raise ConfigError(f"NIR: node {name!r} has a nonzero bias; snnta's networks have none")
    elif not isinstance(node, nir.Linear):
        raise ConfigError(f"NIR: node {name!r} is a {type(node).__name__}; snnta reads Linear/Affine weights "
                          "between neuron nodes")
    return np.asarray(node.weight, dtype=np.float64)


def _neuron_system(node, name: str) -> dict:
    """``{kind, A, B, threshold, reset, spiking}`` (float64) of a NIR neuron node; one-line errors otherwise."""
    arr = lambda v: np.asarray(v, dtype=np.float64).reshape(-1)  # noqa: E731
    t = type(node).__name__
    if t in ("LIF", "LI", "CubaLIF") and np.any(arr(node.v_leak) != 0):
        raise ConfigError(f"NIR: node {name!r} has v_leak != 0; snnta's neurons leak towards 0")
    if t in ("LIF", "LI"):
        tau, r = arr(node.tau), arr(node.r)
        A, B = (-1.0 / tau)[:, None, None], (r / tau)[:, None]
        if t == "LI":
            # no threshold in a leaky integrator; 1.0 is what snnta's own LI holds (unused)
            return dict(kind="li", A=A, B=B, threshold=np.ones_like(tau), reset=np.zeros_like(B), spiking=False)
        th = arr(node.v_threshold)
        return dict(kind="lif", A=A, B=B, threshold=th, reset=(arr(node.v_reset) - th)[:, None], spiking=True)
    if t == "IF":
        r, th = arr(node.r), arr(node.v_threshold)
        return dict(kind="lif", A=np.zeros((len(r), 1, 1)), B=r[:, None], threshold=th,
                    reset=(arr(node.v_reset) - th)[:, None], spiking=True)
    if t == "CubaLIF":
        tm, ts, r, w = arr(node.tau_mem), arr(node.tau_syn), arr(node.r), arr(node.w_in)
        A = np.zeros((len(tm), 2, 2))
        A[:, 0, 0], A[:, 0, 1], A[:, 1, 1] = -1.0 / tm, r / tm, -1.0 / ts
        B = np.stack([np.zeros_like(ts), w / ts], -1)
        meta = node.metadata or {}
        if "snnta_A_10" in meta and "snnta_B_0" in meta:
            A[:, 1, 0], B[:, 0] = arr(meta["snnta_A_10"]), arr(meta["snnta_B_0"])
        th = arr(node.v_threshold)
        reset = np.stack([arr(node.v_reset) - th, np.zeros_like(th)], -1)
        return dict(kind="cuba_lif", A=A, B=B, threshold=th, reset=reset, spiking=True)
    return dict(kind=str(node.kind), A=np.asarray(node.A, np.float64), B=np.asarray(node.B, np.float64),
                threshold=arr(node.v_threshold), reset=np.asarray(node.reset, np.float64), spiking=bool(node.spiking))


def _recurrent_loop(name: str, nodes: dict, succ: dict, seen: set) -> tuple[list, float]:
    """The loop ``name -> w_rec [-> Delay] -> name``: its node names and the Delay's latency (s, 0 without)."""
    for k in succ[name]:
        if k in seen or _is_neuron(nodes[k]):
            continue
        if name in succ.get(k, []):
            return [k], 0.0
        after = [d for d in succ.get(k, []) if isinstance(nodes[d], nir.Delay) and name in succ.get(d, [])]
        if after:
            latency = np.asarray(nodes[after[0]].delay, dtype=np.float64).reshape(-1)
            if latency.size == 0 or np.any(latency != latency[0]) or latency[0] < 0:
                raise ConfigError(f"NIR: delay node {after[0]!r} needs one non-negative delay for all its neurons, "
                                  f"got {np.unique(latency).tolist()}")
            return [k, after[0]], float(latency[0])
    return [], 0.0


def _chain(graph):
    """``[(w_in, system, w_rec or None, name)]`` along the graph from its Input to its Output."""
    nodes, edges = _flatten(graph)
    succ = {k: [b for a, b in edges if a == k] for k in nodes}
    ins = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    if len(ins) != 1:
        raise ConfigError(f"NIR: the graph needs exactly one Input node, found {len(ins)}")
    layers, cur, seen = [], ins[0], set()
    while True:
        nxt = [k for k in succ[cur] if k not in seen]
        if not nxt:
            raise ConfigError(f"NIR: node {cur!r} leads nowhere (no path to an Output node)")
        if len(nxt) != 1:
            raise ConfigError(f"NIR: node {cur!r} branches to {nxt}; snnta reads a chain of layers")
        w_name = nxt[0]
        if isinstance(nodes[w_name], nir.Output):
            break
        w = _weight(nodes[w_name], w_name)
        seen.add(w_name)
        n_names = [k for k in succ[w_name] if k not in seen]
        if len(n_names) != 1 or not _is_neuron(nodes[n_names[0]]):
            raise ConfigError(f"NIR: weights {w_name!r} must feed exactly one neuron node")
        name = n_names[0]
        seen.add(name)
        system = _neuron_system(nodes[name], name)
        rec, delay = _recurrent_loop(name, nodes, succ, seen)
        w_rec = None
        if rec:
            w_rec = _weight(nodes[rec[0]], rec[0])
            seen.update(rec)
        system["rec_delay"] = delay
        if w.shape[0] != system["A"].shape[0] or (w_rec is not None and w_rec.shape != (w.shape[0],) * 2):
            raise ConfigError(f"NIR: weight shapes around {name!r} do not match its {system['A'].shape[0]} neurons")
        layers.append((w, system, w_rec, name))
        cur = name
    if not layers:
        raise ConfigError("NIR: the graph has no neuron nodes")
    return layers


def _recurrent_delay(layers: list, dt: float, source: str) -> int:
    """The spike step's recurrent delay ``d`` (bins) at ``dt``: a recurrent loop's latency is ``d dt`` = one step
    plus its Delay node's ``delay``, so ``d = 1 + delay / dt`` must be a whole number, the same for every loop."""
    loops = {name: s.get("rec_delay", 0.0) for _, s, w_rec, name in layers if w_rec is not None}
    bins = {name: 1 + latency / dt for name, latency in loops.items()}
    for name, d in bins.items():
        if abs(d - round(d)) > 1e-6 * max(1.0, d):
            raise ConfigError(f"{source}: the recurrent delay of {name!r} ({loops[name]:g} s) is not a whole number "
                              f"of {dt:g} s bins; read the graph at a dt that divides it")
    whole = sorted({int(round(d)) for d in bins.values()})
    if len(whole) > 1:
        raise ConfigError(f"{source}: snnta needs one recurrent delay for all layers, found {whole} bins "
                          f"at dt={dt:g} s")
    return whole[0] if whole else 1


def _assemble(layers: list, dt: float, rule: str, source: str, step: SpikeStep | None = None) -> Deployment:
    """A :class:`Deployment` at ``dt`` from ``[(w_in, system, w_rec, name)]`` (continuous systems).

    Its spike step is ``step`` (default: the trained one, one spike per bin) with the recurrent delay the graph's
    Delay nodes give (:func:`_recurrent_delay`)."""
    delay = _recurrent_delay(layers, dt, source)
    step = replace(step or SpikeStep(), delay=delay)
    if layers[-1][1]["spiking"]:
        H = layers[-1][0].shape[0]
        warnings.warn(f"{source}: the network ends in spiking neurons; snnta added a leaky-integrator readout "
                      f"(tau 20 ms, identity weights) over its {H} neurons", stacklevel=3)
        li = dict(kind="li", A=np.full((H, 1, 1), -50.0), B=np.full((H, 1), 50.0), threshold=np.ones(H),
                  reset=np.zeros((H, 1)), spiking=False)
        layers = layers + [(np.eye(H), li, None, "readout")]
    hidden, (w_out, ro, _, ro_name) = layers[:-1], layers[-1]
    if not hidden:
        raise ConfigError(f"{source}: the network has no spiking layer before its readout")
    if ro["kind"] != "li":
        raise ConfigError(f"{source}: the last neuron node {ro_name!r} must be a leaky integrator (nir.LI)")
    kinds = {s["kind"] for _, s, _, _ in hidden}
    if len(kinds) != 1 or not all(s["spiking"] for _, s, _, _ in hidden):
        raise ConfigError(f"{source}: snnta needs one spiking neuron model for all hidden layers, found {sorted(kinds)}")
    kind = kinds.pop()
    if kind not in NEURONS:
        raise ConfigError(f"{source}: neuron model {kind!r} is not in this snnta; known: {', '.join(NEURONS)}")
    if hidden[0][1]["A"].shape[-1] != len(NEURONS[kind].state_names):
        raise ConfigError(f"{source}: neuron model {kind!r} has {len(NEURONS[kind].state_names)} states, "
                          f"the graph {hidden[0][1]['A'].shape[-1]}")
    recurrent = any(w_rec is not None for _, _, w_rec, _ in hidden)
    tau_ro = -1.0 / ro["A"][:, 0, 0]
    cfg = ModelConfig(n_in=hidden[0][0].shape[1], n_classes=w_out.shape[0],
                      hidden=tuple(w.shape[0] for w, _, _, _ in hidden), neuron=kind, recurrent=recurrent,
                      readout_tau=(float(tau_ro.min()), float(tau_ro.max())))
    model = SNNClassifier(cfg)
    params = []
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        for layer, (w, s, w_rec, _) in zip(model.layers, hidden):
            layer.w_in.weight.copy_(torch.from_numpy(w))
            if layer.w_rec is not None:
                layer.w_rec.copy_(torch.from_numpy(w_rec) if w_rec is not None else torch.zeros_like(layer.w_rec))
        model.readout.weight.copy_(torch.from_numpy(w_out))
        for pop, (_, s, _, _) in zip(model.populations(), hidden + [layers[-1]]):
            _sync_spec(pop, s)
            A_bar, B_bar = to_step(torch.from_numpy(s["A"]), torch.from_numpy(s["B"]), dt, rule)
            params.append(StepParams(A_bar=A_bar.to(dtype), B_bar=B_bar.to(dtype),
                                     reset=torch.from_numpy(s["reset"]).to(dtype),
                                     threshold=torch.from_numpy(s["threshold"]).to(dtype), dt=float(dt),
                                     spiking=s["spiking"], kind=s["kind"], form="zoh" if rule == "zoh" else None))
    model.eval()
    return Deployment(model, params, float(dt), step, "none", "bin", float(dt),
                      {"source": source, "rule": rule})


def _sync_spec(pop, s: dict) -> None:
    """Set the continuous parameters of a LIF/LI spec from a system, where the spec can hold them exactly."""
    if pop.kind in ("lif", "li") and s["A"].shape[-1] == 1 and np.all(s["A"] < 0):
        tau = torch.from_numpy(-1.0 / s["A"][:, 0, 0])
        pop.tau_clip = (min(pop.tau_clip[0], float(tau.min())), max(pop.tau_clip[1], float(tau.max())))
        pop.log_tau.copy_(tau.log())
        if pop.spiking:
            pop.theta.copy_(torch.from_numpy(s["threshold"]))


def _recorded_step(meta: dict, dt: float) -> SpikeStep | None:
    """The spike step a snnta-written graph records, when it is read at the bin width it was written at (an
    adapted deployment's step belongs to its bin); ``None`` otherwise (the trained step)."""
    recorded = meta.get("spike_step")
    if meta.get("format") != FORMAT or recorded is None or abs(float(meta.get("dt", -1.0)) - dt) > 1e-12 * dt:
        return None
    fields = json.loads(recorded)
    if isinstance(fields, list):  # written by an earlier snnta: [max_spikes, refractory]
        return SpikeStep(*fields[:2])
    return SpikeStep(**{k: v for k, v in fields.items() if k != "delay"})  # the delay: from the graph's Delay nodes


def from_nir(graph, dt: float | str | None = None, rule: str | None = None) -> Deployment:
    """A NIR graph (a ``nir.NIRGraph`` or a path) as a snnta :class:`Deployment` at bin width ``dt``.

    ``dt`` defaults to the graph's ``metadata["dt"]`` (graphs written by snnta), ``rule`` to its
    ``metadata["rule"]`` or ``zoh``.  Reset-to-value neurons are read as reset by subtraction of
    ``v_threshold - v_reset`` (module docstring); a warning says so for graphs not written by snnta.
    """
    _need_nir()
    source = "NIR graph"
    if isinstance(graph, (str, os.PathLike)):
        source = str(graph)
        graph = read_nir(graph)
    meta = _meta(graph)
    if dt is None:
        if "dt" not in meta:
            raise ConfigError(f"{source}: the graph does not say its bin width; pass dt= (src_dt= on the command line)")
        dt = meta["dt"]
    dt = check_dt(dt, "dt")
    rule = _check_rule(rule or meta.get("rule", "zoh"))
    layers = _chain(graph)
    if meta.get("format") != FORMAT and any(s["kind"] in ("lif", "cuba_lif") for _, s, _, _ in layers):
        warnings.warn(f"{source}: NIR's reset to v_reset is read as reset by subtraction of "
                      "(v_threshold - v_reset): the same in continuous time, not after a discrete overshoot",
                      stacklevel=2)
    dep = _assemble(layers, dt, rule, source, _recorded_step(meta, dt))
    dep.report["nir_metadata"] = {k: v for k, v in meta.items() if isinstance(v, (str, int, float))}
    return dep


def from_weights(w_in: list, neurons: list, w_out, readout, dt: float | str, w_rec: list | None = None,
                 rule: str = "zoh") -> Deployment:
    """A :class:`Deployment` at ``dt`` from weights and continuous-time neuron specs (bring your own model).

    ``w_in[i]`` is layer ``i``'s input weight ``[H_i, H_{i-1}]`` (``H_{-1}`` = input channels),
    ``neurons[i]`` its spec (a :class:`~snnta.core.neurons.NeuronSpec`, e.g. ``snnta.neurons.LIF(H_i)``),
    ``w_rec[i]`` its recurrent weight ``[H_i, H_i]`` or ``None``; ``w_out [C, H_last]`` and ``readout``
    (an ``LI`` spec of size ``C``) the readout.  Each spec is discretized at ``dt`` with ``rule``.
    """
    if len(w_in) != len(neurons) or not neurons:
        raise ConfigError(f"from_weights: need one input weight per neuron population, got {len(w_in)} weights "
                          f"for {len(neurons)} populations")
    w_rec = list(w_rec) if w_rec is not None else [None] * len(neurons)
    if len(w_rec) != len(neurons):
        raise ConfigError(f"from_weights: w_rec needs one entry (or None) per population, got {len(w_rec)}")
    layers, n_prev = [], None
    for i, (w, spec, v) in enumerate(zip(list(w_in) + [w_out], list(neurons) + [readout], w_rec + [None])):
        w = torch.as_tensor(w, dtype=torch.float64).detach().cpu().numpy()
        if w.ndim != 2 or w.shape[0] != spec.size or (n_prev is not None and w.shape[1] != n_prev):
            want = f"[{spec.size}, {n_prev if n_prev is not None else 'n_in'}]"
            raise ConfigError(f"from_weights: weight {i} has shape {list(w.shape)}, expected {want}")
        with torch.no_grad():
            s = dict(kind=spec.kind, A=spec.A().double().numpy(), B=spec.B().double().numpy(),
                     threshold=spec.threshold().double().numpy(), reset=spec.reset().double().numpy(),
                     spiking=bool(spec.spiking))
        if v is not None:
            v = torch.as_tensor(v, dtype=torch.float64).detach().cpu().numpy()
            if v.shape != (spec.size, spec.size):
                raise ConfigError(f"from_weights: w_rec[{i}] has shape {list(v.shape)}, expected [{spec.size}, {spec.size}]")
        layers.append((w, s, v, f"population {i}"))
        n_prev = spec.size
    if layers[-1][1]["spiking"]:
        raise ConfigError("from_weights: readout must be a non-spiking spec, e.g. snnta.neurons.LI(n_classes)")
    return _assemble(layers, check_dt(dt, "dt"), _check_rule(rule), "from_weights")


def graph_dataset(graph) -> dict | None:
    """The dataset config a snnta-written graph carries (``None`` otherwise)."""
    meta = _meta(graph)
    return json.loads(meta["dataset"]) if "dataset" in meta else None


def is_nir_path(path: str | os.PathLike | None) -> bool:
    return path is not None and str(path).endswith(".nir")


__all__ = ["to_nir", "from_nir", "from_weights", "read_nir", "write_nir", "SnntaNeuron", "graph_dataset",
           "is_nir_path", "RULES", "to_continuous", "to_step"]
