"""The input projection of all T steps, with ``b_xh`` inside the GEMM on the CPU.

Why: XLA:CPU (jaxlib 0.10) does not fuse a bias add into its dot, so ``x @ W_xh.T + b_xh``
makes a second pass over the (T, B, G) result: 3-18 ms at B 32, G 1024, T 64-256, against
1-4 ms for a column of ones in the GEMM, ``[x, 1] @ [W_xh, b_xh]^T``
(docs/performance.md). The column costs one extra input feature; a GPU fuses the bias
add, so there the projection is the cell's own ``project``. Cells with layer norm
normalise ``x @ W_xh.T`` before adding ``b_xh`` and always take ``project``.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxrnn.cells.base import Cell


def _with_bias_column(cell: Cell, xs: Float[Array, "*b in"]) -> Float[Array, "*b G"]:
    ones = jnp.ones((*xs.shape[:-1], 1), xs.dtype)
    return jnp.concatenate([xs, ones], -1) @ jnp.concatenate([cell.W_xh, cell.b_xh[:, None]], 1).T


def project(cell: Cell, xs: Float[Array, "*b in"]) -> Float[Array, "*b G"]:
    """``cell.project(xs)``, computed with the bias column when compiled for the CPU."""
    if cell.ln_x is not None:
        return cell.project(xs)
    return jax.lax.platform_dependent(
        xs, cpu=lambda xs: _with_bias_column(cell, xs), default=lambda xs: cell.project(xs)
    )
