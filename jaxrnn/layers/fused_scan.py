"""The scan of a ``FusedCell`` with a hand-written backward pass (what cuDNN does).

Autodiff of ``lax.scan`` accumulates ``dW_hh += h_{t-1}^T d_t`` inside the reverse loop:
a (G*H, H) read-modify-write every step, and XLA keeps every gate intermediate as a
residual. Here the forward keeps only ``s_{t-1}`` and one (B, G) array per step; the
backward loop runs the VJP of the step's pointwise part (the cell's ``gates``, its
recurrent term and the mask) and the one matmul ``dh_{t-1} = d_hw_t W_hh``, and
``dW_hh = sum_t d_hw_t^T h_{t-1}`` is formed after the loop in one matmul over all T*B
rows (its operand layout, see there, took an LSTM update at T 50, B 32, H 64 from 3.66
to 3.36 and 3.58 to 3.18 ms in two runs, 2026-11-24). Nothing but the pointwise part is
differentiated per step, so ``gates`` is free to read any parameter but ``W_xh`` and
``W_hh`` (it is handed a cell without them).

For a ``SummedCell`` without layer norm the pointwise part reads ``xw`` and ``hw`` only
through ``a = xw + hw + b_hh``: the forward keeps ``a_t`` as the step's array (not
``hw_t``, and not ``xw`` as a residual), their cotangents are both ``d a``, which the
backward stacks once (and sums for ``d b_hh`` after the loop). An LSTM's residuals are
then ``h, c, a``: 6H numbers a step and row instead of 10H. An output cotangent that is
a symbolic zero (a many-to-one model reads the final state only) is not made an array of
zeros.

The forward loop runs by the ``scan`` given (the engine passes
``read_ahead.platform_scan``, which on the CPU reads each step's inputs one step ahead);
the backward loop is ``lax.scan``. Measured on the CPU, fwd+bwd of a layer against
reading ahead in the backward loop too and keeping ``xw``/``hw`` (both variants compiled
in one process, median of 15-31 interleaved rounds, 2026-11-29): LSTM B 128, F 28,
H 128, T 28 38.4 -> 35.3 ms; LSTM B 32, F 64, H 256, T 100 118.1 -> 107.1 ms; GRU at
those shapes 32.7 -> 30.4 and 88.6 -> 86.2 ms (plain backward loop only); simple RNN
B 128, H 128, T 28 7.49 -> 6.73 ms.

With resets (``jaxrnn.layers.resets``) a step restarts from ``initial`` before it runs:
the forward keeps the restarted state as the step's ``s_{t-1}``, and the backward sends
that state's cotangent to ``initial`` instead of the previous step.

The values and gradients are those of the plain scan (tests compare them for every
cell); only the order of floating-point sums differs.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, Bool, Float

from jaxrnn.cells.base import FusedCell, State, SummedCell
from jaxrnn.layers.mask import apply_mask
from jaxrnn.layers.read_ahead import Scan
from jaxrnn.layers.resets import restart


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


def _is_zero(cotangent) -> bool:
    return isinstance(cotangent, SymbolicZero)


def _instantiate(cotangent):
    """A state cotangent with its symbolic zeros made arrays (the backward loop carries it)."""
    return jax.tree.map(lambda d: jnp.zeros(d.shape, d.dtype) if _is_zero(d) else d, cotangent, is_leaf=_is_zero)


class _Loops(NamedTuple):
    """The forward and backward loops of one ``fused_scan`` call. ``rest`` is the cell's
    arrays but ``W_xh`` and ``W_hh``; ``static`` its non-array part."""

    static: FusedCell
    scan: Scan
    reverse: bool
    unroll: int
    shared: bool  # one cotangent for xw and hw (a SummedCell without layer norm)

    def cell(self, rest) -> FusedCell:
        return eqx.combine(rest, self.static)

    def pointwise(self, rest, s, xw_t, hw_t, m_t):
        c = self.cell(rest)
        return apply_mask(m_t, c.gates(s, xw_t, c.recurrent(hw_t)), s, c.output)

    def summed(self, rest, s, a_t, m_t):
        c = self.cell(rest)
        return apply_mask(m_t, c.activate(s, a_t), s, c.output)

    def output(self, rest, s):
        return self.cell(rest).output(s)

    def forward(self, W, rest, xw, s0, mask, resets, initial, keep: bool):
        """The states and outputs; with ``keep``, also ``(s_{t-1}, a_t)`` of every step
        (shared cotangent) or ``(s_{t-1}, hw_t)``, ``s_{t-1}`` after a reset."""

        def body(s, inputs):
            xw_t, m_t, r_t = inputs
            s = restart(s, r_t, initial)
            hw = self.output(rest, s) @ W.T
            if self.shared:
                kept = xw_t + self.cell(rest).recurrent(hw)
                new, y = self.summed(rest, s, kept, m_t)
            else:
                kept = hw
                new, y = self.pointwise(rest, s, xw_t, hw, m_t)
            return new, (y, (s, kept) if keep else None)

        return self.scan(body, s0, (xw, mask, resets), reverse=self.reverse, unroll=self.unroll)

    def backward(self, residuals, cotangents):
        """The VJP: the pointwise part's per step, ``dW_hh`` in one matmul after the loop.

        At a reset the state's cotangent goes to ``initial`` instead of the previous step."""
        W, rest, xw, mask, resets, initial, saved = residuals
        ds_final, dys = cotangents
        # A model that reads only the final state (many-to-one) leaves dys a symbolic zero:
        # the loop then adds a constant zero rather than reading a (T, B, H) array of zeros
        zero_dy = jnp.zeros(dys.shape[1:], dys.dtype) if _is_zero(dys) else None

        def body(carry, inputs):
            ds, d_rest, d_initial = carry
            xw_t, m_t, r_t, dy_t, (s_prev, kept) = inputs  # xw_t None, kept a_t with a shared cotangent
            dy_t = zero_dy if dy_t is None else dy_t
            if self.shared:
                _, vjp = jax.vjp(lambda r, s, a: self.summed(r, s, a, m_t), rest, s_prev, kept)
                dr, ds_prev, da = vjp((ds, dy_t))
                dxw_t = dhw_t = da
            else:
                _, vjp = jax.vjp(lambda r, s, x, h: self.pointwise(r, s, x, h, m_t), rest, s_prev, xw_t, kept)
                dr, ds_prev, dxw_t, dhw_t = vjp((ds, dy_t))
            dr_out, ds_out = jax.vjp(self.output, rest, s_prev)[1](dhw_t @ W)
            ds_prev = _add(ds_prev, ds_out)
            if r_t is not None:  # a reset step read initial, not the previous state
                zero = jax.tree.map(jnp.zeros_like, ds_prev)
                d_initial = _add(d_initial, restart(zero, r_t, ds_prev))
                ds_prev = restart(ds_prev, r_t, zero)
            carry = (ds_prev, _add(d_rest, _add(dr, dr_out)), d_initial)
            return carry, (dxw_t, None if self.shared else dhw_t)

        zero_rest = jax.tree.map(jnp.zeros_like, rest)
        zero_initial = None if resets is None else jax.tree.map(jnp.zeros_like, initial)
        (ds0, d_rest, d_initial), (dxw, dhw) = jax.lax.scan(
            body,
            (_instantiate(ds_final), zero_rest, zero_initial),
            (xw, mask, resets, None if _is_zero(dys) else dys, saved),
            reverse=not self.reverse,
            unroll=self.unroll,
        )
        if self.shared:  # b_hh's cotangent is d a, summed once here rather than every step
            dhw = dxw
            d_rest = eqx.tree_at(lambda c: c.b_hh, d_rest, d_rest.b_hh + dxw.sum((0, 1)))
        h_prev = self.output(rest, saved[0])  # (T, B, H): h_{t-1} for every step
        # d_hw^T as (G, T*B) in (t, b) order: the transpose the input projection's
        # gradient takes of d_xw too, so with a shared cotangent XLA forms it once, and
        # h_prev enters as it lies (an einsum here made XLA transpose both operands)
        dW = jnp.transpose(dhw, (2, 0, 1)).reshape(dhw.shape[-1], -1) @ h_prev.reshape(-1, h_prev.shape[-1])
        return dW, d_rest, dxw, ds0, None, None, d_initial


