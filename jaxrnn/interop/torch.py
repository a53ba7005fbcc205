"""Convert ``torch.nn.RNN / LSTM / GRU`` to jaxrnn layers and back, weights copied exactly;
and whole ``ManyToOne`` / ``ManyToMany`` models to their PyTorch counterparts and back.

``from_torch(m)`` returns a ``Stacked`` that computes the same function as ``m`` on
batch-major inputs: ``m.batch_first`` only sets PyTorch's array layout, so with
``batch_first=False`` feed jaxrnn ``x.transpose(0, 1)``. Final states come per layer
(and per direction) instead of PyTorch's stacked ``h_n`` / ``c_n``.

``to_torch(model)`` of a ``ManyToOne`` or ``ManyToMany`` gives a ``TorchManyToOne`` or
``TorchManyToMany`` (``jaxrnn.interop.torch_models``): the network as above (batch-first)
and the head as an ``nn.Linear``, called ``net(x, lengths=None)`` and returning the
logits the jaxrnn model returns (lengths pack the batch); ``from_torch`` of either gives
the jaxrnn model back.

Mapping: ``weight_ih_l{k}[_reverse]`` -> ``W_xh``, ``weight_hh`` -> ``W_hh``,
``bias_ih`` -> ``b_xh``, ``bias_hh`` -> ``b_hh``; the gate order is the same (LSTM
i, f, g, o; GRU r, z, n). For the GRU, PyTorch's update gate is 1 - ours, so the z rows
of both weights and both biases are negated (exact in floating point). A module built
with ``bias=False`` gets zero biases. ``proj_size`` is not supported.
"""

from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.cells import GRUCell, LSTMCell, SimpleRNNCell
from jaxrnn.cells.base import ACTIVATIONS, Cell
from jaxrnn.layers import Bidirectional, Recurrent, Stacked
from jaxrnn.models import Head, ManyToMany, ManyToOne

if TYPE_CHECKING:  # an optional dependency: imported on use
    import torch


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


def from_torch(module) -> Stacked | ManyToOne | ManyToMany:
    """The jaxrnn network computing the same function as a torch module.

    Args:
        module: a ``torch.nn.RNN`` / ``LSTM`` / ``GRU``, or a ``TorchManyToOne`` /
            ``TorchManyToMany`` that ``to_torch`` made.

    Returns:
        A ``Stacked`` for an RNN module; the ``ManyToOne`` / ``ManyToMany`` (its head's
            activation and ``expects_lengths`` kept) for a whole model.
    """
    models = _torch_models() if _is_whole_model(module) else None
    if models is not None:
        head = Head(module.head.in_features, module.head.out_features, key=_any_key(), activation=module.activation)
        head = _set(
            head,
            W_hy=module.head.weight.detach().cpu().numpy(),
            b_y=module.head.bias.detach().cpu().numpy(),
        )
        kind = ManyToOne if isinstance(module, models.TorchManyToOne) else ManyToMany
        return kind(from_torch(module.rnn), head, expects_lengths=bool(module.expects_lengths))
    cell_type, kwargs = _kind(module)
    H = module.hidden_size
    sign = _z_sign(cell_type, H)
    key = _any_key()
    layers, size = [], module.input_size
    for k in range(module.num_layers):
        directions = []
        for suffix in ["", "_reverse"][: 1 + module.bidirectional]:
            cell = _set(cell_type(size, H, key=key, **kwargs), **_torch_weights(module, k, suffix, sign))
            directions.append(Recurrent(cell, reverse=bool(suffix)))
        layers.append(Bidirectional(*directions) if module.bidirectional else directions[0])
        size = layers[-1].output_size
    return Stacked(layers, dropout=float(module.dropout))


def _any_key():
    """For modules whose every weight is then overwritten: only shapes matter."""
    return jax.random.PRNGKey(0)


def _set(module: eqx.Module, **weights) -> eqx.Module:
    names = list(weights)
    return eqx.tree_at(lambda c: [getattr(c, n) for n in names], module, [jnp.asarray(weights[n]) for n in names])


def _torch_models():
    """``jaxrnn.interop.torch_models``, imported on use (it imports torch)."""
    _torch()
    from jaxrnn.interop import torch_models

    return torch_models


def _is_whole_model(module) -> bool:
    """A ``TorchManyToOne`` / ``TorchManyToMany``, told without importing torch for other objects."""
    return type(module).__name__ in ("TorchManyToOne", "TorchManyToMany") and type(module).__module__.startswith(
        "jaxrnn.interop"
    )


def to_torch(model: Stacked | ManyToOne | ManyToMany, *, batch_first: bool = True) -> "torch.nn.Module":
    """The torch module computing the same function as ``model``.

    Args:
        model: a ``Stacked`` (``make_rnn``), or a ``ManyToOne`` / ``ManyToMany`` whose
            head is linear, sigmoid or softmax (the torch model returns the logits, as
            the jaxrnn model does).
        batch_first: the layout of a ``Stacked``'s torch module; a whole model's is
            always batch-first, as jaxrnn's.

    Returns:
        An ``nn.RNN`` / ``LSTM`` / ``GRU`` for a ``Stacked``; a ``TorchManyToOne`` /
            ``TorchManyToMany`` (``jaxrnn.interop.torch_models``) for a whole model, called
            ``net(x, lengths=None)`` with ``x`` (B, T, F), giving logits (B, out) or (B, T, out).

    Needs every layer to use one cell type and hidden size, no layer norm, a concatenating
    bidirectional merge, a reset-after GRU, and a tanh or relu simple RNN.
    """
    torch = _torch()
    if isinstance(model, ManyToOne | ManyToMany):
        models = _torch_models()
        kind = models.TorchManyToOne if isinstance(model, ManyToOne) else models.TorchManyToMany
        linear = torch.nn.Linear(model.head.W_hy.shape[1], model.head.W_hy.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.array(model.head.W_hy, np.float32)))
            linear.bias.copy_(torch.from_numpy(np.array(model.head.b_y, np.float32)))
        return kind(to_torch(model.rnn), linear, model.head.activation, model.expects_lengths)
    if not isinstance(model, Stacked):
        raise TypeError(f"model must be a jaxrnn Stacked, ManyToOne or ManyToMany, got {type(model).__name__}")
    rnn = model
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
