"""Resets inside a sequence, side by side with the peers: jaxrnn, memax and the Flax
``ScannedRNN`` pattern of PureJaxRL on the same rollout batch.

    python -m benchmarks.resets_peers --out benchmarks/results/resets_peers

A rollout batch: B sequences of T steps, episodes ending at random (a new one starts at
each step with probability ``--episode`` ^ -1), inputs (B, T, H). Each library runs one
recurrent layer of H units over it with the state restarted where an episode starts:

- **jaxrnn**: ``Recurrent(cell)(xs, resets=starts)``, the default engine;
- **memax** 0.1.1: its Equinox ``GRU`` / ``LSTM`` called per sequence as
  ``model(h0, (xs, starts))``, ``eqx.filter_vmap`` over the batch (memax's models take one
  sequence; its inputs must have H features);
- **Flax**: ``nn.scan`` over a module that writes the reset by hand,
  ``carry = where(reset, zeros, carry)``, before ``nn.GRUCell`` / ``nn.LSTMCell``
  (PureJaxRL's ``ScannedRNN``).

Timed, each compiled once beforehand: the forward pass, and one training update (the
gradient of the mean squared output and an Adam step). The implementations are
interleaved within each of ``--repeats`` rounds; the median is reported, and the ratio
to jaxrnn in the same round.

Agreement from the same weights (float32, max |difference| of the outputs): jaxrnn's
``GRUCell`` against Flax's ``GRUCell`` (the same reset-after equations; Flax's z is
jaxrnn's 1 - z), jaxrnn's ``ResetBeforeGRUCell`` against memax's ``GRU`` (reset before the
recurrent product, as memax writes it), jaxrnn's ``LSTMCell`` against Flax's ``LSTMCell``.
memax's LSTM computes ``h = o * c`` (no tanh on the cell state): a different function, so
it is timed but not compared; the memax GRU timed is its reset-before GRU, jaxrnn's and
Flax's the reset-after one (PyTorch's), a small difference in work (one (H, H) product of
``r * h`` against ``r * (W h)``).
"""

import argparse
import functools
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxrnn
from benchmarks.common import environment, write_results


