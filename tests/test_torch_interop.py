"""PyTorch parity: from_torch(m) computes m's function; to_torch(from_torch(m)) gives m's weights."""

import zlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxrnn

B, T, IN, H = 4, 9, 5, 6
MODULES = {
    "rnn_tanh": lambda **kw: torch.nn.RNN(IN, H, nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: torch.nn.RNN(IN, H, nonlinearity="relu", **kw),
    "lstm": lambda **kw: torch.nn.LSTM(IN, H, **kw),
    "gru": lambda **kw: torch.nn.GRU(IN, H, **kw),
}


def rel_close(a, b, tol=1e-5):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())
    assert np.linalg.norm(a - b) <= tol * np.linalg.norm(b)


def torch_finals(module, out):
    """PyTorch's stacked (num_layers * dirs, B, H) final states -> per-layer/per-direction list."""
    states = out[1] if isinstance(out[1], tuple) else (out[1],)
    dirs = 1 + module.bidirectional
    per = []
    for k in range(module.num_layers):
        per.append([tuple(s[k * dirs + d].numpy() for s in states) for d in range(dirs)])
    return per


def jax_finals(module, finals):
    per = []
    for layer_state in finals:
        directions = layer_state if module.bidirectional else (layer_state,)
        per.append([tuple(np.asarray(a) for a in (d if isinstance(d, tuple) else (d,))) for d in directions])
    return per


@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [True, False])
def test_parity_with_pytorch(name, num_layers, bidirectional, batch_first):
    torch.manual_seed(zlib.crc32(f"{name} {num_layers} {bidirectional}".encode()))  # hash() differs per process
    module = MODULES[name](num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    with torch.no_grad():
        for p in module.parameters():  # random weights and biases, larger than the default init
            p.uniform_(-0.6, 0.6)
    x = torch.randn(B, T, IN)
    with torch.no_grad():
        out = module(x if batch_first else x.transpose(0, 1))
    y_torch = out[0] if batch_first else out[0].transpose(0, 1)
    rnn = jaxrnn.from_torch(module)
    ys, finals = jax.jit(lambda m, x: m(x))(rnn, jnp.asarray(x.numpy()))
    rel_close(ys, y_torch.numpy())
    for got_layer, want_layer in zip(jax_finals(module, finals), torch_finals(module, out)):
        for got, want in zip(got_layer, want_layer):
            for g, w in zip(got, want):
                rel_close(g, w)
    back = jaxrnn.to_torch(rnn, batch_first=batch_first)
    assert type(back) is type(module) and back.batch_first == batch_first
    for (n1, p1), (n2, p2) in zip(module.named_parameters(), back.named_parameters()):
        assert n1 == n2
        assert torch.equal(p1, p2), n1


def test_parity_with_initial_state_and_no_bias():
    torch.manual_seed(0)
    module = torch.nn.LSTM(IN, H, num_layers=2, bias=False, batch_first=True)
    x, h0, c0 = torch.randn(B, T, IN), torch.randn(2, B, H), torch.randn(2, B, H)
    with torch.no_grad():
        y, _ = module(x, (h0, c0))
    rnn = jaxrnn.from_torch(module)
    state = tuple((jnp.asarray(h0[k].numpy()), jnp.asarray(c0[k].numpy())) for k in range(2))
    ys, _ = rnn(jnp.asarray(x.numpy()), state)
    rel_close(ys, y.numpy())


def test_gradients_match_pytorch():
    torch.manual_seed(1)
    module = torch.nn.GRU(IN, H, batch_first=True)
    x = torch.randn(B, T, IN)
    (module(x)[0] ** 2).sum().backward()
    rnn = jaxrnn.from_torch(module)
    grad = jax.grad(lambda m: jnp.sum(m(jnp.asarray(x.numpy()))[0] ** 2))(rnn)
    sign = np.ones(3 * H, np.float32)
    sign[H : 2 * H] = -1  # our z rows are PyTorch's negated
    cell = grad.layers[0].cell
    rel_close(np.asarray(cell.W_hh) * sign[:, None], module.weight_hh_l0.grad.numpy(), 1e-4)
    rel_close(np.asarray(cell.W_xh) * sign[:, None], module.weight_ih_l0.grad.numpy(), 1e-4)


def test_to_torch_refuses_what_torch_lacks():
    k = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="layer-norm"):
        jaxrnn.to_torch(jaxrnn.make_rnn(jaxrnn.LSTMCell, IN, H, key=k, layer_norm=True))
    with pytest.raises(ValueError, match="ResetBeforeGRUCell has no PyTorch counterpart"):
        jaxrnn.to_torch(jaxrnn.make_rnn(jaxrnn.ResetBeforeGRUCell, IN, H, key=k))
    with pytest.raises(ValueError, match="merge"):
        jaxrnn.to_torch(jaxrnn.make_rnn(jaxrnn.GRUCell, IN, H, key=k, bidirectional=True, merge="sum"))
    with pytest.raises(ValueError, match="tanh or relu"):
        jaxrnn.to_torch(jaxrnn.make_rnn(jaxrnn.SimpleRNNCell, IN, H, key=k, activation="sigmoid"))
    with pytest.raises(TypeError, match="RNN, LSTM or GRU"):
        jaxrnn.from_torch(torch.nn.Linear(3, 4))
    with pytest.raises(TypeError, match="model must be a jaxrnn Stacked, ManyToOne or ManyToMany, got Head"):
        jaxrnn.to_torch(jaxrnn.Head(H, 2, key=k))
    with pytest.raises(ValueError, match="proj_size"):
        jaxrnn.from_torch(torch.nn.LSTM(IN, H, proj_size=2))


@pytest.mark.parametrize("kind", [jaxrnn.ManyToOne, jaxrnn.ManyToMany])
@pytest.mark.parametrize("cell", [jaxrnn.SimpleRNNCell, jaxrnn.LSTMCell, jaxrnn.GRUCell])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_whole_models_match_pytorch_with_and_without_lengths(kind, cell, bidirectional):
    """to_torch(model) of a ManyToOne / ManyToMany: the torch model's logits are jaxrnn's,
    with lengths (PyTorch packs the batch) and without; from_torch gives the model back."""
    k = jax.random.split(jax.random.PRNGKey(zlib.crc32(f"{kind.__name__} {cell.__name__} {bidirectional}".encode())), 3)
    rnn = jaxrnn.make_rnn(cell, IN, H, key=k[0], num_layers=2, bidirectional=bidirectional)
    model = kind(rnn, jaxrnn.Head(rnn.output_size, 3, key=k[1], activation="softmax"), expects_lengths=True)
    x = np.array(jax.random.normal(k[2], (B, T, IN)))  # writable: torch.from_numpy shares it
    lengths = np.array([T, 4, 1, 7])
    net = jaxrnn.to_torch(model)
    assert type(net).__name__ == "Torch" + kind.__name__
    with torch.no_grad():
        for n in (None, lengths):
            want = model(jnp.asarray(x), lengths=None if n is None else jnp.asarray(n))
            got = net(torch.from_numpy(x), None if n is None else torch.from_numpy(n))
            rel_close(got.numpy(), np.asarray(want))
    back = jaxrnn.from_torch(net)
    assert type(back) is kind and back.head.activation == "softmax" and back.expects_lengths
    jax.tree.map(np.testing.assert_array_equal, eqx.filter(back, eqx.is_array), eqx.filter(model, eqx.is_array))
