"""Recurrent agents on partially observed environments: a feed-forward policy, a simple RNN,
an LSTM and a GRU, trained by the same actor-critic (PPO) on tasks that need memory.

    pip install -e '.[rl]'
    python -m benchmarks.agents --out benchmarks/results/agents

Environments (gymnax 1.0.1, pure JAX, vmapped):

- **MemoryChain** (bsuite): a bit shown at the first step must be reported by the action
  ``--memory`` steps later (episode length N + 1, reward +1 or -1 at its last step, 0
  before); success = the share of episodes ending in +1 (chance: 0.5). Several N.
- **CartPole without velocities**: CartPole-v1 (return up to 500) observing the cart's
  position and the pole's angle only; the velocities must be inferred from the history.
  Both are divided by their termination thresholds (2.4 and 12 degrees, 0.2095 rad), so
  that the policy sees values in [-1, 1]: unscaled, the angle's changes (about 0.01 rad
  a step) are too small for any of the three cells to learn from in 5M steps.

Policy and value share one network: the recurrent ones ``make_rnn(cell, obs, --hidden)``
and a ``Head`` of actions + 1 outputs (the last the value), called step by step when
acting (``ManyToMany.step(state, obs, reset=)``) and over the whole rollout when learning
(``ManyToMany.run(obs, state, resets=)``), the state restarted where an episode starts;
the feed-forward one a two-layer tanh MLP of the same width (it remembers nothing).

PPO, our own short implementation (after Schulman et al. 2017 and PureJaxRL's recurrent
PPO): ``--envs`` environments side by side, rollouts of ``--steps`` steps, generalised
advantage estimation (gamma 0.99, lambda 0.95), ``--epochs`` epochs of ``--minibatches``
minibatches of whole environment rows (their sequences kept, so backpropagation runs
through each rollout from the state it started with), clipped surrogate (0.2), value
loss 0.5, entropy bonus 0.01, Adam with its rate ``--lr`` (1e-3) falling linearly to 0
over the run, after clipping the global norm at 0.5. A reset
flag is the previous step's ``done`` (gymnax resets an environment when it is done, so
its next observation is the first of a new episode). The whole training run is one
compiled ``lax.scan``, vmapped over seeds and (MemoryChain) memory lengths.

After training, the largest Lyapunov exponent of each recurrent agent's cell along its
own episodes: ``--spectra-steps`` steps of the greedy policy, episodes following each
other with the state restarted at each one's start, and the exponent pooled over them
(``jaxrnn.spectra`` with ``resets``: step Jacobians cut at each episode's start,
``lyapunov_spectrum(..., resets=)``), per seed: how fast the trained memory forgets.
"""

import argparse
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxrnn
from benchmarks.common import environment, save_figure, write_results

POLICIES = ("feedforward", "rnn", "lstm", "gru")
CELLS = {"rnn": jaxrnn.SimpleRNNCell, "lstm": jaxrnn.LSTMCell, "gru": jaxrnn.GRUCell}


class Feedforward(eqx.Module):
    """A memoryless policy with the recurrent ones' interface (its state is a dummy)."""

    mlp: eqx.nn.MLP

    def init_state(self, batch: int):
        return jnp.zeros((batch, 1))

    def step(self, state, obs, *, reset=None):
        return jax.vmap(self.mlp)(obs), state

    def run(self, obs, state, *, resets=None):
        return jax.vmap(jax.vmap(self.mlp))(obs), state


def make_policy(kind: str, obs: int, actions: int, hidden: int, key):
    k1, k2 = jax.random.split(key)
    if kind == "feedforward":
        return Feedforward(eqx.nn.MLP(obs, actions + 1, hidden, 2, activation=jnp.tanh, key=k1))
    rnn = jaxrnn.make_rnn(CELLS[kind], obs, hidden, key=k1)
    return jaxrnn.ManyToMany(rnn, jaxrnn.Head(hidden, actions + 1, key=k2))


class Hidden(eqx.Module):
    """An environment with part of its observation hidden: only ``keep`` is seen, divided
    by ``scale``."""

    env: object = eqx.field(static=True)
    keep: tuple = eqx.field(static=True)
    scale: tuple = eqx.field(static=True)

    def seen(self, obs):
        return obs[jnp.array(self.keep)] / jnp.array(self.scale)

    def reset(self, key, params):
        obs, state = self.env.reset(key, params)
        return self.seen(obs), state

    def step(self, key, state, action, params):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return self.seen(obs), state, reward, terminated | truncated