def fused_scan(
    cell: FusedCell,
    xw: Float[Array, "T B G"],
    state: State,
    mask: Bool[Array, "T B 1"] | None = None,
    *,
    resets: Bool[Array, "T B 1"] | None = None,
    initial: State | None = None,
    reverse: bool = False,
    unroll: int = 1,
    scan: Scan = jax.lax.scan,
    shared_cotangent: bool = True,
) -> tuple[State, Float[Array, "T B H"]]:
    """``plain_scan``'s contract and results: ``(final_state, outputs)``, outputs (T, B, H).

    ``scan`` runs the forward loop (``lax.scan`` or ``read_ahead.platform_scan``);
    ``shared_cotangent=False`` stacks the cotangents of ``xw`` and ``hw`` apart even for
    a ``SummedCell`` (an A/B setting of the engine).
    """
    dyn, static = eqx.partition(cell, eqx.is_array)
    spec = eqx.tree_at(lambda c: (c.W_xh, c.W_hh), jax.tree.map(lambda _: True, dyn), (False, False))
    rest, _ = eqx.partition(dyn, spec)  # every parameter of the pointwise part
    shared = shared_cotangent and isinstance(cell, SummedCell) and cell.ln_h is None
    loops = _Loops(static, scan, reverse, unroll, shared)

    @jax.custom_vjp
    def run(W, rest, xw, s0, mask, resets, initial):
        s, (ys, _) = loops.forward(W, rest, xw, s0, mask, resets, initial, keep=False)
        return s, ys

    def run_fwd(W, rest, xw, s0, mask, resets, initial):
        W, rest, xw, s0, mask, resets, initial = jax.tree.map(
            lambda p: p.value, (W, rest, xw, s0, mask, resets, initial)
        )
        s, (ys, saved) = loops.forward(W, rest, xw, s0, mask, resets, initial, keep=True)
        return (s, ys), (W, rest, None if loops.shared else xw, mask, resets, initial, saved)

    run.defvjp(run_fwd, loops.backward, symbolic_zeros=True)  # fwd gets CustomVJPPrimal leaves
    return run(dyn.W_hh, rest, xw, state, mask, resets, None if resets is None else initial)
