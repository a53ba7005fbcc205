"""``python -m jaxrnn``: run each cell forward over a batch and take a BPTT gradient."""

import time

import jax
import jax.numpy as jnp

import jaxrnn


def main() -> None:
    """Forward + BPTT for the simple RNN, the LSTM and the GRU; prints timings and gradient norms."""
    key = jax.random.PRNGKey(0)
    B, T, F, H = 16, 100, 8, 32
    xs = jax.random.normal(key, (B, T, F))
    print(f"jaxrnn {jaxrnn.__version__} on {jax.devices()[0].platform}: batch {B}, T {T}, input {F}, hidden {H}")
    for name, cell_type in [("SimpleRNN", jaxrnn.SimpleRNNCell), ("LSTM", jaxrnn.LSTMCell), ("GRU", jaxrnn.GRUCell)]:
        rnn = jaxrnn.make_rnn(cell_type, F, H, key=key)

        @jax.jit
        def loss_and_grad(m):
            return jax.value_and_grad(lambda m: jnp.mean(m(xs)[0][:, -1] ** 2))(m)

        start = time.perf_counter()
        loss, grad = jax.block_until_ready(loss_and_grad(rnn))
        compiled = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(loss_and_grad(rnn))
        ran = time.perf_counter() - start
        W_hh_grad = grad.layers[0].cell.W_hh
        print(
            f"{name:9s} loss {float(loss):.4f}  |dL/dW_hh| {float(jnp.linalg.norm(W_hh_grad)):.3e}  "
            f"compile {compiled * 1e3:.0f} ms, run {ran * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
