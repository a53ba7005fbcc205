"""Tasks ready for ``jaxrnn.fit``: the notes' examples, long-range benchmarks, real data."""

from jaxrnn.tasks.base import ARCHITECTURES, Task, build_model
from jaxrnn.tasks.long_range import adding, copy_memory
from jaxrnn.tasks.notes import france, next_word, stock_prices
from jaxrnn.tasks.real import characters, digits, reverse_digits, sample_text, stdlib_text

TASKS = {
    "adding": adding,
    "copy_memory": copy_memory,
    "france": france,
    "next_word": next_word,
    "stock_prices": stock_prices,
    "characters": characters,
    "digits": digits,
    "reverse_digits": reverse_digits,
}
"""Every task by name: the one list the study, the command line and the benchmarks read."""

__all__ = [
    "ARCHITECTURES",
    "TASKS",
    "Task",
    "adding",
    "build_model",
    "characters",
    "copy_memory",
    "digits",
    "france",
    "next_word",
    "reverse_digits",
    "sample_text",
    "stdlib_text",
    "stock_prices",
]
