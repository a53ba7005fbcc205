"""Tasks ready for ``jaxrnn.fit``: the seeds' examples, long-range benchmarks, real data."""

from jaxrnn.tasks.base import ARCHITECTURES, Task, build_model
from jaxrnn.tasks.long_range import adding, copy_memory
from jaxrnn.tasks.real import characters, digits, reverse_digits, sample_text, stdlib_text
from jaxrnn.tasks.seeds import france, next_word, stock_prices

__all__ = [
    "ARCHITECTURES",
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
