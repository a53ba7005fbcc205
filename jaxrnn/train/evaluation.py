"""``evaluate`` and ``predict``: a whole data set in one compiled call, batch by batch.

Both pad the data to whole batches (padding rows have weight 0 or are cut off) and run
the batches with ``lax.map`` inside one jit-compiled call, the model in inference mode
(no dropout): one compilation per shape, no Python loop over batches.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jaxtyping import Array

from jaxrnn._checks import check_count, check_lengths
from jaxrnn.data.arrays import Data, as_data, check_inputs, check_segments, packed_kind
from jaxrnn.data.batches import batch_indices
from jaxrnn.data.host import HostBatches, host_arrays
from jaxrnn.train import arguments, cpu_options, data_parallel
from jaxrnn.train.devices import Placement
from jaxrnn.train.feeds import check_like
from jaxrnn.train.lengths import warn_if_missing
from jaxrnn.train.losses import LossFn
from jaxrnn.train.metrics import finish
from jaxrnn.train.objective import Loss, Objective, objective_of
from jaxrnn.train.plans import Sequences
from jaxrnn.train.protocol import Forward, Predictor, training_forward


@cpu_options.filter_jit
def _sums(source: Sequences, mesh: Mesh | None, model, data: Data, idx: Array):
    # key=None is inference in the training protocol (no dropout); inference_mode also
    # reaches Equinox layers of models of your own
    model = eqx.nn.inference_mode(model)

    def batch_sums(i):
        if mesh is None:
            return source.loss(model, None, data, i, 0, None)[1][1]
        return data_parallel.sums(source.on_batch, mesh, model, source.batch(data, i, 0))

    return jax.lax.map(batch_sums, idx)


class Evaluator:
    """The loss and metrics of a model on a data set, for ``evaluate`` and fit's validation."""

    def __init__(self, forward: Forward, objective: Objective, rows: int, placement: Placement):
        self.source = Sequences(rows, forward, objective, placement.constrain)
        self.rows, self.metrics, self.placement = rows, objective.metrics, placement

    def sums(self, model, data: Data) -> dict[str, tuple[float, float]]:
        """``{name: (total, count)}`` over every valid position of ``data`` (on the device)."""
        idx = self.placement.state(batch_indices(data.size, self.rows, None, 0))
        per_batch = self.placement.host(_sums(self.source, self.placement.mesh, model, data, idx))
        return {
            k: (float(np.sum(t, dtype=np.float64)), float(np.sum(c, dtype=np.float64)))
            for k, (t, c) in per_batch.items()
        }

    def __call__(self, model, data: Data) -> dict[str, float]:
        """``{'loss': ..., metric: ...}`` over every valid position of ``data`` (already on the device)."""
        return finish(self.sums(model, data), self.metrics)


def evaluate(
    model,
    data,
    *,
    loss: str | LossFn | Loss = "mse",
    batch_size: int = 256,
    forward: Forward | None = None,
) -> dict[str, float]:
    """The loss (and metrics) of ``model`` on ``data``, averaged over every valid position
    of the whole data set, in inference mode (no dropout).

    Args:
        model: the model, as ``fit`` takes it.
        data: ``(inputs, targets[, lengths])`` arrays (inputs (N, T, F) or (N, F)),
            packed rows (``jaxrnn.datasets.pack``), or ``HostBatches`` (one pass; its
            batches are the batches, ``batch_size`` is then unused).
        loss: the ``Loss`` the model was trained with (or its name, for ``Loss(name)``):
            the default is "mse", since a model does not record its training loss;
            targets that do not fit it (class ids for a classifier) are an error that
            says so.
        batch_size: sequences a batch (one compiled ``lax.map`` over the batches).
        forward: as in ``fit``, for a model outside the training protocol.

    Returns:
        ``{'loss': ..., '<metric>': ...}`` as Python floats.
    """
    stream = data if isinstance(data, HostBatches) else None
    if stream is not None:
        stream.check_fresh()
    packed = packed_kind(data)
    data = as_data(data) if stream is None else stream.first()
    warn_if_missing(model, data, "data")
    objective = objective_of(loss, packed)
    check_count(batch_size, "batch_size")
    evaluator = Evaluator(training_forward(model, forward), objective, min(batch_size, data.size), Placement(1))
    name = "data" if stream is None else "data: batch 0"
    logits = arguments.data(model, data, name, evaluator.source, caller="evaluate")
    if stream is None:
        return evaluator(model, data)
    totals: dict[str, tuple[float, float]] = {}
    for i, batch in enumerate(stream.iterator()):
        name = f"data: batch {i}"
        batch = check_like(as_data(host_arrays(batch), name), data, i)
        arguments.targets(batch, name, objective, logits)  # shapes past the batch axis are batch 0's
        for k, (t, c) in evaluator.sums(model, batch).items():
            t0, c0 = totals.get(k, (0.0, 0.0))
            totals[k] = (t0 + t, c0 + c)
    return finish(totals, objective.metrics)