def environments(memory: list[int]):
    """``{name: (env, params stacked over the runs, observation size, actions)}``."""
    import gymnax

    chain, chain_params = gymnax.make("MemoryChain-bsuite")
    pole, pole_params = gymnax.make("CartPole-v1")
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[chain_params.replace(memory_length=n) for n in memory])
    return {
        "memory_chain": (Hidden(chain, (0, 1, 2), (1.0, 1.0, 1.0)), stacked, 3, 2),
        "cartpole_no_velocity": (
            Hidden(pole, (0, 2), (2.4, 0.2095)),
            jax.tree.map(lambda a: jnp.asarray(a)[None], pole_params),
            2,
            2,
        ),
    }


def make_train(env, policy0, args):
    """``train(key, params) -> (policy, returns per update)``: the whole PPO run, compiled."""
    B, T = args.envs, args.steps
    lr = optax.linear_schedule(args.lr, 0.0, args.updates * args.epochs * args.minibatches)
    optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(lr))
    params0, static = eqx.partition(policy0, eqx.is_inexact_array)

    def split(out):  # logits and value from the head's outputs
        return out[..., :-1], out[..., -1]

    def loss(p, batch):
        obs, resets, actions, logp_old, adv, target, state0 = batch
        out, _ = eqx.combine(p, static).run(obs, state0, resets=resets)
        logits, value = split(out)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, actions[..., None], -1)[..., 0]
        ratio = jnp.exp(logp - logp_old)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        actor = -jnp.minimum(ratio * adv, jnp.clip(ratio, 0.8, 1.2) * adv).mean()
        critic = 0.5 * ((value - target) ** 2).mean()
        entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
        return actor + 0.5 * critic - 0.01 * entropy

    def train(key, env_params):
        k_env, key = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(k_env, B), env_params)
        policy_state = policy0.init_state(B)
        runner = (params0, optimizer.init(params0), env_state, obs, jnp.zeros(B, bool), policy_state, key, jnp.zeros(B))

        def update(runner, _):
            p, opt_state, env_state, obs, done, state, key, ep_return = runner
            policy = eqx.combine(p, static)
            state0 = state

            def act(carry, _):
                env_state, obs, done, state, key, ep_return = carry
                key, k_act, k_env = jax.random.split(key, 3)
                out, state = policy.step(state, obs, reset=done)
                logits, value = split(out)
                action = jax.random.categorical(k_act, logits)
                logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
                obs2, env_state, reward, done2 = jax.vmap(env.step, (0, 0, 0, None))(
                    jax.random.split(k_env, B), env_state, action, env_params
                )
                ep_return = ep_return + reward
                finished = jnp.where(done2, ep_return, jnp.nan)
                carry = (env_state, obs2, done2, state, key, jnp.where(done2, 0.0, ep_return))
                return carry, (obs, done, action, logp, value, reward, done2, finished)

            (env_state, obs, done, state, key, ep_return), traj = jax.lax.scan(
                act, (env_state, obs, done, state, key, ep_return), None, T
            )
            obs_t, resets, actions, logp, values, rewards, dones, finished = traj
            last_value = split(policy.step(state, obs, reset=done)[0])[1]

            def gae(carry, inputs):
                advantage, next_value = carry
                reward, value, ended = inputs
                delta = reward + 0.99 * next_value * (1 - ended) - value
                advantage = delta + 0.99 * 0.95 * (1 - ended) * advantage
                return (advantage, value), advantage

            _, adv = jax.lax.scan(gae, (jnp.zeros(B), last_value), (rewards, values, dones), reverse=True)
            targets = adv + values
            batch_major = lambda a: jnp.swapaxes(a, 0, 1)  # noqa: E731
            data = tuple(batch_major(a) for a in (obs_t, resets, actions, logp, adv, targets)) + (state0,)

            def epoch(carry, _):
                p, opt_state, key = carry
                key, k = jax.random.split(key)
                order = jax.random.permutation(k, B).reshape(args.minibatches, -1)

                def minibatch(carry, rows):
                    p, opt_state = carry
                    grads = jax.grad(loss)(p, jax.tree.map(lambda a: a[rows], data))
                    updates, opt_state = optimizer.update(grads, opt_state, p)
                    return (optax.apply_updates(p, updates), opt_state), None

                (p, opt_state), _ = jax.lax.scan(minibatch, (p, opt_state), order)
                return (p, opt_state, key), None

            (p, opt_state, key), _ = jax.lax.scan(epoch, (p, opt_state, key), None, args.epochs)
            mean_return = jnp.nanmean(finished)
            return (p, opt_state, env_state, obs, done, state, key, ep_return), mean_return

        runner, returns = jax.lax.scan(update, runner, None, args.updates)
        return runner[0], returns

    return train


