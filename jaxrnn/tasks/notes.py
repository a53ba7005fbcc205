"""The examples of the seed lecture notes: a stock price, next words, "I grew up in France"."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from jaxrnn._checks import check_count
from jaxrnn.data import Data
from jaxrnn.tasks.base import Task, split


def stock_prices(n_days: int = 400, window: int = 5, *, key: PRNGKeyArray, noise: float = 1.0) -> Task:
    """Notes 002: predict day 6's price from the past 5 days (input size 1).

    The series continues the notes' 100, 102, ..., 108 (+2 a day) with Gaussian noise of
    std ``noise``. Inputs are *scaled*: (price - mean) / std of the series (``info`` keeps
    both, to undo it). With raw prices a tanh unit sees pre-activations of 50 and more
    (notes 002's W_x = 0.5 times 100): it saturates at 1, its derivative is 0 to float32
    precision, and no gradient flows (see docs/guides/notes-example.md).

    Args:
        n_days: the length of the series.
        window: past days each input holds.
        key: draws the noise.
        noise: the noise's standard deviation.

    Returns:
        A many-to-one MSE ``Task``: inputs (n_days - window, window, 1), targets
            (n_days - window, 1), the last fifth of the days for validation; ``info``
            holds the mean and std used to scale, and the prices.
    """
    if window < 1 or n_days <= window + 1:
        raise ValueError(f"need window >= 1 and n_days > window + 1, got n_days={n_days}, window={window}")
    days = jnp.arange(n_days, dtype=jnp.float32)
    prices = 100.0 + 2.0 * days + noise * jax.random.normal(key, (n_days,))
    mean, std = float(prices.mean()), float(prices.std())
    scaled = (prices - mean) / std
    idx = np.arange(n_days - window)[:, None] + np.arange(window)[None, :]
    inputs, targets = scaled[idx][..., None], scaled[idx[:, -1] + 1][:, None]
    n_val = max(1, len(idx) // 5)  # the last fifth of the days: forecasting, not interpolating
    train, val = Data(inputs[:-n_val], targets[:-n_val]), Data(inputs[-n_val:], targets[-n_val:])
    info = {"mean": mean, "std": std, "prices": prices}
    return Task("stock", train, val, "many_to_one", "mse", 1, None, info)


SEED_SENTENCES = ("I love deep learning models", "The cat sat on the mat")


def next_word(sentences=SEED_SENTENCES) -> Task:
    """Notes 002/003: next-word prediction, one output per word (many-to-many).

    Inputs are one-hot words; the target at step t is word t + 1, so after
    "I love deep learning" the model should say "models" and after "The cat sat on the",
    "mat". Shorter sentences are padded (``lengths`` mask them). Validation = training:
    the task is to memorise the notes' sentences.

    Args:
        sentences: the sentences to memorise.

    Returns:
        A many-to-many cross-entropy ``Task``: one-hot inputs (sentences, T, V), int
            targets (sentences, T) and ``lengths``, T the longest sentence's words minus
            one, V the vocabulary (``info``); validation is the training set.
    """
    words = [s.split() for s in sentences]
    vocab = sorted({w for s in words for w in s})
    index = {w: i for i, w in enumerate(vocab)}
    T = max(len(s) for s in words) - 1
    ids = np.zeros((len(words), T + 1), np.int32)
    lengths = np.array([len(s) - 1 for s in words])
    for b, s in enumerate(words):
        ids[b, : len(s)] = [index[w] for w in s]
    inputs = jax.nn.one_hot(ids[:, :-1], len(vocab))
    data = Data(inputs, jnp.asarray(ids[:, 1:]), jnp.asarray(lengths))
    return Task("next_word", data, data, "many_to_many", "cross_entropy", len(vocab), None, {"vocab": vocab})


COUNTRIES = {
    "France": "French",
    "Spain": "Spanish",
    "Germany": "German",
    "Italy": "Italian",
    "Japan": "Japanese",
    "China": "Chinese",
    "Greece": "Greek",
    "Portugal": "Portuguese",
}
FILLERS = (
    "and I love their culture so the food was great we lived near sea my family often visited friends "
    "there it is a beautiful place with old towns many people music every summer long walks"
).split()
PREFIX, SUFFIX = ["I", "grew", "up", "in"], ["I", "speak", "fluent"]


def france(
    distance: int,
    n: int = 4000,
    *,
    key: PRNGKeyArray,
    length: int | None = None,
    n_validation: int = 500,
    distractors: bool = True,
) -> Task:
    """Notes 000-002: "I grew up in France ... I speak fluent ___" -> "French".

    Each sentence is ``I grew up in <country> <fillers> I speak fluent``, with random
    filler words; the target is the country's language (8 pairs; many-to-one). ``distance``
    counts the steps from the country to the last word, so ``distance - 3`` fillers sit
    between them. With ``length``, random fillers are also put in front. Chance level:
    cross-entropy ln 8, accuracy 1/8.

    With ``distractors`` (the default) the fillers are drawn from the filler words and the
    8 country names alike, so other countries are mentioned after the cue (about 8 of 44
    fillers): the last country named says nothing of the answer, and only a memory of the
    one after "I grew up in" helps. Without them no filler is a country, and the cue is the
    only country in the sentence.

    Args:
        distance: steps from the country to the last word (>= 3).
        n: sentences drawn, the first ``n_validation`` for validation.
        key: draws the sentences.
        length: the sentence length in words (None: ``distance`` + 5, no filler in front);
            longer sentences put random fillers in front.
        n_validation: of the ``n``, the sentences held out.
        distractors: draw fillers from the country names too.

    Returns:
        A many-to-one cross-entropy ``Task``: one-hot words (n, length, V), int targets (n,)
            (the language, of 8), baseline ln 8; ``info`` holds the vocabulary and the
            languages.
    """
    check_count(distance, "distance", 3, why="the cue, then 'I speak fluent'")
    length = distance + len(PREFIX) + 1 if length is None else length
    if distance > length - len(PREFIX) - 1:
        raise ValueError(
            f"distance {distance} does not fit in a sentence of length {length} (at most length - {len(PREFIX) + 1})"
        )
    countries = list(COUNTRIES)
    vocab = sorted(set(PREFIX + SUFFIX + countries + list(FILLERS)))
    index = {w: i for i, w in enumerate(vocab)}
    k_c, k_f = jax.random.split(key)
    country = np.asarray(jax.random.randint(k_c, (n,), 0, len(countries)))
    pool = list(FILLERS) + (countries if distractors else [])
    fill = np.asarray([index[w] for w in pool])[np.asarray(jax.random.randint(k_f, (n, length), 0, len(pool)))]
    ids = fill.copy()
    cue = length - 1 - distance
    ids[:, cue - 4 : cue] = [index[w] for w in PREFIX]
    ids[:, cue] = np.asarray([index[c] for c in countries])[country]
    ids[:, -3:] = [index[w] for w in SUFFIX]
    inputs = jax.nn.one_hot(ids, len(vocab))
    train, val = split(inputs, jnp.asarray(country), n_validation)
    info = {"vocab": vocab, "languages": [COUNTRIES[c] for c in countries], "distance": distance}
    return Task(
        f"france(distance={distance})",
        train,
        val,
        "many_to_one",
        "cross_entropy",
        len(countries),
        math.log(len(countries)),
        info,
    )
