"""PyTorch's CPU LSTM and denormal floats: one forward+backward of a trained pixel-MNIST
LSTM (jaxrnn's, copied with ``to_torch``) on 32 test images at T 784, with PyTorch
flushing denormals to zero (``torch.set_flush_denormal``) or not, on 1 and on all threads,
against the same model's initial weights.

    python -m benchmarks.denormals --data data/mnist --model benchmarks/results/mnist_pixels/models/lstm.eqx

XLA:CPU flushes denormals to zero; PyTorch computes them, which x86 does slowly. Through
hundreds of steps a trained LSTM's gradients reach the denormal range, so PyTorch's time
per update grows as the model trains. ``set_flush_denormal`` sets the flag of the calling
thread only, not of PyTorch's other CPU threads. Times: median of --rounds rounds, the
settings interleaved within each round.
"""

import argparse
import os
import statistics
import time

import jax
import numpy as np

import jaxrnn
from benchmarks.common import write_markdown
from jaxrnn import datasets


def main(argv=None) -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of the MNIST IDX files")
    p.add_argument("--model", required=True, help="a trained pixel-MNIST LSTM (benchmarks.mnist --save-models)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/denormals.md")
    args = p.parse_args(argv)
    test = datasets.mnist(args.data, "test", order="pixels")
    x, y = torch.from_numpy(np.array(test.inputs[:32])), torch.from_numpy(np.array(test.targets[:32])).long()
    trained = jaxrnn.load(args.model)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    hidden = trained.head.W_hy.shape[1]
    initial = jaxrnn.ManyToOne(jaxrnn.make_rnn(jaxrnn.LSTMCell, 1, hidden, key=k1), jaxrnn.Head(hidden, 10, key=k2))
    threads_before = torch.get_num_threads()
    rows = ["| weights | threads | no flush (s) | flush (s) | no flush / flush |", "|---|---|---|---|---|"]
    for name, model in (("trained", trained), ("initial", initial)):
        net = jaxrnn.to_torch(model)
        for threads in sorted({1, os.cpu_count()}):
            torch.set_num_threads(threads)
            times = {False: [], True: []}
            for _ in range(args.rounds):
                for flush in (False, True):
                    torch.set_flush_denormal(flush)
                    net.zero_grad()
                    start = time.perf_counter()
                    torch.nn.functional.cross_entropy(net(x), y).backward()
                    times[flush].append(time.perf_counter() - start)
            off, on = statistics.median(times[False]), statistics.median(times[True])
            rows.append(f"| {name} | {threads} | {off:.3f} | {on:.3f} | {off / on:.1f} |")
            print(rows[-1], flush=True)
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads_before)
    method = f"One forward+backward, B 32, T 784, H {hidden}; median of {args.rounds} interleaved rounds."
    write_markdown(args.out, "denormals", argv, method, "\n".join(rows))


if __name__ == "__main__":
    main()