def episodes(env, env_params, policy, key, steps: int):
    """``steps`` observations of the greedy trained policy, episodes following each other,
    and the reset flags (True at each episode's first step after the first), for its spectra."""
    obs, env_state = env.reset(key, env_params)
    state = policy.init_state(1)

    def body(carry, k):
        obs, env_state, state, done = carry
        out, state = policy.step(state, obs[None], reset=done[None])
        action = jnp.argmax(out[0, :-1])
        obs2, env_state, _, done2 = env.step(k, env_state, action, env_params)
        return (obs2, env_state, state, done2), (obs, done)

    carry = (obs, env_state, state, jnp.zeros((), bool))
    _, (seen, resets) = jax.lax.scan(body, carry, jax.random.split(key, steps))
    return seen, resets


def largest_exponent(policy, observations, resets) -> float:
    """The largest Lyapunov exponent of the policy's cell, pooled over the episodes."""
    cell = policy.rnn.layers[0].cell
    J = jaxrnn.spectra.step_jacobians(cell, observations, resets=resets)
    return float(jaxrnn.spectra.lyapunov_spectrum(J, num=1, resets=np.asarray(resets)).exponents[0])


def run(args) -> dict:
    envs = environments(args.memory)
    results = {"args": vars(args), "environment": environment(threads=0), "runs": {}}
    for name, (env, params, obs, actions) in envs.items():
        n_params = jax.tree.leaves(params)[0].shape[0]
        updates = args.updates if name == "memory_chain" else args.cartpole_updates
        for kind in POLICIES:
            policy0 = make_policy(kind, obs, actions, args.hidden, jax.random.key(args.seed))
            train = make_train(env, policy0, argparse.Namespace(**{**vars(args), "updates": updates}))
            keys = jax.random.split(jax.random.key(args.seed + 1), args.seeds)
            over_params = jax.vmap(train, (None, 0))
            policies, returns = jax.jit(jax.vmap(over_params, (0, None)))(keys, params)  # (seeds, runs, updates)
            returns = np.asarray(returns)
            entry = {"returns": returns.tolist(), "steps_per_update": args.envs * args.steps}
            if kind != "feedforward":
                exponents = np.zeros((args.seeds, n_params))
                for s in range(args.seeds):
                    for r in range(n_params):
                        one = jax.tree.map(lambda a, s=s, r=r: a[s, r] if eqx.is_array(a) else a, policies)
                        p = jax.tree.map(lambda a, r=r: a[r], params)
                        seen, resets = episodes(env, p, one, jax.random.key(100 + s), args.spectra_steps)
                        exponents[s, r] = largest_exponent(one, seen, resets)
                entry["largest_lyapunov"] = exponents.tolist()
            results["runs"].setdefault(name, {})[kind] = entry
            print(name, kind, np.nanmean(returns[..., -5:], axis=(0, 2)), flush=True)
    return results


def final(returns, last: int = 10) -> np.ndarray:
    """Mean return over the last ``last`` updates, per run (mean over seeds)."""
    r = np.asarray(returns, float)
    return np.nanmean(r[..., -last:], axis=(0, 2))


def tables(results: dict) -> str:
    args = results["args"]
    chain = results["runs"]["memory_chain"]
    head = "| policy | " + " | ".join(f"N = {n}" for n in args["memory"]) + " |"
    rows = [
        "MemoryChain: success rate (share of episodes ending in +1; chance 0.5), mean of the last 10 updates "
        "and the seeds; in brackets, the largest Lyapunov exponent of the trained cell (nats per step).",
        "",
        head,
        "|---|" + "---|" * len(args["memory"]),
    ]
    for kind, entry in chain.items():
        success = (final(entry["returns"]) + 1) / 2
        lyap = np.mean(entry["largest_lyapunov"], axis=0) if "largest_lyapunov" in entry else [None] * len(success)
        cells = [f"{s:.2f}" + ("" if e is None else f" ({e:+.2f})") for s, e in zip(success, lyap)]
        rows.append(f"| {kind} | " + " | ".join(cells) + " |")
    pole = results["runs"]["cartpole_no_velocity"]
    rows += ["", "CartPole without velocities: mean return of the last 10 updates (max 500).", ""]
    rows += ["| policy | return | largest Lyapunov exponent |", "|---|---|---|"]
    for kind, entry in pole.items():
        lyap = f"{np.mean(entry['largest_lyapunov']):+.2f}" if "largest_lyapunov" in entry else "-"
        rows.append(f"| {kind} | {final(entry['returns'])[0]:.0f} | {lyap} |")
    return "\n".join(rows)


