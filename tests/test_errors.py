"""Bad input gets a clear error naming the argument, raised in our code before any work."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import key

import jaxrnn
import jaxrnn.tasks

B, T, IN, H = 2, 5, 3, 4


@pytest.fixture(params=["layer", "stack", "bidirectional", "model"])
def run(request):
    """A callable (xs, state=None, lengths=None) for each kind of entry point."""
    k = key()
    if request.param == "layer":
        layer = jaxrnn.Recurrent(jaxrnn.LSTMCell(IN, H, key=k))
        return lambda xs, state=None, lengths=None: layer(xs, state, lengths=lengths)
    if request.param == "stack":
        rnn = jaxrnn.make_rnn(jaxrnn.GRUCell, IN, H, key=k, num_layers=2)
        return lambda xs, state=None, lengths=None: rnn(xs, None if state is None else (state, state), lengths=lengths)
    if request.param == "bidirectional":
        rnn = jaxrnn.make_rnn(jaxrnn.SimpleRNNCell, IN, H, key=k, bidirectional=True)
        return lambda xs, state=None, lengths=None: rnn(
            xs, None if state is None else ((state, state),), lengths=lengths
        )
    model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, IN, H, key=k), jaxrnn.Head(H, 2, key=k))
    return lambda xs, state=None, lengths=None: model(xs, lengths=lengths) if state is None else None


def test_wrong_feature_size(run):
    with pytest.raises(ValueError, match=r"xs has 7 features.*expected 3.*\(2, 5, 7\)"):
        run(jnp.zeros((B, T, 7)))


@pytest.mark.parametrize("shape", [(T, IN), (1, B, T, IN)])
def test_wrong_rank(run, shape):
    with pytest.raises(ValueError, match=rf"xs must have rank 3.*got rank {len(shape)}"):
        run(jnp.zeros(shape))


def test_non_floating_input(run):
    with pytest.raises(TypeError, match="xs must have a floating dtype, got int32"):
        run(jnp.zeros((B, T, IN), jnp.int32))


def test_lengths_batch_mismatch(run):
    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\).*got \(3,\)"):
        run(jnp.zeros((B, T, IN)), lengths=jnp.array([1, 2, 3]))


@pytest.mark.parametrize("bad", [[-1, 2], [2, 6]])
def test_lengths_out_of_range(run, bad):
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 5\]"):
        run(jnp.zeros((B, T, IN)), lengths=jnp.array(bad))


def test_lengths_out_of_range_under_jit():
    layer = jaxrnn.Recurrent(jaxrnn.GRUCell(IN, H, key=key()))
    f = jax.jit(lambda xs, n: layer(xs, lengths=n)[0])
    f(jnp.zeros((B, T, IN)), jnp.array([5, 0]))
    with pytest.raises(Exception, match=r"lengths must lie in \[0, 5\]"):
        jax.block_until_ready(f(jnp.zeros((B, T, IN)), jnp.array([6, 0])))


def test_float_lengths():
    layer = jaxrnn.Recurrent(jaxrnn.GRUCell(IN, H, key=key()))
    with pytest.raises(TypeError, match="lengths must be an integer array"):
        layer(jnp.zeros((B, T, IN)), lengths=jnp.array([1.0, 2.0]))


def test_wrong_state_shape():
    layer = jaxrnn.Recurrent(jaxrnn.LSTMCell(IN, H, key=key()))
    with pytest.raises(ValueError, match=r"state must have \(shape, dtype\) .*got \(\(\(2, 5\), 'float32'\), "):
        layer(jnp.zeros((B, T, IN)), (jnp.zeros((B, 5)), jnp.zeros((B, H))))
    with pytest.raises(ValueError, match=r"state must have \(shape, dtype\)"):
        layer(jnp.zeros((B, T, IN)), jnp.zeros((B, H)))  # an LSTM state is a pair
    for dtype in (jnp.int32, jnp.float16):
        state = (jnp.zeros((B, H), dtype), jnp.zeros((B, H), dtype))
        with pytest.raises(
            ValueError, match=rf"state must have \(shape, dtype\) .*'float32'.*got .*'{jnp.dtype(dtype)}'"
        ):
            layer(jnp.zeros((B, T, IN)), state)
    rnn = jaxrnn.make_rnn(jaxrnn.GRUCell, IN, H, key=key(), num_layers=2)
    with pytest.raises(ValueError, match="tuple of 2 per-layer states"):
        rnn(jnp.zeros((B, T, IN)), jnp.zeros((B, H)))


def test_construction_errors():
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1"):
        jaxrnn.LSTMCell(3, 0, key=key())
    with pytest.raises(ValueError, match="activation must be one of"):
        jaxrnn.SimpleRNNCell(3, 4, key=key(), activation="gelu_typo")
    with pytest.raises(ValueError, match="merge must be one of"):
        jaxrnn.make_rnn(jaxrnn.GRUCell, 3, 4, key=key(), bidirectional=True, merge="mean")
    with pytest.raises(ValueError, match="num_layers must be an int >= 1, got 0"):
        jaxrnn.make_rnn(jaxrnn.GRUCell, 3, 4, key=key(), num_layers=0)
    with pytest.raises(ValueError, match=r"layers\[1\] takes 3 features but layers\[0\] emits 4"):
        jaxrnn.Stacked([jaxrnn.Recurrent(jaxrnn.GRUCell(3, 4, key=key()))] * 2)
    with pytest.raises(ValueError, match="dropout must lie in"):
        jaxrnn.make_rnn(jaxrnn.GRUCell, 3, 4, key=key(), dropout=1.0)
    with pytest.raises(ValueError, match="activation must be one of"):
        jaxrnn.Head(4, 2, key=key(), activation="tanh")


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: jaxrnn.Head(4, 0, key=key()), r"out_size must be an int >= 1, got 0"),
        (lambda: jaxrnn.Head(4, -2, key=key()), r"out_size must be an int >= 1, got -2"),
        (lambda: jaxrnn.SimpleRNNCell(3, True, key=key()), r"hidden_size must be an int >= 1, got True"),
        (lambda: jaxrnn.GRUCell(2.5, 4, key=key()), r"input_size must be an int >= 1, got 2.5"),
        (
            lambda: jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, 3, 4, key=key()), jaxrnn.Head(6, 2, key=key())),
            r"head reads 6 features but rnn emits 4",
        ),
        (
            lambda: jaxrnn.ManyToMany(
                jaxrnn.make_rnn(jaxrnn.GRUCell, 3, 4, key=key(), bidirectional=True), jaxrnn.Head(4, 2, key=key())
            ),
            r"head reads 4 features but rnn emits 8 \(a bidirectional layer",
        ),
    ],
)
def test_sizes_are_checked_when_the_model_is_built(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_numpy_integer_sizes_are_sizes():
    cell = jaxrnn.GRUCell(np.int32(3), np.int64(4), key=key())
    assert cell.hidden_size == 4 and type(cell.hidden_size) is int and cell.W_hh.shape == (12, 4)
    assert jaxrnn.Head(np.int64(4), np.int64(2), key=key()).W_hy.shape == (2, 4)


def test_decoding_arguments_are_checked():
    V = 6
    dec = jaxrnn.Decoder(jaxrnn.GRUCell(V, H, key=key()), jaxrnn.Head(H, V, key=key()), vocab_size=V)
    state = dec.cell.init_state((2,))
    with pytest.raises(ValueError, match=r"end_token must lie in \[0, 6\) \(the vocabulary\), got 99"):
        dec.generate(state, 3, end_token=99)
    with pytest.raises(ValueError, match=r"temperature must be a finite number >= 0 \(0 is greedy\), got -1"):
        dec.generate(state, 3, temperature=-1, key=key())
    model = jaxrnn.ManyToMany(jaxrnn.make_rnn(jaxrnn.GRUCell, V, H, key=key()), jaxrnn.Head(H, V, key=key()))
    with pytest.raises(ValueError, match="prompt must be non-empty text"):
        jaxrnn.tasks.sample_text(model, list("abcdef"), "", 5)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("cell", [jaxrnn.LSTMCell, jaxrnn.GRUCell, jaxrnn.SimpleRNNCell])
def test_half_precision_cells_are_built_from_a_float32_draw(cell, dtype):
    half = cell(IN, H, key=key(3), dtype=dtype)
    full = cell(IN, H, key=key(3))
    assert half.W_hh.dtype == half.W_xh.dtype == dtype
    np.testing.assert_array_equal(np.asarray(half.W_hh), np.asarray(full.W_hh.astype(dtype)))


@pytest.mark.parametrize("cell", [jaxrnn.LSTMCell, jaxrnn.GRUCell])
def test_a_bfloat16_model_trains(cell):
    import optax

    k1, k2, k3 = jax.random.split(key(4), 3)
    model = jaxrnn.ManyToOne(
        jaxrnn.make_rnn(cell, IN, 16, key=k1, dtype=jnp.bfloat16), jaxrnn.Head(16, 1, key=k2, dtype=jnp.bfloat16)
    )
    x = jax.random.normal(k3, (64, 8, IN)).astype(jnp.bfloat16)
    y = x[:, :, :1].sum(1) / 3
    trained, hist = jaxrnn.fit(model, jaxrnn.Batches((x, y), 16), key=k1, epochs=6, optimizer=optax.adam(1e-2))
    assert all(hist.finite) and hist.epochs[-1]["loss"] < 0.5 * hist.epochs[0]["loss"]
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(trained))


def test_decoder_targets_are_token_ids_in_the_vocabulary():
    import equinox as eqx

    V = 6
    dec = jaxrnn.Decoder(jaxrnn.LSTMCell(V, H, key=key()), jaxrnn.Head(H, V, key=key()), vocab_size=V)
    model = jaxrnn.EncoderDecoder(jaxrnn.make_rnn(jaxrnn.LSTMCell, IN, H, key=key()), dec)
    xs = jnp.ones((B, T, IN))
    with pytest.raises(ValueError, match=r"targets must be token ids in \[0, 6\) \(the vocabulary\), got min 1, max 9"):
        model(xs, jnp.array([[1, 9]] * B))
    with pytest.raises(ValueError, match=r"targets must be token ids: integers of shape \(B, T\), got .*'float32'"):
        model(xs, jnp.array([[1.5, 2.0]] * B))
    with pytest.raises(ValueError, match=r"got \(shape, dtype\) \(\(2, 3, 6\), 'float32'\)"):
        model(xs, jax.nn.one_hot(jnp.zeros((B, 3), int), V))  # one-hot targets
    with pytest.raises(Exception, match=r"targets must be token ids in \[0, 6\)"):
        eqx.filter_jit(lambda m, t: m(xs, t))(model, jnp.array([[1, 9]] * B))


def test_one_to_many_condition_and_cell_input_sizes():
    gen = jaxrnn.OneToMany(jaxrnn.Decoder(jaxrnn.GRUCell(2, H, key=key()), jaxrnn.Head(H, 2, key=key())), 4, key=key())
    with pytest.raises(ValueError, match=r"u must have shape \(batch, 4\).*got \(2, 5\)"):
        gen.generate(jnp.ones((2, 5)), 3)
    cell = jaxrnn.LSTMCell(IN, H, key=key())
    with pytest.raises(ValueError, match=r"x must have 3 features in its last axis, got shape \(5,\)"):
        cell(cell.init_state(), jnp.ones(5))


def test_spectra_take_a_cell_or_say_what_to_pass():
    from jaxrnn import spectra

    model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, IN, H, key=key()), jaxrnn.Head(H, 1, key=key()))
    seq = jax.random.normal(key(1), (6, IN))
    want = spectra.step_jacobians(model.rnn.layers[0].cell, seq)
    for obj in (model, model.rnn, model.rnn.layers[0]):  # a one-layer model, stack or layer: its cell
        np.testing.assert_array_equal(spectra.step_jacobians(obj, seq), want)
    with pytest.raises(TypeError, match=r"got a Stacked: pass one layer's cell, e.g. model.rnn.layers\[i\].cell"):
        spectra.state_gradients(jaxrnn.make_rnn(jaxrnn.GRUCell, IN, H, key=key(), num_layers=2), seq)
    with pytest.raises(TypeError, match="pascanu_bound applies to the simple RNN.*a LSTMCell's is not"):
        spectra.pascanu_bound(jaxrnn.LSTMCell(IN, H, key=key()))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: jaxrnn.LSTMCell(IN, H, key=None), TypeError, "key must be a PRNG key .* got None"),
        (lambda: jaxrnn.Head(H, 2, key=3), TypeError, "key must be a PRNG key"),
        (lambda: jaxrnn.make_rnn(int, IN, H, key=key()), TypeError, "cell_type must be a cell class"),
        (lambda: jaxrnn.streams(jnp.arange(10), 0), ValueError, "n_streams must be an int >= 1, got 0"),
        (
            lambda: jaxrnn.LSTMCell(IN, H, key=key())(
                jaxrnn.LSTMCell(IN, H, key=key()).init_state(), jnp.ones(IN, int)
            ),
            TypeError,
            "x must have a floating dtype, got int32",
        ),
    ],
)
def test_neighbours_found_by_a_sweep(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_generate_steps_must_be_a_count():
    V = 6
    dec = jaxrnn.Decoder(jaxrnn.GRUCell(V, H, key=key()), jaxrnn.Head(H, V, key=key()), vocab_size=V)
    with pytest.raises(ValueError, match=r"steps must be an int >= 0, got 2.5"):
        dec.generate(dec.cell.init_state((2,)), 2.5)


def test_fit_callbacks_must_be_callback_objects():
    x = jnp.ones((4, T, IN))
    model = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.GRUCell, IN, H, key=key()), jaxrnn.Head(H, 1, key=key()))
    with pytest.raises(TypeError, match=r"callbacks must be jaxrnn.callbacks objects .*, got \[3\]"):
        jaxrnn.fit(model, jaxrnn.Batches((x, jnp.ones((4, 1))), 2), key=key(), callbacks=[3])
