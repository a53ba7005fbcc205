"""An update's gradient with the batch split by rows over the devices of a mesh, each
device computing its rows' share with the single-device program (``jax.shard_map``).

Why not leave the split to XLA (a ``jit`` of the whole batch with its rows sharded): the
layers' fast paths (the fused backward pass, the bias column of the input GEMM) reshape
time and batch together, where XLA's sharding propagation loses the split; the scan then
runs whole on every device, and two CPU devices gain nothing (row-MNIST's LSTM gradient
on two cores: 19.4 ms split by XLA, 20.2 ms on one device, 13.5 ms split here;
``python -m benchmarks.cpu_devices``). Under ``shard_map`` each device
runs the program of its rows, exactly the one-device program of a smaller batch, and
the devices meet once an update, to add their gradients and sums (``psum``).

The objective is a sum over positions divided by a count that does not depend on the
parameters (``train.objective``), so the gradient of the whole batch is the sum of the
devices' gradients of their totals, divided by the summed count: the one-device result
up to the order of floating-point sums. Dropout: each device draws its rows' masks from
the update's key folded with the device's index in the mesh.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

AXIS = "data"


def value_and_grad(on_batch, mesh: Mesh, model, carry, batch, key):
    """``eqx.filter_value_and_grad(on_batch, has_aux=True)(model, carry, batch, key)`` with
    ``batch`` and ``carry`` split by rows over ``mesh``'s axis ``data``:
    ``((value, (carry, sums)), grads)``, the model and the gradients replicated.

    ``on_batch(model, carry, batch, key) -> (value, (carry, sums))``, ``sums["loss"]`` the
    loss's ``(total, count)``.
    """
    dynamic, static = eqx.partition(model, eqx.is_array)

    def local(dynamic, carry, batch, key):
        key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))

        def total(m):
            _, (carry_out, sums) = on_batch(m, carry, batch, key)
            return sums["loss"][0], (carry_out, sums)

        (_, (carry_out, sums)), grads = eqx.filter_value_and_grad(total, has_aux=True)(eqx.combine(dynamic, static))
        sums = jax.lax.psum(sums, AXIS)
        total, count = sums["loss"]
        scale = 1 / jnp.maximum(count, 1e-12)
        grads = jax.tree.map(lambda g: jax.lax.psum(g, AXIS) * scale, eqx.filter(grads, eqx.is_array))
        return total * scale, carry_out, sums, grads

    run = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P(), P(AXIS), P(AXIS), P()),
        out_specs=(P(), P(AXIS), P(), P()),
        check_vma=False,  # the layers' scans start from unsharded zeros; every input's spec is given here
    )
    value, carry, sums, grads = run(dynamic, carry, batch, key)
    return (value, (carry, sums)), grads


def sums(on_batch, mesh: Mesh, model, batch):
    """The sums ``on_batch(model, None, batch, None)`` gives (no gradient, no dropout key),
    each device on its rows of ``batch``, added over the devices (replicated)."""
    dynamic, static = eqx.partition(model, eqx.is_array)

    def local(dynamic, batch):
        _, (_, part) = on_batch(eqx.combine(dynamic, static), None, batch, None)
        return jax.lax.psum(part, AXIS)

    return jax.shard_map(local, mesh=mesh, in_specs=(P(), P(AXIS)), out_specs=P(), check_vma=False)(dynamic, batch)
