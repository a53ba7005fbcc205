"""The scan of a fused cell with a hand-written backward pass (what cuDNN does).

Autodiff of ``lax.scan`` accumulates ``dW_hh += h_{t-1}^T d_t`` inside the reverse loop:
a (G*H, H) read-modify-write every step, and XLA keeps every gate intermediate as a
residual. Here the forward keeps only ``s_{t-1}`` and ``hw_t = h_{t-1} @ W_hh.T`` per step;
the backward loop runs the VJP of the cell's pointwise ``gates`` and the one matmul
``dh_{t-1} = d_hw_t W_hh``, and ``dW_hh = sum_t d_hw_t^T h_{t-1}`` is formed after the loop
in one matmul over all T*B rows. With ``remat`` only the states are kept and ``hw_t`` is
recomputed in the backward loop. For cells whose gates read ``xw`` and ``hw`` only as a
sum (``Cell.gates_read_the_sum``) the two cotangents are equal and one is stacked. On the
CPU both loops read their per-step inputs one step ahead (``read_ahead``).

The values and gradients are those of the plain scan (tests compare them); only the
order of floating-point sums differs.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from jaxrnn.cells.base import Cell, State
from jaxrnn.layers import read_ahead


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


def fused_scan(
    cell: Cell,
    xw: Float[Array, "T B G"],
    state: State,
    mask: Bool[Array, "T B 1"] | None = None,
    *,
    reverse: bool = False,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[State, Float[Array, "T B H"]]:
    """Same contract as ``scan_cell`` for cells with ``cell.fused``: ``(final_state, outputs)``."""
    dyn, static = eqx.partition(cell, eqx.is_array)
    spec = eqx.tree_at(lambda c: (c.W_xh, c.W_hh), jax.tree.map(lambda _: True, dyn), (False, False))
    rest, _ = eqx.partition(dyn, spec)  # every parameter the pointwise gates read

    def gates(rest, s, xw_t, hw_t):
        return eqx.combine(rest, static).gates(s, xw_t, hw_t)

    output = cell.output  # reads no parameter
    shared = cell.gates_read_the_sum  # then d(xw) = d(hw): one stacked cotangent

    def forward(W, rest, xw, s0, mask, keep):
        def body(s, inputs):
            xw_t, m_t = inputs
            hw = output(s) @ W.T
            new = gates(rest, s, xw_t, hw)
            if m_t is None:
                y = output(new)
            else:
                new = jax.tree.map(lambda n, o: jnp.where(m_t, n, o), new, s)
                y = jnp.where(m_t, output(new), 0)
            saved = None if not keep else (s if remat else (s, hw))
            return new, (y, saved)

        return read_ahead.platform_scan(body, s0, (xw, mask), reverse=reverse, unroll=unroll)

    @jax.custom_vjp
    def run(W, rest, xw, s0, mask):
        s, (ys, _) = forward(W, rest, xw, s0, mask, keep=False)
        return s, ys

    def run_fwd(W, rest, xw, s0, mask):
        s, (ys, saved) = forward(W, rest, xw, s0, mask, keep=True)
        return (s, ys), (W, rest, xw, mask, saved)

    def run_bwd(residuals, cotangents):
        W, rest, xw, mask, saved = residuals
        ds_final, dys = cotangents

        def body(carry, inputs):
            ds, d_rest = carry
            xw_t, m_t, dy_t, saved_t = inputs
            s_prev, hw = (saved_t, output(saved_t) @ W.T) if remat else saved_t
            out, vjp_gates = jax.vjp(gates, rest, s_prev, xw_t, hw)
            d_out = _add(ds, jax.vjp(output, out)[1](dy_t)[0])
            if m_t is not None:
                skipped = jax.tree.map(lambda d: jnp.where(m_t, 0, d), ds)
                d_out = jax.tree.map(lambda d: jnp.where(m_t, d, 0), d_out)
            dr, ds_prev, dxw_t, dhw_t = vjp_gates(d_out)
            ds_prev = _add(ds_prev, jax.vjp(output, s_prev)[1](dhw_t @ W)[0])
            if m_t is not None:
                ds_prev = _add(ds_prev, skipped)
            return (ds_prev, _add(d_rest, dr)), (dxw_t, None if shared else dhw_t)

        zero_rest = jax.tree.map(jnp.zeros_like, rest)
        (ds0, d_rest), (dxw, dhw) = read_ahead.platform_scan(
            body, (ds_final, zero_rest), (xw, mask, dys, saved), reverse=not reverse, unroll=unroll
        )
        h_prev = output(saved if remat else saved[0])  # (T, B, H): h_{t-1} for every step
        dW = jnp.einsum("tbg,tbh->gh", dxw if shared else dhw, h_prev)
        return dW, d_rest, dxw, ds0, None

    run.defvjp(run_fwd, run_bwd)
    return run(dyn.W_hh, rest, xw, state, mask)
