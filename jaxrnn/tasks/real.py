"""Real data that works offline: Python's own source as text, scikit-learn's digits."""

import pathlib
import sysconfig

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._checks import check_count, check_temperature
from jaxrnn.data import Data, streams
from jaxrnn.tasks.base import Task, split

STDLIB_FILES = ("textwrap.py", "difflib.py", "argparse.py", "csv.py", "random.py", "heapq.py")


def stdlib_text(files=STDLIB_FILES, max_chars: int | None = None) -> str:
    """Text every Python installation carries: standard-library source files, concatenated.

    Args:
        files: standard-library files to read, in order.
        max_chars: cut the text to this many characters (None: all).

    Returns:
        The text.
    """
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    parts = [(root / f).read_text(encoding="utf-8") for f in files if (root / f).exists()]
    if not parts:
        raise FileNotFoundError(f"none of {files} found under {root}")
    text = "\n".join(parts)
    return text if max_chars is None else text[:max_chars]


def characters(text: str | None = None, *, n_streams: int = 32, max_chars: int = 200_000) -> Task:
    """Character-level language modelling: predict each next character (many-to-many).

    ``text`` defaults to ``stdlib_text()``. The first 90% of the text is cut into
    ``n_streams`` contiguous streams, one row each, (n_streams, L); the last 10% likewise
    for validation. Fit ``TBPTT(Batches(task.train, n_streams), k)``: the state is carried
    from chunk to chunk along each stream (stateful training). Baseline: the entropy of the
    unigram character distribution (nats per character).

    Args:
        text: the text (None: ``stdlib_text()``).
        n_streams: parallel streams, one row each.
        max_chars: the characters of ``stdlib_text`` read when ``text`` is None.

    Returns:
        A many-to-many cross-entropy ``Task``: one-hot inputs (n_streams, L, V), int targets
            (n_streams, L), the next character of each; ``info`` holds the vocabulary.
    """
    text = stdlib_text(max_chars=max_chars) if text is None else text
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = jnp.asarray([index[c] for c in text], jnp.int32)
    cut = int(len(ids) * 0.9)

    def rows(seq):
        x, y = streams(seq, n_streams)
        return Data(jax.nn.one_hot(x, len(vocab)), y)

    freq = np.bincount(np.asarray(ids), minlength=len(vocab)) / len(ids)
    entropy = float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum())
    info = {"vocab": vocab, "n_streams": n_streams}
    return Task("chars", rows(ids[:cut]), rows(ids[cut:]), "many_to_many", "cross_entropy", len(vocab), entropy, info)


def sample_text(model, vocab: list[str], prompt: str, length: int, *, temperature: float = 0.0, key=None) -> str:
    """Continue ``prompt`` by ``length`` characters from a character ``ManyToMany`` model.

    ``temperature=0`` is greedy (argmax); ``> 0`` samples from softmax(logits / temperature).

    Args:
        model: a ``ManyToMany`` trained on one-hot characters.
        vocab: its characters, in id order (``task.info``).
        prompt: the text to continue (its characters must be in ``vocab``).
        length: characters to add.
        temperature: 0 for greedy, > 0 to sample.
        key: drives the sampling (needed when ``temperature > 0``).

    Returns:
        The prompt followed by the ``length`` characters generated.
    """
    index = {c: i for i, c in enumerate(vocab)}
    unknown = sorted(set(prompt) - set(index))
    if not prompt:
        raise ValueError("prompt must be non-empty text over the model's vocabulary, got ''")
    if unknown:
        raise ValueError(f"prompt must be text over the model's vocabulary; characters not in it: {unknown}")
    temperature = check_temperature(temperature)
    if temperature > 0 and key is None:
        raise ValueError("key is required when temperature > 0")
    V = len(vocab)
    one_hot = lambda i: jax.nn.one_hot(jnp.asarray(i), V)[None]  # noqa: E731
    logits, state = model.run(one_hot([index[c] for c in prompt]), inference=True)
    keys = jax.random.split(key, length) if temperature > 0 else jnp.zeros((length, 2), jnp.uint32)

    def body(carry, k):
        last, state = carry
        c = jax.random.categorical(k, last / temperature) if temperature > 0 else jnp.argmax(last)
        logits, state = model.run(one_hot([c]), state, inference=True)
        return (logits[0, -1], state), c

    _, chars = jax.lax.scan(body, (logits[0, -1], state), keys)
    return prompt + "".join(vocab[int(c)] for c in np.asarray(chars))


def digits(n_validation: int = 297) -> Task:
    """scikit-learn's bundled 8x8 digits read row by row: 8 steps of 8 pixels (scaled to
    [0, 1]), classify 0-9 from the final state. Needs ``pip install 'jaxrnn[data]'``.

    Args:
        n_validation: images held out for validation (of 1,797).

    Returns:
        A many-to-one cross-entropy ``Task``: inputs (n, 8, 8) in [0, 1], int targets (n,),
            10 classes, baseline ln 10.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("the digits task needs scikit-learn: pip install 'jaxrnn[data]'") from e
    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))
    inputs = jnp.asarray(d.images[order] / 16.0, jnp.float32)
    train, val = split(inputs, jnp.asarray(d.target[order]), n_validation)
    return Task("digits", train, val, "many_to_one", "cross_entropy", 10, float(np.log(10)), {})


def reverse_digits(length: int = 5, n: int = 6000, *, key, n_validation: int = 500) -> Task:
    """Sequence to sequence: read ``length`` digits, write them reversed (encoder-decoder,
    teacher forcing in training, greedy decoding at inference). Token ids 0-9 are the
    digits, 10 is the decoder's start token.

    Args:
        length: digits per sequence.
        n: sequences drawn, the first ``n_validation`` for validation.
        key: draws the digits.
        n_validation: of the ``n``, those held out.

    Returns:
        An encoder-decoder cross-entropy ``Task``: one-hot inputs (n, length, 10), int
            targets (n, length), the digits reversed; 11 output classes (10 the start token).
    """
    check_count(length, "length", 2)
    src = jax.random.randint(key, (n, length), 0, 10)
    inputs = jax.nn.one_hot(src, 10)
    train, val = split(inputs, src[:, ::-1], n_validation)
    return Task(
        f"reverse(length={length})", train, val, "encoder_decoder", "cross_entropy", 11, None, {"start_token": 10}
    )
