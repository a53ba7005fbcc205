"""Convert ``torch.nn.RNN / LSTM / GRU`` to jaxrnn layers and back, weights copied exactly.

``from_torch(m)`` returns a ``Stacked`` that computes the same function as ``m`` on
batch-major inputs: ``m.batch_first`` only sets PyTorch's array layout, so with
``batch_first=False`` feed jaxrnn ``x.transpose(0, 1)``. Final states come per layer
(and per direction) instead of PyTorch's stacked ``h_n`` / ``c_n``.

Mapping: ``weight_ih_l{k}[_reverse]`` -> ``W_xh``, ``weight_hh`` -> ``W_hh``,
``bias_ih`` -> ``b_xh``, ``bias_hh`` -> ``b_hh``; the gate order is the same (LSTM
i, f, g, o; GRU r, z, n). For the GRU, PyTorch's update gate is 1 - ours, so the z rows
of both weights and both biases are negated (exact in floating point). A module built
with ``bias=False`` gets zero biases. ``proj_size`` is not supported.
"""

import jax.numpy as jnp
import numpy as np

from jaxrnn.cells import GRUCell, LSTMCell, SimpleRNNCell
from jaxrnn.cells.base import ACTIVATIONS, Cell
from jaxrnn.layers import Bidirectional, Recurrent, Stacked


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("PyTorch interop needs torch: pip install 'jaxrnn[torch]'") from e
    return torch


def _z_sign(cell_type: type[Cell], H: int) -> np.ndarray:
    """+1 everywhere, -1 on the GRU's z rows: applying it maps PyTorch <-> jaxrnn."""
    sign = np.ones(cell_type.n_gates * H, np.float32)
    if cell_type is GRUCell:
        sign[H : 2 * H] = -1.0
    return sign


def _kind(module) -> tuple[type[Cell], dict]:
    torch = _torch()
    if isinstance(module, torch.nn.LSTM):
        if getattr(module, "proj_size", 0):
            raise ValueError("LSTM with proj_size > 0 is not supported")
        return LSTMCell, {"forget_bias": 0.0}
    if isinstance(module, torch.nn.GRU):
        return GRUCell, {}
    if isinstance(module, torch.nn.RNN):
        return SimpleRNNCell, {"activation": module.nonlinearity}
    raise TypeError(f"module must be a torch.nn.RNN, LSTM or GRU, got {type(module).__name__}")


def _torch_weights(module, k: int, suffix: str, sign: np.ndarray) -> dict[str, np.ndarray]:
    """Layer k's (direction ``suffix``) weights in jaxrnn's convention; zeros for absent biases."""

    def get(name: str) -> np.ndarray:
        t = getattr(module, f"{name}_l{k}{suffix}", None)
        if t is None:
            return np.zeros(len(sign), np.float32)
        return np.asarray(t.detach().cpu().numpy(), np.float32)

    return {
        "W_xh": get("weight_ih") * sign[:, None],
        "W_hh": get("weight_hh") * sign[:, None],
        "b_xh": get("bias_ih") * sign,
        "b_hh": get("bias_hh") * sign,
    }


def from_torch(module) -> Stacked:
    """The jaxrnn ``Stacked`` computing the same function as a torch RNN/LSTM/GRU module."""
    import jax

    cell_type, kwargs = _kind(module)
    H = module.hidden_size
    sign = _z_sign(cell_type, H)
    key = jax.random.PRNGKey(0)  # only shapes matter: every weight is overwritten
    layers, size = [], module.input_size
    for k in range(module.num_layers):
        directions = []
        for suffix in ["", "_reverse"][: 1 + module.bidirectional]:
            cell = _set(cell_type(size, H, key=key, **kwargs), **_torch_weights(module, k, suffix, sign))
            directions.append(Recurrent(cell, reverse=bool(suffix)))
        layers.append(Bidirectional(*directions) if module.bidirectional else directions[0])
        size = layers[-1].output_size
    return Stacked(layers, dropout=float(module.dropout))


def _set(cell: Cell, **weights) -> Cell:
    import equinox as eqx

    names = list(weights)
    return eqx.tree_at(lambda c: [getattr(c, n) for n in names], cell, [jnp.asarray(weights[n]) for n in names])


def to_torch(rnn: Stacked, *, batch_first: bool = True):
    """The torch ``nn.RNN`` / ``LSTM`` / ``GRU`` computing the same function as ``rnn``.

    Needs every layer to use one cell type and hidden size, no layer norm, a concatenating
    bidirectional merge, a reset-after GRU, and a tanh or relu simple RNN.
    """
    torch = _torch()
    if not isinstance(rnn, Stacked):
        raise TypeError(f"rnn must be a jaxrnn Stacked, got {type(rnn).__name__}")
    bidirectional = isinstance(rnn.layers[0], Bidirectional)
    per_layer = []
    for i, layer in enumerate(rnn.layers):
        if isinstance(layer, Bidirectional) != bidirectional:
            raise ValueError("to_torch needs all layers uni- or all bidirectional")
        if isinstance(layer, Bidirectional) and layer.merge != "concat":
            raise ValueError(f"layers[{i}]: torch concatenates directions; merge='sum' cannot be converted")
        per_layer.append([layer.forward, layer.backward] if bidirectional else [layer])
    cells = [r.cell for rs in per_layer for r in rs]
    first = cells[0]
    cell_type, H = type(first), first.hidden_size
    for c in cells:
        if type(c) is not cell_type or c.hidden_size != H:
            raise ValueError("to_torch needs one cell type and one hidden size in every layer")
        if c.layer_norm:
            raise ValueError("layer-norm cells have no PyTorch counterpart")
    extra = {}
    if cell_type is SimpleRNNCell:
        name = next((n for n, f in ACTIVATIONS.items() if f is first.activation), None)
        if name not in ("tanh", "relu") or any(c.activation is not first.activation for c in cells):
            raise ValueError("only simple RNNs with one activation, tanh or relu, have a PyTorch counterpart")
        extra["nonlinearity"] = name
        module_type = torch.nn.RNN
    elif cell_type is GRUCell:
        module_type = torch.nn.GRU
    elif cell_type is LSTMCell:
        module_type = torch.nn.LSTM
    else:
        raise ValueError(
            f"a {cell_type.__name__} has no PyTorch counterpart (PyTorch's GRU is jaxrnn.GRUCell: reset after W_hn h)"
        )
    module = module_type(
        first.input_size,
        H,
        num_layers=len(rnn.layers),
        bidirectional=bidirectional,
        batch_first=batch_first,
        dropout=rnn.dropout,
        **extra,
    )
    sign = _z_sign(cell_type, H)
    with torch.no_grad():
        for k, recs in enumerate(per_layer):
            for rec, suffix in zip(recs, ["", "_reverse"]):
                c = rec.cell
                for name, value in [
                    ("weight_ih", np.asarray(c.W_xh) * sign[:, None]),
                    ("weight_hh", np.asarray(c.W_hh) * sign[:, None]),
                    ("bias_ih", np.asarray(c.b_xh) * sign),
                    ("bias_hh", np.asarray(c.b_hh) * sign),
                ]:
                    getattr(module, f"{name}_l{k}{suffix}").copy_(torch.from_numpy(np.array(value, np.float32)))
    return module
