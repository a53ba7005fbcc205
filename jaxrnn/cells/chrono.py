"""Chrono initialisation of the gated cells (Tallec & Ollivier 2018, "Can recurrent
neural networks warp time?").

At the default initialisation a gated cell forgets fast: the GRU's update gate starts at
σ(0) = 1/2, so half of the state is replaced at every step, and the LSTM's forget gate at
σ(1) = 0.73. The gradient that reaches back k steps shrinks accordingly: measured on the
France task at initialisation, ||dL/dh_k|| of the GRU falls from 1.2 at lag 0 to 1e-6 at
lag 44, and a cue 40 steps back gets no learning signal. Chrono initialisation draws each
unit's time scale u from U(1, t_max - 1) and sets the gate biases so that the unit keeps
u/(1+u) of its state per step:

- LSTM: forget bias log u, input bias -log u;
- GRU (z weighs the candidate, see ``jaxrnn.cells.gru``): update bias -log u.

The biases go into the ``b_xh`` blocks; the ``b_hh`` blocks of those gates are set to 0.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from jaxrnn._checks import check_count
from jaxrnn.cells.gru import GRUCell, ResetBeforeGRUCell
from jaxrnn.cells.lstm import LSTMCell

GatedCell = LSTMCell | GRUCell | ResetBeforeGRUCell


def chrono_init(cell: GatedCell, t_max: int, *, key: PRNGKeyArray) -> GatedCell:
    """``cell`` with chrono-initialised gate biases for dependencies up to ``t_max`` steps.

    Args:
        cell: an ``LSTMCell``, ``GRUCell`` or ``ResetBeforeGRUCell``.
        t_max: the longest dependency expected, in steps (>= 3); each unit's time scale
            is drawn from U(1, t_max - 1).
        key: draws the time scales.

    Returns:
        A copy of ``cell`` with the gate biases set (module docstring); every other
            weight unchanged.
    """
    if not isinstance(cell, (LSTMCell, GRUCell, ResetBeforeGRUCell)):
        raise TypeError(f"chrono_init takes an LSTMCell, GRUCell or ResetBeforeGRUCell, got {type(cell).__name__}")
    check_count(t_max, "t_max", 3, why="time scales are drawn from U(1, t_max - 1)")
    H = cell.hidden_size
    dtype = cell.b_xh.dtype
    log_u = jnp.log(jax.random.uniform(key, (H,), jnp.float32, 1.0, t_max - 1.0)).astype(dtype)
    b_xh, b_hh = cell.b_xh, cell.b_hh
    if isinstance(cell, LSTMCell):  # blocks i, f, g, o
        b_xh = b_xh.at[:H].set(-log_u).at[H : 2 * H].set(log_u)
        b_hh = b_hh.at[: 2 * H].set(0)
    else:  # blocks r, z, n
        b_xh = b_xh.at[H : 2 * H].set(-log_u)
        b_hh = b_hh.at[H : 2 * H].set(0)
    return eqx.tree_at(lambda c: (c.b_xh, c.b_hh), cell, (b_xh, b_hh))