def rollout(B: int, T: int, H: int, episode: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = jnp.asarray(rng.normal(size=(B, T, H)).astype(np.float32))
    starts = rng.random((B, T)) < 1 / episode
    starts[:, 0] = True
    return xs, jnp.asarray(starts)


def blocks(a: jax.Array, G: int) -> list[jax.Array]:
    return list(jnp.split(a, G, axis=0))


# ---------------------------------------------------------------- the three implementations


def jaxrnn_layer(cell):
    layer = jaxrnn.Recurrent(cell)

    def run(params, xs, starts):
        ys, _ = eqx.combine(params, static)(xs, resets=starts)
        return ys

    params, static = eqx.partition(layer, eqx.is_array)
    return params, run


def memax_layer(kind: str, cell):
    """memax's GRU (reset-before) or LSTM; for the GRU, ``cell``'s weights (a jaxrnn
    ``ResetBeforeGRUCell``: blocks r, z, n, every bias folded into memax's input layers)."""
    from memax.equinox.set_actions.gru import GRU
    from memax.equinox.set_actions.lstm import LSTM

    H = cell.hidden_size
    model = (GRU if kind == "gru" else LSTM)(H, key=jax.random.key(1))
    if kind == "gru":
        Wx, Wh, b = blocks(cell.W_xh, 3), blocks(cell.W_hh, 3), blocks(cell.b_xh + cell.b_hh, 3)
        magma = model.algebra.algebra  # Resettable(GRUMagma)
        for k, gate in enumerate("rzh"):
            magma = eqx.tree_at(lambda m, g=gate: getattr(m, f"W_{g}").weight, magma, Wx[k])
            magma = eqx.tree_at(lambda m, g=gate: getattr(m, f"W_{g}").bias, magma, b[k])
            magma = eqx.tree_at(lambda m, g=gate: getattr(m, f"U_{g}").weight, magma, Wh[k])
        model = eqx.tree_at(lambda m: m.algebra.algebra, model, magma)
    params, static = eqx.partition(model, eqx.is_array)

    def run(params, xs, starts):
        m = eqx.combine(params, static)
        one = lambda x, s: m(m.initialize_carry(), (x, s))[1]  # noqa: E731
        return eqx.filter_vmap(one)(xs, starts)

    return params, run


def flax_layer(kind: str, cell):
    """PureJaxRL's ScannedRNN: the reset written by hand before a Flax cell, ``nn.scan``
    over time; the weights ``cell``'s (a jaxrnn ``GRUCell`` or ``LSTMCell``)."""
    import flax.linen as nn

    H = cell.hidden_size
    flax_cell = nn.GRUCell if kind == "gru" else nn.LSTMCell

    class ScannedRNN(nn.Module):
        @functools.partial(nn.scan, variable_broadcast="params", in_axes=1, out_axes=1, split_rngs={"params": False})
        @nn.compact
        def __call__(self, carry, inputs):
            x, reset = inputs
            zeros = flax_cell(features=H, parent=None).initialize_carry(jax.random.key(0), x.shape)
            carry = jax.tree.map(lambda z, c: jnp.where(reset[:, None], z, c), zeros, carry)
            return flax_cell(features=H, name="cell")(carry, x)

    module = ScannedRNN()
    dense = lambda W, b=None: {"kernel": W.T} | ({} if b is None else {"bias": b})  # noqa: E731
    if kind == "gru":  # Flax: h' = (1 - z) n + z h; jaxrnn: (1 - z) h + z n, so Flax's z is jaxrnn's negated
        (xr, xz, xn), (hr, hz, hn) = blocks(cell.W_xh, 3), blocks(cell.W_hh, 3)
        (bxr, bxz, bxn), (bhr, bhz, bhn) = blocks(cell.b_xh, 3), blocks(cell.b_hh, 3)
        params = {
            "ir": dense(xr, bxr + bhr), "iz": dense(-xz, -(bxz + bhz)), "in": dense(xn, bxn),
            "hr": dense(hr), "hz": dense(-hz), "hn": dense(hn, bhn),
        }  # fmt: skip
    else:
        Wx, Wh, b = blocks(cell.W_xh, 4), blocks(cell.W_hh, 4), blocks(cell.b_xh + cell.b_hh, 4)
        params = {f"i{g}": dense(Wx[k]) for k, g in enumerate("ifgo")}
        params |= {f"h{g}": dense(Wh[k], b[k]) for k, g in enumerate("ifgo")}
    variables = {"params": {"cell": params}}

    def run(variables, xs, starts):
        zeros = flax_cell(features=H, parent=None).initialize_carry(jax.random.key(0), xs[:, 0].shape)
        return module.apply(variables, zeros, (xs, starts))[1]

    return variables, run


# ---------------------------------------------------------------- timing


def compiled(run, params, xs, starts):
    """The forward pass and one Adam update, each jitted and run once (compiled)."""
    optimizer = optax.adam(1e-3)

    def loss(p):
        return jnp.mean(run(p, xs, starts) ** 2)

    @jax.jit
    def update(p, opt_state):
        value, grads = jax.value_and_grad(loss)(p)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, value

    forward = jax.jit(run)
    opt_state = optimizer.init(params)
    jax.block_until_ready(forward(params, xs, starts))
    jax.block_until_ready(update(params, opt_state))
    return {
        "forward": lambda: forward(params, xs, starts),
        "update": lambda: update(params, opt_state),
    }


def once(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def measure(kind: str, B: int, T: int, H: int, args) -> dict:
    xs, starts = rollout(B, T, H, args.episode, args.seed)
    k = jax.random.key(args.seed)
    after = jaxrnn.GRUCell if kind == "gru" else jaxrnn.LSTMCell
    cell = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(k, a.shape), after(H, H, key=k))
    impls = {"jaxrnn": jaxrnn_layer(cell), "flax": flax_layer(kind, cell)}
    before = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(k, a.shape), jaxrnn.ResetBeforeGRUCell(H, H, key=k))
    impls["memax"] = memax_layer(kind, before if kind == "gru" else cell)

    def differ(peer, ours):
        (p, run), (q, run_ours) = peer, ours
        return float(jnp.max(jnp.abs(run(p, xs, starts) - run_ours(q, xs, starts))))

    agreement = {"flax": differ(impls["flax"], impls["jaxrnn"])}
    if kind == "gru":
        agreement["memax"] = differ(impls["memax"], jaxrnn_layer(before))
    calls = {name: compiled(run, params, xs, starts) for name, (params, run) in impls.items()}
    times = {name: {"forward": [], "update": []} for name in impls}
    for _ in range(args.repeats):
        for what in ("forward", "update"):
            for name in impls:
                times[name][what].append(once(calls[name][what]))
    out = {"B": B, "T": T, "H": H, "cell": kind, "agreement": agreement, "resets": int(starts.sum())}
    for name in impls:
        out[name] = {what: statistics.median(v) for what, v in times[name].items()}
        out[name]["ratio"] = {
            what: statistics.median(a / b for a, b in zip(times[name][what], times["jaxrnn"][what]))
            for what in ("forward", "update")
        }
    return out


def table(rows: list[dict]) -> str:
    lines = [
        "| cell | B x T x H | jaxrnn fwd ms | memax fwd | Flax fwd | jaxrnn update ms | memax update | Flax update "
        "| max diff (Flax; memax) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def ms(seconds: float) -> str:
        return f"{1e3 * seconds:.2f}"

    def ratio(r: dict, name: str, what: str) -> str:
        return f"{ms(r[name][what])} ({r[name]['ratio'][what]:.2f}x)"

    for r in rows:
        memax = f"{r['agreement']['memax']:.1e}" if "memax" in r["agreement"] else "-"
        diff = f"{r['agreement']['flax']:.1e}; {memax}"
        lines.append(
            f"| {r['cell']} | {r['B']} x {r['T']} x {r['H']} | {ms(r['jaxrnn']['forward'])} "
            f"| {ratio(r, 'memax', 'forward')} | {ratio(r, 'flax', 'forward')} | {ms(r['jaxrnn']['update'])} "
            f"| {ratio(r, 'memax', 'update')} "
            f"| {ratio(r, 'flax', 'update')} | {diff} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default="64x128x64,16x256x256", help="B x T x H, comma-separated")
    p.add_argument("--cells", default="gru,lstm")
    p.add_argument("--episode", type=float, default=32.0, help="mean episode length in steps")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    rows = []
    for kind in args.cells.split(","):
        for shape in args.shapes.split(","):
            B, T, H = (int(v) for v in shape.split("x"))
            rows.append(measure(kind, B, T, H, args))
            print(table(rows[-1:]), flush=True)
    results = {"args": vars(args), "rows": rows, "environment": environment(threads=0)}
    write_results(
        args.out,
        "resets_peers",
        argv,
        "One recurrent layer with state resets over a rollout batch: jaxrnn, memax 0.1.1 and Flax's ScannedRNN "
        "pattern; medians of interleaved repeats, each ratio to jaxrnn in the same round.",
        results,
        table(rows),
    )


if __name__ == "__main__":
    main()