def figures(results: dict, folder: str) -> None:
    import matplotlib.pyplot as plt

    args = results["args"]
    chain, pole = results["runs"]["memory_chain"], results["runs"]["cartpole_no_velocity"]
    n = len(args["memory"])
    fig, axes = plt.subplots(1, n + 1, figsize=(3.2 * (n + 1), 3), constrained_layout=True)
    for i, memory in enumerate(args["memory"]):
        for kind, entry in chain.items():
            r = (np.nanmean(np.asarray(entry["returns"], float)[:, i], axis=0) + 1) / 2
            axes[i].plot(np.arange(1, len(r) + 1) * entry["steps_per_update"], r, label=kind)
        axes[i].set(title=f"MemoryChain N = {memory}", xlabel="environment steps", ylim=(0, 1.05))
    axes[0].set_ylabel("success rate")
    window = 50  # CartPole's per-update returns average few episodes: a running mean over 50 updates
    for kind, entry in pole.items():
        r = np.nanmean(np.asarray(entry["returns"], float)[:, 0], axis=0)
        r = np.convolve(np.nan_to_num(r, nan=np.nanmean(r)), np.ones(window) / window, mode="valid")
        axes[n].plot(np.arange(window, window + len(r)) * entry["steps_per_update"], r, label=kind)
    axes[n].set(title="CartPole, no velocities", xlabel="environment steps", ylabel=f"return ({window}-update mean)")
    axes[n].legend()
    save_figure(fig, folder, "returns.png")
    fig, ax = plt.subplots(figsize=(4.5, 3), constrained_layout=True)
    for kind, entry in chain.items():
        ax.plot(args["memory"], (final(entry["returns"]) + 1) / 2, "o-", label=kind)
    ax.set(xscale="log", xlabel="memory length N", ylabel="final success rate", ylim=(0.4, 1.05))
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.legend()
    save_figure(fig, folder, "memory_chain.png")
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), constrained_layout=True, gridspec_kw={"width_ratios": [3, 1]})
    recurrent = [kind for kind in pole if "largest_lyapunov" in pole[kind]]
    for i, kind in enumerate(recurrent):  # the colours of the returns figure (C0 is feed-forward)
        exponents = np.asarray(chain[kind]["largest_lyapunov"]).mean(0)
        axes[0].plot(args["memory"], exponents, "o-", color=f"C{i + 1}", label=kind)
    axes[0].set(xscale="log", xlabel="memory length N", ylabel="largest Lyapunov exponent (nats/step)")
    axes[0].set_xticks(args["memory"], [str(n) for n in args["memory"]])
    axes[0].minorticks_off()
    axes[0].set_title("MemoryChain, trained cells")
    axes[0].axhline(0, color="grey", lw=0.5)
    axes[0].legend()
    values = [float(np.mean(pole[kind]["largest_lyapunov"])) for kind in recurrent]
    axes[1].bar(recurrent, values, color=[f"C{i + 1}" for i in range(len(recurrent))])
    axes[1].set_title("CartPole, no vel.")
    axes[1].axhline(0, color="grey", lw=0.5)
    save_figure(fig, folder, "spectra.png")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--memory", type=lambda s: [int(v) for v in s.split(",")], default=[4, 8, 16, 32, 64])
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=128)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's rate at the start (linear to 0)")
    p.add_argument("--updates", type=int, default=400, help="PPO updates on MemoryChain")
    p.add_argument("--cartpole-updates", type=int, default=5000)
    p.add_argument("--spectra-steps", type=int, default=2000, help="steps of episodes for each exponent")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    results = run(args)
    os.makedirs(args.out, exist_ok=True)
    figures(results, args.out)
    write_results(
        args.out,
        "agents",
        argv,
        "PPO agents on partially observed environments: feed-forward, simple RNN, LSTM and GRU policies.",
        results,
        tables(results) + "\n\n![returns](returns.png)\n\n![MemoryChain](memory_chain.png)\n\n![spectra](spectra.png)",
    )
    print(tables(results))


if __name__ == "__main__":
    main()
