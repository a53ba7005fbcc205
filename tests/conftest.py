import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn

CELL_KINDS = {  # every kind of cell: name -> (class, keyword arguments)
    "rnn": (jaxrnn.SimpleRNNCell, {}),
    "rnn_relu_ln": (jaxrnn.SimpleRNNCell, {"activation": "relu", "layer_norm": True}),
    "lstm": (jaxrnn.LSTMCell, {}),
    "lstm_ln": (jaxrnn.LSTMCell, {"layer_norm": True}),
    "gru": (jaxrnn.GRUCell, {}),
    "gru_ln": (jaxrnn.GRUCell, {"layer_norm": True}),
    "gru_before": (jaxrnn.ResetBeforeGRUCell, {}),
    "gru_before_ln": (jaxrnn.ResetBeforeGRUCell, {"layer_norm": True}),
}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def set_weights(module, **arrays):
    """Replace named array fields of an Equinox module."""
    names = list(arrays)
    return eqx.tree_at(lambda m: [getattr(m, n) for n in names], module, [jnp.asarray(arrays[n]) for n in names])


def key(i=0):
    return jax.random.PRNGKey(i)


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """JAX's persistent compilation cache for the session (one folder per worker): tests that
    compile the same computation (a run, its interrupted copy and its resumption) compile it once."""
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax-cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