@cpu_options.filter_jit
def _infer(model, inputs: Array, lengths: Array | None, segments: Array | None, options: dict):
    def one(batch):
        x, n, s = batch
        return model.infer(x, lengths=n, **options, **({} if s is None else {"segments": s}))

    return jax.lax.map(one, (inputs, lengths, segments))


OUTPUTS = ("logits", "probabilities", "classes")


def predict(model, inputs, *, batch_size: int = 256, lengths=None, output: str = "logits", **options) -> Array:
    """``model.infer`` on ``inputs`` batch by batch, in one compiled call, in inference mode.

    Args:
        model: a jaxrnn model (or one with an ``infer`` method).
        inputs: (N, T, F) sequences (or the model's own input, e.g. (N, U) for
            ``OneToMany``); ``HostBatches`` (one pass; each batch the inputs, or
            ``(inputs, targets[, lengths])`` whose targets are ignored); or packed rows
            (a ``jaxrnn.datasets.Packed``).
        batch_size: sequences a batch.
        lengths: (N,) valid steps of each sequence, as in the models.
        output: for ManyToOne / ManyToMany, "logits" (what the losses take),
            "probabilities" (softmax over the last axis; the sigmoid for one output) or
            "classes" (the argmax over the last axis; ``logit > 0`` for one output, as
            ``accuracy`` counts).
        **options: for OneToMany / EncoderDecoder, ``steps=`` and ``generate``'s options.

    Returns:
        (N, out) for ManyToOne, (N, T, out) for ManyToMany ((N,) / (N, T) for "classes");
            the generated sequences for OneToMany / EncoderDecoder; for ``HostBatches`` every
            batch's, in order; for packed rows one per original sequence, in its order and
            layout (``Packed.unpack``).
    """
    if not isinstance(model, Predictor):
        raise TypeError(f"model: a {type(model).__name__} has no infer method (jaxrnn's models have one)")
    packed, segments = (inputs, None) if packed_kind(inputs) is not None else (None, None)
    if packed is not None:
        if lengths is not None:
            raise ValueError("lengths: packed rows take none (their segments say where each sequence lies)")
        inputs, segments = packed.inputs, check_segments(packed.segments, np.shape(packed.inputs)[:2], "inputs")
    if isinstance(inputs, HostBatches):  # one pass; each batch inputs, or (inputs, targets[, lengths])
        parts = []
        for batch in inputs.iterator("inputs"):
            x, n = (
                (batch[0], batch[2] if len(batch) == 3 else None) if isinstance(batch, tuple | list) else (batch, None)
            )
            parts.append(predict(model, np.asarray(x), batch_size=batch_size, lengths=n, output=output, **options))
        if not parts:
            raise ValueError("inputs: HostBatches holds no batch")
        return jnp.concatenate(parts)
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if output != "logits" and not hasattr(model, "head"):
        raise ValueError(
            f"output={output!r} needs a model with a head (ManyToOne, ManyToMany), got a {type(model).__name__}"
        )
    inputs = check_inputs(inputs, "inputs")
    check_count(batch_size, "batch_size")
    n = inputs.shape[0]
    if lengths is not None:
        lengths = check_lengths(jnp.asarray(lengths), n, inputs.shape[1] if inputs.ndim == 3 else 0)
    warn_if_missing(model, Data(inputs, None, lengths, segments), "inputs", advice="pass predict(..., lengths=lengths)")
    rows = max(1, min(batch_size, n))
    n_batches = max(1, math.ceil(n / rows))
    pad = n_batches * rows - n
    shape = lambda a: a.reshape(n_batches, rows, *a.shape[1:])  # noqa: E731
    padded = shape(jnp.concatenate([inputs, jnp.zeros((pad, *inputs.shape[1:]), inputs.dtype)]))
    if lengths is not None:
        lengths = shape(jnp.concatenate([lengths, jnp.zeros(pad, lengths.dtype)]))
    if segments is not None:  # padding rows hold no segment
        segments = shape(jnp.concatenate([segments, jnp.full((pad, segments.shape[1]), -1, segments.dtype)]))
    with arguments.naming("inputs", "predict"):  # shape errors of the model on these inputs, named
        out = _infer(model, padded, lengths, segments, options)
    out = out.reshape(n_batches * rows, *out.shape[2:])[:n]
    single = out.shape[-1] == 1
    if output == "probabilities":
        out = jax.nn.sigmoid(out) if single else jax.nn.softmax(out, axis=-1)
    elif output == "classes":
        out = (out[..., 0] > 0).astype(jnp.int32) if single else jnp.argmax(out, axis=-1)
    return out if packed is None else jnp.asarray(packed.unpack(out))
