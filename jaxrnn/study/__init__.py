"""The long-term-dependency study and the command line: the applications built on the library.

``import jaxrnn`` does not load this package (nor matplotlib): it is what ``python -m
jaxrnn`` and the ``jaxrnn`` command run. ``experiment``: the study itself (train every
cell at every length and seed, measure the gradient flow before and after); ``report``:
its table, JSON and figures; ``cli``: the command line (the study, ``train``,
``generate``).
"""

from jaxrnn.study.experiment import (
    INITS,
    STUDY_TASKS,
    StudyConfig,
    cell_key,
    initial_model,
    make_task,
    run_study,
    seed_key,
    summarise,
    train_model,
    train_one,
)

__all__ = [
    "INITS",
    "STUDY_TASKS",
    "StudyConfig",
    "cell_key",
    "initial_model",
    "make_task",
    "run_study",
    "seed_key",
    "summarise",
    "train_model",
    "train_one",
]
